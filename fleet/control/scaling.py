"""Carrying out the scaling policy on a running fleet: what the policy sees of it (:func:`signals`),
and :func:`autoscale`, which promotes ready detector actors, asks :mod:`fleet.control.policy`
for a decision and applies it (pool sizes, routing, batch sizes, camera buffers), then reaps
drained actors and records each action in ``decisions.jsonl``.

Functions over :class:`Host`, the part of :class:`fleet.control.controller.FleetController`
they use, so nothing here imports back up; the controller's methods of the same names call them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict
from typing import IO, Any, Protocol

from fleet.config import FleetConfig
from fleet.control import policy
from fleet.control.actorsys import ActorRef, Actors
from fleet.control.pools import DetectorPool
from fleet.control.stats import FleetSnapshot
from fleet.errors import ActorLostError

# Logs as the controller it is part of: the same logger name as before the split, for filters
log = logging.getLogger("fleet.control.controller")
CALL_TIMEOUT_S = 10.0


class Host(Protocol):
    """What of the controller scaling reads, and (``policy_state``, ``retired``) replaces."""

    config: FleetConfig
    actors: Actors
    pools: dict[str, DetectorPool]
    cameras: dict[str, ActorRef]
    kinds: dict[str, tuple[str, ...]]
    policy_state: policy.PolicyState
    decisions: Counter[policy.DecisionKey]  # (action, reason, target) -> times taken
    recent: deque[dict[str, Any]]
    retired: list[DetectorPool]

    @property
    def decisions_file(self) -> IO[str]: ...


def signals(host: Host, snapshot: FleetSnapshot) -> policy.Snapshot:
    """What the policy sees: the same figures as the table, per camera and per pool."""
    cameras = tuple(
        policy.CameraSignal(cid, host.kinds[cid], v.offered_fps, v.hit_rate, v.p95_ms,
                            v.stats.buffers)
        for cid, v in snapshot.cameras.items()
        if v.stats.state not in ("ended", "crashed", "restarting")
    )
    _, free = host.actors.resources()
    return policy.Snapshot(time.monotonic(), cameras, pool_signals(host.pools, snapshot),
                           free.get("CPU", 0.0), free.get("GPU", 0.0))


def pool_signals(pools: Mapping[str, DetectorPool],
                 snapshot: FleetSnapshot) -> tuple[policy.PoolSignal, ...]:
    return tuple(
        policy.PoolSignal(
            kind=name, target=pool.target, running=len(pool.running),
            pending=len(pool.pending),
            utilisation=view.utilisation if (view := snapshot.detectors.get(name)) else 0.0,
            service_s=view.mean_service_s if view else None, num_cpus=pool.spec.num_cpus,
            min_actors=pool.spec.min_actors, max_actors=pool.spec.max_actors,
            batch_size=pool.batch_size, max_batch_size=pool.spec.batching.max_batch_size,
            queued=view.queued if view else 0, num_gpus=pool.spec.num_gpus,
        )
        for name, pool in pools.items()
    )


def autoscale(host: Host, snapshot: FleetSnapshot) -> policy.Decision:
    """Promote ready actors, decide, apply: actors, routing, buffers; reap drained actors."""
    changed = {name for name, pool in host.pools.items() if pool.promote()}
    seen = signals(host, snapshot)
    if host.config.autoscaling.enabled:
        decision, host.policy_state = policy.decide(seen, host.policy_state,
                                                    host.config.autoscaling)
    else:
        decision = policy.disabled(seen)
    for name, target in decision.actors.items():
        if host.pools[name].resize(target):
            changed.add(name)
    for name in changed:
        route(host, name)
    for name, size in decision.batch.items():
        host.pools[name].set_batch_size(size)
    for camera in seen.cameras:
        wanted = decision.buffers.get(camera.camera, camera.buffers)
        if wanted != camera.buffers:
            host.actors.send(host.cameras[camera.camera], "set_buffers", wanted)
    reap(host)
    record(host, decision.actions)
    return decision


def route(host: Host, name: str) -> None:
    """Tell every camera of this kind which actors to send frames to, and where they run."""
    handles, nodes = host.pools[name].handles(), host.pools[name].handle_nodes()
    calls = {cid: (host.cameras[cid], "set_pool", (name, handles, nodes))
             for cid, kinds in host.kinds.items() if name in kinds and cid in host.cameras}
    for cid, outcome in host.actors.call_all(calls, CALL_TIMEOUT_S).items():
        if isinstance(outcome, BaseException):  # a restarted camera gets the pool at start
            log.warning("camera %s: routing update failed: %s", cid, outcome)


def reap(host: Host) -> None:
    """End the draining actors no camera has a frame at any more (asks every camera)."""
    host.retired = [p for p in host.retired if p.draining]
    if not any(p.draining for p in [*host.pools.values(), *host.retired]):
        return
    calls = {cid: (ref, "outstanding", ()) for cid, ref in host.cameras.items()}
    outstanding: Counter[str] = Counter()
    for counts in host.actors.call_all(calls, CALL_TIMEOUT_S).values():
        if isinstance(counts, ActorLostError):
            continue  # a dead camera's frames died with it
        if isinstance(counts, BaseException):
            return  # unknown: reap next time rather than kill an actor with frames
        outstanding.update(counts)
    for pool in [*host.pools.values(), *host.retired]:
        pool.reap(outstanding)


def record(host: Host, actions: tuple[policy.Action, ...]) -> None:
    """Count each action, keep it for the table, and append it to ``decisions.jsonl``."""
    for action in actions:
        event = {"time": round(time.time(), 3), **asdict(action)}
        host.decisions[action.key] += 1
        host.recent.append(event)
        host.decisions_file.write(json.dumps(event, separators=(",", ":")) + "\n")
        log.info("autoscale: %s %s %s -> %s (%s)", action.target, action.action,
                 action.before, action.after, action.reason)
    if actions:
        host.decisions_file.flush()
