"""The controller's loop on real Ray: a load step scales detectors out and hit-rate recovers;
a load drop scales them in after the downscale delay, draining: not a frame is lost."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from fleet.config import parse_fleet
from fleet.control.controller import FleetController
from tests.integration.probes import ProbedDetectorActor, ProbeDetector

pytestmark = pytest.mark.timeout(240)

# Two cameras at 5 fps on a detector that takes 0.1 s a frame: 1.0 actor-second per second,
# 2 actors at 75% utilisation. After 20 s they drop to 1 fps: 1 actor is enough.
FLEET = """
stats_interval_s: 0.5
defaults:
  fps: 30
  buffers: 2
  detect_width: 64
cameras:
  - {id: cam-a, source: {type: synthetic, width: 640, height: 360, fps: 5, fps_schedule: [[20, 1]]}}
  - {id: cam-b, source: {type: synthetic, width: 640, height: 360, fps: 5, fps_schedule: [[20, 1]]}}
detectors:
  face: {actors: 1, min_actors: 1, max_actors: 4, num_cpus: 0.5}
autoscaling:
  target_utilisation: 0.75
  target_hit_rate: 0.95
  upscale_delay_s: 1
  downscale_delay_s: 4
  look_back_s: 4
"""


def test_load_step_scales_out_then_in_without_losing_a_frame(ray_ready, tmp_path):
    # given one detector actor and a load that needs two
    slow = functools.partial(ProbeDetector, out_dir=str(tmp_path), delay_s=0.1)
    controller = FleetController(parse_fleet(FLEET, env={}), str(tmp_path),
                                 RayActors(CameraActor, ProbedDetectorActor(DetectorActor, slow)))
    controller.start()
    halt = threading.Event()
    loop = threading.Thread(target=controller.run, args=(halt,), daemon=True)
    loop.start()
    timeline = []
    try:
        # when the control loop runs through the high-load phase and the drop after it
        started = time.monotonic()
        while time.monotonic() - started < 42:
            time.sleep(0.5)
            snap = controller.latest
            if "face" in snap.detectors:
                hit = min((v.hit_rate for v in snap.cameras.values()), default=1.0)
                timeline.append((time.monotonic() - started, snap.detectors["face"].running, hit,
                                 snap.detectors["face"].draining))
    finally:
        halt.set()
        loop.join()
        final = controller.stop()
    actions = [a for a in controller.recent if a["target"] == "detector:face"]
    high = [t for t in timeline if t[0] < 20]
    low = [t for t in timeline if t[0] > 34]
    # then it scaled out to two (or three) actors during the high-load phase
    assert max(running for _, running, _, _ in high) >= 2, timeline
    assert any(a["action"] == "scale_up" for a in actions), actions
    # and the hit-rate recovered above target before the load dropped
    recovered = [t for t in high if t[1] >= 2 and t[2] >= 0.95]
    assert recovered, timeline
    # and after the drop it scaled back in to one actor
    assert any(a["action"] == "scale_down" for a in actions), actions
    assert low and low[-1][1] == 1, timeline
    # and no frame was lost while draining: all accounted, none lost to a removed detector
    for stats in final.values():
        assert stats.accounted and stats.in_flight == 0, stats
        assert stats.dropped.get("detector_lost", 0) == 0 and stats.failed == 0, stats
    decisions = (tmp_path / "decisions.jsonl").read_text().splitlines()
    assert len(decisions) == len(controller.recent) or len(decisions) >= 20
