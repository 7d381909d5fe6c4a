"""Object tracking through real camera and detector actors on Ray, on ground truth: the synthetic
scene draws people on known paths, the blobs detector finds exactly them, and results come back
out of order from two detector actors with several buffers in flight."""

from __future__ import annotations

import json
import os
import signal
from collections import defaultdict
from pathlib import Path

import pytest

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from fleet.config import parse_fleet
from fleet.control.controller import FleetController
from tests.conftest import VTEST
from tests.helpers import check_run_folder, wait_until
from tests.integration.test_faults import Running, pid_of

pytestmark = pytest.mark.timeout(240)

# Two people crossing a 640x480 scene at 10 fps on paths that never cross; one stands in the
# "door" zone (the left quarter) for 3 s. The scene is 100 frames (10 s) and then ends.
FLEET = """
name: objects
defaults: {{fps: 10, buffers: 4, detect_width: null}}
cameras:
  - id: yard
    source:
      type: synthetic
      width: 640
      height: 480
      fps: 10
      frames: {frames}
      objects: 0
      paths:
        - {{start: [0.1, 0.3], end: [0.9, 0.3], start_s: 0.5, end_s: 6}}
        - {{start: [0.12, 0.75], end: [0.13, 0.75], start_s: 2, end_s: 7}}
    detect: [people]
    tracking: {{max_disappeared_s: 1}}
    zones:
      - {{name: door, polygon: [[0, 0], [0.25, 0], [0.25, 1], [0, 1]], loitering_s: 3}}
detectors:
  people: {{type: blobs, label: person, actors: 2, num_cpus: 0.25}}
"""


def run_fleet(tmp_path: Path, frames: int = 100) -> dict:
    config = parse_fleet(FLEET.format(frames=frames), env={})
    controller = FleetController(config, str(tmp_path), RayActors(CameraActor, DetectorActor))
    controller.start()
    try:
        wait_until(lambda: (controller.collect(), controller.ended())[1], 90,
                   "the synthetic scene to end", interval_s=0.5)
    finally:
        final = controller.stop()
    return {cid: stats for cid, stats in final.items()}


def objects(run_dir: Path) -> dict[str, list[dict]]:
    tracks: dict[str, list[dict]] = defaultdict(list)
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "object":
            tracks[event["track"]].append(event)
    return tracks


def test_each_person_is_one_object_with_its_zone_events_and_a_snapshot(ray_ready, tmp_path):
    final = run_fleet(tmp_path)
    summary = check_run_folder(tmp_path)  # accounting, and one start and one end per track
    tracks = objects(tmp_path)
    # then two people, two objects: no id switch, no split track
    assert len(tracks) == 2, {t: [e["event"] for e in es] for t, es in tracks.items()}
    walker, stander = sorted(tracks.values(), key=lambda es: es[0]["box"][1])
    assert {e["box"][1] < 240 for e in walker} == {True}
    assert {e["box"][1] > 240 for e in stander} == {True}
    # the walker passes through the door zone: enter then leave; the stander enters and loiters
    assert [e["event"] for e in walker if e["zone"]] == ["enter", "leave"]
    stand_zone = [e["event"] for e in stander if e["zone"]]
    assert stand_zone[:2] == ["enter", "loiter"]
    loiter = next(e for e in stander if e["event"] == "loiter")
    enter = next(e for e in stander if e["event"] == "enter")
    assert 3.0 <= loiter["time"] - enter["time"] <= 3.5
    # and every object has a best snapshot, a real JPEG in the run folder
    for events in tracks.values():
        end = events[-1]
        assert end["event"] == "end" and end["snapshot"]
        assert (tmp_path / end["snapshot"]).read_bytes()[:2] == b"\xff\xd8"
    # and the counters say the same as the file
    stats = final["yard"]
    assert stats.object_events["start"] == stats.object_events["end"] == 2
    assert summary["yard"]["object_events"]["loiter"] == 1
    assert stats.frames_late == 0
    assert stats.tracks_active == {"person": 0}


# vtest.avi (768x576, 795 frames; PETS 2009 S2.L1, 19 people walk through) read as fast as the
# fleet goes, 4 of its 10 fps analysed, people by NanoDet (the default person detector).
FOOTAGE = """
name: footage
metrics: {{enabled: false}}
autoscaling: {{enabled: false}}
cameras:
  - id: square
    source: {{type: file, path: {clip}, loop: false, realtime: false}}
    fps: 4
    buffers: 4
    detect: [person]
detectors:
  person: {{actors: 2, num_cpus: 0.5}}
sinks:
  jsonl: {{tracks: true}}
"""


def test_people_on_real_footage_become_objects_with_track_lines(ray_ready, footage, tmp_path):
    config = parse_fleet(FOOTAGE.format(clip=VTEST), env={})
    controller = FleetController(config, str(tmp_path), RayActors(CameraActor, DetectorActor))
    controller.start()
    try:
        wait_until(lambda: (controller.collect(), controller.ended())[1], 180,
                   "vtest.avi to end", interval_s=1.0)
    finally:
        stats = controller.stop()["square"]
    # then every frame is accounted for, and nothing came too late for the tracker
    assert stats.accounted and stats.captured == 795 and stats.frames_late == 0
    # and the track lines: one per tracked box per analysed frame, in capture order, inside the
    # frame, each track's lines under one id, started only once its object started
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    lines = [r for r in records if r["type"] == "track"]
    starts = {r["track"] for r in records if r["type"] == "object" and r["event"] == "start"}
    frames = [r["frame"] for r in lines]
    assert lines and frames == sorted(frames)
    assert all(r["label"] == "person" and r["camera"] == "square" for r in lines)
    assert all(0 <= x and 0 <= y and x + w <= 768 and y + h <= 576 and 20 <= h <= 200
               for x, y, w, h in (r["box"] for r in lines))
    assert {r["track"] for r in lines if r["started"]} == starts
    # and about one object per person who walks through (19), not a flood of fragments
    assert 12 <= len(starts) <= 40, len(starts)
    assert stats.object_events["start"] == stats.object_events["end"] == len(starts)


ENDLESS = """
name: objects-restart
metrics: {enabled: false}
stats_interval_s: 0.5
autoscaling: {enabled: false}
cameras:
  - id: yard
    source:
      type: synthetic
      width: 640
      height: 480
      fps: 10
      objects: 0
      paths: [{start: [0.2, 0.5], end: [0.8, 0.5], start_s: 0, end_s: 600}]
    fps: 10
    detect_width: null
    detect: [people]
detectors:
  people: {type: blobs, label: person, actors: 1, num_cpus: 0.25}
"""


@pytest.mark.slow
def test_a_camera_killed_mid_track_restarts_without_reusing_a_track_id(ray_ready, tmp_path):
    # given a camera tracking a person who never leaves
    fleet = Running(ENDLESS, tmp_path)
    try:
        wait_until(lambda: len(objects(tmp_path)) == 1, 60, "the first object's start event")
        first = set(objects(tmp_path))
        # when the camera actor is SIGKILLed (the OOM killer) and the controller restarts it
        os.kill(pid_of(fleet.controller.cameras["yard"]), signal.SIGKILL)
        wait_until(lambda: fleet.controller.restarts["yard"] == 1, 30, "the camera's restart")
        # then the same person is a new object with a new id, counted on from before
        wait_until(lambda: len(objects(tmp_path)) == 2, 60, "the restarted camera's object")
    finally:
        final = fleet.stop()
    tracks = objects(tmp_path)
    assert len(tracks) == 2 and first < set(tracks)
    (new,) = set(tracks) - first
    assert [e["event"] for e in tracks[new]][0] == "start" and tracks[new][-1]["event"] == "end"
    # and the object the dead actor had live was ended by its successor, saying why
    (old,) = first
    assert tracks[old][-1]["event"] == "end" and tracks[old][-1]["reason"] == "camera_lost"
    assert tracks[new][-1]["reason"] == "shutdown"
    assert final["yard"].object_events["start"] == final["yard"].object_events["end"] == 2
