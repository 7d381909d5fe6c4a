"""``camfleet bench transport``: for each frame size, the camera -> detector hand-off (``ray.put`` of a reused
buffer + actor call + zero-copy read on the detector side) next to one ``memcpy`` of the same
frame, with one frame in flight and with several in flight (how a camera with ``buffers > 1``
runs). Results go to stdout as a markdown table, to ``--json`` and to a PNG plot.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fleet.frames import Detection, FrameMeta

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}


class TouchDetector:
    """Reads the frame the way a detector starts to (first and last pixel) and finds nothing.

    It isolates the hand-off cost from detection cost.
    """

    label = "touch"

    def __init__(self, _config: Any = None):
        pass

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        _ = int(frame[0, 0, 0]) + int(frame[-1, -1, -1])
        if frame.flags.writeable:
            raise RuntimeError("the frame should be a read-only view on the object store")
        return []


def _percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))


def frame_pool(shape: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """Distinct frames filling more than a CPU cache (64 MB), so no copy is measured cache-hot."""
    nbytes = shape[0] * shape[1] * 3
    count = min(8, max(2, -(-64 * 2**20 // nbytes)))
    return [rng.integers(0, 255, (*shape, 3), dtype=np.uint8) for _ in range(count)]


def measure_memcpy(frames: list[np.ndarray], repeats: int) -> list[float]:
    targets = [np.empty_like(f) for f in frames]
    times = []
    for i in range(repeats):
        src, dst = frames[i % len(frames)], targets[(i + 1) % len(targets)]
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return times


def measure_handoff(detector: Any, frames: list[np.ndarray], meta: FrameMeta, repeats: int) -> list[float]:
    """One frame in flight: put + call + read + result back, per frame."""
    import ray

    times = []
    for i in range(repeats):
        frame = frames[i % len(frames)]
        start = time.perf_counter()
        ref = ray.put(frame)
        ray.get(detector.detect.remote(ref, meta))
        del ref
        times.append(time.perf_counter() - start)
    return times


def measure_pipelined(detectors: list[Any], pool: list[np.ndarray], meta: FrameMeta, frames: int,
                      in_flight: int) -> float:
    """``in_flight`` frames outstanding, as a camera with that many buffers: seconds per frame."""
    import ray

    pending: list[Any] = []
    start = time.perf_counter()
    for i in range(frames):
        if len(pending) >= in_flight:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)
        ref = ray.put(pool[i % len(pool)])
        pending.append(detectors[i % len(detectors)].detect.remote(ref, meta))
        del ref
    ray.get(pending)
    return (time.perf_counter() - start) / frames


def run_transport(args: argparse.Namespace, detector_actor: Any,
                  progress: Callable[[str], None]) -> dict[str, Any]:
    import ray

    from fleet.config import FaceDetectorConfig

    config = FaceDetectorConfig(num_cpus=0.5)
    detectors = [detector_actor.options(num_cpus=0.5).remote("touch", config, TouchDetector)
                 for _ in range(2)]
    ray.get([d.ready.remote() for d in detectors])
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {"sizes": {}, "repeats": args.repeats, "in_flight": args.in_flight}
    for name in args.sizes:
        h, w = SIZES[name]
        pool = frame_pool((h, w), rng)
        frame = pool[0]
        meta = FrameMeta("bench", 0, time.time(), w, h, None)
        progress(f"{name}: memcpy, hand-off x{args.repeats}, pipelined x{args.frames}")
        measure_handoff(detectors[0], pool, meta, 10)  # warm up
        memcpy = measure_memcpy(pool, args.repeats)
        handoff = measure_handoff(detectors[0], pool, meta, args.repeats)
        pipelined = measure_pipelined(detectors, pool, meta, args.frames, args.in_flight)
        copy_ms = statistics.median(memcpy) * 1000
        results["sizes"][name] = {
            "frame_mb": round(frame.nbytes / 1e6, 2),
            "memcpy_ms": round(copy_ms, 3),
            "handoff_median_ms": round(statistics.median(handoff) * 1000, 3),
            "handoff_p99_ms": round(_percentile(handoff, 99) * 1000, 3),
            "pipelined_ms_per_frame": round(pipelined * 1000, 3),
            "handoff_vs_memcpy": round(statistics.median(handoff) * 1000 / copy_ms, 2),
            "pipelined_vs_memcpy": round(pipelined * 1000 / copy_ms, 2),
            "samples_ms": {"memcpy": [round(x * 1000, 4) for x in memcpy],
                           "handoff": [round(x * 1000, 4) for x in handoff]},
        }
    for d in detectors:
        ray.kill(d)
    return results


def transport_table(results: dict[str, Any]) -> str:
    lines = [
        (f"| frame | MB | memcpy ms | hand-off median ms | p99 ms | x memcpy | "
         f"{results['in_flight']} in flight ms/frame | x memcpy |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["sizes"].items():
        lines.append(
            f"| {name} | {r['frame_mb']} | {r['memcpy_ms']} | {r['handoff_median_ms']} | "
            f"{r['handoff_p99_ms']} | {r['handoff_vs_memcpy']} | {r['pipelined_ms_per_frame']} | "
            f"{r['pipelined_vs_memcpy']} |"
        )
    return "\n".join(lines)


def plot_transport(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = list(results["sizes"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data, labels = [], []
    for name in names:
        for method in ("memcpy", "handoff"):
            data.append(results["sizes"][name]["samples_ms"][method])
            labels.append(f"{name}\n{method}")
    ax.boxplot(data, tick_labels=labels, showfliers=False)
    for i, name in enumerate(names):
        ax.plot(2 * i + 2, results["sizes"][name]["pipelined_ms_per_frame"], "r^")
    ax.set_yscale("log")
    ax.set_ylabel("milliseconds per frame (log)")
    ax.set_title("camfleet hand-off (put + call + zero-copy read) vs one memcpy\n"
                 f"red: ms/frame with {results['in_flight']} frames in flight")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def run(args: argparse.Namespace, detector_actor: Any, progress: Callable[[str], None]) -> dict[str, Any]:
    """Measure, print the table, write JSON and the plot. Ray is already up."""
    results = run_transport(args, detector_actor, progress)
    print(transport_table(results))
    if args.plot and plot_transport(results, Path(args.plot)):
        print(f"\nplot: {args.plot}")
    return results


def add_arguments(transport: argparse.ArgumentParser) -> None:
    transport.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    transport.add_argument("--repeats", type=int, default=100, help="hand-offs timed per size")
    transport.add_argument("--frames", type=int, default=200, help="frames in the pipelined run")
    transport.add_argument("--in-flight", type=int, default=4, help="frames in flight, pipelined")
    transport.add_argument("--plot", default="bench-transport.png", help="PNG plot path ('' for none)")
