"""``camfleet bench serve``: a Ray Serve deployment handle call against the direct actor call
camfleet makes, on the same frames (1080p by default) with the same no-op detector.

Both sides get the frame the same way: one ``ray.put`` by the caller and the ObjectRef as a
top-level argument. Timed per frame, put to result, with one frame in flight and with several;
and probed on the callee's side: is the frame a read-only view on the plasma store
(``flags.writeable`` False and its address in a ``/dev/shm`` / plasma mapping of the process,
as in ``tests/integration/probes.py``) or a copy? Needs ``pip install 'ray[serve]'`` (the
``bench`` extra). Results: a markdown table on stdout, ``--json``, a PNG plot.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fleet.bench import plotting
from fleet.bench.common.handoff import SIZES, TouchDetector, frame_pool, measure_memcpy
from fleet.bench.common.running import detector_actor_class
from fleet.frames import FrameMeta
from fleet.imaging import plasma_mapping


class ProbeTouch:
    """The callee on both sides: touches the frame like a detector starts to, finds nothing,
    and (``probe``) says what it was handed."""

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> int:
        return int(frame[0, 0, 0]) + int(frame[-1, -1, -1])

    def probe(self, frame: np.ndarray, meta: FrameMeta) -> dict[str, Any]:
        mapping = plasma_mapping(frame.ctypes.data)
        return {"type": type(frame).__name__, "writeable": bool(frame.flags.writeable),
                "mapping": mapping,
                "in_plasma": "plasma" in mapping or "/dev/shm" in mapping,
                "zero_copy": (not frame.flags.writeable)
                and ("plasma" in mapping or "/dev/shm" in mapping)}


def _one_in_flight(call: Callable[[Any], Any], pool: list[np.ndarray], repeats: int) -> list[float]:
    import ray

    times = []
    for i in range(repeats):
        start = time.perf_counter()
        ref = ray.put(pool[i % len(pool)])
        call(ref)
        del ref
        times.append(time.perf_counter() - start)
    return times


def _round_trip(send: Callable[[Any], Any],
                result: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda ref: result(send(ref))


def _in_flight(send: Callable[[Any], Any], result: Callable[[Any], Any],
               pool: list[np.ndarray], frames: int, in_flight: int) -> float:
    """``in_flight`` frames outstanding (oldest answered first): seconds per frame."""
    import ray

    pending: list[Any] = []
    start = time.perf_counter()
    for i in range(frames):
        if len(pending) >= in_flight:
            result(pending.pop(0))
        ref = ray.put(pool[i % len(pool)])
        pending.append(send(ref))
        del ref
    for p in pending:
        result(p)
    return (time.perf_counter() - start) / frames


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    import ray
    from ray import serve

    h, w = SIZES[args.size]
    pool = frame_pool((h, w), np.random.default_rng(0))
    meta = FrameMeta("bench", 0, time.time(), w, h, None)

    progress("direct: a plain Ray actor and camfleet's DetectorActor (TouchDetector)")
    direct: Any = ray.remote(num_cpus=0.5)(ProbeTouch).remote()
    from fleet.config import FaceDetectorConfig

    detector = detector_actor_class().options(num_cpus=0.5).remote(
        "touch", FaceDetectorConfig(num_cpus=0.5), TouchDetector)
    ray.get(detector.ready.remote())

    progress("serve: starting Ray Serve (no HTTP proxy), 1 replica of the same class")
    serve.start(proxy_location="Disabled")
    start = time.perf_counter()
    deployment: Any = serve.deployment(  # access log off: no per-call log line in the replica
        name="touch", num_replicas=1, max_ongoing_requests=args.in_flight * 2,
        ray_actor_options={"num_cpus": 0.5},
        logging_config={"enable_access_log": False, "log_level": "WARNING"})(ProbeTouch)
    handle: Any = serve.run(deployment.bind(), name="camfleet-bench", route_prefix=None)
    serve_start_s = time.perf_counter() - start

    calls: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        "direct actor": (lambda ref: direct.detect.remote(ref, meta), ray.get),
        "camfleet DetectorActor": (lambda ref: detector.detect.remote(ref, meta), ray.get),
        "Serve handle": (lambda ref: handle.detect.remote(ref, meta), lambda r: r.result()),
    }
    probes = {
        "direct actor": ray.get(direct.probe.remote(ray.put(pool[0]), meta)),
        "Serve handle": handle.probe.remote(ray.put(pool[0]), meta).result(),
    }
    memcpy_ms = statistics.median(measure_memcpy(pool, args.repeats)) * 1000
    per_run: list[dict[str, dict[str, Any]]] = []
    for i in range(args.runs):
        runs: dict[str, dict[str, Any]] = {}
        for name, (send, result) in calls.items():
            progress(f"run {i + 1}/{args.runs}, {name}: warm-up, then x{args.repeats} one in "
                     f"flight, x{args.frames} {args.in_flight} in flight")
            _one_in_flight(_round_trip(send, result), pool, 10)
            single = _one_in_flight(_round_trip(send, result), pool, args.repeats)
            piped = _in_flight(send, result, pool, args.frames, args.in_flight)
            runs[name] = {"median_ms": statistics.median(single) * 1000,
                          "p95_ms": float(np.percentile(single, 95)) * 1000,
                          "pipelined_ms_per_frame": piped * 1000,
                          "samples_ms": [round(x * 1000, 4) for x in single]}
        base = runs["direct actor"]
        for row in runs.values():  # ratios against the direct call of the same run
            row["x_direct"] = row["median_ms"] / base["median_ms"]
            row["overhead_ms"] = row["median_ms"] - base["median_ms"]
            row["pipelined_x_direct"] = row["pipelined_ms_per_frame"] / base[
                "pipelined_ms_per_frame"]
            row["pipelined_overhead_ms"] = (row["pipelined_ms_per_frame"]
                                            - base["pipelined_ms_per_frame"])
        per_run.append(runs)
    rows: dict[str, dict[str, Any]] = {}
    for name in calls:
        rows[name] = {key: round(statistics.median(r[name][key] for r in per_run), 3)
                      for key in ("median_ms", "p95_ms", "pipelined_ms_per_frame", "x_direct",
                                  "overhead_ms", "pipelined_x_direct", "pipelined_overhead_ms")}
        rows[name]["samples_ms"] = per_run[0][name]["samples_ms"]
        rows[name]["runs_median_ms"] = [round(r[name]["median_ms"], 3) for r in per_run]
    serve.delete("camfleet-bench")
    serve.shutdown()
    for actor in (direct, detector):
        ray.kill(actor)
    results = {"size": args.size, "frame_mb": round(pool[0].nbytes / 1e6, 2),
               "memcpy_ms": round(memcpy_ms, 3), "in_flight": args.in_flight,
               "repeats": args.repeats, "runs": args.runs, "serve_start_s": round(serve_start_s, 2),
               "methods": rows, "probes": probes,
               "serve_overhead_ms_per_frame": rows["Serve handle"]["overhead_ms"],
               "serve_zero_copy": bool(probes["Serve handle"]["zero_copy"])}
    print(table(results))
    if args.plot and plot(results, Path(args.plot)):
        print(f"\nplot: {args.plot}")
    return results


def table(results: dict[str, Any]) -> str:
    n = results["in_flight"]
    lines = [f"{results['size']} frames ({results['frame_mb']} MB), memcpy "
             f"{results['memcpy_ms']} ms; Serve app start {results['serve_start_s']} s; "
             f"medians of {results['runs']} runs", "",
             (f"| call | 1 in flight median ms | p95 ms | x direct | overhead ms/frame | "
              f"{n} in flight ms/frame | x direct |"), "|---|---|---|---|---|---|---|"]
    for name, r in results["methods"].items():
        lines.append(f"| {name} | {r['median_ms']} | {r['p95_ms']} | {r['x_direct']} | "
                     f"{r['overhead_ms']} | {r['pipelined_ms_per_frame']} | "
                     f"{r['pipelined_x_direct']} |")
    lines += ["", "| callee | array | writeable | zero-copy plasma view | mapping |",
              "|---|---|---|---|---|"]
    for name, p in results["probes"].items():
        lines.append(f"| {name} | {p['type']} | {p['writeable']} | {p['zero_copy']} | "
                     f"`{p['mapping'][:90]}` |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    plt = plotting.pyplot()
    if plt is None:
        return False
    names = list(results["methods"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.boxplot([results["methods"][m]["samples_ms"] for m in names], tick_labels=names,
               showfliers=False)
    ax.plot(range(1, len(names) + 1),
            [results["methods"][m]["pipelined_ms_per_frame"] for m in names], "r^",
            label=f"{results['in_flight']} in flight (ms/frame)")
    ax.axhline(results["memcpy_ms"], color="0.5", ls=":", label="one memcpy")
    ax.set_ylabel("milliseconds per frame, put to result")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    plotting.save(fig, path, f"Ray Serve handle vs direct actor call ({results['size']}, no-op)")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", choices=list(SIZES), default="1080p")
    parser.add_argument("--repeats", type=int, default=100, help="frames timed, 1 in flight")
    parser.add_argument("--frames", type=int, default=200, help="frames timed, several in flight")
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="runs (medians reported)")
    parser.add_argument("--plot", default="bench-serve.png", help="PNG plot path ('' for none)")
