"""``camfleet bench fleet``: fleet capacity against the compute bound, measured in one run.

The compute bound is the same detector (BlazeFace, the default ``face``, or with ``--model``
BlazeFace back or NanoDet, the default ``person``) over the same frames
in one tight loop per core, in plain processes (no Ray, no capture, no hand-off): the most
frames per second this machine can analyse, the median of ``--runs`` measurements. The fleet
sweep then runs cameras x fps on real Ray with the detector pool fixed at one actor per core
(autoscaling off), with cross-camera batching on (``max_batch_size`` of ``--batch-sizes``) and
off (1), each point ``--runs`` times, and reports the median offered and analysed fps, drop
rate, latency, CPU use and efficiency = analysed fps / compute bound. At saturation (offered
above the bound) the efficiency says how much of the machine the fleet turns into detections.

The case-study table adds the hand-off per frame, measured in the same run through a real
camera (:func:`fleet.bench.common.handoff.measure_handoff_ms`), or read from a ``bench
transport`` JSON given with ``--transport-json``; never a constant.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fleet.bench import plotting
from fleet.bench.common.fleets import MODELS, capacity_fleet
from fleet.bench.common.footage import background_image, scene_frames
from fleet.bench.common.handoff import measure_handoff_ms
from fleet.bench.common.running import run_point

RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
HANDOFF_IN_FLIGHT = 4  # frames in flight when the hand-off is measured (a camera's buffers)


def _tight_loop(frames: list[np.ndarray], detect_width: int, seconds: float, out: Any,
                scene: tuple[int, int, str | None] | None = None,
                core: int | None = None, model: str = "front") -> None:
    import cv2

    if core is not None:
        os.sched_setaffinity(0, {core})

    from pydantic import TypeAdapter

    from fleet.config import DetectorConfig, SyntheticSource
    from fleet.detectors import build_detector
    from fleet.frames import FrameMeta
    from fleet.sources import SyntheticScene

    cv2.setNumThreads(1)
    detector = build_detector(TypeAdapter(DetectorConfig).validate_python(
        {**MODELS[model], "num_cpus": 1}))
    h, w = frames[0].shape[:2]
    source = None
    if scene is not None:  # the script bound: draw each frame as a camera does, then detect
        source = SyntheticScene("bound", SyntheticSource(width=scene[0], height=scene[1],
                                                         objects=1, background=scene[2]))
        source.open()
    buf = None
    done, deadline = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        meta = FrameMeta("bound", done, 0.0, w, h, detect_width)
        if source is not None:
            source.grab()
            frame = buf = source.retrieve(buf)
        else:
            frame = frames[done % len(frames)]
        detector.detect(frame, meta)
        done += 1
    out.put((done, time.perf_counter() - start))


def compute_bound(frames: list[np.ndarray], detect_width: int, seconds: float,
                  cores: int, scene: tuple[int, int, str | None] | None = None,
                  core: int | None = None, model: str = "front") -> dict[str, float]:
    """Frames per second of ``cores`` processes each detecting in a tight loop, all at once
    (with ``scene``, each also draws its frames as a synthetic camera does: a script's
    bound, frames included)."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs Ray
    out = ctx.Queue()
    workers = [ctx.Process(target=_tight_loop,
                           args=(frames, detect_width, seconds, out, scene, core, model))
               for _ in range(cores)]
    for w in workers:
        w.start()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(timeout=10)
    fps = sum(done / elapsed for done, elapsed in results)
    return {"fps": round(fps, 2), "per_core_fps": round(fps / cores, 2),
            "ms_per_frame": round(1000 * cores / fps, 2), "cores": cores}


def case_study_table(background: str | None, detect_width: int, seconds: float, cores: int,
                     handoff_ms: dict[str, float],
                     progress: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    for name, (w, h) in RESOLUTIONS.items():
        progress(f"case-study table: {name} detection in a tight loop")
        bound = compute_bound(scene_frames(w, h, background, count=4), detect_width, seconds, 1)
        per_frame = bound["ms_per_frame"] + handoff_ms[name]
        fps_machine = 1000 * cores / per_frame
        rows.append({"resolution": name, "detect_ms": bound["ms_per_frame"],
                     "handoff_ms": handoff_ms[name], "per_frame_ms": round(per_frame, 2),
                     "fps_per_core": round(1000 / per_frame, 1),
                     "fps_machine": round(fps_machine, 1),
                     "holds_30fps_one_camera": fps_machine >= 30,
                     "cameras_at_30fps": int(fps_machine // 30)})
    return rows


def handoff_ms(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    """Hand-off ms per frame at each resolution: from ``--transport-json``, else measured now."""
    if args.transport_json:
        sizes = json.loads(Path(args.transport_json).read_text(encoding="utf-8"))["sizes"]
        return {"source": args.transport_json,
                "ms": {name: sizes[name]["pipelined_ms_per_frame"] for name in RESOLUTIONS}}
    ms = measure_handoff_ms(list(RESOLUTIONS), frames=40, buffers=HANDOFF_IN_FLIGHT,
                            progress=progress)
    return {"source": f"measured in this run (real camera, {HANDOFF_IN_FLIGHT} in flight)",
            "ms": ms}


MEDIAN_KEYS = ("offered_fps", "analysed_fps", "drop_rate", "p50_ms", "p95_ms", "p99_ms",
               "cpu_busy")


def _median_point(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in MEDIAN_KEYS:
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = round(statistics.median(values), 3) if values else None
    roles = sorted({k for r in runs for k in r.get("cores", {})})
    out["cores"] = {k: round(statistics.median(r.get("cores", {}).get(k, 0.0) for r in runs), 3)
                    for k in roles}
    out["accounted"] = all(r["accounted"] for r in runs)
    out["runs"] = runs
    return out


def _median_bound(args: argparse.Namespace, progress: Callable[[str], None], what: str,
                  frames: list[np.ndarray], cores: int, **kwargs: Any) -> dict[str, Any]:
    bounds = []
    for i in range(args.runs):
        progress(f"{what} {i + 1}/{args.runs}: {args.model}, {args.resolution} at "
                 f"{args.detect_width} wide, {cores} process(es) in a tight loop for "
                 f"{args.bound_s:g} s")
        bounds.append(compute_bound(frames, args.detect_width, args.bound_s, cores,
                                    model=args.model, **kwargs))
    bound: dict[str, Any] = dict(sorted(bounds, key=lambda b: b["fps"])[len(bounds) // 2])
    bound["runs_fps"] = [b["fps"] for b in bounds]
    progress(f"{what}: median {bound['fps']} fps of {bound['runs_fps']} "
             f"({bound['ms_per_frame']} ms a frame per core)")
    return bound


def _sweep(args: argparse.Namespace, progress: Callable[[str], None], folder: Path,
           background: str | None, bound: dict[str, Any], script: dict[str, Any] | None,
           split: bool) -> list[dict[str, Any]]:
    """Every variant x cameras x fps, ``--runs`` times each; the medians."""
    width, height = RESOLUTIONS[args.resolution]
    actors = 1 if split else bound["cores"]
    points = []
    for batch, group in variants(args):
        for cameras in (args.split_cameras if split else args.cameras):
            for fps in (args.split_fps if split else args.fps):
                runs = []
                for i in range(args.runs):
                    where = "split: cameras | detector core, " if split else ""
                    progress(f"fleet: {where}max_batch_size {batch}, put_frames {group}, "
                             f"{cameras} camera(s) x {fps:g} fps, run {i + 1}/{args.runs}, "
                             f"{args.point_s:g} s")
                    config = capacity_fleet(cameras, fps, width, height, background, actors,
                                            args.detect_width, batch, group, args.model)
                    name = f"{'s' if split else 'a'}-b{batch}-p{group}-c{cameras}-f{fps}-{i}"
                    runs.append(run_point(config, args.point_s, args.warmup_s,
                                          folder / name, split=split))
                point = _median_point(runs)
                point.update(cameras=cameras, fps_per_camera=fps, max_batch_size=batch,
                             put_frames=group, variant=variant_name(batch, group),
                             efficiency=round(point["analysed_fps"] / bound["fps"], 3),
                             saturated=(point["offered_fps"] > bound["fps"]
                                        or point["drop_rate"] >= SATURATED_DROP_RATE),
                             **cost_split(point, bound, script or bound))
                points.append(point)
                progress(f"  median analysed {point['analysed_fps']} of "
                         f"{point['offered_fps']} fps offered, p95 {point['p95_ms']} ms, "
                         f"efficiency {point['efficiency']}")
    return points


def summarise(args: argparse.Namespace, points: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant, the best efficiency at saturation; and the best with batching on."""
    by_variant: dict[str, Any] = {}
    for batch, group in variants(args):
        name = variant_name(batch, group)
        saturated = [p for p in points if p["variant"] == name and p["saturated"]]
        best = max(saturated, key=lambda p: p["efficiency"]) if saturated else None
        by_variant[name] = {
            "max_batch_size": batch, "put_frames": group,
            "efficiency_at_saturation": best["efficiency"] if best else None,
            "efficiency_vs_script": best["efficiency_vs_script"] if best else None,
            "detector_efficiency": best["detector_efficiency"] if best else None,
            "analysed_fps": best["analysed_fps"] if best else None,
            "p95_ms": best["p95_ms"] if best else None,
            "point": f"{best['cameras']}x{best['fps_per_camera']:g}" if best else None}
    batched = [v for v in by_variant.values()
               if (v["max_batch_size"] > 1 or v["put_frames"] > 1)
               and v["efficiency_at_saturation"] is not None]
    on = max((v["efficiency_at_saturation"] for v in batched), default=None)
    return {"by_variant": by_variant, "efficiency_at_saturation": on,
            "target_0_90_with_batching_met": (on >= 0.90) if on is not None else None}


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    cores = args.cores or os.cpu_count() or 1
    width, height = RESOLUTIONS[args.resolution]
    split: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="camfleet-bench-") as tmp:
        folder = Path(tmp)
        background = background_image(folder)
        frames = scene_frames(width, height, background)
        bound = _median_bound(args, progress, "compute bound", frames, cores)
        script = _median_bound(args, progress, "script bound (drawing each frame too)",
                               frames, cores, scene=(width, height, background))
        points = _sweep(args, progress, folder, background, bound, script, split=False)
        if args.split and cores > 1:
            core = cores - 1
            one = _median_bound(args, progress, f"one-core bound (core {core})", frames, 1,
                                core=core)
            split_points = _sweep(args, progress, folder, background, one, None, split=True)
            split = {"compute_bound": one, "points": split_points, "detector_core": core,
                     **summarise(args, split_points)}
        table, handoff = [], {}
        if args.table_s > 0:
            handoff = handoff_ms(args, progress)
            table = case_study_table(background, args.detect_width, args.table_s, cores,
                                     handoff["ms"], progress)
    summary = summarise(args, points)
    results = {"compute_bound": bound, "script_bound": script, "points": points,
               "case_study": table, "handoff": handoff, "by_batch_size": summary["by_variant"],
               "runs": args.runs, "efficiency_at_saturation": summary["efficiency_at_saturation"],
               "target_0_90_with_batching_met": summary["target_0_90_with_batching_met"],
               "split": split, "model": args.model,
               "real_footage": background is not None, "resolution": args.resolution,
               "detect_width": args.detect_width, "detector": "blazeface"}
    print(fleet_table(results))
    if args.plot and plot(results, Path(args.plot)):
        print(f"\nplot: {args.plot}")
    return results


SATURATED_DROP_RATE = 0.05  # frames dropped for want of a buffer: the fleet is at capacity


def variants(args: argparse.Namespace) -> list[tuple[int, int]]:
    """(max_batch_size, put_frames) pairs to run, batching on first."""
    return [(b, p) for b in args.batch_sizes for p in args.put_frames]


def variant_name(batch: int, group: int) -> str:
    if batch == 1 and group == 1:
        return "batching off"
    return f"max_batch_size {batch}, put_frames {group}"


def cost_split(point: dict[str, Any], bound: dict[str, Any],
               script: dict[str, Any]) -> dict[str, Any]:
    """Where the fleet's CPU went, per analysed frame, and two efficiencies beside the
    issue's: against a script that draws and detects each frame in a loop per core (the best
    any system can do with these sources on this machine), and of the detector actors alone
    (frames per CPU-second they used, against the tight loop's frames per CPU-second)."""
    fps = point["analysed_fps"] or 0.0
    cores = point.get("cores", {})
    ms = {k: round(v * 1000 / fps, 2) for k, v in cores.items()} if fps else {}
    per_core = bound["fps"] / bound["cores"]
    used = cores.get("detectors", 0.0)
    return {"cpu_ms_per_frame": ms,
            "efficiency_vs_script": round(fps / script["fps"], 3) if script["fps"] else None,
            "detector_efficiency": round(fps / used / per_core, 3) if used else None}


def fleet_table(results: dict[str, Any]) -> str:
    bound = results["compute_bound"]
    script = results.get("script_bound") or {}
    lines = [(f"compute bound: {bound['fps']} fps on {bound['cores']} core(s) "
              f"({bound['ms_per_frame']} ms a frame per core); script bound (drawing each "
              f"frame too): {script.get('fps')} fps"), "",
             f"medians of {results['runs']} run(s) per point", "",
             ("| max_batch_size | put_frames | cameras | fps each | offered fps | analysed fps | "
              "drop rate | p50 ms | p95 ms | p99 ms | CPU busy | efficiency | vs script | "
              "detector actors |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in results["points"]:
        mark = " (saturated)" if p["saturated"] else ""
        lines.append(f"| {p['max_batch_size']} | {p.get('put_frames', 1)} | {p['cameras']} | "
                     f"{p['fps_per_camera']:g} | "
                     f"{p['offered_fps']} | {p['analysed_fps']} | {p['drop_rate']} | "
                     f"{p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | {p['cpu_busy']} | "
                     f"{p['efficiency']}{mark} | {p.get('efficiency_vs_script')} | "
                     f"{p.get('detector_efficiency')} |")
    roles = sorted({k for p in results["points"] for k in p.get("cpu_ms_per_frame", {})})
    if roles:
        lines += ["", "CPU ms per analysed frame, by process (this run's processes only):", "",
                  "| max_batch_size | put_frames | cameras | " + " | ".join(roles) + " | total |",
                  "|---|---|---|" + "---|" * (len(roles) + 1)]
        for p in results["points"]:
            ms = p.get("cpu_ms_per_frame", {})
            lines.append(f"| {p['max_batch_size']} | {p.get('put_frames', 1)} | {p['cameras']} | "
                         + " | ".join(str(ms.get(k, "")) for k in roles)
                         + f" | {round(sum(ms.values()), 2)} |")
    lines += ["", "| variant | best efficiency at saturation | vs script | detector actors | "
                  "analysed fps | p95 ms | point |", "|---|---|---|---|---|---|---|"]
    for name, b in results["by_batch_size"].items():
        lines.append(f"| {name} | {b['efficiency_at_saturation']} | "
                     f"{b.get('efficiency_vs_script')} | {b.get('detector_efficiency')} | "
                     f"{b['analysed_fps']} | {b['p95_ms']} | {b['point']} |")
    lines.append(f"target >= 0.90 with batching: {results['target_0_90_with_batching_met']}")
    split = results.get("split")
    if split:
        one = split["compute_bound"]
        lines += ["", (f"split: the detector actor alone on core {split['detector_core']}, "
                       "cameras, Ray and the controller on the others (a camera node and a "
                       f"detector node); bound: the same loop on that core, {one['fps']} fps"),
                  "", ("| max_batch_size | put_frames | cameras | fps each | offered fps | "
                       "analysed fps | drop rate | p50 ms | p95 ms | detector core busy | "
                       "efficiency |"),
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for p in split["points"]:
            mark = " (saturated)" if p["saturated"] else ""
            lines.append(f"| {p['max_batch_size']} | {p['put_frames']} | {p['cameras']} | "
                         f"{p['fps_per_camera']:g} | {p['offered_fps']} | {p['analysed_fps']} | "
                         f"{p['drop_rate']} | {p['p50_ms']} | {p['p95_ms']} | "
                         f"{p['cores'].get('detectors')} | {p['efficiency']}{mark} |")
        lines.append(f"split target >= 0.90 with batching: "
                     f"{split['target_0_90_with_batching_met']}")
    if results["case_study"]:
        lines += ["", f"hand-off: {results['handoff']['source']}", "",
                  ("| resolution | detect ms | hand-off ms | per frame ms | fps per core | "
                       "fps on this machine | holds 30 fps (1 camera) | cameras at 30 fps |"),
                  "|---|---|---|---|---|---|---|---|"]
        for r in results["case_study"]:
            lines.append(f"| {r['resolution']} | {r['detect_ms']} | {r['handoff_ms']} | "
                         f"{r['per_frame_ms']} | {r['fps_per_core']} | {r['fps_machine']} | "
                         f"{'yes' if r['holds_30fps_one_camera'] else 'no'} | "
                         f"{r['cameras_at_30fps']} |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    plt = plotting.pyplot()
    if plt is None:
        return False
    bound = results["compute_bound"]["fps"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    everything = [p["offered_fps"] for p in results["points"]]
    names = list(dict.fromkeys(p.get("variant", "") for p in results["points"]))
    for label in names:
        points = sorted((p for p in results["points"] if p.get("variant", "") == label),
                        key=lambda p: p["offered_fps"])
        offered = [p["offered_fps"] for p in points]
        top.plot(offered, [p["analysed_fps"] for p in points], "o-",
                 label=f"analysed fps, {label}")
        bottom.plot(offered, [p["efficiency"] for p in points], "o-", label=label)
    top.axhline(bound, color="r", ls="--", label=f"compute bound {bound:g} fps")
    top.plot(sorted(everything), sorted(everything), ":", color="0.5",
             label="offered = analysed")
    top.set_ylabel("frames per second")
    top.legend()
    bottom.legend()
    bottom.axhline(0.9, color="r", ls="--", lw=0.8)
    bottom.set_ylabel("efficiency (analysed / bound)")
    bottom.set_xlabel("offered fps (cameras x fps)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    plotting.save(fig, path,
                  "camfleet fleet capacity vs the compute bound (BlazeFace, median of runs)")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--fps", type=float, nargs="+", default=[30.0, 120.0], help="per camera")
    parser.add_argument("--resolution", choices=list(RESOLUTIONS), default="720p")
    parser.add_argument("--detect-width", type=int, default=640)
    parser.add_argument("--cores", type=int,
                        help="detector actors and bound processes (default: all)")
    parser.add_argument("--bound-s", type=float, default=5.0, help="tight-loop seconds, a run")
    parser.add_argument("--point-s", type=float, default=10.0, help="measured seconds per point")
    parser.add_argument("--warmup-s", type=float, default=4.0)
    parser.add_argument("--table-s", type=float, default=6.0,
                        help="per resolution; 0 skips the table")
    parser.add_argument("--transport-json",
                        help="take the case-study hand-off from this `bench transport` JSON "
                             "(its 4-in-flight ms/frame); default: measure it in this run")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 1],
                        help="detectors.face.batching.max_batch_size values (1: batching off)")
    parser.add_argument("--model", choices=sorted(MODELS), default="front",
                        help="the detector: BlazeFace front or back (the default face "
                        "detector), or NanoDet (the default person detector)")
    parser.add_argument("--split", action=argparse.BooleanOptionalAction, default=True,
                        help="also run with the detector actor alone on the last core and "
                        "everything else on the others (a camera node and a detector node)")
    parser.add_argument("--split-cameras", type=int, nargs="+", default=[4])
    parser.add_argument("--split-fps", type=float, nargs="+", default=[120.0])
    parser.add_argument("--put-frames", type=int, nargs="+", default=[8, 1],
                        help="cameras' put_frames values (1: one frame per put and call)")
    parser.add_argument("--runs", type=int, default=3, help="runs per point (median reported)")
    parser.add_argument("--plot", default="bench-fleet.png", help="PNG plot path ('' for none)")
