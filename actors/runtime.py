"""The one wiring place: start (or join) Ray, and build a running fleet from a config.

``camfleet run`` and ``camfleet bench`` start (or join) Ray through here, with the same
settings, and ``camfleet run`` starts its fleet's controller in a named actor. (A benchmark
that steps the controller itself builds it in its own process: :mod:`fleet.bench.common`.)

    >>> from actors.runtime import init_ray, start_fleet   # doctest: +SKIP
    >>> embedded = init_ray(None, num_cpus=2, object_store_mb=512)
    >>> fleet = start_fleet(config, run_dir)
    >>> fleet.snapshot(); fleet.stop()
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from actors.rayaccess import check_ray_access
from fleet.config import FleetConfig
from fleet.errors import ControllerGone, FleetError
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
        check_ray_access(address)  # a refused token: one clear line, not 20 s of retries
        ray.init(address=address, namespace=NAMESPACE, logging_level=logging.WARNING)
        return False
    ray.init(
        address="local",  # a new local Ray, never one a `ray start` left behind
        namespace=NAMESPACE,
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


NAMESPACE = "camfleet"  # fleets are found by name here (`camfleet status`, a restarted CLI)
CONTROLLER_RESTARTS = 5
CALL_TIMEOUT_S = 30.0


@dataclass
class RunningFleet:
    """A fleet whose controller runs in a named, detached Ray actor.

    Calls raise :class:`ControllerGone` when the controller does not answer (it may be
    restarting: Ray restarts it and it adopts the running actors).
    """

    controller: Any  # the ControllerActor handle
    name: str

    def _call(self, method: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        import ray

        try:
            return ray.get(getattr(self.controller, method).remote(*args), timeout=timeout_s)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            dead = isinstance(exc, ray.exceptions.ActorDiedError)
            raise ControllerGone(f"{type(exc).__name__}", for_good=dead) from exc

    def start_ref(self) -> Any:
        return self.controller.start.remote()

    def metrics_url(self) -> str | None:
        return self._call("metrics_url")  # type: ignore[no-any-return]

    def info(self) -> dict[str, Any]:
        return self._call("info")  # type: ignore[no-any-return]

    def keepalive(self) -> None:
        self._call("keepalive", timeout_s=10)

    def snapshot(self) -> Any:
        return self._call("snapshot")

    def view(self) -> Any:
        """The latest snapshot without renewing the controller's lease (an onlooker's)."""
        return self._call("view")

    def ended(self) -> bool:
        return bool(self._call("ended"))

    def stop(self, timeout_s: float) -> dict[str, CameraStats]:
        return self._call("stop", timeout_s=timeout_s)  # type: ignore[no-any-return]

    def apply(self, config: FleetConfig, timeout_s: float) -> list[str]:
        """Change the running fleet to ``config``; FleetError (nothing changed) if refused."""
        import ray

        try:
            return self._call("apply", config, timeout_s=timeout_s)  # type: ignore[no-any-return]
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, FleetError) else None
            if cause is None:
                raise
            raise FleetError(str(cause)) from None

    def kill(self) -> None:
        import ray

        try:
            ray.kill(self.controller, no_restart=True)
        except Exception:  # noqa: BLE001, S110 - already gone
            pass


def controller_name(config: FleetConfig) -> str:
    return f"camfleet-{config.name}"


def start_fleet(config: FleetConfig, run_dir: str) -> RunningFleet:
    """Create the fleet's controller actor (named ``camfleet-<fleet name>``); call ``start``.

    Raises FleetError if a fleet of that name is already running in this Ray cluster.
    """
    import ray

    from actors.controller import ControllerActor

    name = controller_name(config)
    try:
        ray.get_actor(name)
    except ValueError:
        pass
    else:
        raise FleetError(f"a fleet named '{config.name}' is already running on this Ray cluster "
                         f"(actor {name} in namespace {NAMESPACE}); stop it, or rename this one")
    handle = ControllerActor.options(
        name=name, lifetime="detached", max_restarts=CONTROLLER_RESTARTS, max_task_retries=0,
    ).remote(config, run_dir)
    return RunningFleet(handle, name)


def join_ray(address: str | None) -> str:
    """Join a running Ray (``address``, RAY_ADDRESS, else the one on this machine); never
    start one. Returns the address asked for; FleetError when there is none."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    check_ray_access(address)
    try:
        ray.init(address=address, namespace=NAMESPACE, logging_level=logging.WARNING,
                 log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise FleetError(f"no Ray cluster to join at {address} ({str(exc).splitlines()[0]}); "
                         "start a fleet with camfleet run, or give --address / RAY_ADDRESS"
                         ) from None
    return address


def running_fleets() -> list[str]:
    """The names of the fleets whose controller runs on the joined Ray."""
    import ray

    found = ray.util.list_named_actors(all_namespaces=True)
    return sorted(a["name"].removeprefix("camfleet-") for a in found
                  if a["namespace"] == NAMESPACE and a["name"].startswith("camfleet-")
                  and "/" not in a["name"])


def find_fleet(name: str | None) -> RunningFleet:
    """The running fleet ``name``, or the only one; FleetError naming what is there."""
    import ray

    fleets = running_fleets()
    if name is None:
        if len(fleets) != 1:
            listed = ", ".join(fleets) or "none"
            raise FleetError(f"{len(fleets)} fleets are running here ({listed}); "
                             "name one with --fleet" if fleets else
                             "no fleet is running on this Ray cluster")
        name = fleets[0]
    if name not in fleets:
        raise FleetError(f"no fleet named '{name}' is running here (running: "
                         f"{', '.join(fleets) or 'none'})")
    return RunningFleet(ray.get_actor(f"camfleet-{name}", namespace=NAMESPACE),
                        f"camfleet-{name}")


def end_fleet_actors(fleet: str) -> int:
    """Kill every actor of a fleet whose controller is gone for good. Returns how many."""
    import ray

    prefix = f"camfleet-{fleet}/"
    ended = 0
    for full in ray.util.list_named_actors():
        if full.startswith(prefix) or full == f"camfleet-{fleet}":
            try:
                ray.kill(ray.get_actor(full), no_restart=True)
                ended += 1
            except ValueError:
                continue
    return ended
