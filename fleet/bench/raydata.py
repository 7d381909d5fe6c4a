"""``camfleet bench raydata``: the do-it-yourself alternative a Ray user would try, Ray Data's
``map_batches`` with an actor pool running the same face detector over the same frames, against
a camfleet fleet on the same machine in the same run.

Ray Data is a batch engine: it gets high throughput from a finished list of frames, but a frame
that arrives alone waits for a whole dataset execution (planning, an actor pool's start, the
batch). That per-frame latency is what a camera stream pays. Needs ``pip install 'ray[data]'``
(the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fleet.bench.autoscale import background_image
from fleet.bench.capacity import fleet_yaml, run_point, scene_frames


class FaceBatch:
    """The camfleet face detector as a Ray Data callable class (one per pool actor)."""

    def __init__(self, detect_width: int = 640):
        import cv2

        from fleet.config import FaceDetectorConfig
        from fleet.detectors import build_detector

        cv2.setNumThreads(1)
        self.detector = build_detector(FaceDetectorConfig())
        self.detect_width = detect_width

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from fleet.frames import FrameMeta

        faces = []
        for index, frame in zip(batch["index"], batch["frame"], strict=True):
            h, w = frame.shape[:2]
            faces.append(len(self.detector.detect(frame, FrameMeta("raydata", int(index), 0.0, w, h,
                                                                   self.detect_width))))
        return {"index": batch["index"], "faces": np.asarray(faces)}


def _dataset(frames: list[np.ndarray], count: int) -> Any:
    import ray.data

    rows = [{"index": i, "frame": frames[i % len(frames)]} for i in range(count)]
    return ray.data.from_items(rows)


def throughput(frames: list[np.ndarray], count: int, actors: int,
               batch_size: int) -> dict[str, float]:
    start = time.perf_counter()
    rows = _dataset(frames, count).map_batches(
        FaceBatch, concurrency=actors, batch_size=batch_size, num_cpus=0.9
    ).take_all()
    elapsed = time.perf_counter() - start
    return {"frames": len(rows), "seconds": round(elapsed, 2), "fps": round(len(rows) / elapsed, 2),
            "faces": int(sum(r["faces"] for r in rows))}


def single_frame_latency(frames: list[np.ndarray], repeats: int, actors: int) -> list[float]:
    """A frame that arrives alone, as from a camera: one dataset execution per frame."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        _dataset(frames[i % len(frames):][:1], 1).map_batches(
            FaceBatch, concurrency=actors, batch_size=1, num_cpus=0.9).take_all()
        times.append(time.perf_counter() - start)
    return times


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    import logging

    import ray

    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="camfleet-bench-") as tmp:
        folder = Path(tmp)
        background = background_image(folder)
        frames = scene_frames(1280, 720, background)
        progress(f"Ray Data: {args.frames} frames through map_batches, {args.actors} actor(s)")
        batch = throughput(frames, args.frames, args.actors, args.batch_size)
        progress(f"Ray Data: one frame at a time, x{args.latency_repeats}")
        alone = single_frame_latency(frames, args.latency_repeats, args.actors)
        progress(f"camfleet: {args.cameras} cameras x {args.fps:g} fps (saturating), "
                 f"{args.actors} detector actor(s)")
        saturating = fleet_yaml(args.cameras, args.fps, 1280, 720, background, args.actors, 640)
        fleet = run_point(saturating, args.point_s, 4.0, folder / "fleet")
        progress("camfleet: 1 camera x 5 fps (frames arrive one at a time, capacity to spare)")
        light = run_point(fleet_yaml(1, 5.0, 1280, 720, background, args.actors, 640),
                          args.point_s, 4.0, folder / "light")
    results = {
        "ray_data": {**batch, "single_frame_latency_ms": round(statistics.median(alone) * 1000, 1)},
        "camfleet": {"fps": fleet["analysed_fps"], "offered_fps": fleet["offered_fps"],
                     "p50_ms_saturated": fleet["p50_ms"], "p50_ms": light["p50_ms"],
                     "p99_ms": light["p99_ms"],
                     "accounted": fleet["accounted"] and light["accounted"]},
        "actors": args.actors,
    }
    results["throughput_ratio"] = (round(results["camfleet"]["fps"] / batch["fps"], 3)
                                   if batch["fps"] else None)
    print(table(results))
    return results


def table(results: dict[str, Any]) -> str:
    r, c = results["ray_data"], results["camfleet"]
    return "\n".join([
        "| method | frames/s | per-frame latency p50 ms | notes |", "|---|---|---|---|",
        (f"| Ray Data map_batches ({results['actors']} actors) | {r['fps']} | "
         f"{r['single_frame_latency_ms']} (a frame alone) | "
         f"{r['frames']} frames as one finished batch |"),
        (f"| camfleet fleet ({results['actors']} detector actors) | {c['fps']} | {c['p50_ms']} "
         f"(capture to result, 1 camera at 5 fps) | frames/s with {c['offered_fps']} fps offered "
         f"(p50 then {c['p50_ms_saturated']} ms) |"),
        "", f"throughput, camfleet / Ray Data: {results['throughput_ratio']}",
    ])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=300, help="frames in the batch run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--latency-repeats", type=int, default=5)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--fps", type=float, default=15.0, help="per camera (saturating)")
    parser.add_argument("--point-s", type=float, default=15.0)
    parser.add_argument("--plot", default="", help="(no plot for this mode)")
