"""FleetController: starts the fleet's actors from the config, gathers their stats, runs the
scaling policy on them and applies its decisions, and stops the fleet.

A plain class; ``actors/controller.py`` makes it a Ray actor and injects the camera and detector
actor classes, so imports flow one way (actors -> fleet). Each step of the control loop catches
and logs its own exceptions: one bad camera never halts the loop. One stats path: the snapshot
``collect`` builds feeds the policy, the live table and ``stats.jsonl`` alike.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from fleet import policy
from fleet.config import FleetConfig
from fleet.errors import FleetError
from fleet.frames import CameraStats
from fleet.handoff import actor_id
from fleet.metrics import FleetMetrics
from fleet.pools import DetectorPool
from fleet.stats import FleetSnapshot, FleetStats

log = logging.getLogger(__name__)
START_TIMEOUT_S = 120.0


class FleetController:
    def __init__(self, config: FleetConfig, run_dir: str, camera_actor: Any, detector_actor: Any):
        self.config = config
        self.run_dir = Path(run_dir)
        self.camera_actor = camera_actor
        self.detector_actor = detector_actor
        self.pools: dict[str, DetectorPool] = {}
        self.cameras: dict[str, Any] = {}
        self.kinds = {c.id: tuple(c.detect) for c in config.active_cameras}
        self.last: dict[str, CameraStats] = {}
        self.stats = FleetStats(window_s=config.autoscaling.look_back_s)
        self.latest = FleetSnapshot(time.time())
        self.policy_state = policy.PolicyState()
        self.decisions: Counter[tuple[str, str, str]] = Counter()  # (action, reason, target)
        self.metrics = FleetMetrics(config.name)
        self.metrics_url: str | None = None
        self.recent: deque[dict] = deque(maxlen=20)
        self.lock = threading.Lock()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Open for the fleet's lifetime; closed by stop().
        self.stats_file = open(self.run_dir / "stats.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.decisions_file = open(self.run_dir / "decisions.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    # ------------------------------------------------------------------------------------ start
    def start(self) -> None:
        self._serve_metrics()
        used = {name for kinds in self.kinds.values() for name in kinds}
        for name in sorted(used):
            spec = self.config.detectors[name]
            self.pools[name] = DetectorPool(name, spec, self.detector_actor)
            self.pools[name].start(spec.actors)
        self._wait_ready()
        for i, camera in enumerate(self.config.active_cameras):
            routes = {name: list(self.pools[name].running) for name in camera.detect}
            handle = self.camera_actor.options(num_cpus=camera.num_cpus).remote(
                camera, routes, self.config.sinks, str(self.run_dir), i
            )
            self.cameras[camera.id] = handle
        ray.get([h.start.remote() for h in self.cameras.values()], timeout=START_TIMEOUT_S)

    def _serve_metrics(self) -> None:
        settings = self.config.metrics
        if not settings.enabled:
            return
        try:
            self.metrics_url = self.metrics.serve(settings.host, settings.port)
        except OSError as exc:  # a busy port must not stop the cameras
            log.error("metrics: cannot listen on %s:%d (%s); set metrics.port (0 picks a free "
                      "one) or metrics.enabled: false", settings.host, settings.port, exc.strerror)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while any(p.pending for p in self.pools.values()) and time.monotonic() < deadline:
            for pool in self.pools.values():
                pool.promote(timeout_s=0.2)
        short = [p.name for p in self.pools.values() if p.pending or not p.running]
        if short:
            free = ray.available_resources().get("CPU", 0)
            raise FleetError(
                f"detector pool(s) {', '.join(short)} did not start within {START_TIMEOUT_S:g} s; "
                f"the cluster has {free:g} CPU free. Lower detectors.<name>.actors or num_cpus, "
                "or add nodes"
            )

    # ---------------------------------------------------------------------------------- collect
    def collect(self) -> FleetSnapshot:
        """Gather every actor's stats once."""
        now = time.time()
        snapshot = FleetSnapshot(now)
        refs = {cid: h.stats.remote() for cid, h in self.cameras.items()}
        ray.wait(list(refs.values()), num_returns=len(refs), timeout=self.config.stats_interval_s * 2)
        for cid, ref in refs.items():
            stats = self._get_stats(cid, ref)
            if stats is not None:
                snapshot.cameras[cid] = self.stats.update_camera(stats)
                self.metrics.observe_camera(stats)
        for name, pool in self.pools.items():
            results = []
            for handle in pool.actors():
                try:
                    results.append(ray.get(handle.stats.remote(), timeout=self.config.stats_interval_s))
                except (RayActorError, GetTimeoutError) as exc:
                    log.warning("detector %s: no stats: %s", name, type(exc).__name__)
            view = self.stats.update_detectors(name, results, now)
            self.metrics.observe_detectors(name, results)
            view.target, view.running = pool.target, len(pool.running)
            view.pending, view.draining = len(pool.pending), len(pool.draining)
            view.queued = self._queued(pool, snapshot)
            snapshot.detectors[name] = view
        snapshot.actions = list(self.recent)
        self.metrics.update(snapshot, self.decisions)
        with self.lock:
            self.latest = snapshot
            self.stats_file.write(json.dumps(snapshot.record(), separators=(",", ":")) + "\n")
            self.stats_file.flush()
        return snapshot

    @staticmethod
    def _queued(pool: DetectorPool, snapshot: FleetSnapshot) -> int:
        """Frames at the pool's actors beyond the one each is working on."""
        ids = {actor_id(h) for h in pool.actors()}
        at_pool = sum(n for v in snapshot.cameras.values() for a, n in v.stats.outstanding.items() if a in ids)
        return max(0, at_pool - len(ids))

    def _get_stats(self, cid: str, ref: Any) -> CameraStats | None:
        try:
            stats = ray.get(ref, timeout=0)
        except GetTimeoutError:
            return None
        except RayActorError as exc:
            last = self.last.get(cid)
            log.error("camera %s: actor died: %s", cid, exc)
            stats = replace(last, state="crashed", latency_s=()) if last else None
        if stats is not None:
            self.last[cid] = stats
        return stats

    # -------------------------------------------------------------------------------- autoscale
    def signals(self, snapshot: FleetSnapshot) -> policy.Snapshot:
        """What the policy sees: the same figures as the table, per camera and per pool."""
        cameras = tuple(
            policy.CameraSignal(cid, self.kinds[cid], v.offered_fps, v.hit_rate, v.p95_ms, v.stats.buffers)
            for cid, v in snapshot.cameras.items() if v.stats.state not in ("ended", "crashed")
        )
        pools = tuple(
            policy.PoolSignal(
                kind=name, target=pool.target, running=len(pool.running), pending=len(pool.pending),
                utilisation=view.utilisation if (view := snapshot.detectors.get(name)) else 0.0,
                service_s=view.mean_service_s if view else None, num_cpus=pool.spec.num_cpus,
                min_actors=pool.spec.min_actors, max_actors=pool.spec.max_actors,
            )
            for name, pool in self.pools.items()
        )
        free = ray.available_resources().get("CPU", 0.0)
        return policy.Snapshot(time.monotonic(), cameras, pools, free)

    def autoscale(self, snapshot: FleetSnapshot) -> policy.Decision:
        """Promote ready actors, decide, apply: actors, routing, buffers; reap drained actors."""
        changed = {name for name, pool in self.pools.items() if pool.promote()}
        signals = self.signals(snapshot)
        if self.config.autoscaling.enabled:
            decision, self.policy_state = policy.decide(signals, self.policy_state, self.config.autoscaling)
        else:
            decision = policy.disabled(signals)
        for name, target in decision.actors.items():
            if self.pools[name].resize(target):
                changed.add(name)
        for name in changed:
            self._route(name)
        for camera in signals.cameras:
            wanted = decision.buffers.get(camera.camera, camera.buffers)
            if wanted != camera.buffers:
                self.cameras[camera.camera].set_buffers.remote(wanted)
        self._reap()
        self._record(decision.actions)
        return decision

    def _route(self, name: str) -> None:
        """Tell every camera of this kind which actors to send frames to (ordered calls)."""
        running = list(self.pools[name].running)
        ray.get([self.cameras[cid].set_pool.remote(name, running)
                 for cid, kinds in self.kinds.items() if name in kinds and cid in self.cameras])

    def _reap(self) -> None:
        if not any(p.draining for p in self.pools.values()):
            return
        outstanding: Counter[str] = Counter()
        for counts in ray.get([h.outstanding.remote() for h in self.cameras.values()]):
            outstanding.update(counts)
        for pool in self.pools.values():
            pool.reap(outstanding)

    def _record(self, actions: tuple[policy.Action, ...]) -> None:
        for action in actions:
            event = {"time": round(time.time(), 3), **asdict(action)}
            self.decisions[(action.action, action.reason, action.target)] += 1
            self.recent.append(event)
            self.decisions_file.write(json.dumps(event, separators=(",", ":")) + "\n")
            log.info("autoscale: %s %s %s -> %s (%s)", action.target, action.action,
                     action.before, action.after, action.reason)
        if actions:
            self.decisions_file.flush()

    # ------------------------------------------------------------------------------------- loop
    def step(self) -> None:
        started = time.monotonic()
        snapshot = self.collect()
        self.autoscale(snapshot)
        self.metrics.loop.observe(time.monotonic() - started)

    def run(self, stop: threading.Event) -> None:
        """The control loop: one step every ``stats_interval_s`` until ``stop`` is set."""
        while not stop.wait(self.config.stats_interval_s):
            try:
                self.step()
            except Exception:  # the loop must outlive any one bad step
                log.exception("controller: control step failed")

    def ended(self) -> bool:
        """True when every camera has finished its source (files with loop: false)."""
        views = self.latest.cameras
        return bool(views) and len(views) == len(self.cameras) and all(
            v.stats.state in ("ended", "crashed") for v in views.values()
        )

    # ------------------------------------------------------------------------------------- stop
    def stop(self) -> dict[str, CameraStats]:
        """Drain every camera (in-flight frames finish or are counted), then end all actors."""
        timeout = self.config.drain_timeout_s + 30
        refs = {cid: h.stop.remote(self.config.drain_timeout_s) for cid, h in self.cameras.items()}
        final: dict[str, CameraStats] = {}
        for cid, ref in refs.items():
            try:
                final[cid] = ray.get(ref, timeout=timeout)
            except (RayActorError, GetTimeoutError) as exc:
                log.error("camera %s: did not stop cleanly: %s", cid, type(exc).__name__)
                last = self.last.get(cid)
                if last is not None:
                    final[cid] = replace(last, state="crashed")
        for handle in self.cameras.values():
            ray.kill(handle)
        for pool in self.pools.values():
            pool.stop()
        with self.lock:
            counters = {cid: {k: v for k, v in asdict(s).items() if k != "latency_s"}
                        for cid, s in final.items()}
            record = {"time": round(time.time(), 3), "final": counters}
            self.stats_file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.stats_file.close()
            self.decisions_file.close()
        self.metrics.close()
        return final
