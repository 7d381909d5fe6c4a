"""Locality on a simulated 3-node cluster (``ray.cluster_utils.Cluster``): detectors are placed
beside their cameras and frames stay on their node; a node that is short of detectors sends its
frames across, and they are counted.

Sites a and b have room for a detector actor next to their cameras; site c has room for its
cameras only. Cameras are pinned to their sites with custom resources (``resources: {site_a:
0.1}``), as an operator pins cameras to the node near them.
"""

from __future__ import annotations

import threading

import pytest

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from actors.runtime import RAY_SYSTEM_CONFIG
from fleet.config import parse_fleet
from fleet.control.controller import FleetController
from tests.helpers import wait_until

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
SITES = ("a", "b", "c")
FRAME_BYTES = 320 * 240 * 3


def fleet_text() -> str:
    cameras = "".join(
        f"  - {{id: {site}{k}, source: {{type: synthetic, width: 320, height: 240, fps: 10}},"
        f" resources: {{site_{site}: 0.1}}}}\n" for site in SITES for k in (1, 2))
    return f"""
name: locality
metrics: {{enabled: false}}
stats_interval_s: 0.5
autoscaling: {{enabled: false}}
defaults: {{fps: 5, buffers: 2, detect_width: null, num_cpus: 0.5, detect: [blobs]}}
cameras:
{cameras}detectors:
  blobs: {{type: blobs, actors: 3, num_cpus: 2}}
"""


@pytest.fixture
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": 100 * 2**20, "_system_config": RAY_SYSTEM_CONFIG})
    # logical CPUs (whole numbers): a fits its cameras and two detectors, b one, c none
    for site, cpus in (("a", 5), ("b", 3), ("c", 1)):
        cluster.add_node(num_cpus=cpus, resources={f"site_{site}": 1},
                         object_store_memory=100 * 2**20)
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    try:
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_frames_stay_on_their_node_and_a_short_node_crosses_counted(cluster, tmp_path):
    controller = FleetController(parse_fleet(fleet_text(), env={}), str(tmp_path),
                                 RayActors(CameraActor, DetectorActor))
    controller.start()
    halt = threading.Event()
    loop = threading.Thread(target=controller.run, args=(halt,), daemon=True)
    loop.start()

    def handoffs(cid: str) -> int:
        view = controller.latest.cameras.get(cid)
        return view.stats.handoffs_local + view.stats.handoffs_remote if view else 0

    def final_ids() -> list[str]:
        return list(controller.cameras)

    try:
        wait_until(lambda: all(handoffs(f"{s}{k}") >= 40 for s in SITES for k in (1, 2)), 120,
                   lambda: f"40 hand-offs a camera: {[(c, handoffs(c)) for c in final_ids()]}")
    finally:
        halt.set()
        loop.join(timeout=30)
        final = controller.stop()
    # the detector actors went to the nodes of their cameras: one on a, one on b; c's could not
    nodes = {cid: s.node for cid, s in final.items()}
    assert len({nodes["a1"], nodes["b1"], nodes["c1"]}) == 3
    placed = controller.pools["blobs"]
    for stats in final.values():
        assert stats.accounted, stats.audit_problems
    local = sum(final[f"{s}{k}"].handoffs_local for s in "ab" for k in (1, 2))
    remote = sum(final[f"{s}{k}"].handoffs_remote for s in "ab" for k in (1, 2))
    # then with local capacity, at least 95% of hand-offs stay on their node
    assert local / (local + remote) >= 0.95, (local, remote, placed.nodes)
    # and site c, short of detectors, crosses: counted as remote, with the bytes that crossed
    for cid in ("c1", "c2"):
        c = final[cid]
        assert c.handoffs_remote / (c.handoffs_local + c.handoffs_remote) >= 0.95, c
        assert c.remote_bytes == c.handoffs_remote * FRAME_BYTES
