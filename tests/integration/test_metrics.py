"""The controller's /metrics on a real fleet: every metric of the table is there, the counters
are the cameras' own totals, and no credential reaches a label or a value."""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from fleet.config import parse_fleet
from fleet.control.controller import FleetController

pytestmark = pytest.mark.timeout(180)

EXPECTED = {
    "camfleet_frames_captured", "camfleet_frames_processed", "camfleet_frames_failed",
    "camfleet_frames_dropped", "camfleet_frames_offered", "camfleet_frames_admitted",
    "camfleet_reconnects", "camfleet_detections", "camfleet_frames_in_flight",
    "camfleet_buffer_slots", "camfleet_buffer_slots_used", "camfleet_hit_rate",
    "camfleet_source_up", "camfleet_camera_state", "camfleet_latency_seconds",
    "camfleet_detector_actors", "camfleet_detector_actors_target", "camfleet_detector_utilisation",
    "camfleet_detector_queued_frames", "camfleet_detector_service_seconds",
    "camfleet_autoscaler_decisions", "camfleet_controller_loop_seconds", "camfleet_fleet_info",
    "camfleet_object_events", "camfleet_frames_late", "camfleet_handoffs",
    "camfleet_handoff_remote_bytes", "camfleet_puts",
}


def scrape(url: str) -> tuple[str, dict[str, list]]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    return text, families


def test_metrics_mirror_the_fleet_and_hold_no_secret(ray_ready, footage, tmp_path):
    # given a fleet with a working camera and one with a password in its URL
    config = parse_fleet("""
name: metrics-test
metrics: {port: 0}
defaults: {fps: 10, buffers: 2}
cameras:
  - {id: synth, source: {type: synthetic, width: 640, height: 360, fps: 20}}
  - id: gate
    source: {url: "rtsp://admin:${CAM_PASSWORD}@127.0.0.1:9/s?token=tok3n", open_timeout_s: 1}
detectors:
  face: {actors: 1, num_cpus: 0.5}
""", env={"CAM_PASSWORD": "hunter2"})
    controller = FleetController(config, str(tmp_path), RayActors(CameraActor, DetectorActor))
    controller.start()
    try:
        assert controller.metrics_url and controller.metrics_url.startswith("http://127.0.0.1:")
        for _ in range(8):
            time.sleep(0.5)
            controller.step()
        snapshot = controller.collect()
        text, families = scrape(controller.metrics_url)
    finally:
        controller.stop()
    # then every metric of the table is exported
    assert EXPECTED <= set(families), EXPECTED - set(families)
    # and the counters are the camera's own totals (the collect above ran just before the scrape)
    synth = snapshot.cameras["synth"].stats
    captured = {s.labels["camera"]: s.value for s in families["camfleet_frames_captured"]
                if s.name.endswith("_total")}
    assert captured["synth"] == synth.captured and captured["gate"] == 0
    latency = [s for s in families["camfleet_latency_seconds"]
               if s.name.endswith("_count") and s.labels["camera"] == "synth"]
    assert latency and latency[0].value > 0
    states = {(s.labels["camera"], s.labels["state"]): s.value
              for s in families["camfleet_camera_state"]}
    assert states[("gate", "down")] == 1 and states[("synth", "up")] == 1
    running = [s for s in families["camfleet_detector_actors"] if s.labels["state"] == "running"]
    assert running[0].value == 1
    # and no credential appears anywhere
    assert "hunter2" not in text and "tok3n" not in text and "rtsp://" not in text
