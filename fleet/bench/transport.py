"""``camfleet bench transport``: for each frame size, the camera -> detector hand-off
(``ray.put`` of a reused buffer + actor call + zero-copy read on the detector side) next to one
``memcpy`` of the same frame, with one frame in flight and with several in flight (how a camera
with ``buffers > 1`` runs), and the baselines of :mod:`fleet.bench.baselines` on the same frames.
Results go to stdout as a markdown table, to ``--json`` and to a PNG plot.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fleet import runtime
from fleet.bench import baselines, plotting
from fleet.bench.bufferpool import memory_table_1080p
from fleet.bench.measure import BaselineResult
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
    for src, dst in zip(frames, targets, strict=True):
        np.copyto(dst, src)  # fault the pages in: time copies, not first touches
    times = []
    for i in range(repeats):
        src, dst = frames[i % len(frames)], targets[(i + 1) % len(targets)]
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return times


def measure_handoff(detector: Any, frames: list[np.ndarray], meta: FrameMeta,
                    repeats: int) -> list[float]:
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


def measure_pipelined(detectors: list[Any], pool: list[np.ndarray], meta: FrameMeta,
                      frames: int, in_flight: int) -> float:
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


def run_transport(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    import ray

    from fleet.config import FaceDetectorConfig

    config = FaceDetectorConfig(num_cpus=0.5)
    detector_actor = runtime.detector_actor()
    detectors = [detector_actor.options(num_cpus=0.5).remote("touch", config, TouchDetector)
                 for _ in range(2)]
    reader = ray.remote(num_cpus=0.1)(_Reader).remote()
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
        progress(f"{name}: detector-side read x{args.repeats}; baselines: HTTP+base64+JSON, "
                 f"process per frame x{args.process_repeats}, pickled pipe")
        read = measure_read(reader, pool, args.repeats)
        others = baselines.run_baselines(pool, min(args.repeats, 30), args.process_repeats)
        handoff_ms = statistics.median(handoff) * 1000
        results["sizes"][name] = {
            "frame_mb": round(frame.nbytes / 1e6, 2),
            "memcpy_ms": round(copy_ms, 3),
            "handoff_median_ms": round(statistics.median(handoff) * 1000, 3),
            "handoff_p99_ms": round(_percentile(handoff, 99) * 1000, 3),
            "pipelined_ms_per_frame": round(pipelined * 1000, 3),
            "handoff_vs_memcpy": round(statistics.median(handoff) * 1000 / copy_ms, 2),
            "pipelined_vs_memcpy": round(pipelined * 1000 / copy_ms, 2),
            "read_median_ms": round(statistics.median(read) * 1000, 4),
            "samples_ms": {"memcpy": _ms(memcpy), "handoff": _ms(handoff),
                           **{m: _ms(r.samples_s) for m, r in others.items()}},
            "baselines": {m: _baseline_row(r, handoff_ms, copy_ms) for m, r in others.items()},
        }
    for actor in [*detectors, reader]:
        ray.kill(actor)
    if "1080p" in args.sizes:
        progress("memory table: 50 frames at 1080p, new array per frame vs a reused pool of 4")
        results["memory_table_1080p"] = memory_table_1080p(frames=50).to_dict()
    results["targets"] = targets(results)
    return results


def _ms(samples_s: Sequence[float]) -> list[float]:
    return [round(x * 1000, 4) for x in samples_s]


def _baseline_row(result: BaselineResult, handoff_ms: float, copy_ms: float) -> dict[str, Any]:
    """A baseline's figures without its samples (kept apart) and how it compares."""
    row = {k: v for k, v in result.to_dict().items() if k not in ("samples_ms", "verified_crc32")}
    return {**row, "x_camfleet": round(result.median_s * 1000 / handoff_ms, 2),
            "x_memcpy": round(result.median_s * 1000 / copy_ms, 2)}


class _Reader:
    """Times what a detector pays to get its frame: resolving the ref to a zero-copy view."""

    def read(self, refs: list[Any]) -> float:
        import ray

        start = time.perf_counter()
        frame = ray.get(refs[0])
        _ = int(frame[0, 0, 0]) + int(frame[-1, -1, -1])
        return time.perf_counter() - start


def measure_read(reader: Any, frames: list[np.ndarray], repeats: int) -> list[float]:
    import ray

    times = []
    for i in range(repeats):
        ref = ray.put(frames[i % len(frames)])
        times.append(ray.get(reader.read.remote([ref])))  # in a list: Ray does not resolve it
        del ref
    return times


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, checked on this run's figures."""
    sizes = results["sizes"]
    out: dict[str, Any] = {}
    if "1080p" in sizes:
        http = sizes["1080p"]["baselines"]["http_base64_json"]["x_camfleet"]
        out["camfleet_x_faster_than_http_1080p"] = http
        out["at_least_20x_faster_than_http"] = http >= 20
        out["handoff_x_memcpy_1080p"] = sizes["1080p"]["handoff_vs_memcpy"]
        out["within_10x_of_memcpy"] = sizes["1080p"]["handoff_vs_memcpy"] <= 10
    if "720p" in sizes and "4k" in sizes:
        ratio = sizes["4k"]["read_median_ms"] / sizes["720p"]["read_median_ms"]
        out["read_4k_over_720p"] = round(ratio, 3)
        out["read_flat_720p_to_4k"] = ratio <= 1.2
    return out


METHODS = ("memcpy", "handoff", "pickled_pipe", "http_base64_json", "process_per_frame")
LABELS = {"memcpy": "memcpy", "handoff": "camfleet (d)", "pickled_pipe": "pipe+pickle (c)",
          "http_base64_json": "HTTP+base64+JSON (a)", "process_per_frame": "process/frame (b)"}


def transport_table(results: dict[str, Any]) -> str:
    lines = [
        (f"| frame | MB | memcpy ms | hand-off median ms | p99 ms | x memcpy | "
         f"{results['in_flight']} in flight ms/frame | x memcpy | detector-side read ms |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["sizes"].items():
        lines.append(
            f"| {name} | {r['frame_mb']} | {r['memcpy_ms']} | {r['handoff_median_ms']} | "
            f"{r['handoff_p99_ms']} | {r['handoff_vs_memcpy']} | {r['pipelined_ms_per_frame']} | "
            f"{r['pipelined_vs_memcpy']} | {r['read_median_ms']} |"
        )
    lines += ["", ("| frame | method | median ms | p99 ms | frames/s | x camfleet | x memcpy | "
                   "sender peak RSS +MB | receiver peak RSS MB | frame-sized allocs/frame | "
                   "GC runs |"),
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results["sizes"].items():
        for method, b in r["baselines"].items():
            lines.append(
                f"| {name} | {LABELS[method]} | {b['median_ms']} | {b['p99_ms']} | {b['fps']} | "
                f"{b['x_camfleet']} | {b['x_memcpy']} | {b['parent_peak_rss_increase_mb']} | "
                f"{b['child_peak_rss_mb']} | {b['frame_allocs_per_frame']} | "
                f"{b['gc_collections_total']} |"
            )
    if "memory_table_1080p" in results:
        lines += _memory_lines(results["memory_table_1080p"])
    targets = results.get("targets", {})
    lines += ["", "targets: " + ", ".join(f"{k}={v}" for k, v in targets.items())]
    return "\n".join(lines)


def _memory_lines(table: dict[str, Any]) -> list[str]:
    lines = ["", "memory, 50 frames at 1080p (the case study's table):", "",
             "| variant | peak MB | delta MB | buffers created | hit rate |",
             "|---|---|---|---|---|"]
    for row in (table["naive"], table["pool"]):
        lines.append(f"| {row['variant']} | {row['peak_mb']} | {row['delta_mb']} | "
                     f"{row['buffers_created']} | {row['hit_rate']} |")
    return lines


def plot_transport(results: dict[str, Any], path: Path) -> bool:
    plt = plotting.pyplot()
    if plt is None:
        return False
    names = list(results["sizes"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 5), sharey=True,
                             squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        samples = results["sizes"][name]["samples_ms"]
        methods = [m for m in METHODS if samples.get(m)]
        ax.boxplot([samples[m] for m in methods], tick_labels=[LABELS[m] for m in methods],
                   showfliers=False)
        pipelined = results["sizes"][name]["pipelined_ms_per_frame"]
        ax.plot(methods.index("handoff") + 1, pipelined, "r^",
                label=f"{results['in_flight']} in flight")
        ax.set_yscale("log")
        ax.set_title(f"{name} ({results['sizes'][name]['frame_mb']} MB)")
        ax.tick_params(axis="x", rotation=40)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("milliseconds per frame (log)")
    axes[0][0].legend(loc="upper left")
    plotting.save(fig, path,
                  "Moving a frame to a detector: camfleet vs the usual ways, and one memcpy")
    return True


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    """Measure, print the table and draw the plot (the caller writes the JSON). Ray is up."""
    results = run_transport(args, progress)
    print(transport_table(results))
    if args.plot and plot_transport(results, Path(args.plot)):
        print(f"\nplot: {args.plot}")
    return results


def add_arguments(transport: argparse.ArgumentParser) -> None:
    transport.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    transport.add_argument("--repeats", type=int, default=100, help="hand-offs timed per size")
    transport.add_argument("--frames", type=int, default=200, help="frames in the pipelined run")
    transport.add_argument("--in-flight", type=int, default=4, help="frames in flight, pipelined")
    transport.add_argument("--process-repeats", type=int, default=5,
                           help="frames for the process-per-frame baseline (a spawn each)")
    transport.add_argument("--plot", default="bench-transport.png",
                           help="PNG plot path ('' for none)")
