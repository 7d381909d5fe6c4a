from __future__ import annotations

import sys

import pytest

from tests.integration import probes


@pytest.fixture(scope="session")
def ray_ready(ray_session):
    # Workers cannot import the tests package: ship the probes module by value.
    ray_session.cloudpickle.register_pickle_by_value(probes)
    return ray_session


@pytest.fixture
def plasma_objects():
    """Number of objects in the object store now, from Ray's own memory summary."""
    import re

    from ray._private.internal_api import memory_summary

    def count() -> tuple[int, int]:
        text = memory_summary(stats_only=True)
        match = re.search(r"Plasma memory usage (\d+) MiB, (\d+) objects", text)
        assert match, text
        return int(match.group(2)), int(match.group(1))

    return count


sys.modules.setdefault("probes", probes)
