"""Stats fan-in: every actor's stats gathered once per control step into one
:class:`~fleet.control.stats.FleetSnapshot`, which feeds the policy, the live table,
``stats.jsonl`` and ``/metrics`` alike. A camera found dead or stuck here is handed to the
controller to restart; a dead or silent detector actor to its pool.

Functions over :class:`Host`, the part of :class:`fleet.control.controller.FleetController`
they use, so nothing here imports back up; ``FleetController.collect`` calls :func:`collect`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import replace
from typing import Any, Protocol

from fleet.config import CameraConfig, FleetConfig
from fleet.control import policy
from fleet.control.actorsys import ActorRef, Actors
from fleet.control.metrics import FleetMetrics
from fleet.control.pools import DetectorPool
from fleet.control.scaling import pool_signals
from fleet.control.stats import DetectorView, FleetSnapshot, FleetStats
from fleet.errors import ActorLostError, ActorTimeoutError, FleetError
from fleet.frames import CameraStats
from fleet.pipeline import facesize
from fleet.sinks.rotation import LineLog

# Logs as the controller it is part of: the same logger name as before the split, for filters
log = logging.getLogger("fleet.control.controller")


class Host(Protocol):
    """What of the controller the fan-in reads, and (``latest``, ``stats_file_due``) replaces."""

    config: FleetConfig
    actors: Actors
    cameras: dict[str, ActorRef]
    configs: dict[str, CameraConfig]
    kinds: dict[str, tuple[str, ...]]
    pools: dict[str, DetectorPool]
    last: dict[str, CameraStats]
    restart_due: dict[str, float]
    camera_nodes: dict[str, str]
    frame_sizes: dict[str, tuple[int, int]]
    stats: FleetStats
    metrics: FleetMetrics
    latest: FleetSnapshot
    decisions: Counter[policy.DecisionKey]
    recent: deque[dict[str, Any]]
    lock: threading.Lock
    stats_file: LineLog
    stats_file_due: float
    stats_file_every_s: float

    def _place_by_cameras(self) -> bool: ...

    def _restart_camera(self, cid: str, why: BaseException) -> None: ...

    def _route(self, name: str) -> None: ...


def collect(host: Host) -> FleetSnapshot:
    """Gather every actor's stats once; replace actors that turn out to be dead."""
    now = time.time()
    snapshot = FleetSnapshot(now)
    timeout = host.config.stats_interval_s * 2
    outcomes = host.actors.call_all(
        {cid: (ref, "stats", ()) for cid, ref in host.cameras.items()}, timeout)
    for cid, outcome in outcomes.items():
        stats = _camera_outcome(host, cid, outcome)
        if stats is not None:
            snapshot.cameras[cid] = host.stats.update_camera(stats)
            host.metrics.observe_camera(stats)
            if stats.node:
                host.camera_nodes[cid] = stats.node
            _note_frame_size(host, cid, stats)
    host._place_by_cameras()
    for name, pool in host.pools.items():
        snapshot.detectors[name] = _collect_pool(host, name, pool, snapshot, now)
    snapshot.actions = list(host.recent)
    # every decision these pools and cameras can see, at 0 until it is taken
    possible = policy.possible_actions(pool_signals(host.pools, snapshot), host.kinds)
    host.metrics.update(snapshot, host.decisions, possible)
    with host.lock:
        host.latest = snapshot
        due = now >= host.stats_file_due
        if due and not host.stats_file.closed:
            host.stats_file_due = now + host.stats_file_every_s - 0.05
            host.stats_file.write(snapshot.record())
    return snapshot


def _note_frame_size(host: Host, cid: str, stats: CameraStats) -> None:
    """Once a camera's stats carry its frame size (its first frame), and again if it
    changes: the faces its detectors are likely to miss at that size
    (:mod:`fleet.pipeline.facesize`). Here because the controller holds the detector configs."""
    size = (stats.width, stats.height)
    camera = host.configs.get(cid)
    if camera is None or not all(size) or host.frame_sizes.get(cid) == size:
        return
    host.frame_sizes[cid] = size
    for note in facesize.face_notes(camera, host.config.detectors, *size):
        log.warning("%s", note)


def _collect_pool(host: Host, name: str, pool: DetectorPool, snapshot: FleetSnapshot,
                  now: float) -> DetectorView:
    live = pool.live()
    outcomes = host.actors.call_all({a.id: (a, "stats", ()) for a in live},
                                    host.config.stats_interval_s)
    results = [o for o in outcomes.values() if not isinstance(o, BaseException)]
    lost = [k for k, o in outcomes.items() if isinstance(o, ActorLostError)]
    silent = [k for k, o in outcomes.items()
              if isinstance(o, BaseException) and not isinstance(o, ActorLostError)]
    if pool.health([k for k in outcomes if k not in lost and k not in silent], lost, silent):
        host._route(name)
    view = host.stats.update_detectors(name, results, now)
    host.metrics.observe_detectors(name, results)
    view.target, view.running = pool.target, len(pool.running)
    view.pending, view.draining = len(pool.pending), len(pool.draining)
    view.queued = _queued(pool, snapshot)
    return view


def _queued(pool: DetectorPool, snapshot: FleetSnapshot) -> int:
    """Frames at the pool's actors beyond the one each is working on."""
    ids = {a.id for a in pool.live()}
    at_pool = sum(n for v in snapshot.cameras.values()
                  for a, n in v.stats.outstanding.items() if a in ids)
    return max(0, at_pool - len(ids))


def _camera_outcome(host: Host, cid: str, outcome: Any) -> CameraStats | None:
    """A camera's stats call, read: its stats, or what we last saw of it while it restarts."""
    if isinstance(outcome, CameraStats):
        host.last[cid] = outcome
        watchdog_s = host.configs[cid].watchdog_s
        if outcome.stuck_s > watchdog_s:  # told apart from waiting on downstream: see Camera
            host._restart_camera(cid, FleetError(
                f"capture stuck inside the source for {outcome.stuck_s:.0f} s "
                f"(watchdog_s {watchdog_s:g})"))
            return replace(outcome, state="restarting", latency_s=())
        host.restart_due.pop(cid, None)
        return outcome
    last = host.last.get(cid)
    if isinstance(outcome, ActorLostError):
        host._restart_camera(cid, outcome)
        return replace(last, state="restarting", latency_s=()) if last else None
    if not isinstance(outcome, ActorTimeoutError):
        log.error("camera %s: stats failed: %s", cid, outcome)
    return replace(last, latency_s=()) if last else None


def stats_file_every(config: FleetConfig) -> float:
    """Seconds between stats.jsonl lines: a line holds every camera (about 300 bytes each)."""
    if config.stats_file_interval_s is not None:
        return config.stats_file_interval_s
    extra = max(0, len(config.active_cameras) - 100) / 100
    return config.stats_interval_s + extra
