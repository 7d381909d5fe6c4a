"""Where model files live: the models folder, ``$CAMFLEET_MODELS`` or ``models/`` in the checkout.

Model files are never downloaded at run time: ``scripts/fetch_models.py`` fetches the ones
camfleet ships (BlazeFace) at set-up, hash-checked, and your own go in the same folder or
anywhere you name with an absolute path. Paths are resolved where the detector runs, so on a
cluster every node that runs a detector needs the file (see the README).
"""

from __future__ import annotations

import os
from pathlib import Path

from fleet.errors import SettingError

MODELS_ENV = "CAMFLEET_MODELS"
FETCH_HINT = ("fetch it with `python scripts/fetch_models.py` (scripts/setup.sh does), or set "
              f"{MODELS_ENV} to the folder that has it")


def models_dir() -> Path:
    """``$CAMFLEET_MODELS`` when set, else ``models/`` next to the ``fleet`` package."""
    configured = os.environ.get(MODELS_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parents[2] / "models"


def resolve(path: str) -> Path:
    """An absolute path as it is; a relative one inside the models folder."""
    given = Path(path).expanduser()
    return given if given.is_absolute() else models_dir() / given


def existing_file(path: str, field: str, hint: str) -> Path:
    """The file ``path`` names, or a SettingError about ``field`` saying where it looked."""
    found = resolve(path)
    if not found.is_file():
        raise SettingError(field, f"no file at {found}; {hint}")
    return found
