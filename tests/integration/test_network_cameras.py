"""Network cameras on real servers (gst-rtsp-server, an HTTP MJPEG server) through the whole
fleet on real Ray: frames flow, a stalled camera goes down and comes back, the others go on."""

from __future__ import annotations

import pytest

from actors.camera import CameraActor
from actors.detector import DetectorActor
from fleet.config import parse_fleet
from fleet.controller import FleetController
from fleet.rayactors import RayActors
from tests.helpers import wait_until
from tests.servers import fixtures

pytestmark = pytest.mark.timeout(180)
mjpeg_server = fixtures.mjpeg_server
rtsp_server = fixtures.rtsp_server


def wait_for(controller: FleetController, camera: str, predicate, timeout_s: float):
    """The camera's stats once ``predicate`` holds for them; fails with the last ones seen."""
    seen = []

    def reached():
        seen.append(controller.collect().cameras[camera].stats)
        return predicate(seen[-1])

    wait_until(reached, timeout_s, lambda: f"camera {camera} to reach the condition: {seen[-1]}",
               interval_s=0.5)
    return seen[-1]


@pytest.mark.parametrize("mjpeg_server", [{"user": "admin", "password": "hunter2"}], indirect=True)
def test_a_stalled_camera_goes_down_and_recovers_while_the_other_goes_on(
    ray_ready, footage, rtsp_server, mjpeg_server, tmp_path
):
    # given an RTSP camera and an MJPEG camera with credentials, both streaming real footage
    config = parse_fleet(f"""
defaults:
  fps: 3
  detect: [person]
  reconnect: {{initial_backoff_s: 0.2, max_backoff_s: 1}}
cameras:
  - {{id: rtsp-cam, source: {{url: "{rtsp_server.url}", read_timeout_s: 3}}}}
  - {{id: mjpeg-cam, source: {{url: "{mjpeg_server.url_with('admin', 'hunter2')}",
     read_timeout_s: 1, open_timeout_s: 1}}}}
detectors:
  person: {{actors: 1, num_cpus: 0.5}}
""", env={})
    controller = FleetController(config, str(tmp_path), RayActors(CameraActor, DetectorActor))
    controller.start()
    try:
        # when both run, frames flow and people are found
        wait_for(controller, "rtsp-cam", lambda s: s.processed >= 5, 60)
        wait_for(controller, "mjpeg-cam", lambda s: s.detections.get("person", 0) > 0, 60)
        # when the MJPEG server stalls, that camera goes down with a redacted error
        mjpeg_server.pause()
        down = wait_for(controller, "mjpeg-cam", lambda s: s.state == "down", 30)
        assert "admin:***@127.0.0.1" in down.last_error and "hunter2" not in down.last_error
        # and the RTSP camera goes on meanwhile
        before = controller.collect().cameras["rtsp-cam"].stats.processed
        wait_for(controller, "rtsp-cam", lambda s: s.processed >= before + 3, 30)
        # when the server comes back, the camera reconnects and analyses frames again
        processed = down.processed
        mjpeg_server.resume()
        back = wait_for(controller, "mjpeg-cam",
                        lambda s: s.state == "up" and s.processed > processed, 30)
        assert back.reconnects >= 1
    finally:
        final = controller.stop()
    assert all(s.accounted and s.in_flight == 0 for s in final.values()), final
    assert "hunter2" not in (tmp_path / "events.jsonl").read_text()
    assert "hunter2" not in (tmp_path / "stats.jsonl").read_text()
