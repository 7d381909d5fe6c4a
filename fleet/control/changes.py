"""Live changes to a running fleet (``camfleet apply``): what differs between the running
config and a new one, and the steps that change the fleet, in the order that loses no frame.

Cameras and detectors change; what every camera actor was started with (sinks, metrics,
intervals, the fleet's name and run folder) needs a restart and is refused, changing nothing.
Order: new and changed detector kinds start first and must be up (or nothing changes); then
removed and changed cameras drain as at stop; changed cameras restart with their counters going
on, added ones start; old pools drain (they leave the routing and are reaped when empty);
finally every camera is told its routes. Untouched cameras keep running throughout. Imports no
Ray: the controller's actors are reached through it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fleet.config import CameraConfig, FleetConfig
from fleet.control.actorsys import Actors
from fleet.control.pools import DetectorPool
from fleet.errors import FleetError
from fleet.frames import CameraStats

log = logging.getLogger(__name__)
FIXED = ("name", "output_dir", "stats_interval_s", "drain_timeout_s", "orphan_timeout_s",
         "sinks", "metrics")
POOL_START_S = 60.0
LEASE_RENEW_S = 2.0  # well inside orphan_timeout_s (at least 5 s)


class FleetController(Protocol):
    """What of :class:`fleet.control.controller.FleetController` a change uses (no import
    back up)."""

    config: FleetConfig
    actors: Actors
    lease_s: float
    pools: dict[str, DetectorPool]
    configs: dict[str, CameraConfig]
    kinds: dict[str, tuple[str, ...]]
    last: dict[str, CameraStats]
    removed: dict[str, CameraStats]

    def retire(self, pool: DetectorPool) -> None: ...

    def stop_camera(self, cid: str) -> CameraStats: ...

    def start_camera(self, cid: str, resume: CameraStats | None) -> None: ...

    def route(self, name: str) -> None: ...

    def keep_leases(self) -> None: ...

    def after_apply(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """What differs: camera ids and detector kinds, each list in a stable order."""

    added: list[str]
    removed: list[str]
    changed: list[str]
    kinds_new: list[str]
    kinds_changed: list[str]
    kinds_gone: list[str]
    bounds: list[str]  # kinds whose min/max or actors changed, nothing else


def refusal(old: FleetConfig, new: FleetConfig) -> str | None:
    """Why ``new`` cannot be applied to a fleet running ``old``, or None."""
    differ = [f for f in FIXED if getattr(new, f) != getattr(old, f)]
    if differ:
        return (f"{', '.join(differ)} cannot change in a running fleet; restart it "
                "(camfleet run) to change them. Nothing was changed")
    return None


def plan(old: FleetConfig, running: dict[str, object], new: FleetConfig) -> Plan:
    """The difference between ``old`` (with the specs of the pools ``running``) and ``new``."""
    old_cams = {c.id: c for c in old.active_cameras}
    new_cams = {c.id: c for c in new.active_cameras}
    used = sorted({n for c in new_cams.values() for n in c.detect})
    kept = [n for n in used if n in running]
    return Plan(
        added=[c for c in new_cams if c not in old_cams],
        removed=[c for c in old_cams if c not in new_cams],
        changed=[c for c in new_cams if c in old_cams and new_cams[c] != old_cams[c]],
        kinds_new=[n for n in used if n not in running],
        kinds_changed=[n for n in kept if _pool_spec(new, n) != running[n]],
        kinds_gone=[n for n in running if n not in used],
        bounds=[n for n in kept if _pool_spec(new, n) == running[n]
                and _bounds(new, n) != _bounds(old, n)],  # min, max or actors
    )


def _pool_spec(config: FleetConfig, name: str) -> object:
    """A detector's settings that need new actors (all but the autoscaler's bounds)."""
    spec = config.detectors[name]
    return spec.model_copy(update={"min_actors": 0, "max_actors": 1, "actors": 0})


def _bounds(config: FleetConfig, name: str) -> tuple[int, int, int]:
    spec = config.detectors[name]
    return spec.min_actors, spec.max_actors, spec.actors


def apply(controller: FleetController, new: FleetConfig) -> list[str]:
    """Change ``controller``'s fleet to ``new``. The caller holds its step lock."""
    running = {name: _pool_spec(controller.config, name) for name in controller.pools}
    old_actors = {name: controller.config.detectors[name].actors for name in controller.pools}
    diff = plan(controller.config, running, new)
    lines = _start_pools(controller, new, diff)
    controller.config = new
    lines += _change_cameras(controller, new, diff)
    for name in diff.kinds_gone:
        controller.retire(controller.pools.pop(name))
        lines.append(f"detector {name}: no camera uses it; its actors drain")
    for name in diff.bounds:
        pool, spec = controller.pools[name], new.detectors[name]
        pool.spec = spec
        if spec.actors != old_actors.get(name, spec.actors):
            pool.resize(spec.actors)  # the autoscaler goes on from here, within the bounds
        lines.append(f"detector {name}: {spec.actors} actor(s), autoscaling bounds "
                     f"{spec.min_actors}..{spec.max_actors}")
    for name in controller.pools:
        controller.route(name)
    controller.after_apply()
    if not lines:
        lines.append("nothing to change: the running fleet already matches the file")
    for line in lines:
        log.warning("apply: %s", line)
    return lines


def _start_pools(controller: FleetController, new: FleetConfig, diff: Plan) -> list[str]:
    """New pools for new and changed kinds, up before anything else changes."""
    fresh: dict[str, DetectorPool] = {}
    for name in diff.kinds_new + diff.kinds_changed:
        spec = new.detectors[name]
        fresh[name] = DetectorPool(name, spec, controller.actors, controller.lease_s)
        old = controller.pools.get(name)
        fresh[name].demand = dict(old.demand) if old else {}
        fresh[name].start(spec.actors)
    _wait(list(fresh.values()), controller.keep_leases)
    lines = []
    for name, pool in fresh.items():
        if name in controller.pools:
            controller.retire(controller.pools[name])
            lines.append(f"detector {name}: new settings; {len(pool.running)} new actor(s), "
                         "the old ones drain")
        else:
            lines.append(f"detector {name}: added with {len(pool.running)} actor(s)")
        controller.pools[name] = pool
    return lines


def _change_cameras(controller: FleetController, new: FleetConfig, diff: Plan) -> list[str]:
    lines = []
    for cid in diff.removed + diff.changed:  # drained as at stop: in-flight frames finish
        controller.keep_leases()  # each drain may take drain_timeout_s
        final = controller.stop_camera(cid)
        if cid in diff.removed:
            controller.removed[cid] = final
            lines.append(f"camera {cid}: removed (drained; {final.processed} frames processed "
                         "in all)")
    controller.configs = {c.id: c for c in new.active_cameras}
    controller.kinds = {c.id: tuple(c.detect) for c in new.active_cameras}
    for cid in diff.changed:
        controller.start_camera(cid, controller.last.get(cid))
        lines.append(f"camera {cid}: restarted with its new settings; counters go on")
    for cid in diff.added:
        controller.removed.pop(cid, None)
        controller.start_camera(cid, None)
        lines.append(f"camera {cid}: added")
    return lines


def _wait(pools: list[DetectorPool], keep_leases: Callable[[], None]) -> None:
    deadline = time.monotonic() + POOL_START_S
    renew = time.monotonic() + LEASE_RENEW_S
    while any(p.pending for p in pools) and time.monotonic() < deadline:
        for pool in pools:
            pool.promote(timeout_s=0.2)
        if time.monotonic() >= renew:  # no stats calls meanwhile: the leases need renewing
            keep_leases()
            renew = time.monotonic() + LEASE_RENEW_S
    short = [p for p in pools if not p.running]
    if short:
        for pool in pools:
            pool.stop()
        raise FleetError("; ".join(
            f"detector {p.name}: no actor started ({p.last_error or 'no room on the cluster'})"
            for p in short) + ". Nothing was changed")
