"""The fleet on real Ray with real footage: accounting, detections, bounded memory, isolation."""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from fleet.config import parse_fleet
from fleet.control.controller import FleetController
from tests.conftest import MEGAMIND, VTEST
from tests.integration.probes import ProbedDetectorActor, ProbeDetector

pytestmark = pytest.mark.timeout(240)


def start_fleet(yaml_text: str, run_dir: Path, detector_actor=DetectorActor) -> FleetController:
    controller = FleetController(parse_fleet(yaml_text, env={}), str(run_dir),
                                 RayActors(CameraActor, detector_actor))
    controller.start()
    return controller


def run_until(controller: FleetController, done, timeout_s: float) -> list:
    snapshots, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        snapshots.append(controller.collect())
        if done(snapshots[-1]):
            break
    return snapshots


def events_by_camera(run_dir: Path) -> Counter:
    """Frame lines per camera (the fleet sets sinks.jsonl.frames)."""
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return Counter(e["camera"] for e in map(json.loads, lines) if e["type"] == "frame")


def test_every_frame_is_accounted_for_and_real_clips_give_detections(ray_ready, footage, tmp_path):
    # given three finite cameras: faces, pedestrians, and a synthetic 1080p scene
    controller = start_fleet(f"""
defaults: {{buffers: 2, fps: 6}}
sinks: {{jsonl: {{frames: true}}}}
cameras:
  - {{id: faces, source: {{type: file, path: {MEGAMIND}, loop: false}}, detect: [face]}}
  - {{id: people, source: {{type: file, path: {VTEST}, loop: false, realtime: false}},
     detect: [person], fps: 2, drop_policy: drop_newest}}
  - {{id: synth, source: {{type: synthetic, width: 1920, height: 1080, fps: 30, frames: 60}},
     detect: [face], fps: 30}}
detectors:
  face: {{actors: 2, num_cpus: 0.5}}
  person: {{actors: 1, num_cpus: 0.5}}
""", tmp_path)
    # when every source runs to its end
    snapshots = run_until(controller, lambda s: controller.ended(), timeout_s=150)
    final = controller.stop()
    # then at every snapshot and at the end, captured = processed + dropped + failed + in flight
    for snapshot in snapshots:
        for view in snapshot.cameras.values():
            assert view.stats.accounted, view.stats
    assert set(final) == {"faces", "people", "synth"}
    for stats in final.values():
        assert stats.accounted, stats
        assert stats.in_flight == 0 and stats.state == "ended"
        assert stats.processed > 0
    assert final["faces"].captured == 270 and final["people"].captured == 795
    assert final["synth"].captured == 60
    # and the drops have reasons: the fps limit; no free slot when read faster than detected
    assert final["faces"].dropped["fps"] > 0 and final["people"].dropped["fps"] > 0
    assert final["people"].dropped["no_buffer"] > 0
    # and real clips give real detections
    assert final["faces"].detections.get("face", 0) > 20
    assert final["people"].detections.get("person", 0) > 0
    # and the JSONL has exactly one line per analysed frame with detections
    assert events_by_camera(tmp_path) == Counter(
        {cid: s.frames_with_detections for cid, s in final.items() if s.frames_with_detections}
    )


def test_in_flight_frames_never_exceed_buffers_with_a_slow_detector(
    ray_ready, tmp_path, plasma_objects
):
    # given a detector far slower than two 30 fps 1080p cameras with 2 buffers each
    slow = functools.partial(ProbeDetector, out_dir=str(tmp_path), delay_s=0.25)
    controller = start_fleet("""
defaults: {buffers: 2, fps: 30, detect_width: 320, drop_policy: drop_oldest}
cameras:
  - {id: cam-a, source: {type: synthetic, width: 1920, height: 1080, fps: 30}}
  - {id: cam-b, source: {type: synthetic, width: 1920, height: 1080, fps: 30},
     drop_policy: drop_newest}
detectors:
  face: {actors: 1, num_cpus: 0.5}
""", tmp_path, ProbedDetectorActor(DetectorActor, slow))
    # when it runs for a while, sampling the object store
    samples = []
    for _ in range(12):
        time.sleep(0.5)
        controller.collect()
        samples.append(plasma_objects())
    final = controller.stop()
    # then no camera ever had more than its buffers in flight
    for stats in final.values():
        assert stats.peak_slots_used <= 2, stats
        assert stats.dropped.get("no_buffer", 0) > 0
        assert stats.hit_rate < 0.5
        assert stats.accounted
    # and the store never held more than cameras x (buffers + 1 during hand-off) frames
    frame_mib = 1920 * 1080 * 3 / 2**20
    for objects, mib in samples:
        assert objects <= 2 * 3, samples
        assert mib <= 2 * 3 * frame_mib + 1, samples


def test_a_camera_that_cannot_open_does_not_stop_the_others(ray_ready, tmp_path):
    # given a camera on a closed port (with a password) beside a working one
    controller = start_fleet("""
defaults: {fps: 5, reconnect: {initial_backoff_s: 0.2, max_backoff_s: 1}}
cameras:
  - id: broken
    source: {url: "rtsp://admin:hunter2@127.0.0.1:9/none", open_timeout_s: 1}
  - {id: good, source: {type: synthetic, width: 640, height: 360, fps: 15}}
detectors:
  face: {actors: 1, num_cpus: 0.5}
""", tmp_path)
    # when the fleet runs
    snapshots = run_until(controller, lambda s: False, timeout_s=6)
    final = controller.stop()
    # then the good camera kept working and the broken one is down, retrying, with a safe error
    assert final["good"].processed > 10
    last = snapshots[-1].cameras["broken"].stats
    assert last.state == "down" and last.reconnects >= 2
    assert "127.0.0.1:9" in last.last_error and "hunter2" not in last.last_error
    assert all(s.accounted for s in final.values())
