"""``camfleet report``: loading a recorded run folder, rendering its panels, the text summary.

The fixture is a real run of the 4-camera demo (``tests/unit/fixtures/runs/demo-4cams``:
stats.jsonl, decisions.jsonl and summary.json exactly as ``camfleet run`` wrote them). It ran
before tracking, so the object events are synthetic (:func:`object_events`: a tracker's lifecycle
per track, seeded, written between frame lines into a copy of the demo). No Ray.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fleet.control.stats import FleetStats
from fleet.errors import FleetError
from fleet.frames import CameraStats
from fleet.report import (
    MAX_CAMERA_LINES,
    MAX_LANE_ROWS,
    MAX_OBJECT_LANES,
    Decision,
    ReportError,
    Track,
    add_parser,
    load_objects,
    load_run,
    main,
    objects_text,
    pack_rows,
    render,
    render_objects,
    summary_text,
    timeline_layout,
    windowed_rate,
    worst_camera,
)

DEMO = Path(__file__).parent / "fixtures" / "runs" / "demo-4cams"
DEMO_CAMERAS = ["megamind", "town-square", "lobby-1080p", "yard-720p"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def copy_demo(tmp_path: Path, without: tuple[str, ...] = ()) -> Path:
    run_dir = tmp_path / "demo-20261126-170552"
    shutil.copytree(DEMO, run_dir, ignore=shutil.ignore_patterns(*without))
    return run_dir


def stats_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def write_lines(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 50_000  # five panels of lines, not a blank canvas
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (1500, 1300, 3)
    assert image.std() > 10  # something drawn


# --- loading ----------------------------------------------------------------------------------


def test_the_demo_run_loads_as_aligned_time_series():
    run = load_run(DEMO)
    snapshots = [r for r in stats_lines(DEMO) if "final" not in r]
    assert run.name == "demo-4cams"
    assert list(run.cameras) == DEMO_CAMERAS
    assert list(run.detectors) == ["face", "person"]
    assert len(run.t_s) == len(snapshots) == 39
    assert run.t_s[0] == 0 and np.all(np.diff(run.t_s) > 0)
    assert run.start_time == snapshots[0]["time"]
    assert 38 < run.duration_s < 40
    for camera in run.cameras.values():
        for series in (camera.input_fps, camera.analysed_fps, camera.hit_rate, camera.p95_ms,
                       *camera.dropped.values()):
            assert series.shape == run.t_s.shape
        assert np.nanmin(camera.input_fps) >= 0 and np.nanmin(camera.analysed_fps) >= 0
        assert np.all(np.diff(camera.captured) >= 0)  # cumulative
    assert run.decisions == []  # decisions.jsonl is empty: nothing scaled in the demo
    assert all(np.all(d.running == 1) and np.all(d.target == 1) for d in run.detectors.values())


def test_windowed_fps_match_the_cameras_sources():
    run = load_run(DEMO)
    captured, processed = run.fps("captured"), run.fps("processed")
    assert np.isnan(captured["megamind"][0])  # no rate before the second snapshot
    # The demo's sources: megamind 24 fps, town-square 10, lobby 30, yard 25; fps limit 4.
    for camera, source_fps in (("megamind", 24), ("town-square", 10), ("lobby-1080p", 30)):
        assert np.nanmedian(captured[camera]) == pytest.approx(source_fps, rel=0.1)
        assert np.nanmedian(processed[camera]) == pytest.approx(4, rel=0.15)
        assert np.nanmin(captured[camera]) >= 0


def test_drop_rates_integrate_back_to_the_cumulative_counters():
    run = load_run(DEMO)
    rates = run.drop_rates()
    assert set(rates) == {"fps", "no_motion"}
    dt = np.diff(run.t_s)
    for reason, rate in rates.items():
        assert np.isnan(rate[0]) and np.nanmin(rate) >= 0
        first = sum(c.dropped[reason][0] for c in run.cameras.values() if reason in c.dropped)
        last = sum(c.dropped[reason][-1] for c in run.cameras.values() if reason in c.dropped)
        assert np.sum(rate[1:] * dt) == pytest.approx(last - first)
    assert np.nanmax(rates["no_motion"]) < 2 < np.nanmedian(rates["fps"])


def test_final_accounting_is_summary_json_and_balances():
    run = load_run(DEMO)
    summary = json.loads((DEMO / "summary.json").read_text())
    final = stats_lines(DEMO)[-1]["final"]
    assert run.summary_source == "summary.json" and run.summary == summary
    assert {cid: c["captured"] for cid, c in final.items()} == \
        {cid: c["captured"] for cid, c in summary.items()}
    for c in summary.values():
        assert c["captured"] == c["processed"] + sum(c["dropped"].values()) + c["failed"] + \
            c["in_flight"]
    totals = run.totals()
    assert totals["captured"] == sum(c["captured"] for c in summary.values()) == 3583
    assert totals["captured"] == totals["processed"] + totals["dropped"] + totals["failed"] + \
        totals["in_flight"]


def test_without_summary_json_the_final_stats_line_gives_the_counters(tmp_path):
    run = load_run(copy_demo(tmp_path, without=("summary.json",)))
    assert run.summary_source == "the final line of stats.jsonl"
    assert run.totals() == load_run(DEMO).totals()


def test_a_run_killed_before_its_final_line_falls_back_to_the_last_snapshot(tmp_path):
    run_dir = copy_demo(tmp_path, without=("summary.json", "decisions.jsonl"))
    write_lines(run_dir / "stats.jsonl", stats_lines(run_dir)[:-1])
    run = load_run(run_dir)
    assert run.summary_source.startswith("the last stats snapshot")
    assert run.decisions == []  # no decisions.jsonl in older runs: none, not an error
    assert 0 < run.totals()["captured"] <= 3583


def test_decisions_are_read_relative_to_the_first_snapshot(tmp_path):
    run_dir = copy_demo(tmp_path)
    start = stats_lines(run_dir)[0]["time"]
    write_lines(run_dir / "decisions.jsonl", [
        {"time": start + 12.5, "target": "detector:face", "action": "scale_up", "reason": "demand",
         "before": 1, "after": 2, "inputs": {"demand": 1.07, "utilisation": 0.95}},
        {"time": start + 30, "target": "camera:yard-720p", "action": "scale_down",
         "reason": "latency_slo", "before": 3, "after": 2, "inputs": {}},
    ])
    run = load_run(run_dir)
    assert run.decisions == [
        Decision(pytest.approx(12.5), "detector:face", "scale_up", "demand", 1, 2),
        Decision(pytest.approx(30.0), "camera:yard-720p", "scale_down", "latency_slo", 3, 2),
    ]
    assert_png(render(run, tmp_path / "with-decisions.png"))
    assert "scaling decisions: 2 (1 scale_down, 1 scale_up)" in summary_text(run)


def test_windowed_rate_cancels_the_aliasing_of_one_second_snapshots():
    t = np.arange(9, dtype=float)
    counts = np.cumsum([0, 4, 6, 4, 6, 4, 6, 4, 6], dtype=float)  # a 5 fps camera
    rate = windowed_rate(t, counts, 4)
    assert np.isnan(rate[0])
    assert rate[4:] == pytest.approx([5.0] * 5)
    assert windowed_rate(t, counts, 0)[1:3] == pytest.approx([4, 6])  # per interval


def test_windowed_rate_keeps_its_window_when_the_snapshots_run_late():
    t = np.cumsum([0] + [1.013] * 12)  # the stats loop of a real run drifts ~13 ms a second
    counts = np.cumsum([0] + [4, 6] * 6, dtype=float)
    assert windowed_rate(t, counts, 4)[4:] == pytest.approx([10 / 1.013 / 2] * 9)


def test_the_report_computes_rates_as_the_live_stats_do():
    """The per-interval rates the report draws are the ones the live table showed."""
    live, times, captured, input_fps = FleetStats(window_s=10), [], [], []
    total = 0
    for i in range(12):
        t, total = 100 + i * 1.013 + (0.05 if i == 5 else 0), total + (4, 6, 7)[i % 3]
        view = live.update_camera(replace(camera_stats(), captured=total, time=t))
        times.append(t)
        captured.append(total)
        input_fps.append(view.input_fps)
    replayed = windowed_rate(np.array(times) - times[0], np.array(captured, dtype=float), 0)
    assert replayed[1:] == pytest.approx(input_fps[1:], rel=1e-9)


def camera_stats() -> CameraStats:
    return CameraStats(
        camera="cam", state="up", captured=0, processed=0, failed=0, in_flight=0, slots_used=0,
        dropped={}, offered=0, admitted=0, buffers=4, peak_slots_used=1, reconnects=0,
        frames_with_detections=0, detections={}, latency_s=(), time=0.0,
    )


def test_importing_the_report_loads_neither_ray_nor_matplotlib():
    code = ("import sys, fleet.report; heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'ray', 'matplotlib'}); print(heavy); sys.exit(bool(heavy))")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- rendering --------------------------------------------------------------------------------


def test_the_demo_renders_to_a_real_png(tmp_path):
    out = render(load_run(DEMO), tmp_path / "sub" / "report.png")
    assert out == tmp_path / "sub" / "report.png"
    assert_png(out)


def many_cameras(tmp_path: Path, copies: int) -> Path:
    """The demo's four cameras repeated ``copies`` times; one of them with a sagging hit-rate."""
    run_dir = copy_demo(tmp_path, without=("summary.json",))
    records = stats_lines(run_dir)
    for record in records:
        if "final" in record:
            record["final"] = {f"{cid}-{i}": dict(c, camera=f"{cid}-{i}")
                               for i in range(copies) for cid, c in record["final"].items()}
            continue
        record["cameras"] = [dict(row, camera=f"{row['camera']}-{i}")
                             for i in range(copies) for row in record["cameras"]]
        record["cameras"][5]["hit_rate"] = 0.8
    write_lines(run_dir / "stats.jsonl", records)
    return run_dir


def test_a_twenty_camera_fleet_renders_the_fleet_plus_the_worst_camera(tmp_path):
    run = load_run(many_cameras(tmp_path, copies=5))
    assert len(run.cameras) == 20 > MAX_CAMERA_LINES
    assert run.totals()["captured"] == 5 * 3583
    assert worst_camera(run) == "town-square-1"  # the one whose hit-rate sagged to 0.8
    out = render(run, tmp_path / "fleet.png")
    assert_png(out)


# --- the command ------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="camfleet")
    add_parser(parser.add_subparsers(dest="command", required=True), main)
    return parser.parse_args(argv)


def test_report_writes_run_report_png_and_prints_the_accounting(tmp_path, capsys):
    run_dir = copy_demo(tmp_path)
    args = parse(["report", str(run_dir)])
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(run_dir / "report.png")
    assert_png(run_dir / "report.png")
    assert out[1].startswith("demo-20261126-170552: 39 s, 4 camera(s); fleet captured 3583 = ")
    yard = next(line for line in out if line.strip().startswith("yard-720p"))
    assert yard.split() == ["yard-720p", "1003", "=", "79", "+", "924", "+", "0", "+", "0", "ok",
                            "fps=922", "no_motion=2"]
    assert out[-2] == "detections: face=223 person=198; scaling decisions: 0"
    assert out[-1] == "objects: events.jsonl is missing; no objects timeline"
    assert not (run_dir / "objects.png").exists()


def test_report_output_and_target_options(tmp_path):
    args = parse(["report", str(DEMO), "-o", str(tmp_path / "x.png"), "--target-hit-rate", "0.9"])
    assert args.target_hit_rate == 0.9
    assert main(args) == 0
    assert_png(tmp_path / "x.png")
    assert not (DEMO / "report.png").exists()


# --- bad folders ------------------------------------------------------------------------------


def _no_folder(run_dir: Path) -> None:
    shutil.rmtree(run_dir)


def _no_stats(run_dir: Path) -> None:
    (run_dir / "stats.jsonl").unlink()


def _empty_stats(run_dir: Path) -> None:
    (run_dir / "stats.jsonl").write_text("")


def _only_final_line(run_dir: Path) -> None:
    write_lines(run_dir / "stats.jsonl", stats_lines(run_dir)[-1:])


def _cut_off_line(run_dir: Path) -> None:
    lines = (run_dir / "stats.jsonl").read_text().splitlines(keepends=True)
    lines[2] = lines[2][:200] + "\n"
    (run_dir / "stats.jsonl").write_text("".join(lines))


def _not_an_object(run_dir: Path) -> None:
    with (run_dir / "stats.jsonl").open("a") as f:
        f.write("[1, 2]\n")


def _no_cameras_key(run_dir: Path) -> None:
    records = stats_lines(run_dir)
    del records[3]["cameras"]
    write_lines(run_dir / "stats.jsonl", records)


def _text_for_a_number(run_dir: Path) -> None:
    records = stats_lines(run_dir)
    records[1]["cameras"][0]["p95_ms"] = "slow"
    write_lines(run_dir / "stats.jsonl", records)


def _corrupt_decision(run_dir: Path) -> None:
    (run_dir / "decisions.jsonl").write_text('\n{"time": 1, "target": "detector:face"\n')


def _incomplete_decision(run_dir: Path) -> None:
    write_lines(run_dir / "decisions.jsonl", [{"time": 1, "target": "detector:face"}])


def _corrupt_summary(run_dir: Path) -> None:
    (run_dir / "summary.json").write_text('{\n  "megamind": {,\n}\n')


def _corrupt_object_event(run_dir: Path) -> None:
    line = json.dumps(object_events(0.0)[0])
    (run_dir / "events.jsonl").write_text(f'{FRAME_LINE}\n{line[:60]}\n{line}\n')


def _object_event_without_track(run_dir: Path) -> None:
    event = object_events(0.0)[0]
    del event["track"]
    write_lines(run_dir / "events.jsonl", [event])


def _text_for_a_time(run_dir: Path) -> None:
    events = object_events(0.0)
    events[2]["last_seen"] = "soon"
    write_lines(run_dir / "events.jsonl", events)


BAD_FOLDERS = [
    (_no_folder, "", "no such run folder"),
    (_no_stats, "stats.jsonl", "missing; is .* a run folder"),
    (_empty_stats, "stats.jsonl", "no stats snapshots; the run stopped before"),
    (_only_final_line, "stats.jsonl", "no stats snapshots"),
    (_cut_off_line, "stats.jsonl:3", "not valid JSON .*delete that line"),
    (_not_an_object, "stats.jsonl:41", "expected a JSON object, got list"),
    (_no_cameras_key, "stats.jsonl:4", "not a stats snapshot \\(missing key 'cameras'\\)"),
    (_text_for_a_number, "stats.jsonl:2", "camera 'megamind' p95_ms: expected a number"),
    (_corrupt_decision, "decisions.jsonl:2", "not valid JSON"),
    (_incomplete_decision, "decisions.jsonl:1", "not a scaling decision"),
    (_corrupt_summary, "summary.json:2", "not valid JSON .*fall back to the final counters"),
    (_corrupt_object_event, "events.jsonl:2", "not valid JSON .*delete that line"),
    (_object_event_without_track, "events.jsonl:1",
     "not an object event \\(missing key 'track'\\); expected .*\"first_seen\""),
    (_text_for_a_time, "events.jsonl:3", "object event last_seen: expected a number"),
]


@pytest.mark.parametrize(("damage", "where", "message"), BAD_FOLDERS,
                         ids=[d.__name__.strip("_") for d, _, _ in BAD_FOLDERS])
def test_a_bad_run_folder_names_the_file_and_line(tmp_path, damage, where, message):
    run_dir = copy_demo(tmp_path)
    damage(run_dir)
    pattern = f"^{re.escape(str(run_dir))}/?{re.escape(where)}: {message}"
    with pytest.raises(ReportError, match=pattern) as caught:
        load_run(run_dir)
    assert isinstance(caught.value, FleetError)  # the CLI turns it into exit 1 and the message


def test_a_camera_that_joins_late_and_a_one_snapshot_run_still_render(tmp_path):
    run_dir = copy_demo(tmp_path)
    records = stats_lines(run_dir)
    for record in records[:10]:
        record["cameras"] = [r for r in record["cameras"] if r["camera"] != "yard-720p"]
    write_lines(run_dir / "stats.jsonl", records)
    yard = load_run(run_dir).cameras["yard-720p"]
    assert np.isnan(yard.hit_rate[:10]).all() and np.isfinite(yard.hit_rate[10:]).all()
    assert np.isnan(yard.dropped["fps"][:10]).all()
    assert_png(render(load_run(run_dir), tmp_path / "late.png"))

    write_lines(run_dir / "stats.jsonl", records[-3:-2])
    single = load_run(run_dir)
    assert single.duration_s == 0 and list(single.cameras) == DEMO_CAMERAS
    render(single, tmp_path / "one.png")
    assert cv2.imread(str(tmp_path / "one.png")).shape == (1500, 1300, 3)


# --- object events and the objects timeline --------------------------------------------------

DEMO_LABELS = {"megamind": ("face",), "town-square": ("person",),
               "lobby-1080p": ("face", "person"), "yard-720p": ("person", "car")}
FRAME_LINE = json.dumps({"type": "frame", "camera": "megamind", "frame": 3, "labels": ["face"]})


def object_events(start: float, labels: dict[str, tuple[str, ...]] | None = None,
                  seed: int = 7, duration_s: float = 38.0) -> list[dict[str, Any]]:
    """What a tracker writes for each camera's tracks: start, an update a second, some zone
    enter / loiter / leave, and end a second after the last sighting; in time order."""
    rng, records = random.Random(seed), []
    for camera, kinds in (labels or DEMO_LABELS).items():
        for n in range(rng.randint(4, 10)):
            label = rng.choice(kinds)
            first = round(start + rng.uniform(-0.5, duration_s - 3), 3)
            last = round(min(first + rng.expovariate(1 / 4), start + duration_s - 1), 3)
            track = {"camera": camera, "track": f"{camera}-t{n}", "label": label,
                     "first_seen": first}
            records += track_events(track, last, start, rng)
    return sorted(records, key=lambda r: r["time"])


def track_events(track: dict[str, Any], last: float, start: float,
                 rng: random.Random) -> list[dict[str, Any]]:
    """One track's events, from its first sighting (in ``track``) to ``last``."""
    first = track["first_seen"]

    def event(kind: str, time: float, zone: str | None = None) -> dict[str, Any]:
        seen = round(min(time, last), 3)
        return {"type": "object", "event": kind, "fleet": "demo", **track, "detector": "face",
                "time": round(time, 3), "frame": int((time - start) * 4), "last_seen": seen,
                "duration_s": round(seen - first, 3), "score": 0.8, "best_score": 0.9,
                "box": [10, 20, 30, 40], "zones": [zone] if zone else [], "zone": zone,
                "snapshot": None, "frames": 1 + int((seen - first) * 4)}

    found = [event("start", first)]
    found += [event("update", t) for t in np.arange(first + 1, last, 1.0)]
    if last - first > 2 and rng.random() < 0.6:
        zone = rng.choice(["door", "desk", "gate"])
        found += [event("enter", first + 0.5, zone), event("leave", last - 0.25, zone)]
        if last - first > 6:
            found.append(event("loiter", first + 5.5, zone))
    return [*found, event("end", last + 1.0)]


def with_objects(tmp_path: Path, events: list[dict[str, Any]] | None = None,
                 killed_at_s: float | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """A copy of the demo with object events between frame lines (old ones without a type);
    ``killed_at_s``: every event after that many seconds lost, as when a run is SIGKILLed."""
    run_dir = copy_demo(tmp_path)
    start = stats_lines(run_dir)[0]["time"]
    events = object_events(start) if events is None else events
    if killed_at_s is not None:
        events = [e for e in events if e["time"] < start + killed_at_s]
    legacy = {"camera": "yard-720p", "frame": 9, "capture_time": start, "detector": "person",
              "boxes": [[1, 2, 3, 4]], "labels": ["person"], "scores": [0.7]}
    frames = [json.loads(FRAME_LINE), legacy]
    write_lines(run_dir / "events.jsonl",
                [line for i, e in enumerate(events) for line in (e, frames[i % 2])])
    return run_dir, events


def tracks_of(events: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in events:
        found.setdefault((e["camera"], e["track"]), []).append(e)
    return found


def assert_objects_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] == 1300 and 400 <= image.shape[0] <= 1800
    assert image.std() > 10


def summary_rows(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    assert lines[1].split()[:5] == ["camera", "tracks", "no", "end", "mean"]
    return {line.split()[0]: line.split() for line in lines[2:] if "=" in line.split()[-1]}


def test_track_lines_are_passed_over(tmp_path):
    # given a run's object events, and then the same with a track line after every line (one
    # labelled "object", which a quick look for '"object"' does not tell from an object event)
    run_dir, _ = with_objects(tmp_path)
    plain = load_run(run_dir).objects
    track = {"type": "track", "camera": "yard-720p", "frame": 9, "time": 1.0,
             "track": "yard-720p-x-1", "label": "object", "box": [1, 2, 3, 4], "score": 0.9,
             "started": True}
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    (run_dir / "events.jsonl").write_text(
        "".join(f"{line}\n{json.dumps(track)}\n" for line in lines))
    with_tracks = load_run(run_dir).objects
    # then the report reads the same objects
    assert plain is not None and with_tracks is not None
    assert with_tracks.tracks == plain.tracks and with_tracks.events == plain.events


def test_object_events_load_as_tracks_on_the_report_time_axis(tmp_path):
    run_dir, events = with_objects(tmp_path)
    run = load_run(run_dir)
    objects = run.objects
    assert objects is not None and objects.origin == "the first stats snapshot"
    assert objects.start_time == run.start_time
    recorded = tracks_of(events)
    assert len(objects.tracks) == len(recorded) == sum(e["event"] == "start" for e in events)
    for track in objects.tracks:
        mine = recorded[(track.camera, track.track)]
        assert track.first_s == pytest.approx(mine[0]["first_seen"] - run.start_time)
        assert track.last_s == pytest.approx(mine[-1]["last_seen"] - run.start_time)
        assert track.duration_s == mine[-1]["duration_s"] and track.label == mine[0]["label"]
        assert track.started and track.ended and track.frames == mine[-1]["frames"]
    assert [t.first_s for t in objects.tracks] == sorted(t.first_s for t in objects.tracks)
    zone_events = [e for e in events if e["zone"]]
    assert len(objects.marks) == len(zone_events) > 0
    assert {(m.event, m.zone) for m in objects.marks} == {(e["event"], e["zone"])
                                                          for e in zone_events}


def test_the_objects_summary_counts_match_the_events(tmp_path):
    run_dir, events = with_objects(tmp_path)
    text = objects_text(load_run(run_dir))
    assert text.splitlines()[0] == (
        f"objects: {len(tracks_of(events))} track(s) and {len(events)} object event(s) on 4 "
        "camera(s); times in seconds since the first stats snapshot")
    rows = summary_rows(text)
    assert sorted(rows) == sorted(DEMO_LABELS)
    for camera, row in rows.items():
        mine = [e for e in events if e["camera"] == camera]
        ends = [e for e in mine if e["event"] == "end"]
        labels = Counter(e["label"] for e in ends)
        durations = [e["duration_s"] for e in ends]
        assert row[1:5] == [str(len(ends)), "0", f"{np.mean(durations):.1f}",
                            f"{max(durations):.1f}"]
        assert row[5:5 + len(labels)] == [f"{k}={v}" for k, v in sorted(labels.items())]
        counts = Counter(e["event"] for e in mine)
        order = ["start", "update", "end", "enter", "leave", "loiter"]
        assert row[5 + len(labels):] == [f"{k}={counts[k]}" for k in order if counts[k]]
    busiest = [int(row[1]) for row in rows.values()]
    assert busiest == sorted(busiest, reverse=True)  # cameras with the most tracks first


def test_the_objects_timeline_is_a_real_png(tmp_path):
    run_dir, _ = with_objects(tmp_path)
    out = render_objects(load_run(run_dir), tmp_path / "sub" / "objects.png")
    assert out == tmp_path / "sub" / "objects.png"
    assert_objects_png(out)


def test_report_writes_objects_png_beside_the_report_and_prints_its_summary(tmp_path, capsys):
    run_dir, events = with_objects(tmp_path)
    args = parse(["report", str(run_dir)])
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(run_dir / "report.png")
    assert_png(run_dir / "report.png")
    objects_at = out.index(str(run_dir / "objects.png"))
    assert out[objects_at - 1].startswith("detections: ")  # after the run's own summary
    assert out[objects_at + 1].startswith(f"objects: {len(tracks_of(events))} track(s)")
    assert_objects_png(run_dir / "objects.png")
    assert main(parse(["report", str(run_dir), "-o", str(tmp_path / "x.png")])) == 0
    assert_objects_png(tmp_path / "x-objects.png")


def test_a_killed_run_flags_the_tracks_without_an_end(tmp_path):
    run_dir, events = with_objects(tmp_path, killed_at_s=20)
    run = load_run(run_dir)
    assert run.objects is not None
    open_ = [key for key, mine in tracks_of(events).items()
             if mine[-1]["event"] != "end"]
    assert open_ and [(t.camera, t.track) for t in run.objects.open_tracks()] == open_
    for track in run.objects.open_tracks():
        last = tracks_of(events)[(track.camera, track.track)][-1]
        assert not track.ended and track.last_s == pytest.approx(last["last_seen"] -
                                                                 run.start_time)
    text = objects_text(run)
    assert f"  {len(open_)} track(s) without an end event (the run was killed?)" in text
    assert f"{open_[0][0]}/{open_[0][1]} (last seen " in text
    no_end = {camera: int(row[2]) for camera, row in summary_rows(text).items()}
    assert no_end == {c: sum(k[0] == c for k in open_) for c in no_end}
    assert_objects_png(render_objects(run, tmp_path / "killed.png"))


def test_a_run_without_object_events_draws_no_timeline_and_says_so(tmp_path, capsys):
    run_dir = copy_demo(tmp_path)
    (run_dir / "events.jsonl").write_text(f"{FRAME_LINE}\n" * 3)
    run = load_run(run_dir)
    assert run.objects is None
    assert main(parse(["report", str(run_dir)])) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "objects: events.jsonl has no object events (a run from before tracking, or with "
        "tracking off); no objects timeline")
    assert not (run_dir / "objects.png").exists()
    with pytest.raises(ReportError, match="no object events to draw"):
        render_objects(run, tmp_path / "none.png")


def test_many_cameras_draw_the_busiest_lanes_and_count_the_rest(tmp_path):
    cameras = {f"cam-{i:02d}": ("person", "car", "face") for i in range(30)}
    run_dir, events = with_objects(tmp_path, object_events(stats_lines(DEMO)[0]["time"], cameras))
    run = load_run(run_dir)
    assert run.objects is not None
    layout = timeline_layout(run)
    drawn = [camera for camera, _, _ in layout.lanes]
    per_camera = Counter(camera for camera, _ in tracks_of(events))
    assert len(drawn) == MAX_OBJECT_LANES < len(cameras)
    assert min(per_camera[c] for c in drawn) >= max(per_camera[c] for c in cameras
                                                    if c not in drawn)
    assert layout.left_out == (len(cameras) - MAX_OBJECT_LANES,
                               sum(n for c, n in per_camera.items() if c not in drawn))
    assert len(summary_rows(objects_text(run))) == len(cameras)  # the text lists every camera
    assert_objects_png(render_objects(run, tmp_path / "many.png"))


def test_concurrent_tracks_stack_in_rows_and_overlap_past_the_cap():
    def track(first: float, last: float) -> Track:
        return Track("cam", f"t{first}", "person", first, last, last - first, 0.9, 1, True, True)

    rows, overlaps = pack_rows([track(0, 5), track(1, 2), track(3, 4), track(6, 7)], 3)
    assert (rows, overlaps) == ([0, 1, 1, 0], 0)  # a row is reused once its track is gone
    crowd = [track(i / 10, 10) for i in range(MAX_LANE_ROWS + 3)]
    rows, overlaps = pack_rows(crowd, MAX_LANE_ROWS)
    assert max(rows) == MAX_LANE_ROWS - 1 and overlaps == 3


def test_the_last_events_line_cut_off_mid_write_is_skipped_and_noted(tmp_path):
    run_dir, events = with_objects(tmp_path)
    with (run_dir / "events.jsonl").open("a") as f:
        f.write(json.dumps(events[-1])[:70])  # a SIGKILL in the middle of the last write
    run = load_run(run_dir)
    assert run.objects is not None and len(run.objects.tracks) == len(tracks_of(events))
    lines = len((run_dir / "events.jsonl").read_text().splitlines())
    assert f"  events.jsonl:{lines} was cut off mid-write (the run was killed) and is skipped" \
        in objects_text(run)


def test_without_a_start_time_the_objects_count_from_the_first_event(tmp_path):
    run_dir, events = with_objects(tmp_path)
    objects = load_objects(run_dir)
    assert objects is not None and objects.origin == "the first object event"
    assert objects.start_time == min(min(e["time"], e["first_seen"]) for e in events)
    assert objects.tracks[0].first_s == 0
