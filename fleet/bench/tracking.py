"""``camfleet bench tracking``: what tracking costs a camera and what it saves the operator.

The frames are ground truth: N people walk straight across a 1920x1080 scene in lanes of their
own (paths never cross), enter and leave at random times, for ``--seconds`` at 10 fps; the
"detector" returns their boxes with pixel jitter, score noise and random misses
(``--miss``), as a real one would. The same frames go through both paths of a camera actor's
collect thread, in this process:

- **baseline, frame lines**: what camfleet wrote before tracking (and still writes with
  ``sinks.jsonl.frames``): one JSON line per analysed frame with detections;
- **tracking**: the tracker (ByteTrack from ``trackers``, lifecycle, zones) and its object events.

Reported: CPU time per frame of each (median of ``--runs`` runs; the ratio is of medians), lines
written (the operator's reading), and how well objects come out: objects found, tracks per
object (1.0: no fragment), id switches (a track on two people). Starts no Ray (``NEEDS_RAY``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.bench import plotting
from fleet.config import CameraConfig, ScenePath, SinksConfig
from fleet.frames import Completion, Detection, DetectionResult, FrameMeta
from fleet.pipeline.tracking import ObjectTracker
from fleet.sinks.events import EventSink
from fleet.sources import path_box

NEEDS_RAY = False
W, H, FPS = 1920, 1080, 10.0


def paths(count: int, seconds: float, rng: random.Random) -> list[ScenePath]:
    """``count`` people, each in a lane of its own, crossing left to right or back."""
    lane = 1.0 / count
    out = []
    for k in range(count):
        y = (k + 0.5) * lane
        start_s = rng.uniform(0, seconds * 0.4)
        duration = rng.uniform(seconds * 0.2, seconds * 0.6)
        x0, x1 = (0.05, 0.95) if rng.random() < 0.5 else (0.95, 0.05)
        height = min(0.25, lane * 0.8)
        out.append(ScenePath(start=(x0, y), end=(x1, y), start_s=start_s,
                             end_s=min(seconds, start_s + duration), size=(height * 0.4, height)))
    return out


def frames(scene: list[ScenePath], seconds: float, miss: float,
           rng: random.Random) -> list[list[tuple[int, Detection]]]:
    """Each frame's detections, each with the index of the person it is (the truth)."""
    out = []
    for index in range(int(seconds * FPS)):
        t = index / FPS
        found = []
        for who, path in enumerate(scene):
            if not path.start_s <= t < path.end_s or rng.random() < miss:
                continue
            x0, y0, x1, y1 = path_box(path, t, W, H)
            jitter = [round(rng.gauss(0, 2)) for _ in range(4)]
            box = Detection("person", x0 + jitter[0], y0 + jitter[1],
                            max(2, x1 - x0 + jitter[2]), max(2, y1 - y0 + jitter[3]),
                            rng.uniform(0.75, 0.95))
            found.append((who, box))
        out.append(found)
    return out


def completion(index: int, found: list[tuple[int, Detection]]) -> Completion:
    meta = FrameMeta("bench", index, 1e9 + index / FPS, W, H, None)
    result = DetectionResult("person", "bench", index, tuple(b for _, b in found), 0.001)
    return Completion(meta, 0.0, [result])


def run_baseline(shot: list[list[tuple[int, Detection]]], folder: Path) -> tuple[float, int]:
    """Frame lines through the real sink: seconds per frame, lines written."""
    config = SinksConfig.model_validate({"jsonl": {"frames": True, "objects": False,
                                                   "path": "frames.jsonl"},
                                         "snapshots": {"enabled": False}})
    sink = EventSink(config, str(folder), "bench")
    started = time.process_time()
    for index, found in enumerate(shot):
        done = completion(index, found)
        sink.emit(done.meta, done.results, 0.01)
    sink.close()
    spent = time.process_time() - started
    lines = len((folder / "frames.jsonl").read_text().splitlines())
    (folder / "frames.jsonl").unlink()
    return spent / len(shot), lines


def run_tracking(shot: list[list[tuple[int, Detection]]],
                 folder: Path) -> tuple[float, list[dict[str, Any]]]:
    """The tracker and its object events through the real sink: seconds per frame, events."""
    config = SinksConfig.model_validate({"jsonl": {"path": "objects.jsonl"},
                                         "snapshots": {"enabled": False}})
    sink = EventSink(config, str(folder), "bench")
    camera = CameraConfig.model_validate({
        "id": "bench", "source": {"type": "synthetic"}, "fps": FPS,
        "zones": [{"name": "middle", "polygon": [[0.4, 0], [0.6, 0], [0.6, 1], [0.4, 1]]}],
    })
    tracker = ObjectTracker(camera, "bench")
    started = time.process_time()
    for index, found in enumerate(shot):
        done = completion(index, found)
        tracker.expect(done.meta)
        sink.objects(tracker.settle(index, done))
    sink.objects(tracker.close())
    sink.close()
    spent = time.process_time() - started
    text = (folder / "objects.jsonl").read_text()
    (folder / "objects.jsonl").unlink()
    return spent / len(shot), [json.loads(line) for line in text.splitlines()]


def quality(events: list[dict[str, Any]], shot: list[list[tuple[int, Detection]]],
            people: int) -> dict[str, Any]:
    """Objects found, tracks per person and id switches, from the events' boxes."""
    truth_at = {index: found for index, found in enumerate(shot)}
    person_of_track: dict[str, set[int]] = defaultdict(set)
    for event in events:
        box = event["box"]
        for who, truth in truth_at.get(event["frame"], []):
            if abs(truth.x - box[0]) <= 10 and abs(truth.y - box[1]) <= 10:
                person_of_track[event["track"]].add(who)
    tracks_of: dict[int, set[str]] = defaultdict(set)
    for track, people_seen in person_of_track.items():
        for person in people_seen:
            tracks_of[person].add(track)
    seen = sorted(tracks_of)
    return {
        "people": people, "found": len(seen),
        "tracks": len({e["track"] for e in events}),
        "tracks_per_person": round(statistics.mean(len(tracks_of[p]) for p in seen), 3)
        if seen else 0.0,
        "id_switches": sum(1 for who in person_of_track.values() if len(who) > 1),
    }


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="camfleet-bench-tracking-") as tmp:
        folder = Path(tmp)
        for people in args.objects:
            rng = random.Random(args.seed + people)
            scene = paths(people, args.seconds, rng)
            shot = frames(scene, args.seconds, args.miss, rng)
            run_baseline(shot, folder)  # warm-up: imports, first allocations
            run_tracking(shot, folder)
            base: list[float] = []
            track: list[float] = []
            lines, events = 0, list[dict[str, Any]]()
            for attempt in range(args.runs):
                progress(f"{people} people: run {attempt + 1}/{args.runs}")
                spent, lines = run_baseline(shot, folder)
                base.append(spent)
                spent, events = run_tracking(shot, folder)
                track.append(spent)
            base_ms, track_ms = statistics.median(base) * 1e3, statistics.median(track) * 1e3
            rows.append({
                "people": people, "frames": len(shot),
                "baseline_ms_per_frame": round(base_ms, 4),
                "tracking_ms_per_frame": round(track_ms, 4),
                "cost_ratio": round(track_ms / base_ms, 2) if base_ms else None,
                "frame_lines": lines, "object_events": len(events),
                "lines_ratio": round(lines / len(events), 1) if events else None,
                **quality(events, shot, people),
            })
    results = {"seconds": args.seconds, "fps": FPS, "miss": args.miss, "runs": args.runs,
               "seed": args.seed, "rows": rows}
    print(report(results))
    if args.plot and plot(results, Path(args.plot)):
        print(f"\nplot: {args.plot}")
    return results


def report(results: dict[str, Any]) -> str:
    head = (f"{results['seconds']:g} s at {results['fps']:g} fps, misses {results['miss']:.0%}, "
            f"median of {results['runs']} runs (CPU time)\n\n"
            f"{'people':>6} {'frame lines ms':>14} {'tracking ms':>11} {'x':>5} "
            f"{'lines':>6} {'events':>6} {'fewer':>6} {'found':>6} {'tracks/p':>8} "
            f"{'switches':>8}")
    lines = [head, "-" * len(head.splitlines()[-1])]
    for r in results["rows"]:
        lines.append(
            f"{r['people']:>6} {r['baseline_ms_per_frame']:>14.3f} "
            f"{r['tracking_ms_per_frame']:>11.3f} {r['cost_ratio']:>5} {r['frame_lines']:>6} "
            f"{r['object_events']:>6} {r['lines_ratio']:>5}x {r['found']:>3}/{r['people']:<2} "
            f"{r['tracks_per_person']:>8} {r['id_switches']:>8}")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    plt = plotting.pyplot()
    if plt is None:
        return False
    rows = results["rows"]
    labels = [str(r["people"]) for r in rows]
    fig, (cost, volume) = plt.subplots(1, 2, figsize=(11, 4))
    x = range(len(rows))
    cost.bar([i - 0.2 for i in x], [r["baseline_ms_per_frame"] for r in rows], 0.4,
             label="frame lines (baseline)")
    cost.bar([i + 0.2 for i in x], [r["tracking_ms_per_frame"] for r in rows], 0.4,
             label="tracking + object events")
    cost.set(xticks=list(x), xticklabels=labels, xlabel="people in the scene",
             ylabel="CPU ms per analysed frame", title="Cost per frame")
    cost.legend()
    volume.bar([i - 0.2 for i in x], [r["frame_lines"] for r in rows], 0.4, label="frame lines")
    volume.bar([i + 0.2 for i in x], [r["object_events"] for r in rows], 0.4,
               label="object events")
    volume.set(xticks=list(x), xticklabels=labels, xlabel="people in the scene",
               ylabel=f"lines in {results['seconds']:g} s", yscale="log",
               title="What the operator reads")
    volume.legend()
    plotting.save(fig, path, "camfleet bench tracking (ground truth scene, one core)")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 8, 32],
                        help="people in the scene, one scene each")
    parser.add_argument("--seconds", type=float, default=60.0, help="scene length")
    parser.add_argument("--miss", type=float, default=0.1, help="chance a box is missed")
    parser.add_argument("--runs", type=int, default=5, help="timed runs; times are medians")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="bench-tracking.png", help="PNG plot path ('' for none)")
