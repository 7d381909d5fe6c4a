"""``camfleet bench soak``: run a fleet for minutes and watch what it holds, not how fast it is.

Scenario: ``--cameras`` synthetic 1280x720 cameras at 15 fps (drawn on a frame of real footage
when Debian's opencv-doc is installed, so the detector sees faces), 5 fps analysed each, the
fleet's ``face`` detector (whichever kind ``face`` resolves to; recorded in the results) at
``detect_width`` 480 on a fixed pool of 2 actors of 0.5 CPU (autoscaling off, so the set of
processes stays the same), the control loop in a thread of this process as in ``bench
autoscale``, metrics served and events written as in a real run.

Retention is on and made to work: every camera writes frame and track lines besides its object
events, ``events.jsonl`` and ``stats.jsonl`` rotate at ``--rotate-mb`` keeping 2 old files, and
frame snapshots (one a second per camera) are pruned to a ``--snapshots-mb`` budget. So the run
folder's size must stay under its bound: 3 files' worth each of events and stats, the snapshot
budget, and one prune interval of snapshots.

Every ``--sample-s`` seconds: RSS, open file descriptors and threads of every camera and
detector actor process and of the controller (this process), the object store's use (bytes and
objects), the run folder's size and file count, and every camera's accounting
(``CameraStats.accounted``, audit problems, totals, and what each sink dropped).

Growth is judged after a warm-up (the first 20% of the run, at least a minute, at most half of
it), on medians rather than single samples: the median of the first three samples after the
warm-up against the median of the last three, growth = (last - first) / first, which should
stay under 5%. The object store is judged on its floor (the least of five reads a sample): the
frames in flight at the moment of a read come and go, a leak raises the floor; the mean is shown.
RSS counts touched pages of the store's shared memory too, so each process's private RSS
(RSS less shared pages) is reported beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.bench import plotting
from fleet.bench.common.fleets import build, fixed_pool, synthetic_cameras
from fleet.bench.common.footage import background_image
from fleet.bench.common.probes import MIB, ActorProcesses, StoreProbe, process_stats
from fleet.bench.common.running import ControlLoop
from fleet.config import FleetConfig
from fleet.frames import CameraStats

WIDTH, HEIGHT, SOURCE_FPS, FPS, DETECT_WIDTH, BUFFERS = 1280, 720, 15.0, 5.0, 480, 4
DETECTOR_ACTORS, DETECTOR_CPUS = 2, 0.5
GROWTH_LIMIT_PCT = 5.0
KINDS = ("camera", "detector", "controller")
# (key in a sample, label in the table)
METRICS = (
    ("camera.rss_sum", "camera RSS MiB (sum)"), ("camera.rss_max", "camera RSS MiB (max)"),
    ("detector.rss_sum", "detector RSS MiB (sum)"), ("detector.rss_max", "detector RSS MiB (max)"),
    ("controller.rss_sum", "controller RSS MiB"),
    ("camera.private_sum", "camera private MiB (sum)"),
    ("camera.private_max", "camera private MiB (max)"),
    ("detector.private_sum", "detector private MiB (sum)"),
    ("detector.private_max", "detector private MiB (max)"),
    ("controller.private_sum", "controller private MiB"),
    ("camera.fds", "camera fds (sum)"), ("detector.fds", "detector fds (sum)"),
    ("controller.fds", "controller fds"),
    ("camera.threads", "camera threads (sum)"), ("detector.threads", "detector threads (sum)"),
    ("controller.threads", "controller threads"),
    ("store.mib_min", "object store MiB (floor)"),
    ("store.objects_min", "object store objects (floor)"),
    ("store.mib", "object store MiB (mean)"), ("store.objects", "object store objects (mean)"),
)
# Shown, not judged: how many frames happen to be in flight during a sample's reads. A leak
# raises the floor (the least of a sample's reads); frames in flight only add on top of it.
INFORMATIONAL = ("store.mib", "store.objects")


KEEP_FILES, PRUNE_S, SNAPSHOT_INTERVAL_S = 2, 10, 1.0


def disk_bound_mib(cameras: int, rotate_mb: float, snapshots_mb: float) -> float:
    """The most the run folder may hold: events and stats files (the live one and KEEP_FILES
    old ones each, a file passing its limit by at most a flush), the snapshot budget, and the
    snapshots of one prune interval (at most 200 KiB each), plus 1 MiB (summary, state)."""
    files = 2 * (KEEP_FILES + 1) * rotate_mb * 1e6 / MIB * 1.1
    between_prunes = cameras * PRUNE_S / SNAPSHOT_INTERVAL_S * 0.2
    return round(files + snapshots_mb * 1e6 / MIB + between_prunes + 1, 1)


def fleet_config(cameras: int, background: str | None, rotate_mb: float = 1.0,
                 snapshots_mb: float = 5.0) -> FleetConfig:
    """The soaked fleet: a fixed pool, metrics served, retention on (see the module's text)."""
    return build(
        "bench-soak", synthetic_cameras(cameras, WIDTH, HEIGHT, SOURCE_FPS, background),
        stats_interval_s=1.0, metrics={"enabled": True, "port": 0},
        defaults={"fps": FPS, "buffers": BUFFERS, "detect": ["face"],
                  "detect_width": DETECT_WIDTH, "num_cpus": 0.1},
        detectors={"face": fixed_pool(DETECTOR_ACTORS, num_cpus=DETECTOR_CPUS)},
        autoscaling={"enabled": False},
        sinks={"jsonl": {"frames": True, "tracks": True, "rotate_mb": rotate_mb,
                         "keep_files": KEEP_FILES},
               "snapshots": {"frames": True, "max_per_camera": 100000,
                             "min_interval_s": SNAPSHOT_INTERVAL_S, "max_mb": snapshots_mb,
                             "prune_interval_s": PRUNE_S}})


# ---------------------------------------------------------------------------------- measuring
def kind_totals(actors: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        mine = [a for a in actors if a["kind"] == kind]
        totals[kind] = {
            "n": len(mine),
            "rss_sum": round(sum(a["rss_mib"] for a in mine), 2),
            "rss_max": max((a["rss_mib"] for a in mine), default=0.0),
            "private_sum": round(sum(a["private_mib"] for a in mine), 2),
            "private_max": max((a["private_mib"] for a in mine), default=0.0),
            "fds": sum(a["fds"] for a in mine), "threads": sum(a["threads"] for a in mine),
        }
    return totals


def folder_use(folder: Path) -> dict[str, float]:
    """The run folder's size (MiB of file bytes) and its number of files, now."""
    size, files = 0, 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                size += path.stat().st_size
                files += 1
        except OSError:  # rotated or pruned between the listing and the stat
            continue
    return {"mib": round(size / MIB, 2), "files": files}


def sink_drops(stats: list[CameraStats]) -> dict[str, int]:
    """Events each sink (files too: events, snapshots) dropped, by sink and reason, summed."""
    dropped: Counter[str] = Counter()
    for s in stats:
        for sink in s.sinks:
            for reason, count in sink.dropped.items():
                dropped[f"{sink.sink}:{reason}"] += count
    return {k: v for k, v in sorted(dropped.items()) if v}


def totals(stats: list[CameraStats]) -> dict[str, Any]:
    """The cameras' accounting: each one's ``accounted`` and audit, and the fleet's counters."""
    bad = {s.camera: list(s.audit_problems) or ["counters do not add up"]
           for s in stats if not s.accounted}
    return {
        "accounted": bool(stats) and not bad, "problems": bad, "cameras": len(stats),
        "captured": sum(s.captured for s in stats), "processed": sum(s.processed for s in stats),
        "dropped": sum(sum(s.dropped.values()) for s in stats),
        "dropped_by_reason": dict(sum((Counter(s.dropped) for s in stats), Counter())),
        "failed": sum(s.failed for s in stats), "in_flight": sum(s.in_flight for s in stats),
        "sink_dropped": sink_drops(stats),
        "object_events": sum(sum(s.object_events.values()) for s in stats),
    }


def accounting(controller: Any) -> dict[str, Any]:
    """Accounting in the controller's latest snapshot (the control loop's own, as in a run)."""
    snap = controller.latest
    return {**totals([v.stats for v in snap.cameras.values()]),
            "restarts": sum(controller.restarts.values()),
            "snapshot_age_s": round(time.time() - snap.time, 2)}


def take_sample(controller: Any, where: ActorProcesses, store: StoreProbe,
                elapsed: float, run_dir: Path) -> dict[str, Any]:
    actors = []
    for kind, name, actor in where.current(controller):
        pid = where.pid(controller, actor)
        measured = process_stats(pid) if pid is not None else None
        if measured is not None:
            actors.append({"kind": kind, "name": name, "actor": actor[:12], "pid": pid,
                           **measured})
    own = process_stats(os.getpid())
    if own is not None:
        actors.append({"kind": "controller", "name": "controller", "actor": "", "pid": os.getpid(),
                       **own})
    return {
        "t": round(elapsed, 1), **kind_totals(actors), "store": store.sample(),
        "disk": folder_use(run_dir), "accounting": accounting(controller), "actors": actors,
    }


def soak(config: FleetConfig, run_dir: Path, duration_s: float, sample_s: float,
         progress: Callable[[str], None]) -> dict[str, Any]:
    """The fleet on real Ray for ``duration_s``, its control loop in a thread, sampled."""
    import ray

    samples: list[dict[str, Any]] = []
    fleet = ControlLoop(config, run_dir)
    with fleet as controller:
        where, store = ActorProcesses(), StoreProbe(ray.get_runtime_context().gcs_address)
        started = time.monotonic()
        for n in range(1, int(duration_s // sample_s) + 1):
            time.sleep(max(0.0, started + n * sample_s - time.monotonic()))
            samples.append(take_sample(controller, where, store, time.monotonic() - started,
                                       run_dir))
            progress(note(samples[-1], duration_s))
    return {"samples": samples, "final": totals(list(fleet.final.values()))}


def note(sample: dict[str, Any], duration_s: float) -> str:
    acc, cam, det = sample["accounting"], sample["camera"], sample["detector"]
    return (f"soak: {sample['t']:.0f}/{duration_s:.0f} s, RSS MiB cameras {cam['rss_sum']:.0f} "
            f"({cam['n']}), detectors {det['rss_sum']:.0f} ({det['n']}), controller "
            f"{sample['controller']['rss_sum']:.0f}; store {sample['store']['mib']} MiB; "
            f"run folder {sample['disk']['mib']} MiB ({sample['disk']['files']} files); "
            f"processed {acc['processed']}/{acc['captured']}; "
            f"{'accounted' if acc['accounted'] else 'NOT ACCOUNTED ' + str(acc['problems'])}")


# -------------------------------------------------------------------------------- summarising
def value(sample: dict[str, Any], key: str) -> float | None:
    group, name = key.split(".")
    v = sample.get(group, {}).get(name)
    return None if v is None else float(v)


def growth(values: list[float], bound: float | None = None) -> dict[str, Any]:
    """Median of the first three against the median of the last three (fewer if short).

    With ``bound`` (the object store's), a rise under 5% of the bound also passes: a store that
    holds only the frames in flight sits near zero, where a percentage of the base is noise.
    """
    k = min(3, max(1, len(values) // 2))
    first, last = statistics.median(values[:k]), statistics.median(values[-k:])
    if first:
        pct: float | None = round(100 * (last - first) / first, 2)
    else:
        pct = 0.0 if last == 0 else None
    ok = pct is not None and pct < GROWTH_LIMIT_PCT
    if bound:
        ok = ok or (last - first) < bound * GROWTH_LIMIT_PCT / 100
    return {"first_sample": values[0], "last_sample": values[-1], "first": first, "last": last,
            "median_of": k, "growth_pct": pct, "under_limit": ok}


def by_process(after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Growth of each process (by kind, name and pid) after the warm-up, largest RSS rise first:
    which process grew, if one did."""
    seen: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for sample in after:
        for a in sample["actors"]:
            seen.setdefault((a["kind"], a["name"], a["pid"]), []).append(a)
    rows = []
    for (kind, name, pid), points in seen.items():
        row: dict[str, Any] = {"kind": kind, "name": name, "pid": pid, "samples": len(points)}
        for metric in ("rss_mib", "private_mib", "fds", "threads"):
            g = growth([float(p[metric]) for p in points])
            row[metric] = {"first": g["first"], "last": g["last"], "growth_pct": g["growth_pct"]}
        rows.append(row)
    return sorted(rows, key=lambda r: -(r["rss_mib"]["growth_pct"] or 0.0))


def warmup(duration_s: float, asked: float | None) -> float:
    """The first 20% of the run, at least a minute, but never more than half of it."""
    if asked is not None:
        return asked
    return min(max(0.2 * duration_s, 60.0), 0.5 * duration_s)


def summarise(run: dict[str, Any], cameras: int, warmup_s: float,
              disk_bound: float | None = None) -> dict[str, Any]:
    samples = run["samples"]
    disk = [s["disk"]["mib"] for s in samples if "disk" in s]
    after = [s for s in samples if s["t"] >= warmup_s]
    frame_mib = WIDTH * HEIGHT * 3 / MIB
    bounds = {"store.mib_min": cameras * BUFFERS * frame_mib,
              "store.objects_min": cameras * BUFFERS}
    rows = {}
    for key, label in METRICS:
        values = [v for s in after if (v := value(s, key)) is not None]
        if values:
            rows[key] = {"label": label, **growth(values, bounds.get(key)),
                         "judged": key not in INFORMATIONAL}
    bad = [s["t"] for s in samples if not s["accounting"]["accounted"]]
    store = [s["store"]["mib_max"] for s in samples if s["store"]["mib_max"] is not None]
    return {
        "warmup_s": warmup_s, "samples": len(samples), "samples_after_warmup": len(after),
        "growth": rows, "by_process": by_process(after),
        "all_under_limit": bool(rows) and all(r["under_limit"] for r in rows.values()
                                              if r["judged"]),
        "grew": [r["label"] for r in rows.values() if not r["under_limit"]],
        "accounted_every_sample": bool(samples) and not bad, "not_accounted_at_s": bad,
        "final_accounted": run["final"]["accounted"], "final": run["final"],
        "restarts": samples[-1]["accounting"]["restarts"] if samples else 0,
        "store_peak_mib": max(store, default=None),
        "store_bound_mib": round(bounds["store.mib_min"], 1),
        "store_spilled_mib": samples[-1]["store"]["spilled_mib"] if samples else None,
        "frame_mib": round(frame_mib, 2),
        "disk_peak_mib": max(disk, default=None), "disk_bound_mib": disk_bound,
        "disk_within_bound": disk_bound is None or all(d <= disk_bound for d in disk),
        "sink_dropped": run["final"].get("sink_dropped", {}),
        "nothing_lost": not run["final"].get("sink_dropped"),
    }


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    duration = args.minutes * 60
    warm = warmup(duration, args.warmup_s)
    kind = str(getattr(fleet_config(1, None).detectors["face"], "type", ""))
    bound = disk_bound_mib(args.cameras, args.rotate_mb, args.snapshots_mb)
    with tempfile.TemporaryDirectory(prefix="camfleet-bench-") as tmp:
        folder = Path(tmp)
        background = background_image(folder)
        progress(f"soak: retention on: events and stats rotate at {args.rotate_mb:g} MB keeping "
                 f"{KEEP_FILES}, snapshots pruned to {args.snapshots_mb:g} MB every {PRUNE_S} s; "
                 f"the run folder's bound is {bound:g} MiB")
        progress(f"soak: {args.cameras} cameras ({WIDTH}x{HEIGHT} at {SOURCE_FPS:g} fps, {FPS:g} "
                 f"analysed), {DETECTOR_ACTORS} face ({kind}) actors x {DETECTOR_CPUS:g} CPU, "
                 f"{duration:.0f} s, a sample every {args.sample_s:g} s, warm-up {warm:.0f} s")
        soaked = soak(fleet_config(args.cameras, background, args.rotate_mb, args.snapshots_mb),
                      folder / "run", duration, args.sample_s, progress)
    summary = summarise(soaked, args.cameras, warm, bound)
    results = {
        "scenario": {"cameras": args.cameras, "width": WIDTH, "height": HEIGHT,
                     "source_fps": SOURCE_FPS, "fps": FPS, "detect_width": DETECT_WIDTH,
                     "buffers": BUFFERS, "detector_actors": DETECTOR_ACTORS,
                     "detector_cpus": DETECTOR_CPUS, "minutes": args.minutes,
                     "detector_type": kind,
                     "sample_s": args.sample_s, "real_footage": background is not None,
                     "rotate_mb": args.rotate_mb, "keep_files": KEEP_FILES,
                     "snapshots_mb": args.snapshots_mb, "prune_interval_s": PRUNE_S},
        "summary": summary, "timeline": soaked["samples"],
    }
    print(table(results))
    if args.plot and plot(results, Path(args.plot)):
        print(f"\nplot: {args.plot}")
    return results


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:g}"


def _verdict(row: dict[str, Any]) -> str:
    text = "yes" if row["under_limit"] else "**no**"
    return text if row["judged"] else f"({text}; not judged)"


def table(results: dict[str, Any]) -> str:
    s = results["summary"]
    k = max((r["median_of"] for r in s["growth"].values()), default=0)
    lines = [(f"after a {s['warmup_s']:.0f} s warm-up ({s['samples_after_warmup']} of "
              f"{s['samples']} samples); first / last = median of the first / last {k} samples"),
             "",
             "| metric | first sample | last sample | first (median) | last (median) | growth % "
             f"| under {GROWTH_LIMIT_PCT:g}% |",
             "|---|---|---|---|---|---|---|"]
    for r in s["growth"].values():
        lines.append(f"| {r['label']} | {_fmt(r['first_sample'])} | {_fmt(r['last_sample'])} | "
                     f"{_fmt(r['first'])} | {_fmt(r['last'])} | {_fmt(r['growth_pct'])} | "
                     f"{_verdict(r)} |")
    final = s["final"]
    lines += [
        "",
        f"accounting ok at every sample: {s['accounted_every_sample']}"
        + (f" (not at t = {s['not_accounted_at_s']})" if s["not_accounted_at_s"] else "")
        + f"; at stop: {s['final_accounted']}; camera restarts: {s['restarts']}",
        f"totals at stop: captured {final['captured']}, processed {final['processed']}, "
        f"dropped {final['dropped']} {final['dropped_by_reason']}, failed {final['failed']}",
        f"object store: peak reading {s['store_peak_mib']} MiB, bound cameras x buffers x frame "
        f"= {s['store_bound_mib']} MiB; store floor rows also pass on a rise under "
        f"{GROWTH_LIMIT_PCT:g}% of the bound; spilled {s['store_spilled_mib']} MiB",
        "largest RSS growth by process: " + ", ".join(
            f"{p['kind']} {p['name']} (pid {p['pid']}) {_fmt(p['rss_mib']['growth_pct'])}% "
            f"(private {_fmt(p['private_mib']['growth_pct'])}%)" for p in s["by_process"][:3]),
        f"all judged growth under {GROWTH_LIMIT_PCT:g}%: {s['all_under_limit']}"
        + (f" (over: {', '.join(s['grew'])})" if s["grew"] else ""),
        f"run folder (retention on): peak {s.get('disk_peak_mib')} MiB, bound "
        f"{s.get('disk_bound_mib')} MiB, within it at every sample: {s.get('disk_within_bound')}"
        f"; events dropped by any sink: {s.get('sink_dropped') or 'none'}",
    ]
    return "\n".join(lines)


def _series(timeline: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [(p["t"] / 60, v) for p in timeline if (v := value(p, key)) is not None]
    return [x for x, _ in points], [y for _, y in points]


def _relative(ax: Any, results: dict[str, Any]) -> None:
    """Each kind's RSS (and private RSS, dashed) as % of its first median after the warm-up,
    against the 5% limit."""
    growth_rows = results["summary"]["growth"]
    for i, kind in enumerate(KINDS):
        for metric, style, label in (("rss_sum", "-", kind), ("private_sum", "--", "private")):
            key = f"{kind}.{metric}"
            if key in growth_rows and growth_rows[key]["first"]:
                base = growth_rows[key]["first"]
                x, y = _series(results["timeline"], key)
                ax.plot(x, [100 * (v - base) / base for v in y], style, color=f"C{i}",
                        label=label if metric == "rss_sum" else f"{kind} {label}")
    ax.axhspan(-GROWTH_LIMIT_PCT, GROWTH_LIMIT_PCT, color="g", alpha=0.06)
    ax.axhline(GROWTH_LIMIT_PCT, color="r", lw=0.8, label=f"+{GROWTH_LIMIT_PCT:g}%")


def plot(results: dict[str, Any], path: Path) -> bool:
    plt = plotting.pyplot()
    if plt is None:
        return False
    timeline, summary = results["timeline"], results["summary"]
    fig, axes = plt.subplots(6, 1, figsize=(9, 14), sharex=True)
    rss, rel, store, disk, fds, threads = axes
    for kind in KINDS:
        rss.plot(*_series(timeline, f"{kind}.rss_sum"), label=f"{kind} (sum)")
        fds.plot(*_series(timeline, f"{kind}.fds"), label=kind)
        threads.plot(*_series(timeline, f"{kind}.threads"), label=kind)
    for kind in ("camera", "detector"):
        rss.plot(*_series(timeline, f"{kind}.rss_max"), ":", label=f"{kind} (max)")
    _relative(rel, results)
    store.plot(*_series(timeline, "store.mib"), label="mean of 5 reads")
    store.plot(*_series(timeline, "store.mib_min"), "--", label="floor (least)")
    store.plot(*_series(timeline, "store.mib_max"), ":", label="max")
    store.axhline(summary["store_bound_mib"], color="r", lw=0.8,
                  label="bound (cameras x buffers x frame)")
    disk.plot(*_series(timeline, "disk.mib"), label="run folder")
    if summary.get("disk_bound_mib"):
        disk.axhline(summary["disk_bound_mib"], color="r", lw=0.8, label="bound (retention)")
    labels = ("RSS MiB", "RSS change %\n(vs first after warm-up)", "object store MiB",
              "run folder MiB", "open fds", "threads")
    for ax, label in zip(axes, labels, strict=True):
        ax.set_ylabel(label)
        ax.axvspan(0, summary["warmup_s"] / 60, color="0.92")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small", ncol=3)
    rss.set_ylim(bottom=0)
    axes[-1].set_xlabel("minutes (grey: warm-up, not judged)")
    plotting.save(fig, path, f"camfleet soak: {results['scenario']['cameras']} cameras, "
                  f"{results['scenario']['minutes']:g} min")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup-s", type=float,
                        help="not judged for growth (default: 20%% of the run, at least 60 s, "
                        "at most half)")
    parser.add_argument("--rotate-mb", type=float, default=1.0,
                        help="events and stats files rotate at this size (MB)")
    parser.add_argument("--snapshots-mb", type=float, default=5.0,
                        help="the snapshot folder's budget (MB)")
    parser.add_argument("--plot", default="bench-soak.png", help="PNG plot path ('' for none)")
