"""Shared test helpers: real footage from Debian's opencv-doc package, the shared local Ray."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FOOTAGE = Path("/usr/share/doc/opencv-doc/examples/data")
MEGAMIND = FOOTAGE / "Megamind.avi"  # animated faces, 720x528
VTEST = FOOTAGE / "vtest.avi"  # pedestrians, 768x576
REPO = Path(__file__).resolve().parents[1]


def _need_footage() -> None:
    if not (MEGAMIND.is_file() and VTEST.is_file()):
        pytest.fail(f"real footage missing under {FOOTAGE}: install Debian's opencv-doc "
                    "(bash scripts/setup.sh test does)")


@pytest.fixture(scope="session")
def footage() -> Path:
    _need_footage()
    return FOOTAGE


@pytest.fixture(scope="session")
def ray_session():
    """One small local Ray for the whole session (ray.init costs about 7 s here)."""
    import ray

    from fleet.cli import RAY_SYSTEM_CONFIG

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(num_cpus=4, object_store_memory=400 * 2**20, include_dashboard=False,
             log_to_driver=False, logging_level="WARNING", _system_config=RAY_SYSTEM_CONFIG)
    yield ray
    ray.shutdown()
