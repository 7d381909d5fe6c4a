"""Memory pressure: 4K frames from several cameras into a small object store. The store never
holds more than cameras x (buffers + 1) frames, nothing spills, and every drop is counted."""

from __future__ import annotations

import re
import threading
import time

import pytest

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from fleet.config import parse_fleet
from fleet.control.controller import FleetController

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
CAMERAS, BUFFERS = 4, 2
FRAME_MIB = 3840 * 2160 * 3 / 2**20  # 23.7 MiB


def store_summary() -> tuple[int, int, int]:
    """(objects, MiB in use, MiB spilled) from Ray's own memory summary."""
    import ray
    from ray._private.internal_api import memory_summary

    text = memory_summary(address=ray.get_runtime_context().gcs_address, stats_only=True)
    used = re.search(r"Plasma memory usage (\d+) MiB, (\d+) objects", text)
    assert used, text
    spilled = re.search(r"Spilled (\d+) MiB", text)
    return int(used.group(2)), int(used.group(1)), int(spilled.group(1)) if spilled else 0


def test_4k_frames_stay_within_the_buffer_bound_of_a_small_store(ray_ready, tmp_path):
    cameras = "".join(
        f"  - {{id: c{i}, source: {{type: synthetic, width: 3840, height: 2160, fps: 8}}}}\n"
        for i in range(CAMERAS))
    config = parse_fleet(f"""
metrics: {{enabled: false}}
autoscaling: {{enabled: false}}
defaults: {{fps: 8, buffers: {BUFFERS}, detect_width: 320, num_cpus: 0.25}}
cameras:
{cameras}detectors:
  face: {{actors: 1, num_cpus: 1}}
""", env={})
    controller = FleetController(config, str(tmp_path), RayActors(CameraActor, DetectorActor))
    controller.start()
    halt = threading.Event()
    loop = threading.Thread(target=controller.run, args=(halt,), daemon=True)
    loop.start()
    samples = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            samples.append(store_summary())
            time.sleep(0.25)
        snapshot = controller.latest
    finally:
        halt.set()
        loop.join(timeout=30)
        final = controller.stop()
    bound_mib = CAMERAS * (BUFFERS + 1) * FRAME_MIB
    peak_objects = max(s[0] for s in samples)
    peak_mib = max(s[1] for s in samples)
    assert peak_mib <= bound_mib, (peak_mib, bound_mib, samples)
    assert peak_objects <= CAMERAS * (BUFFERS + 1)
    assert max(s[2] for s in samples) == 0  # no spilling storm: nothing spilled at all
    assert all(v.stats.slots_used <= BUFFERS for v in snapshot.cameras.values())
    # one detector actor cannot keep up with 32 4K frames a second: drops, each with its reason
    assert sum(sum(s.dropped.values()) for s in final.values()) > 0
    assert all(s.accounted for s in final.values())
    assert all(s.processed > 0 for s in final.values())
