"""Faults caused for real on real Ray: actor processes killed with SIGKILL (as the OOM killer
does), a controller killed mid-run, a capture stuck inside OpenCV. After each, the fleet goes
on and every frame is accounted for by the per-frame audit (a check that can fail)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from actors import runtime
from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from fleet.config import parse_fleet
from fleet.control.controller import FleetController
from tests.helpers import wait_until

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

FLEET = """
name: {name}
metrics: {{enabled: false}}
stats_interval_s: 0.5
autoscaling: {{enabled: false}}
defaults: {{fps: 6, buffers: 2, detect_width: 320}}
cameras:
  - {{id: a, source: {{type: synthetic, width: 960, height: 540, fps: 12}}}}
  - {{id: b, source: {{type: synthetic, width: 960, height: 540, fps: 12}}}}
detectors:
  face: {{actors: 2, num_cpus: 0.5}}
"""


class Running:
    """An in-process controller with its control loop in a thread, as the actor runs it."""

    def __init__(self, text: str, run_dir: Path):
        self.controller = FleetController(parse_fleet(text, env={}), str(run_dir),
                                          RayActors(CameraActor, DetectorActor))
        self.controller.start()
        self.halt = threading.Event()
        self.loop = threading.Thread(target=self.controller.run, args=(self.halt,), daemon=True)
        self.loop.start()

    def stats(self, cid: str):
        return self.controller.latest.cameras[cid].stats

    def stop(self):
        self.halt.set()
        self.loop.join(timeout=30)
        return self.controller.stop()


def pid_of(ref) -> int:
    import ray

    return int(ray.get(ref.handle.info.remote(), timeout=30)["pid"])


def grows(fleet: Running, cid: str, by: int, timeout_s: float) -> None:
    start = fleet.stats(cid).processed
    wait_until(lambda: fleet.stats(cid).processed >= start + by, timeout_s,
               lambda: f"camera {cid} to process {by} more frames: {fleet.stats(cid)}")


def test_a_killed_detector_leaves_the_routing_and_is_replaced(ray_ready, tmp_path):
    fleet = Running(FLEET.format(name="det-kill"), tmp_path)
    try:
        wait_until(lambda: "a" in fleet.controller.latest.cameras, 30, "a first snapshot")
        grows(fleet, "a", 5, 60)
        pool = fleet.controller.pools["face"]
        victim = pool.running[0]
        # when a detector's process is killed, as the OOM killer would
        os.kill(pid_of(victim), signal.SIGKILL)
        # then the pool replaces it and both cameras analyse frames again
        wait_until(lambda: pool.replaced == 1 and len(pool.running) == 2, 60,
                   lambda: f"a replacement actor: running {len(pool.running)}, "
                           f"pending {len(pool.pending)}, replaced {pool.replaced}")
        assert victim not in pool.running
        grows(fleet, "a", 10, 60)
        grows(fleet, "b", 10, 60)
    finally:
        final = fleet.stop()
    for cid, stats in final.items():
        assert stats.accounted, (cid, stats.audit_problems)
        assert stats.in_flight == 0
    # frames at the dead actor were counted with a reason, never lost silently
    lost = sum(s.dropped.get("detector_lost", 0) + s.failed for s in final.values())
    assert lost <= 2 * 2  # at most what both cameras' buffers held at the actor


def test_a_killed_camera_restarts_with_its_counters_and_the_other_goes_on(ray_ready, tmp_path):
    fleet = Running(FLEET.format(name="cam-kill"), tmp_path)
    try:
        wait_until(lambda: "a" in fleet.controller.latest.cameras, 30, "a first snapshot")
        grows(fleet, "a", 5, 60)
        old = fleet.controller.cameras["a"]
        before = fleet.stats("a")
        os.kill(pid_of(old), signal.SIGKILL)
        wait_until(lambda: fleet.controller.restarts["a"] == 1, 30, "the camera's restart")
        assert fleet.controller.cameras["a"] != old
        # its counters continue from what the controller last saw: neither reset nor doubled
        wait_until(lambda: fleet.stats("a").state == "up", 60, lambda: f"{fleet.stats('a')}")
        after = fleet.stats("a")
        assert after.captured >= before.captured and after.processed >= before.processed
        grows(fleet, "a", 5, 60)
        grows(fleet, "b", 5, 60)
    finally:
        final = fleet.stop()
    assert all(s.accounted for s in final.values()), {c: s.audit_problems for c, s in final.items()}
    # what it had in flight when it died is counted, with its own reason
    assert final["a"].dropped.get("camera_lost", 0) <= 3


def test_a_killed_controller_comes_back_and_adopts_the_running_fleet(ray_ready, tmp_path):
    import ray

    config = parse_fleet(FLEET.format(name="ctl-kill"), env={})
    fleet = runtime.start_fleet(config, str(tmp_path))
    try:
        ray.get(fleet.start_ref(), timeout=120)
        wait_until(lambda: fleet.snapshot().cameras.get("a") is not None
                   and fleet.snapshot().cameras["a"].stats.processed >= 5, 60, "frames analysed")
        before = fleet.snapshot().cameras["a"].stats
        cameras_before = {n for n in ray.util.list_named_actors() if "/camera/" in n}
        camera_a = ray.get_actor(next(n for n in cameras_before if "/camera/a/" in n))
        os.kill(int(fleet.info()["pid"]), signal.SIGKILL)
        # while it is away, the cameras keep analysing frames
        seen = ray.get(camera_a.stats.remote(), timeout=30).processed
        wait_until(lambda: ray.get(camera_a.stats.remote(), timeout=30).processed > seen + 3, 30,
                   "frames analysed while the controller is down", interval_s=0.2)

        def answers() -> bool:
            try:
                fleet.keepalive()
                return True
            except runtime.ControllerGone:
                return False

        wait_until(answers, 90, "the restarted controller to answer", interval_s=1)
        # it adopted the same camera actors: their counters went on, no camera was restarted
        wait_until(lambda: (s := fleet.snapshot().cameras.get("a")) is not None
                   and s.stats.processed > before.processed, 60, "stats from the adopted camera")
        assert {n for n in ray.util.list_named_actors() if "/camera/" in n} == cameras_before
        final = fleet.stop(timeout_s=60)
    finally:
        fleet.kill()
        runtime.end_fleet_actors(config.name)
    assert all(s.accounted for s in final.values())
    assert final["a"].processed > before.processed
    assert (tmp_path / "summary.json").is_file()


def test_a_capture_stuck_inside_opencv_is_restarted_by_the_watchdog(ray_ready, tmp_path):
    # given a camera whose server accepts the connection and then says nothing: with a long
    # open timeout, OpenCV's open blocks inside FFmpeg (a tarpit, as a hung encoder behaves)
    tarpit = socket.create_server(("127.0.0.1", 0))
    tarpit.listen(16)
    url = f"http://127.0.0.1:{tarpit.getsockname()[1]}/video.mjpg"
    text = FLEET.format(name="stuck").replace(
        "  - {id: b,", f"  - {{id: stuck, source: {{url: '{url}', open_timeout_s: 60}}, "
        "watchdog_s: 2}\n  - {id: b,")
    fleet = Running(text, tmp_path)
    try:
        # then the watchdog restarts it, and the other cameras go on meanwhile
        wait_until(lambda: fleet.controller.restarts["stuck"] >= 1, 60,
                   lambda: f"a watchdog restart: {fleet.controller.latest.cameras.get('stuck')}")
        grows(fleet, "b", 5, 60)
    finally:
        final = fleet.stop()
        tarpit.close()
    assert all(s.accounted for s in final.values())


def test_a_fleet_that_does_not_fit_says_so_at_once(ray_ready, tmp_path):
    text = FLEET.format(name="too-big").replace("face: {actors: 2, num_cpus: 0.5}",
                                                "face: {actors: 9, max_actors: 9, num_cpus: 1}")
    controller = FleetController(parse_fleet(text, env={}), str(tmp_path),
                                 RayActors(CameraActor, DetectorActor))
    started = time.monotonic()
    with pytest.raises(Exception, match=r"needs 9.5 CPUs .* has \d+(\.\d+)? of 4 free"):
        controller.start()
    assert time.monotonic() - started < 10
    controller.stop()
