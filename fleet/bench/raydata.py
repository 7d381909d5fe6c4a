"""``camfleet bench raydata``: the do-it-yourself alternative a Ray user would try, Ray Data's
``map_batches`` with an actor pool running the same face detector (BlazeFace, the default
``face``) over the same frames, against a camfleet fleet on the same machine in the same run.

Fair to both: each is measured in steady state, after its start-up, which is reported apart.
Ray Data's throughput is timed from its first batch out (actor pool up, model loaded) to its
last over one long streamed execution (``iter_batches``); camfleet's after a warm-up. Both batch
the same (``--batch-size`` frames per model call: ``batch_size`` for Ray Data,
``max_batch_size`` for the fleet's detectors) and both run ``--actors`` detector actors. Medians
of ``--runs`` runs. A frame that arrives alone, as from a camera, pays a whole dataset execution
in Ray Data (its start-up included: that is what a stream pays), which is reported as well.
Needs ``pip install 'ray[data]'`` (the ``bench`` extra).
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

from fleet.bench import plotting
from fleet.bench.common.fleets import capacity_fleet
from fleet.bench.common.footage import background_image, scene_frames
from fleet.bench.common.running import in_process_controller, run_point, wait_for_free_cpus
from fleet.config import FleetConfig


class FaceBatch:
    """The camfleet face detector as a Ray Data callable class (one per pool actor)."""

    def __init__(self, detect_width: int = 640):
        import cv2

        from fleet.config import BlazeFaceDetectorConfig
        from fleet.detectors import build_detector

        cv2.setNumThreads(1)
        self.detector = build_detector(BlazeFaceDetectorConfig(num_cpus=1))
        self.detect_width = detect_width

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from fleet.detectors import detect_batch
        from fleet.frames import FrameMeta

        frames = list(batch["frame"])
        metas = [FrameMeta("raydata", int(i), 0.0, f.shape[1], f.shape[0], self.detect_width)
                 for i, f in zip(batch["index"], frames, strict=True)]
        found = detect_batch(self.detector, frames, metas)  # one model call, as the fleet's
        return {"index": batch["index"], "faces": np.asarray([len(d) for d in found])}


def _dataset(frames: list[np.ndarray], count: int) -> Any:
    import ray.data

    rows = [{"index": i, "frame": frames[i % len(frames)]} for i in range(count)]
    return ray.data.from_items(rows)


def throughput(frames: list[np.ndarray], count: int, actors: int,
               batch_size: int) -> dict[str, Any]:
    """One streamed execution: start-up (to the first batch out) apart from steady state."""
    start = time.perf_counter()
    arrivals: list[tuple[float, int]] = []
    faces = 0
    stream = _dataset(frames, count).map_batches(
        FaceBatch, concurrency=actors, batch_size=batch_size, num_cpus=0.9)
    for out in stream.iter_batches(batch_size=None):
        arrivals.append((time.perf_counter(), len(out["index"])))
        faces += int(np.sum(out["faces"]))
    elapsed = time.perf_counter() - start
    total = sum(n for _, n in arrivals)
    skip = max(1, len(arrivals) // 10)  # the first batches come as the pool fills: not steady
    steady_frames = sum(n for _, n in arrivals[skip:])
    steady_s = arrivals[-1][0] - arrivals[skip - 1][0] if len(arrivals) > skip else 0.0
    return {"frames": total, "seconds": round(elapsed, 2),
            "startup_s": round(arrivals[0][0] - start, 2) if arrivals else None,
            "fps_end_to_end": round(total / elapsed, 2),
            "fps": round(steady_frames / steady_s, 2) if steady_s > 0 else 0.0, "faces": faces}


def fleet_configs(args: argparse.Namespace,
                  background: str | None) -> tuple[FleetConfig, FleetConfig]:
    """camfleet's side: ``--cameras`` x ``--fps`` (saturating), and 1 camera at 5 fps (frames
    arrive one at a time), each on ``--actors`` detectors batching ``--batch-size``."""
    saturating = capacity_fleet(args.cameras, args.fps, 1280, 720, background, args.actors, 640,
                                args.batch_size)
    light = capacity_fleet(1, 5.0, 1280, 720, background, args.actors, 640, args.batch_size)
    return saturating, light


def fleet_startup(config: FleetConfig, folder: Path, timeout_s: float = 60.0) -> float:
    """Seconds from building a fleet to its first analysed frame (camfleet's start-up)."""
    wait_for_free_cpus()  # Ray Data's pool actors may still be ending
    start = time.perf_counter()
    controller = in_process_controller(config, folder)
    controller.start()
    try:
        while time.perf_counter() - start < timeout_s:
            snap = controller.collect()
            if sum(c.stats.processed for c in snap.cameras.values()) > 0:
                return time.perf_counter() - start
            time.sleep(0.05)
        return float("nan")
    finally:
        controller.stop()


def single_frame_latency(frames: list[np.ndarray], repeats: int, actors: int) -> list[float]:
    """A frame that arrives alone, as from a camera: one dataset execution per frame."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        _dataset(frames[i % len(frames):][:1], 1).map_batches(
            FaceBatch, concurrency=actors, batch_size=1, num_cpus=0.9).take_all()
        times.append(time.perf_counter() - start)
    return times


def _median(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    import logging

    import ray

    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    batches, fleets, lights, alones, startups = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="camfleet-bench-") as tmp:
        folder = Path(tmp)
        background = background_image(folder)
        frames = scene_frames(1280, 720, background)
        progress("warm-up: one small Ray Data execution and one fleet start (not measured)")
        throughput(frames, 2 * args.batch_size, args.actors, args.batch_size)
        saturating, light = fleet_configs(args, background)
        for i in range(args.runs):
            tag = f"run {i + 1}/{args.runs}"
            progress(f"{tag}: Ray Data, {args.frames} frames streamed through map_batches, "
                     f"{args.actors} actor(s), batch {args.batch_size}")
            batches.append(throughput(frames, args.frames, args.actors, args.batch_size))
            progress(f"{tag}: Ray Data, one frame at a time, x{args.latency_repeats}")
            alones.append(statistics.median(
                single_frame_latency(frames, args.latency_repeats, args.actors)))
            progress(f"{tag}: camfleet start-up (to the first analysed frame)")
            startups.append(fleet_startup(saturating, folder / f"startup-{i}"))
            progress(f"{tag}: camfleet, {args.cameras} cameras x {args.fps:g} fps (saturating), "
                     f"{args.actors} detector actor(s), max_batch_size {args.batch_size}")
            fleets.append(run_point(saturating, args.point_s, 4.0, folder / f"fleet-{i}"))
            progress(f"{tag}: camfleet, 1 camera x 5 fps (frames arrive one at a time)")
            lights.append(run_point(light, args.point_s, 4.0, folder / f"light-{i}"))
    ray_data = {key: _median([b[key] for b in batches])
                for key in ("frames", "seconds", "startup_s", "fps_end_to_end", "fps")}
    ray_data["single_frame_latency_ms"] = round(statistics.median(alones) * 1000, 1)
    ray_data["runs_fps"] = [b["fps"] for b in batches]
    camfleet = {"fps": _median([f["analysed_fps"] for f in fleets]),
                "offered_fps": _median([f["offered_fps"] for f in fleets]),
                "p50_ms_saturated": _median([f["p50_ms"] for f in fleets]),
                "p50_ms": _median([f["p50_ms"] for f in lights]),
                "p99_ms": _median([f["p99_ms"] for f in lights]),
                "startup_s": _median(startups),
                "runs_fps": [f["analysed_fps"] for f in fleets],
                "accounted": all(f["accounted"] for f in fleets + lights)}
    results = {"ray_data": ray_data, "camfleet": camfleet, "actors": args.actors,
               "batch_size": args.batch_size, "runs": args.runs, "detector": "blazeface"}
    results["throughput_ratio"] = (round(camfleet["fps"] / ray_data["fps"], 3)
                                   if ray_data["fps"] else None)
    print(table(results))
    if args.plot and plot(results, Path(args.plot)):
        print(f"\nplot: {args.plot}")
    return results


def plot(results: dict[str, Any], path: Path) -> bool:
    plt = plotting.pyplot()
    if plt is None:
        return False
    r, c = results["ray_data"], results["camfleet"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    left.bar(["Ray Data", "camfleet"], [r["fps"], c["fps"]])
    left.set_ylabel("steady-state frames/s (median of runs)")
    right.bar(["Ray Data\n(frame alone)", "camfleet\n(1 cam, 5 fps)"],
              [r["single_frame_latency_ms"], c["p50_ms"] or 0])
    right.set_ylabel("per-frame latency p50 ms")
    right.set_yscale("log")
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="y")
    plotting.save(fig, path, "Ray Data map_batches vs a camfleet fleet (BlazeFace, same frames)")
    return True


def table(results: dict[str, Any]) -> str:
    r, c = results["ray_data"], results["camfleet"]
    return "\n".join([
        f"medians of {results['runs']} run(s); batch {results['batch_size']} on both sides", "",
        ("| method | steady frames/s | start-up s | per-frame latency p50 ms | notes |"),
        "|---|---|---|---|---|",
        (f"| Ray Data map_batches ({results['actors']} actors) | {r['fps']} | {r['startup_s']} | "
         f"{r['single_frame_latency_ms']} (a frame alone) | {r['frames']} frames streamed, "
         f"{r['fps_end_to_end']} fps end to end |"),
        (f"| camfleet fleet ({results['actors']} detector actors) | {c['fps']} | "
         f"{c['startup_s']} | {c['p50_ms']} (capture to result, 1 camera at 5 fps) | "
         f"{c['offered_fps']} fps offered (p50 then {c['p50_ms_saturated']} ms) |"),
        "", f"steady-state throughput, camfleet / Ray Data: {results['throughput_ratio']}",
    ])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=600, help="frames in the streamed run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--latency-repeats", type=int, default=5)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--fps", type=float, default=15.0, help="per camera (saturating)")
    parser.add_argument("--point-s", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3, help="runs (medians reported)")
    parser.add_argument("--plot", default="bench-raydata.png", help="PNG plot path ('' for none)")
