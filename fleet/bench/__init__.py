"""``camfleet bench``: measured figures, always as ratios to a baseline taken in the same run.

- ``transport``: the camera -> detector hand-off against one memcpy of the same frame.
- ``autoscale``: a load step on real Ray, the autoscaled fleet against a fixed one sized for
  the peak.
- ``fleet``: cameras x fps on real Ray against the compute bound of the same detector.
- ``raydata``: the same detector through Ray Data's ``map_batches``, against a camfleet fleet.

Each mode prints a markdown table, writes ``--json`` and a PNG plot, and shows progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fleet.bench import autoscale, capacity, raydata, transport


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    import ray

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__,
            "numpy": np.__version__, "platform": platform.platform()}


def main(args: argparse.Namespace) -> int:
    import ray

    from actors.camera import CameraActor
    from actors.detector import DetectorActor
    from fleet.cli import init_ray

    embedded = init_ray(args.address, args.num_cpus, args.object_store_mb)
    try:
        if args.mode == "transport":
            results = transport.run(args, DetectorActor, progress)
        elif args.mode == "fleet":
            results = capacity.run(args, CameraActor, DetectorActor, progress)
        elif args.mode == "raydata":
            results = raydata.run(args, CameraActor, DetectorActor, progress)
        else:
            results = autoscale.run(args, CameraActor, DetectorActor, progress)
    finally:
        if embedded:
            ray.shutdown()
    results["machine"] = machine()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def add_parser(sub: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    bench = sub.add_parser("bench", help="benchmarks (ratios against a baseline in the same run)")
    modes = bench.add_subparsers(dest="mode", required=True)
    for name, module, text in (
        ("transport", transport, "camera -> detector hand-off vs memcpy"),
        ("autoscale", autoscale, "load step: autoscaled vs fixed fleet"),
        ("fleet", capacity, "fleet capacity (cameras x fps) vs the compute bound"),
        ("raydata", raydata, "Ray Data map_batches vs a camfleet fleet, same detector"),
    ):
        mode = modes.add_parser(name, help=text)
        module.add_arguments(mode)
        mode.add_argument("--json", help="write results as JSON here")
        mode.add_argument("--address", help="Ray cluster to join (default: embedded)")
        mode.add_argument("--num-cpus", type=int, help="embedded Ray: logical CPUs (default: all)")
        mode.add_argument("--object-store-mb", type=int, default=1024)
        mode.set_defaults(func=handler)
