"""Network cameras on real servers (gst-rtsp-server, an HTTP MJPEG server) through the whole
fleet on real Ray: frames flow, a stalled camera goes down and comes back, the others go on."""

from __future__ import annotations

import pytest

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from fleet.config import parse_fleet
from fleet.control.controller import FleetController
from tests.helpers import free_port, wait_until
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


def test_cameras_that_fail_at_start_or_lose_their_server_retry_while_the_others_run(
    ray_ready, footage, rtsp_server, tmp_path
):
    import dataclasses
    from urllib.parse import urlsplit

    closed = f"http://127.0.0.1:{free_port()}/video.mjpg"  # nothing listens there
    config = parse_fleet(f"""
metrics: {{enabled: false}}
defaults:
  fps: 3
  detect: [person]
  reconnect: {{initial_backoff_s: 0.2, max_backoff_s: 1}}
cameras:
  - {{id: rtsp-cam, source: {{url: "{rtsp_server.url}", read_timeout_s: 2}}}}
  - {{id: unreachable, source: {{url: "{closed}", open_timeout_s: 1}}}}
  - {{id: not-a-stream, source: {{url: "{rtsp_server.url}-nothing-here", open_timeout_s: 2}}}}
  - {{id: synth, source: {{type: synthetic, width: 640, height: 360, fps: 10}}}}
detectors:
  person: {{actors: 1, num_cpus: 0.5}}
""", env={})
    controller = FleetController(config, str(tmp_path), RayActors(CameraActor, DetectorActor))
    controller.start()
    replacement = None
    try:
        # given two cameras that cannot open at start-up: they are down and keep retrying
        for cid in ("unreachable", "not-a-stream"):
            wait_for(controller, cid, lambda s: s.state == "down" and s.reconnects >= 2, 60)
        # while the good ones analyse frames
        wait_for(controller, "rtsp-cam", lambda s: s.processed >= 3, 60)
        wait_for(controller, "synth", lambda s: s.processed >= 3, 60)
        # when the RTSP server is killed mid-run, its camera goes down within its read timeout
        port = urlsplit(rtsp_server.url).port
        rtsp_server.kill()
        down = wait_for(controller, "rtsp-cam", lambda s: s.state == "down", 30)
        # and the synthetic camera goes on meanwhile
        synth = controller.collect().cameras["synth"].stats.processed
        wait_for(controller, "synth", lambda s: s.processed >= synth + 3, 30)
        # when the server comes back on the same port, the camera is up and analysing again
        replacement = fixtures.start_rtsp_server(
            dataclasses.replace(rtsp_server.options, port=port),
            fixtures.write_clip_frames(tmp_path / "frames"), tmp_path / "server2.log")
        wait_for(controller, "rtsp-cam",
                 lambda s: s.state == "up" and s.processed > down.processed, 60)
    finally:
        final = controller.stop()
        if replacement is not None:
            replacement.stop()
    assert all(s.accounted and s.in_flight == 0 for s in final.values()), final
    assert final["unreachable"].captured == 0 and final["unreachable"].reconnects >= 2
