"""GPU and custom-resource placement on a simulated cluster (no GPU here: Ray is told a node
has one, and places actors by that, as it would on a real GPU node)."""

from __future__ import annotations

import pytest

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.rayactors import RayActors
from actors.runtime import RAY_SYSTEM_CONFIG
from fleet.config import parse_fleet
from fleet.control.controller import FleetController
from fleet.errors import FleetError
from tests.helpers import wait_until

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

FLEET = """
metrics: {{enabled: false}}
autoscaling: {{enabled: false}}
defaults: {{fps: 2, num_cpus: 0.25}}
cameras:
  - {{id: cam, source: {{type: synthetic, width: 640, height: 360, fps: 5}}}}
detectors:
  face: {{actors: {actors}, max_actors: 4, num_cpus: 0.5, num_gpus: 0.5,
          resources: {{edge_box: 0.5}}}}
"""


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 100 * 2**20, "_system_config": RAY_SYSTEM_CONFIG})
    gpu_node = cluster.add_node(num_cpus=2, num_gpus=1, resources={"edge_box": 1},
                                object_store_memory=100 * 2**20)
    cluster.add_node(num_cpus=2, object_store_memory=100 * 2**20)
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    try:
        cluster.wait_for_nodes()
        yield gpu_node
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_gpu_detectors_land_on_the_node_that_has_the_gpu(cluster, tmp_path):
    import ray

    controller = FleetController(parse_fleet(FLEET.format(actors=2), env={}), str(tmp_path),
                                 RayActors(CameraActor, DetectorActor))
    controller.start()
    try:
        nodes = {ray.get(a.handle.info.remote(), timeout=30)["node"]
                 for a in controller.pools["face"].running}
        assert nodes == {cluster.node_id}
    finally:
        controller.stop()


def test_a_fleet_wanting_more_gpus_than_the_cluster_has_fails_at_once(cluster, tmp_path):
    import ray

    # the previous test's actors give their GPU back asynchronously
    wait_until(lambda: ray.available_resources().get("GPU", 0) >= 1, 60, "the GPU to be free")
    controller = FleetController(parse_fleet(FLEET.format(actors=3), env={}), str(tmp_path),
                                 RayActors(CameraActor, DetectorActor))
    with pytest.raises(FleetError, match=r"needs 1.5 GPUs and the cluster has 1 of 1 free"):
        controller.start()
    controller.stop()
