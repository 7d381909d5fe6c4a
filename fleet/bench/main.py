"""The ``camfleet bench`` command: its arguments, and running one mode on Ray.

Each mode module has ``add_arguments(parser)`` and ``run(args, progress) -> results``; Ray is
started (or joined) here, through :mod:`actors.runtime`, as ``camfleet run`` starts it, so no
mode starts Ray. A mode builds its fleet and its controller with :mod:`fleet.bench.common`, and
imports no other mode. Ray itself is imported only once a mode runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from actors import runtime
from fleet.bench import (
    accuracy,
    autoscale,
    capacity,
    mot,
    raydata,
    scale,
    serve,
    soak,
    tracking,
    transport,
)

MODES: dict[str, tuple[ModuleType, str]] = {
    "transport": (transport, "camera -> detector hand-off vs memcpy"),
    "autoscale": (autoscale, "load step: autoscaled vs fixed fleet"),
    "fleet": (capacity, "fleet capacity (cameras x fps) vs the compute bound"),
    "raydata": (raydata, "Ray Data map_batches vs a camfleet fleet, same detector"),
    "soak": (soak, "minutes of a fleet: RSS, fds, threads, object store, accounting"),
    "accuracy": (accuracy, "face recall/precision by size on composites (no Ray)"),
    "serve": (serve, "Ray Serve handle vs a direct actor call, same frames"),
    "scale": (scale, "one controller's fan-in, memory and metrics as the fleet grows"),
    "tracking": (tracking, "tracking + object events vs frame lines: cost, volume (no Ray)"),
    "mot": (mot, "a clip's tracks through the fleet vs MOTChallenge ground truth"),
}


def progress(text: str) -> None:
    """Progress on stderr, so stdout holds only the tables."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on, kept with them in the JSON."""
    import numpy as np
    import ray

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__,
            "numpy": np.__version__, "platform": platform.platform()}


def main(args: argparse.Namespace) -> int:
    """Run ``args.mode`` on an embedded or joined Ray; write ``--json`` if asked."""
    module, _ = MODES[args.mode]
    needs_ray = getattr(module, "NEEDS_RAY", True)  # a mode may declare it needs no Ray
    embedded = needs_ray and runtime.init_ray(args.address, args.num_cpus, args.object_store_mb)
    try:
        results: dict[str, Any] = module.run(args, progress)
    finally:
        runtime.shutdown_ray(embedded)
    results["machine"] = machine()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def add_parser(sub: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    """``bench`` and its modes on the CLI's subparsers; each mode calls ``handler``."""
    bench = sub.add_parser("bench", help="benchmarks (ratios against a baseline in the same run)")
    modes = bench.add_subparsers(dest="mode", required=True)
    for name, (module, text) in MODES.items():
        mode = modes.add_parser(name, help=text)
        module.add_arguments(mode)
        mode.add_argument("--json", help="write results as JSON here")
        mode.add_argument("--address",
                          help="Ray cluster to join (default: RAY_ADDRESS, else embedded)")
        mode.add_argument("--num-cpus", type=int, help="embedded Ray: logical CPUs (default: all)")
        mode.add_argument("--object-store-mb", type=int, default=1024)
        mode.set_defaults(func=handler)
