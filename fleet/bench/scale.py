"""``camfleet bench scale``: what one controller costs as the fleet grows, measured.

For each size in ``--cameras`` a fleet of that many synthetic cameras (64x48 at 2 fps,
analysed at ``--fps``, ``num_cpus: 0``, one blobs detector actor) starts on the embedded Ray with
the controller in this process, as ``bench autoscale`` runs it. Measured, per size:

- **start-up**: seconds from ``start()`` to every camera up, and actors started per second;
- **fan-in**: one ``collect()`` (every camera's and detector's stats gathered, the snapshot,
  ``stats.jsonl``, ``/metrics`` updated), median of ``--collects``; and its parts: the Ray
  round trips and the controller's own work on the answers;
- **payload**: bytes of one round of camera stats as Ray carries them (pickled);
- **memory**: RSS of the camera actors (sum, and per camera), of the GCS and raylet;
- **metrics**: series in one ``/metrics`` scrape, its bytes and the time to render it;
- **files**: bytes of one ``stats.jsonl`` line, and the live table (lines, time to render);
- **object store**: MiB in use on this node.

The baseline of each figure is the smallest fleet measured in the same run: figures per camera
show whether a cost grows linearly (constant per camera) or faster. Ray is started once for
all sizes; each fleet is stopped before the next starts.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.bench import plotting
from fleet.bench.common.fleets import build, synthetic_cameras
from fleet.bench.common.probes import MIB, ActorProcesses, StoreProbe, process_stats
from fleet.bench.common.running import in_process_controller
from fleet.config import FleetConfig


def fleet_config(cameras: int, fps: float) -> FleetConfig:
    """``cameras`` tiny synthetic cameras, no CPU reserved, one blobs actor, no files."""
    return build(
        "bench-scale", synthetic_cameras(cameras, 64, 48, 2, ids="cam-{:04d}"),
        stats_interval_s=1.0, metrics={"enabled": True, "port": 0},
        autoscaling={"enabled": False},
        defaults={"fps": fps, "buffers": 2, "detect": ["blobs"], "detect_width": None,
                  "num_cpus": 0},
        detectors={"blobs": {"type": "blobs", "actors": 1, "num_cpus": 0.5}},
        sinks={"jsonl": {"enabled": False}, "snapshots": {"enabled": False}})


def ray_daemons() -> dict[str, float]:
    """RSS MiB of this machine's GCS server and raylet (the embedded Ray's, started here)."""
    import psutil

    found: dict[str, float] = {}
    for proc in psutil.process_iter(["name", "memory_info"]):
        name = proc.info["name"] or ""
        if name in ("gcs_server", "raylet") and proc.info["memory_info"] is not None:
            found[name] = found.get(name, 0.0) + proc.info["memory_info"].rss / MIB
    return {k: round(v, 1) for k, v in found.items()}


def timed_collect(controller: Any) -> tuple[float, float, int]:
    """One ``collect()``: total seconds, seconds in Ray calls, pickled bytes of camera stats."""
    import ray

    refs = {cid: ref.handle.stats.remote() for cid, ref in controller.cameras.items()}
    started = time.perf_counter()
    answers = ray.get(list(refs.values()), timeout=60)
    ray_s = time.perf_counter() - started
    payload = sum(len(pickle.dumps(a)) for a in answers)
    started = time.perf_counter()
    controller.collect()
    return time.perf_counter() - started, ray_s, payload


def measure(cameras: int, args: argparse.Namespace, folder: Path,
            progress: Callable[[str], None]) -> dict[str, Any]:
    from fleet.control.stats import format_table

    controller = in_process_controller(fleet_config(cameras, args.fps), folder / f"run-{cameras}")
    started = time.perf_counter()
    controller.start()
    start_s = time.perf_counter() - started

    def up() -> int:
        snapshot = controller.collect()
        return sum(v.stats.state == "up" for v in snapshot.cameras.values())

    while up() < cameras and time.perf_counter() - started < args.timeout_s:
        time.sleep(1.0)
    all_up_s = time.perf_counter() - started
    progress(f"{cameras} cameras: started in {all_up_s:.1f} s; measuring")
    try:
        collects = [timed_collect(controller) for _ in range(args.collects)]
        snapshot = controller.collect()
        render = time.perf_counter()
        scraped = urllib.request.urlopen(controller.metrics_url, timeout=60).read()
        scrape_s = time.perf_counter() - render
        render = time.perf_counter()
        table = format_table(snapshot)
        table_s = time.perf_counter() - render
        where = ActorProcesses()
        cams = {r.id for r in controller.cameras.values()}
        procs = [s for _, _, actor in where.current(controller) if actor in cams
                 and (pid := where.pid(controller, actor)) is not None
                 and (s := process_stats(pid)) is not None]
        rss = [p["rss_mib"] for p in procs]
        private = [p["private_mib"] for p in procs]
        store = StoreProbe(controller_address()).sample()
        line = len((folder / f"run-{cameras}" / "stats.jsonl").read_text().splitlines()[-1])
        series = sum(1 for row in scraped.splitlines() if row and not row.startswith(b"#"))
        up_now = up()
    finally:
        controller.stop()
    total = [c[0] for c in collects]
    ray_part = [c[1] for c in collects]
    return {
        "cameras": cameras, "up": up_now, "start_s": round(start_s, 2),
        "all_up_s": round(all_up_s, 2), "actors_per_s": round(cameras / all_up_s, 1),
        "collect_ms": round(statistics.median(total) * 1e3, 1),
        "collect_ray_ms": round(statistics.median(ray_part) * 1e3, 1),
        "payload_kib": round(statistics.median(c[2] for c in collects) / 1024, 1),
        "camera_rss_mib_sum": round(sum(rss), 0), "camera_rss_mib_each":
            round(statistics.median(rss), 1) if rss else None,
        "camera_private_mib_each": round(statistics.median(private), 1) if private else None,
        "camera_private_mib_sum": round(sum(private), 0),
        "ray_daemons_mib": ray_daemons(),
        "metrics_series": series, "metrics_kib": round(len(scraped) / 1024, 1),
        "scrape_ms": round(scrape_s * 1e3, 1),
        "stats_line_kib": round(line / 1024, 1), "table_lines": table.count("\n") + 1,
        "table_ms": round(table_s * 1e3, 2), "store_mib": store.get("mib"),
    }


def controller_work(cameras: int, rounds: int = 5) -> dict[str, Any]:
    """The controller's own CPU per stats interval for ``cameras`` cameras, Ray's transport left
    out: realistic CameraStats (5 fps of latencies, drops, detections, a push sink) through the
    same FleetStats, snapshot record and /metrics rendering a collect does, in this process.
    What one controller can do once the round trips are spread (on a cluster, over nodes)."""
    import json

    from prometheus_client import generate_latest

    from fleet.control.metrics import FleetMetrics
    from fleet.control.stats import FleetSnapshot, FleetStats
    from fleet.frames import CameraStats, SinkStats

    stats = FleetStats(window_s=10.0)
    metrics = FleetMetrics("model")
    timings, renders = [], []
    for k in range(rounds + 1):
        now = 1e9 + k
        started = time.perf_counter()
        snapshot = FleetSnapshot(now)
        for i in range(cameras):
            cid = f"cam-{i:05d}"
            one = CameraStats(
                cid, "up", 100 * k, 20 * k, 0, 2, 2, {"fps": 80 * k - 2}, 20 * k, 20 * k, 4, 2,
                0, 10 * k, {"person": 12 * k}, latency_s=(0.05,) * 5, time=now,
                tracks_active={"person": 1}, object_events={"start": k, "end": k},
                sinks=(SinkStats("mqtt", k, k, 0, {"queue_full": 0}, 0),),
                handoffs_local=20 * k)
            snapshot.cameras[cid] = stats.update_camera(one)
            metrics.observe_camera(one)
        metrics.update(snapshot, Counter())
        line = json.dumps(snapshot.record(), separators=(",", ":"))
        collected = time.perf_counter()
        scraped = generate_latest(metrics.registry)  # what a scrape costs (every 15 s, say)
        if k:  # the first round warms up
            timings.append(collected - started)
            renders.append(time.perf_counter() - collected)
    return {"cameras": cameras, "work_ms": round(statistics.median(timings) * 1e3, 1),
            "work_us_per_camera": round(statistics.median(timings) * 1e6 / cameras, 1),
            "render_ms": round(statistics.median(renders) * 1e3, 1),
            "stats_line_kib": round(len(line) / 1024, 1),
            "metrics_kib": round(len(scraped) / 1024, 1),
            "metrics_series": sum(1 for r in scraped.splitlines() if r and not r.startswith(b"#"))}


def controller_address() -> str:
    import ray

    return str(ray.get_runtime_context().gcs_address)


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="camfleet-bench-scale-") as tmp:
        for cameras in args.cameras:
            progress(f"{cameras} cameras: starting")
            rows.append(measure(cameras, args, Path(tmp), progress))
            progress(f"{cameras} cameras: collect {rows[-1]['collect_ms']} ms")
    model = []
    for cameras in args.model:
        progress(f"controller work, {cameras} modelled cameras")
        model.append(controller_work(cameras))
    results = {"fps": args.fps, "collects": args.collects, "rows": rows, "model": model}
    print(report(results))
    if args.plot and plot(results, Path(args.plot)):
        print(f"\nplot: {args.plot}")
    return results


COLUMNS = (
    ("cameras", "cameras"), ("all_up_s", "start s"), ("actors_per_s", "actors/s"),
    ("collect_ms", "collect ms"), ("collect_ray_ms", "of it Ray ms"),
    ("payload_kib", "stats KiB"), ("camera_rss_mib_each", "RSS MiB/camera"),
    ("camera_private_mib_each", "private MiB/camera"), ("camera_private_mib_sum", "private MiB"),
    ("metrics_series", "series"),
    ("metrics_kib", "/metrics KiB"), ("scrape_ms", "scrape ms"),
    ("stats_line_kib", "stats line KiB"), ("table_ms", "table ms"), ("store_mib", "store MiB"),
)


def report(results: dict[str, Any]) -> str:
    head = "| " + " | ".join(label for _, label in COLUMNS) + " | GCS MiB | raylet MiB |"
    lines = [head, "|" + "---:|" * (len(COLUMNS) + 2)]
    for r in results["rows"]:
        daemons = r["ray_daemons_mib"]
        lines.append("| " + " | ".join(str(r[key]) for key, _ in COLUMNS)
                     + f" | {daemons.get('gcs_server')} | {daemons.get('raylet')} |")
    lines += ["", "The controller's own work per stats interval (no Ray transport), modelled "
              "cameras:",
              "", "| cameras | stats path ms | us/camera | /metrics render ms | stats line KiB "
              "| /metrics KiB | series |", "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {m['cameras']} | {m['work_ms']} | {m['work_us_per_camera']} | "
              f"{m['render_ms']} | "
              f"{m['stats_line_kib']} | {m['metrics_kib']} | {m['metrics_series']} |"
              for m in results.get("model", [])]
    base = results["rows"][0]
    lines.append("")
    for r in results["rows"][1:]:
        factor = r["cameras"] / base["cameras"]
        lines.append(f"{r['cameras']} vs {base['cameras']} cameras (x{factor:g}): collect "
                     f"x{r['collect_ms'] / base['collect_ms']:.2f}, series "
                     f"x{r['metrics_series'] / base['metrics_series']:.2f}, scrape "
                     f"x{r['scrape_ms'] / max(base['scrape_ms'], 0.1):.2f}")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    plt = plotting.pyplot()
    if plt is None:
        return False
    rows = results["rows"]
    n = [r["cameras"] for r in rows]
    fig, (fan, mem) = plt.subplots(1, 2, figsize=(11, 4))
    fan.plot(n, [r["collect_ms"] for r in rows], "o-", label="collect (all)")
    fan.plot(n, [r["collect_ray_ms"] for r in rows], "o--", label="of it: Ray round trips")
    fan.plot(n, [r["scrape_ms"] for r in rows], "s-", label="/metrics scrape")
    fan.set(xlabel="cameras", ylabel="ms", title="Controller fan-in per stats interval")
    fan.legend()
    mem.plot(n, [r["camera_private_mib_sum"] / 1024 for r in rows], "o-",
             label="camera actors (private)")
    mem.plot(n, [r["ray_daemons_mib"].get("gcs_server", 0) / 1024 for r in rows], "s-",
             label="GCS")
    mem.set(xlabel="cameras", ylabel="GiB RSS", title="Memory")
    mem.legend()
    plotting.save(fig, path, "camfleet bench scale (one node, 2 cores)")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, nargs="+", default=[50, 200],
                        help="fleet sizes, smallest first (the baseline)")
    parser.add_argument("--fps", type=float, default=0.5, help="analysed fps per camera")
    parser.add_argument("--collects", type=int, default=7, help="timed collects; median")
    parser.add_argument("--timeout-s", type=float, default=600, help="longest start-up wait")
    parser.add_argument("--model", type=int, nargs="+", default=[500, 1000, 2000, 5000],
                        help="fleet sizes for the controller-work model (no actors)")
    parser.add_argument("--plot", default="bench-scale.png", help="PNG plot path ('' for none)")
