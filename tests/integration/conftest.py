from __future__ import annotations

import os

import pytest

from tests.integration import probes


@pytest.fixture(scope="package")
def ray_ready():
    """One small local Ray for the integration tests (ray.init costs about 7 s here).

    Package-scoped: it is shut down before the e2e tests start Ray processes of their own.
    """
    import ray

    from actors.runtime import RAY_SYSTEM_CONFIG

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(address="local", num_cpus=4, object_store_memory=400 * 2**20, include_dashboard=False,
             log_to_driver=False, logging_level="WARNING", _system_config=RAY_SYSTEM_CONFIG)
    # Workers cannot import the tests package: ship the probes module by value.
    ray.cloudpickle.register_pickle_by_value(probes)
    yield ray
    ray.shutdown()


@pytest.fixture
def plasma_objects(ray_ready):
    """Number of objects in the object store now, from Ray's own memory summary."""
    import re

    import ray
    from ray._private.internal_api import memory_summary

    address = ray.get_runtime_context().gcs_address

    def count() -> tuple[int, int]:
        text = memory_summary(address=address, stats_only=True)
        match = re.search(r"Plasma memory usage (\d+) MiB, (\d+) objects", text)
        assert match, text
        return int(match.group(2)), int(match.group(1))

    return count

