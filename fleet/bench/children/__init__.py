"""The other side of the baselines: programs run in their own process, never imported by a bench.

Each is a real module, so it ships with the package and runs as ``python -m
fleet.bench.children.<name>``. They import only the standard library, NumPy and
:mod:`fleet.bench.children.common`, so what a child costs to start (the point of the
process-per-frame baseline) is an interpreter and ``import numpy``, nothing of camfleet's.
"""

from __future__ import annotations

import sys


def argv(name: str) -> list[str]:
    """The command line that runs child ``name`` with this interpreter."""
    return [sys.executable, "-m", f"{__name__}.{name}"]
