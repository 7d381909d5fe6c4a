"""``camfleet bench mot``: camfleet's person tracks scored against MOTChallenge ground truth.

A clip runs through the real fleet path: a ``file`` camera read as fast as the fleet goes
(``realtime: false``, ``drop_policy: wait``, so no frame is dropped for want of a buffer), the
fleet's ``person`` detector (NanoDet unless ``--detector-type`` says otherwise) in a detector
actor, tracking on, and the JSONL sink writing a line per tracked box (``jsonl.tracks``) and a
line per frame with boxes (``jsonl.frames``). The lines are then scored with
:mod:`fleet.bench.mot_score` (HOTA, MOTA, IDF1, ID switches, fragmentations, precision, recall,
objects started per ground-truth person) against ``--gt``, a MOTChallenge ``gt.txt`` whose
frame k+1 is the clip's frame k.

Each ``--fps`` is its own fleet run: ``--fps`` at or above the clip's rate analyses every frame;
the demo's 4 fps on a 10 fps clip analyses 4 frames in 10, which is harder for a tracker (the
people move further between looks). Only the frames analysed are scored (the rest have no
boxes by design). The detector alone is scored on the same frames from the frame lines.

``--sweep`` then replays the tracker, in this process and without Ray, on the detections the
fleet produced, over a grid of its settings (``min_score``, ``threshold``, ``min_frames``,
``max_disappeared_s``, ``match_iou``), and reports the best by the mean of MOTA and IDF1 over
the rates, among settings that start at most 1.3 objects per person. That is how the tracking
defaults were chosen (docs/benchmarks.md).

The ground truth is not shipped: PETS09-S2L1's ``gt.txt`` is MOTChallenge's (CC BY-NC-SA,
evaluation only); docs/benchmarks.md says where to get it. Its frames are ``vtest.avi``'s, the
demo's ``town-square`` clip (Debian's opencv-doc).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleet.bench import detcost, mot_score, plotting
from fleet.bench.common.fleets import build
from fleet.bench.common.running import in_process_controller, wait_for_free_cpus
from fleet.config import CameraConfig, FleetConfig
from fleet.frames import Completion, Detection, DetectionResult, FrameMeta
from fleet.pipeline.camera import FpsLimiter
from fleet.pipeline.tracking import ObjectTracker

CLIP = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
CAMERA = "clip"
MAX_SWITCHES, MAX_OBJECTS_PER_PERSON = 10, 1.3
DETECTOR_SCORES = (0.3, 0.4, 0.5, 0.6, 0.7)  # the detector's P/R is reported at each
SHOWN = (*(f"det_{m}@{s}" for s in DETECTOR_SCORES for m in "pr"), "HOTA", "MOTA", "IDF1",
         "id_switches", "fragmentations", "precision", "recall", "objects_started",
         "objects_per_gt_person", "analysed_fps")
# What one core pays per frame, in the same run: NanoDet beside the face detectors
COST_DETECTORS: dict[str, dict[str, Any]] = {
    "nanodet 512x384": {"type": "nanodet", "classes": ["person"]},
    "nanodet 416x416": {"type": "nanodet", "classes": ["person"], "input_size": [416, 416]},
    "blazeface front": {"type": "blazeface", "model": "front"},
    "blazeface back": {"type": "blazeface", "model": "back"},
}
GRID = {"min_score": (0.3, 0.4, 0.5), "threshold": (0.5, 0.6, 0.7), "min_frames": (1, 2, 3),
        "max_disappeared_s": (1.5, 3.0), "match_iou": (0.01, 0.1)}


def fleet_config(clip: str, fps: float, detector: dict[str, Any],
                 tracking: dict[str, Any]) -> FleetConfig:
    """One file camera, every frame it is given analysed by ``person``, track lines on."""
    camera = {"id": CAMERA, "source": {"type": "file", "path": clip, "loop": False,
                                       "realtime": False},
              "fps": fps, "buffers": 4, "drop_policy": "wait", "detect": ["person"],
              "tracking": tracking}
    return build(
        "bench-mot", [camera], stats_interval_s=1.0, metrics={"enabled": False},
        autoscaling={"enabled": False},
        detectors={"person": {"actors": 1, "num_cpus": 1, **_low_boxes(detector)}},
        sinks={"jsonl": {"tracks": True, "frames": True}, "snapshots": {"enabled": False}})


def _low_boxes(detector: dict[str, Any]) -> dict[str, Any]:
    """NanoDet (the default) keeping boxes down to 0.3, below the tracker's min_score (0.5),
    which drops them, so the tracks are the fleet's as it runs: the detector's precision and
    recall by score and the sweep see the low boxes too."""
    if detector.get("type", "nanodet") != "nanodet" or "min_score" in detector:
        return detector
    return {"min_score": 0.3, **detector}


def run_fleet(config: FleetConfig, run_dir: Path, progress: Callable[[str], None],
              timeout_s: float = 900.0) -> dict[str, Any]:
    """The fleet on real Ray until its camera has read the whole clip; its accounting."""
    wait_for_free_cpus()  # the last run's actors may still be ending
    controller = in_process_controller(config, run_dir)
    began = time.monotonic()
    controller.start()
    try:
        while time.monotonic() - began < timeout_s:
            time.sleep(1.0)
            stats = controller.collect().cameras[CAMERA].stats
            progress(f"  {stats.processed} frames analysed, state {stats.state}")
            if stats.state == "ended":
                break
    finally:
        final = controller.stop()[CAMERA]
    elapsed = time.monotonic() - began
    return {"captured": final.captured, "processed": final.processed,
            "dropped": sum(final.dropped.values()), "failed": final.failed,
            "accounted": final.accounted, "seconds": round(elapsed, 1),
            "analysed_fps": round(final.processed / elapsed, 2)}


def analysed_frames(count: int, clip_fps: float, fps: float) -> list[int]:
    """The frames a camera at ``fps`` analyses of a ``clip_fps`` file read on its media clock
    (the camera's own limiter, on the same times)."""
    limiter = FpsLimiter(fps)
    return [i for i in range(count) if limiter.admit(i / clip_fps)]


def frame_boxes(events: Path) -> dict[int, list[Detection]]:
    """The detector's boxes per frame, from the frame lines."""
    found: dict[int, list[Detection]] = {}
    for line in events.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        if record.get("type") == "frame" and record.get("camera") == CAMERA:
            found.setdefault(record["frame"], []).extend(
                Detection(label, int(box[0]), int(box[1]), int(box[2]), int(box[3]), score)
                for box, label, score in
                zip(record["boxes"], record["labels"], record["scores"], strict=True))
    return found


def score_run(events: Path, gt: dict[int, tuple[mot_score.GtBox, ...]],
              frames: list[int]) -> dict[str, Any]:
    """Tracks and detections of one run, scored on the analysed frames. The detector alone is
    scored from its frame lines at each score in DETECTOR_SCORES (``det_p@0.5``,
    ``det_r@0.5``...): its precision/recall curve, since no one score serves every purpose
    (the tracker takes the low boxes only to continue tracks)."""
    out = mot_score.score(gt, mot_score.read_tracks(events, CAMERA), frames=frames)
    found = frame_boxes(events)
    for floor in DETECTOR_SCORES:
        boxes = {k: [(d.x, d.y, d.w, d.h) for d in v if d.label == "person" and d.score >= floor]
                 for k, v in found.items()}
        detected = mot_score.detection_score(gt, boxes, frames=frames)
        out[f"det_p@{floor}"], out[f"det_r@{floor}"] = detected["precision"], detected["recall"]
    return out


def replay(boxes: dict[int, list[Detection]], frames: list[int], clip: ClipInfo,
           camera: CameraConfig, out: Path) -> Path:
    """The tracker alone over recorded detections, its track lines and events into ``out``."""
    tracker = ObjectTracker(camera, "bench-mot", None, session="replay", track_lines=True)
    lines: list[dict[str, Any]] = []
    for index in frames:
        meta = FrameMeta(CAMERA, index, index / clip.fps, clip.width, clip.height, None,
                         stream_time=index / clip.fps)
        tracker.expect(meta)
        result = DetectionResult("person", CAMERA, index, tuple(boxes.get(index, ())), 0.0)
        events = tracker.settle(index, Completion(meta, 0.0, [result]))
        lines += tracker.take_lines() + events
    lines += tracker.take_lines() + tracker.close()
    out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return out


def sweep(recorded: dict[float, tuple[dict[int, list[Detection]], list[int]]],
          gt: dict[int, tuple[mot_score.GtBox, ...]], clip: ClipInfo, base: FleetConfig,
          progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every setting of GRID replayed at every rate; rows sorted best first."""
    rows = []
    settings = [dict(zip(GRID, values, strict=True))
                for values in itertools.product(*GRID.values())]
    with tempfile.TemporaryDirectory(prefix="camfleet-mot-") as tmp:
        for n, setting in enumerate(settings, 1):
            camera = base.cameras[0].model_copy(update={"tracking": base.cameras[0].tracking
                                                        .model_copy(update=setting)})
            per_rate = {}
            for fps, (boxes, frames) in recorded.items():
                events = replay(boxes, frames, clip, camera, Path(tmp) / "replay.jsonl")
                per_rate[fps] = mot_score.score(gt, mot_score.read_tracks(events, CAMERA),
                                                frames=frames)
            rows.append({"setting": setting, "by_fps": per_rate,
                         "objective": statistics.mean((r["MOTA"] + r["IDF1"]) / 2
                                                      for r in per_rate.values()),
                         "worst_objects_per_person": max(r["objects_per_gt_person"]
                                                         for r in per_rate.values())})
            if n % 10 == 0 or n == len(settings):
                progress(f"sweep: {n} of {len(settings)} settings")
    eligible = [r["worst_objects_per_person"] <= MAX_OBJECTS_PER_PERSON for r in rows]
    return [r for _, r in sorted(zip(eligible, rows, strict=True),
                                 key=lambda p: (not p[0], -p[1]["objective"]))]


@dataclass(frozen=True)
class ClipInfo:
    """The clip as OpenCV reads it."""

    frames: int
    fps: float
    width: int
    height: int


def clip_info(clip: str) -> ClipInfo:
    """The clip's frame count, fps and size, as OpenCV reads it."""
    import cv2

    video = cv2.VideoCapture(clip)
    try:
        if not video.isOpened():
            raise SystemExit(f"--clip {clip}: OpenCV cannot open it")
        return ClipInfo(int(video.get(cv2.CAP_PROP_FRAME_COUNT)),
                        float(video.get(cv2.CAP_PROP_FPS)),
                        int(video.get(cv2.CAP_PROP_FRAME_WIDTH)),
                        int(video.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        video.release()


def clip_frames(clip: str, count: int) -> list[np.ndarray]:
    """``count`` frames spread over the clip."""
    import cv2

    total = clip_info(clip).frames
    video = cv2.VideoCapture(clip)
    wanted = set(range(0, total, max(1, total // count)))
    frames: list[np.ndarray] = []
    index = 0
    while len(frames) < count:
        ok, frame = video.read()
        if not ok:
            break
        if index in wanted:
            frames.append(frame)
        index += 1
    video.release()
    return frames


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))
            and not isinstance(runs[0][k], bool)]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    if not Path(args.gt).is_file():
        raise SystemExit(f"--gt {args.gt}: no such file (MOTChallenge's PETS09-S2L1 gt.txt; "
                         "docs/benchmarks.md says where to get it)")
    gt = mot_score.read_gt(Path(args.gt))
    info = clip_info(args.clip)
    count, clip_fps = info.frames, info.fps
    detector = {"type": args.detector_type} if args.detector_type else {}
    detector.update(json.loads(args.detector or "{}"))
    tracking = json.loads(args.tracking or "{}")
    results: dict[str, Any] = {"clip": args.clip, "clip_frames": count, "clip_fps": clip_fps,
                               "detector": detector, "tracking": tracking, "rates": {}}
    recorded = {}
    with tempfile.TemporaryDirectory(prefix="camfleet-mot-") as scratch:
        tmp = args.run_dir or scratch
        for fps in args.fps:
            frames = analysed_frames(count, clip_fps, fps)
            config = fleet_config(args.clip, fps, detector, tracking)
            runs = []
            for n in range(args.runs):
                progress(f"{fps:g} fps, run {n + 1} of {args.runs} ({len(frames)} frames)")
                folder = Path(tmp) / f"fps{fps:g}-run{n}"
                fleet = run_fleet(config, folder, progress)
                runs.append({**fleet, **score_run(folder / "events.jsonl", gt, frames)})
            recorded[fps] = (frame_boxes(Path(tmp) / f"fps{fps:g}-run0" / "events.jsonl"), frames)
            results["rates"][f"{fps:g}"] = {"frames_scored": len(frames), "runs": runs,
                                            "median": _median(runs)}
        results["config"] = config.model_dump(mode="json")
    if args.cost_frames:
        progress(f"cost: {len(COST_DETECTORS)} detectors on one core, batch 1 and 8")
        results["cost_ms_per_frame"] = detcost.ms_per_frame(
            COST_DETECTORS, clip_frames(args.clip, args.cost_frames), runs=args.runs)
    if args.sweep:
        rows = sweep(recorded, gt, info, config, progress)
        results["sweep"] = {"grid": GRID, "best": rows[:10], "settings": len(rows)}
    print(table(results))
    if args.plot and plot(results, Path(args.plot)):
        progress(f"plot written to {args.plot}")
    return results


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def table(results: dict[str, Any]) -> str:
    rates = results["rates"]
    width = 24
    head = "metric".ljust(width) + "".join(f"{k + ' fps':>14}" for k in rates) + "      target"
    targets = {**{f"det_{k}@{s}": ">= 0.93" for s in DETECTOR_SCORES for k in "pr"},
               "MOTA": ">= 0.85", "IDF1": ">= 0.85", "id_switches": f"<= {MAX_SWITCHES}",
               "objects_per_gt_person": f"<= {MAX_OBJECTS_PER_PERSON}"}
    lines = [head, "-" * len(head)]
    for key in SHOWN:
        cells = "".join(f"{_fmt(r['median'].get(key, '-')):>14}" for r in rates.values())
        lines.append(key.ljust(width) + cells + f"   {targets.get(key, '')}")
    runs = next(iter(rates.values()))["runs"]
    lines.append(f"(median of {len(runs)} runs per rate; every frame scored that was analysed; "
                 f"IoU 0.5; flag-0 boxes don't care; det_p@s / det_r@s: the detector's boxes "
                 f"scoring s or more, alone)")
    cost = results.get("cost_ms_per_frame")
    if cost:
        lines.append("")
        lines.append("ms per frame on one core (median of runs):".ljust(44) + "batch 1   batch 8")
        lines += [f"  {name:<42}{row['batch 1']:>7}{row['batch 8']:>10}"
                  for name, row in cost.items()]
    best = results.get("sweep", {}).get("best")
    if best:
        lines.append("")
        lines.append("tracker sweep (replayed on the fleet's detections), best first:")
        for row in best[:5]:
            per = ", ".join(f"{fps} fps MOTA {r['MOTA']:.3f} IDF1 {r['IDF1']:.3f} "
                            f"sw {r['id_switches']} obj/p {r['objects_per_gt_person']:.2f}"
                            for fps, r in row["by_fps"].items())
            lines.append(f"  {row['setting']}: {per}")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    plt = plotting.pyplot()
    if plt is None:
        return False
    keys = ("det_p@0.5", "det_r@0.5", "HOTA", "MOTA", "IDF1", "precision", "recall")
    fig, ax = plt.subplots(figsize=(9, 4))
    rates = list(results["rates"])
    width = 0.8 / len(rates)
    for i, fps in enumerate(rates):
        median = results["rates"][fps]["median"]
        ax.bar([k + i * width for k in range(len(keys))], [median[k] for k in keys], width,
               label=f"{fps} fps")
    ax.axhline(0.85, color="grey", linestyle="--", linewidth=1, label="MOTA/IDF1 target")
    ax.axhline(0.93, color="black", linestyle=":", linewidth=1, label="detection target")
    ax.set_xticks([k + width * (len(rates) - 1) / 2 for k in range(len(keys))], keys)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right", fontsize=8)
    plotting.save(fig, path, "PETS09-S2L1 through the fleet (median of runs)")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True,
                        help="MOTChallenge gt.txt of the clip (PETS09-S2L1 for vtest.avi)")
    parser.add_argument("--clip", default=CLIP, help="the video the ground truth is of")
    parser.add_argument("--fps", type=float, nargs="+", default=[10.0, 4.0],
                        help="analysed fps, one fleet run each (>= the clip's fps: every frame)")
    parser.add_argument("--runs", type=int, default=3, help="fleet runs per rate (medians)")
    parser.add_argument("--detector-type", default="",
                        help="the person detector's type (default: the fleet's, nanodet)")
    parser.add_argument("--detector", default="", help="more detector settings, as JSON")
    parser.add_argument("--tracking", default="", help="tracking settings, as JSON")
    parser.add_argument("--run-dir", default="",
                        help="keep each run's folder (events.jsonl) under this folder")
    parser.add_argument("--cost-frames", type=int, default=40,
                        help="clip frames each detector's cost is timed on (0: no cost table)")
    parser.add_argument("--sweep", action="store_true",
                        help="replay the tracker over a grid of settings on the detections")
    parser.add_argument("--plot", default="bench-mot.png", help="PNG plot path ('' for none)")
