"""Node loss on a simulated 3-node cluster (``ray.cluster_utils.Cluster``): the node holding
most of the fleet's actors is removed; its cameras and detectors come back on the others, the
fleet goes on, and every frame is accounted for."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from actors.runtime import RAY_SYSTEM_CONFIG
from fleet.config import parse_fleet
from fleet.control.controller import FleetController
from tests.helpers import wait_until

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

FLEET = """
name: nodeloss
metrics: {enabled: false}
stats_interval_s: 0.5
autoscaling: {enabled: false}
defaults: {fps: 4, buffers: 2, detect_width: 320, num_cpus: 0.25}
cameras:
  - {id: c1, source: {type: synthetic, width: 960, height: 540, fps: 8}}
  - {id: c2, source: {type: synthetic, width: 960, height: 540, fps: 8}}
  - {id: c3, source: {type: synthetic, width: 960, height: 540, fps: 8}}
detectors:
  face: {actors: 2, num_cpus: 0.5}
"""


@pytest.fixture
def cluster():
    """A head that runs nothing of the fleet and three worker nodes of one CPU each."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": 150 * 2**20, "_system_config": RAY_SYSTEM_CONFIG})
    workers = [cluster.add_node(num_cpus=1, object_store_memory=150 * 2**20) for _ in range(3)]
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    try:
        cluster.wait_for_nodes()
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


def placement(controller: FleetController) -> dict[str, str]:
    """Actor id -> node id, for every camera and detector of the fleet."""
    import ray

    refs = [*controller.cameras.values(), *(a for p in controller.pools.values() for a in p.live())]
    return {ref.id: ray.get(ref.handle.info.remote(), timeout=30)["node"] for ref in refs}


def test_the_fleet_survives_the_loss_of_a_node(cluster, tmp_path):
    cluster, workers = cluster
    controller = FleetController(parse_fleet(FLEET, env={}), str(tmp_path),
                                 RayActors(CameraActor, DetectorActor))
    controller.start()
    halt = threading.Event()
    loop = threading.Thread(target=controller.run, args=(halt,), daemon=True)
    loop.start()

    def processed(cid: str) -> int:
        view = controller.latest.cameras.get(cid)
        return view.stats.processed if view else 0

    try:
        wait_until(lambda: all(processed(c) >= 3 for c in ("c1", "c2", "c3")), 90,
                   "every camera analysing frames")
        # when the node with most of the fleet's actors is removed (not gracefully)
        busiest, count = Counter(placement(controller).values()).most_common(1)[0]
        victim = next(w for w in workers if w.node_id == busiest)
        cluster.remove_node(victim, allow_graceful=False)
        before = {c: processed(c) for c in ("c1", "c2", "c3")}
        # then what ran there comes back on the other nodes, and every camera goes on
        wait_until(lambda: all(processed(c) >= before[c] + 5 for c in before), 120,
                   lambda: f"every camera analysing again after losing {count} actor(s): "
                           f"{ {c: processed(c) for c in before} } vs {before}")
        pool = controller.pools["face"]
        wait_until(lambda: len(pool.running) == 2, 60,
                   lambda: f"the lost detector's replacement running: asked for "
                           f"{[pool.nodes.get(a.id) for a in pool.pending]} (lost {busiest}), "
                           f"demand {pool.demand}, cameras on {controller.camera_nodes}; "
                           f"replaced {pool.replaced}, failures {pool.start_failures} "
                           f"{pool.last_error}, draining {len(pool.draining)}")
        assert busiest not in placement(controller).values()
    finally:
        halt.set()
        loop.join(timeout=30)
        final = controller.stop()
    assert all(s.accounted for s in final.values()), {c: s.audit_problems for c, s in final.items()}
