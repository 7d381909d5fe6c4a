"""The one wiring place: start (or join) Ray, and build a running fleet from a config.

``camfleet run`` and every ``camfleet bench`` mode come through here, so a fleet is wired the
same way whoever starts it: the controller (an actor, or an in-process object for benchmarks
that step it themselves), the camera and detector actor classes, and Ray's settings.

    >>> from fleet.runtime import init_ray, start_fleet   # doctest: +SKIP
    >>> embedded = init_ray(None, num_cpus=2, object_store_mb=512)
    >>> fleet = start_fleet(config, run_dir)
    >>> fleet.snapshot(); fleet.stop()
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from fleet.config import FleetConfig
from fleet.frames import CameraStats

# Ray's raylet frees out-of-scope objects in batches, by default once a second: at 30 fps a
# camera's released frames would linger ~30 deep in the object store, past its `buffers` bound.
# Freeing each object as it goes out of scope keeps the store at cameras x buffers frames.
# On a cluster set the same with RAY_free_objects_batch_size=1 on every node (see deploy/).
RAY_SYSTEM_CONFIG = {"free_objects_batch_size": 1}


def init_ray(address: str | None, num_cpus: int | None = None,
             object_store_mb: int | None = None) -> bool:
    """Join ``address`` (or RAY_ADDRESS), else start an embedded local Ray. True if embedded."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return False
    ray.init(
        address="local",  # a new local Ray, never one a `ray start` left behind
        num_cpus=num_cpus or os.cpu_count(),
        object_store_memory=object_store_mb * 2**20 if object_store_mb else None,
        include_dashboard=False, logging_level=logging.WARNING, _system_config=RAY_SYSTEM_CONFIG,
    )
    return True


def shutdown_ray(embedded: bool) -> None:
    """End the embedded Ray; leave a cluster we joined running."""
    import ray

    if embedded and ray.is_initialized():
        ray.shutdown()


def camera_actor() -> Any:
    from actors.camera import CameraActor

    return CameraActor


def detector_actor() -> Any:
    from actors.detector import DetectorActor

    return DetectorActor


def build_controller(config: FleetConfig, run_dir: str) -> Any:
    """A :class:`fleet.controller.FleetController` in this process, wired to real actors.

    For benchmarks that call ``collect()`` and step the loop themselves; ``camfleet run`` uses
    :func:`start_fleet`, which runs the same controller inside a named actor.
    """
    from actors.controller import build_controller as build

    return build(config, run_dir)


@dataclass
class RunningFleet:
    """A fleet whose controller runs in a named Ray actor."""

    controller: Any  # the ControllerActor handle
    name: str

    def start(self, timeout_s: float | None = None) -> None:
        import ray

        ray.get(self.controller.start.remote(), timeout=timeout_s)

    def metrics_url(self) -> str | None:
        import ray

        return ray.get(self.controller.metrics_url.remote())  # type: ignore[no-any-return]

    def snapshot(self) -> Any:
        import ray

        return ray.get(self.controller.snapshot.remote())

    def ended(self) -> bool:
        import ray

        return bool(ray.get(self.controller.ended.remote()))

    def stop(self) -> dict[str, CameraStats]:
        import ray

        return ray.get(self.controller.stop.remote())  # type: ignore[no-any-return]

    def kill(self) -> None:
        import ray

        ray.kill(self.controller)


def controller_name(config: FleetConfig) -> str:
    return f"camfleet-{config.name}"


def start_fleet(config: FleetConfig, run_dir: str) -> RunningFleet:
    """Create the fleet's controller actor (named ``camfleet-<fleet name>``); call ``start()``."""
    from actors.controller import ControllerActor

    name = controller_name(config)
    handle = ControllerActor.options(name=name).remote(config, run_dir)
    return RunningFleet(handle, name)
