"""``camfleet bench transport``: for each frame size, the camera -> detector hand-off through
the real code path (:mod:`fleet.bench.common.handoff`: a :class:`fleet.pipeline.camera.Camera`
with its :class:`actors.handoff.RayDispatcher` and real DetectorActors running a detector that
does no work), timed per frame from ``submit`` to result, with one frame in flight and with
several (a camera's ``buffers``), and with ``put_width`` at the largest size; next to one
``memcpy`` of the same frame and the baselines of :mod:`fleet.bench.baselines`, on the same
frames in the same run. Results go to stdout as a markdown table, to ``--json`` and to a PNG
plot.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fleet.bench import baselines, plotting
from fleet.bench.bufferpool import memory_table_1080p
from fleet.bench.common.handoff import (
    SIZES,
    camera_run,
    frame_pool,
    measure_memcpy,
    touch_detectors,
)
from fleet.bench.measure import BaselineResult
from fleet.frames import FrameMeta


def _percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))


def ray_floor(detectors: list[Any], pool: list[np.ndarray], frames: int, in_flight: int,
              warmup: int = 10) -> dict[str, float]:
    """What Ray itself costs per frame, with none of camfleet's code: a bare loop doing
    ``ray.put`` and ``detect.remote(ref, meta)`` on the same DetectorActors, ``in_flight``
    frames outstanding (ms per frame, steady); and ``ray.put`` alone, keeping as many refs.
    No design that puts each frame into the object store and calls an actor with it can be
    cheaper on this machine than ``put_call_ms``."""
    import ray

    def put_call(count: int) -> float:
        pending: list[Any] = []
        start = time.perf_counter()
        for i in range(count):
            frame = pool[i % len(pool)]
            meta = FrameMeta("floor", i, 0.0, frame.shape[1], frame.shape[0], frame.shape[1])
            ref = ray.put(frame)
            pending.append(detectors[i % len(detectors)].detect.remote(ref, meta))
            del ref
            if len(pending) >= in_flight:
                done, pending = ray.wait(pending, num_returns=1)
                ray.get(done)
        ray.get(pending)
        return (time.perf_counter() - start) / count * 1000

    def put_only(count: int) -> float:
        held: list[Any] = []
        start = time.perf_counter()
        for i in range(count):
            held.append(ray.put(pool[i % len(pool)]))
            if len(held) > in_flight:
                held.pop(0)
        elapsed = time.perf_counter() - start
        held.clear()
        return elapsed / count * 1000

    put_call(warmup)
    put_only(warmup)
    return {"put_call_ms": round(put_call(frames), 3), "put_ms": round(put_only(frames), 3)}


def run_transport(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    import ray

    detectors = touch_detectors()
    reader = ray.remote(num_cpus=0.1)(_Reader).remote()
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {"sizes": {}, "repeats": args.repeats, "in_flight": args.in_flight,
                               "runs": args.runs,
                               "path": "fleet.pipeline.camera.Camera + "
                                       "actors.handoff.RayDispatcher + "
                                       "DetectorActor(TouchDetector)"}
    for name in args.sizes:
        pool = frame_pool(SIZES[name], rng)
        rows = []
        for i in range(args.runs):
            progress(f"{name}: run {i + 1}/{args.runs}")
            rows.append(measure_size(args, name, pool, detectors, reader, progress))
        row = median_row(rows)
        row["runs"] = [{**{k: r[k] for k in RUN_KEYS},
                        **({f"put_frames_{k}": r["put_frames"][k] for k in ("ms_per_frame",
                                                                           "http_x", "vs_memcpy")}
                           if "put_frames" in r else {})} for r in rows]
        results["sizes"][name] = row
    for actor in [*detectors, reader]:
        ray.kill(actor)
    if "1080p" in args.sizes and args.memory_table:
        progress("memory table: 50 frames at 1080p, new array per frame vs a reused pool of 4")
        results["memory_table_1080p"] = memory_table_1080p(frames=50).to_dict()
    results["targets"] = targets(results)
    return results


RUN_KEYS = ("memcpy_ms", "handoff_median_ms", "pipelined_ms_per_frame", "http_x_single",
            "http_x_pipelined", "handoff_vs_memcpy", "pipelined_vs_memcpy")


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every number the median over the runs; lists (samples) and text from the first run."""
    first = rows[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = median_row([r[key] for r in rows])
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            out[key] = all(r[key] for r in rows) if isinstance(value, bool) else value
        else:
            med = statistics.median(r[key] for r in rows)
            out[key] = round(med, 4) if isinstance(med, float) else med
    return out


def measure_size(args: argparse.Namespace, name: str, pool: list[np.ndarray],
                 detectors: list[Any], reader: Any,
                 progress: Callable[[str], None]) -> dict[str, Any]:
    """One run of every measurement at one frame size."""
    h, w = SIZES[name]
    frame = pool[0]
    progress(f"{name}: memcpy x{args.repeats}; camera hand-off x{args.repeats}, 1 in flight")
    camera_run(detectors, pool, 10, buffers=1, warmup=5)  # warm up
    memcpy = measure_memcpy(pool, args.repeats)
    single = camera_run(detectors, pool, args.repeats, buffers=1)
    progress(f"{name}: camera hand-off x{args.frames}, {args.in_flight} in flight")
    piped = camera_run(detectors, pool, args.frames, buffers=args.in_flight)
    progress(f"{name}: Ray's floor: bare ray.put + actor call x{args.frames}, "
             f"{args.in_flight} in flight; ray.put alone")
    floor = ray_floor(detectors, pool, args.frames, args.in_flight)
    grouped: dict[str, Any] = {}
    if args.put_frames > 1:
        k = args.put_frames
        progress(f"{name}: camera hand-off x{args.frames} with put_frames {k} "
                 f"({2 * k} buffers), and without at {2 * k} buffers")
        grouped = {"frames": k, "buffers": 2 * k,
                   "run": camera_run(detectors, pool, args.frames, buffers=2 * k, put_frames=k),
                   "alone": camera_run(detectors, pool, args.frames, buffers=2 * k)}
    handoff = single["latencies"]
    copy_ms = statistics.median(memcpy) * 1000
    progress(f"{name}: detector-side read x{args.repeats}; baselines: HTTP+base64+JSON, "
             f"process per frame x{args.process_repeats}, pickled pipe")
    read = measure_read(reader, pool, args.repeats)
    others = baselines.run_baselines(pool, min(args.repeats, 30), args.process_repeats)
    handoff_ms = statistics.median(handoff) * 1000
    best_ms = min(handoff_ms, piped["ms_per_frame"])
    row: dict[str, Any] = {
        "frame_mb": round(frame.nbytes / 1e6, 2),
        "memcpy_ms": round(copy_ms, 3),
        "handoff_median_ms": round(handoff_ms, 3),
        "handoff_p99_ms": round(_percentile(handoff, 99) * 1000, 3),
        "single_ms_per_frame": round(single["ms_per_frame"], 3),
        "pipelined_ms_per_frame": round(piped["ms_per_frame"], 3),
        "pipelined_latency_median_ms": round(statistics.median(piped["latencies"]) * 1000, 3),
        "handoff_vs_memcpy": round(handoff_ms / copy_ms, 2),
        "pipelined_vs_memcpy": round(piped["ms_per_frame"] / copy_ms, 2),
        "put_bytes": single["put_bytes"],
        "accounted": single["accounted"] and piped["accounted"],
        "read_median_ms": round(statistics.median(read) * 1000, 4),
        "samples_ms": {"memcpy": _ms(memcpy), "handoff": _ms(handoff),
                       **{m: _ms(r.samples_s) for m, r in others.items()}},
        "baselines": {m: _baseline_row(r, best_ms, copy_ms) for m, r in others.items()},
    }
    http_ms = others["http_base64_json"].median_s * 1000
    row["ray_floor"] = {
        **floor,
        "put_call_vs_memcpy": round(floor["put_call_ms"] / copy_ms, 2),
        "http_x_put_call": round(http_ms / floor["put_call_ms"], 2),
        "http_x_put": round(http_ms / floor["put_ms"], 2),
        "camfleet_over_floor": round(piped["ms_per_frame"] / floor["put_call_ms"], 2),
        "budget_20x_http_ms": round(http_ms / 20, 3),
        "budget_10x_memcpy_ms": round(copy_ms * 10, 3),
    }
    if grouped:
        run, alone = grouped["run"], grouped["alone"]
        row["put_frames"] = {
            "frames": grouped["frames"], "buffers": grouped["buffers"],
            "ms_per_frame": round(run["ms_per_frame"], 3),
            "latency_median_ms": round(statistics.median(run["latencies"]) * 1000, 3),
            "frames_per_put": run["frames_per_put"],
            "accounted": run["accounted"] and alone["accounted"],
            "vs_memcpy": round(run["ms_per_frame"] / copy_ms, 2),
            "http_x": round(http_ms / run["ms_per_frame"], 2),
            "alone_ms_per_frame": round(alone["ms_per_frame"], 3),
            "alone_latency_median_ms": round(statistics.median(alone["latencies"]) * 1000, 3),
            "alone_http_x": round(http_ms / alone["ms_per_frame"], 2),
        }
    row["http_x_single"] = round(http_ms / handoff_ms, 2)
    row["http_x_pipelined"] = round(http_ms / piped["ms_per_frame"], 2)
    if args.put_width and w > args.put_width:
        progress(f"{name}: camera hand-off with put_width {args.put_width}, "
                 f"1 and {args.in_flight} in flight")
        small1 = camera_run(detectors, pool, args.repeats, buffers=1,
                            put_width=args.put_width)
        smalln = camera_run(detectors, pool, args.frames, buffers=args.in_flight,
                            put_width=args.put_width)
        row["put_width"] = {
            "width": args.put_width,
            "handoff_median_ms": round(statistics.median(small1["latencies"]) * 1000, 3),
            "single_ms_per_frame": round(small1["ms_per_frame"], 3),
            "pipelined_ms_per_frame": round(smalln["ms_per_frame"], 3),
            "put_bytes": small1["put_bytes"],
            "store_bytes_in_flight": small1["put_bytes"] * args.in_flight,
            "full_store_bytes_in_flight": single["put_bytes"] * args.in_flight,
            "bytes_ratio": round(single["put_bytes"] / small1["put_bytes"], 1),
            "http_x_pipelined": round(http_ms / smalln["ms_per_frame"], 2),
            "pipelined_vs_memcpy": round(smalln["ms_per_frame"] / copy_ms, 2),
        }
    return row


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
    """The targets, per size, on this run's figures: >= 20x faster than HTTP+base64+JSON and
    <= 10x one memcpy per frame, for one frame in flight and for several (the camera's
    ``buffers``); met if the camera meets it either way (several in flight is how it runs)."""
    out: dict[str, Any] = {}
    for name, r in results["sizes"].items():
        best_x_memcpy = min(r["handoff_vs_memcpy"], r["pipelined_vs_memcpy"])
        best_x_http = max(r["http_x_single"], r["http_x_pipelined"])
        grouped = r.get("put_frames")
        if grouped:  # a camera option (put_frames): it counts, and is named in the result
            best_x_memcpy = min(best_x_memcpy, grouped["vs_memcpy"])
            best_x_http = max(best_x_http, grouped["http_x"])
        out[name] = {"x_faster_than_http_single": r["http_x_single"],
                     "x_faster_than_http_pipelined": r["http_x_pipelined"],
                     "x_memcpy_single": r["handoff_vs_memcpy"],
                     "x_memcpy_pipelined": r["pipelined_vs_memcpy"],
                     "x_faster_than_http_put_frames": grouped["http_x"] if grouped else None,
                     "x_memcpy_put_frames": grouped["vs_memcpy"] if grouped else None,
                     "at_least_20x_faster_than_http": best_x_http >= 20,
                     "within_10x_of_memcpy": best_x_memcpy <= 10}
        floor = r.get("ray_floor")
        if floor:  # could any put-per-frame design meet it here? (Ray's own cost, no camfleet)
            out[name]["ray_floor"] = {
                "at_least_20x_faster_than_http": floor["http_x_put_call"] >= 20,
                "within_10x_of_memcpy": floor["put_call_vs_memcpy"] <= 10,
                "put_alone_within_20x_budget": floor["put_ms"] <= floor["budget_20x_http_ms"]}
    sizes = results["sizes"]
    if "720p" in sizes and "4k" in sizes:
        ratio = sizes["4k"]["read_median_ms"] / sizes["720p"]["read_median_ms"]
        out["read_4k_over_720p"] = round(ratio, 3)
        out["read_flat_720p_to_4k"] = ratio <= 1.2
    return out


METHODS = ("memcpy", "handoff", "pickled_pipe", "http_base64_json", "process_per_frame")
LABELS = {"memcpy": "memcpy", "handoff": "camfleet (d)", "pickled_pipe": "pipe+pickle (c)",
          "http_base64_json": "HTTP+base64+JSON (a)", "process_per_frame": "process/frame (b)"}


def _floor_lines(results: dict[str, Any]) -> list[str]:
    n = results["in_flight"]
    lines: list[str] = []
    floors = {name: r["ray_floor"] for name, r in results["sizes"].items() if "ray_floor" in r}
    if floors:
        lines += ["", (f"Ray's own floor, no camfleet code: a bare loop of ray.put + actor call, "
                       f"{n} in flight, and ray.put alone; against the targets' budgets:"), "",
                  (f"| frame | camfleet {n} in flight ms/frame | bare put + call ms/frame | "
                   "put alone ms | camfleet / floor | floor x memcpy | HTTP / floor | "
                   "budget for 20x HTTP ms | budget for 10x memcpy ms |"),
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, f in floors.items():
            r = results["sizes"][name]
            lines.append(f"| {name} | {r['pipelined_ms_per_frame']} | {f['put_call_ms']} | "
                         f"{f['put_ms']} | {f['camfleet_over_floor']} | "
                         f"{f['put_call_vs_memcpy']} | {f['http_x_put_call']} | "
                         f"{f['budget_20x_http_ms']} | {f['budget_10x_memcpy_ms']} |")
    return lines


def _group_lines(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    groups = {name: r["put_frames"] for name, r in results["sizes"].items() if "put_frames" in r}
    if groups:
        lines += ["", "put_frames: several frames per put and per call (buffers = 2 x put_frames), "
                      "and the same buffers without it:", "",
                  ("| frame | put_frames | buffers | ms/frame | x memcpy | x faster than HTTP | "
                   "latency median ms | frames per put | without: ms/frame | x HTTP | "
                   "latency median ms |"),
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, g in groups.items():
            lines.append(f"| {name} | {g['frames']} | {g['buffers']} | {g['ms_per_frame']} | "
                         f"{g['vs_memcpy']} | {g['http_x']} | {g['latency_median_ms']} | "
                         f"{g['frames_per_put']} | {g['alone_ms_per_frame']} | "
                         f"{g['alone_http_x']} | {g['alone_latency_median_ms']} |")
    return lines


def transport_table(results: dict[str, Any]) -> str:
    n = results["in_flight"]
    lines = [
        f"hand-off path: {results.get('path', '')}", "",
        (f"| frame | MB | memcpy ms | 1 in flight: submit->result median ms | p99 ms | x memcpy | "
         f"x faster than HTTP | {n} in flight ms/frame | x memcpy | x faster than HTTP | "
         f"detector-side read ms |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["sizes"].items():
        lines.append(
            f"| {name} | {r['frame_mb']} | {r['memcpy_ms']} | {r['handoff_median_ms']} | "
            f"{r['handoff_p99_ms']} | {r['handoff_vs_memcpy']} | {r['http_x_single']} | "
            f"{r['pipelined_ms_per_frame']} | {r['pipelined_vs_memcpy']} | "
            f"{r['http_x_pipelined']} | {r['read_median_ms']} |"
        )
    lines += _floor_lines(results) + _group_lines(results)
    small = {name: r["put_width"] for name, r in results["sizes"].items() if "put_width" in r}
    if small:
        lines += ["", (f"| frame | put | 1 in flight median ms | {n} in flight ms/frame | "
                       f"bytes put per frame | store bytes, {n} in flight |"),
                  "|---|---|---|---|---|---|"]
        for name, p in small.items():
            full = results["sizes"][name]
            lines.append(f"| {name} | full frame | {full['handoff_median_ms']} | "
                         f"{full['pipelined_ms_per_frame']} | {full['put_bytes']} | "
                         f"{p['full_store_bytes_in_flight']} |")
            lines.append(f"| {name} | put_width {p['width']} | {p['handoff_median_ms']} | "
                         f"{p['pipelined_ms_per_frame']} | {p['put_bytes']} | "
                         f"{p['store_bytes_in_flight']} |")
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
    lines += ["", "targets (>= 20x faster than HTTP+base64+JSON, <= 10x one memcpy):"]
    for name, t in results.get("targets", {}).items():
        lines.append(f"- {name}: {t}")
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
                label=f"{results['in_flight']} in flight (ms/frame)")
        if "put_frames" in results["sizes"][name]:
            group = results["sizes"][name]["put_frames"]
            ax.plot(methods.index("handoff") + 1, group["ms_per_frame"], "bs",
                    label=f"put_frames {group['frames']} ({group['buffers']} buffers)")
        if "put_width" in results["sizes"][name]:
            small = results["sizes"][name]["put_width"]
            ax.plot(methods.index("handoff") + 1, small["pipelined_ms_per_frame"], "gv",
                    label=f"put_width {small['width']}, {results['in_flight']} in flight")
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
    transport.add_argument("--repeats", type=int, default=100,
                           help="frames timed per size, 1 in flight")
    transport.add_argument("--frames", type=int, default=200,
                           help="frames timed with several in flight")
    transport.add_argument("--in-flight", type=int, default=4, help="frames in flight, pipelined")
    transport.add_argument("--process-repeats", type=int, default=5,
                           help="frames for the process-per-frame baseline (a spawn each)")
    transport.add_argument("--runs", type=int, default=3,
                           help="runs per size; the tables give medians over them")
    transport.add_argument("--put-frames", type=int, default=8,
                           help="also run each size with put_frames (1: skip)")
    transport.add_argument("--put-width", type=int, default=640,
                           help="also run the largest size with put_width (0: skip)")
    transport.add_argument("--memory-table", action=argparse.BooleanOptionalAction, default=True,
                           help="the 1080p memory table (new array vs reused pool)")
    transport.add_argument("--plot", default="bench-transport.png",
                           help="PNG plot path ('' for none)")
