"""Shared test helpers: real footage from Debian's opencv-doc package, the shared local Ray."""

from __future__ import annotations

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
