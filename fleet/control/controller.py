"""FleetController: starts the fleet's actors from the config, gathers their stats, runs the
scaling policy on them and applies its decisions, replaces actors that die, and stops the fleet.

A plain class over :class:`fleet.control.actorsys.Actors` (``actors/controller.py`` wires it to
Ray), so its logic has unit tests with an in-process fake. Each step of the control loop catches and
logs its own exceptions: one bad camera never halts the loop. One stats path: the snapshot
``collect`` builds feeds the policy, the live table, ``stats.jsonl`` and ``/metrics`` alike.

The class holds the fleet's state and starts, restarts and stops actors. A control step's two
halves live beside it, as functions over the controller: :mod:`fleet.control.fanin` gathers the
stats (``collect``), :mod:`fleet.control.scaling` carries out the policy (``autoscale``).
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

from fleet.config import FleetConfig
from fleet.control import fanin, policy, scaling
from fleet.control.actorsys import ActorRef, Actors, Placement
from fleet.control.fanin import stats_file_every
from fleet.control.metrics import FleetMetrics
from fleet.control.pools import DetectorPool
from fleet.control.stats import FleetSnapshot, FleetStats
from fleet.errors import FleetError
from fleet.frames import CameraPlan, CameraStats
from fleet.sinks.rotation import LineLog, write_atomically

log = logging.getLogger(__name__)
START_TIMEOUT_S = 60.0
RESTART_BACKOFF_S = (1.0, 30.0)  # a camera actor that keeps dying is restarted at most this often


def fit_problem(config: FleetConfig, total: dict[str, float], free: dict[str, float]) -> str | None:
    """Why the fleet cannot start on a cluster with ``free`` resources, in words; or None.

    Counts CPUs, GPUs and custom resources, as Ray will when it places the actors."""
    used = sorted({n for c in config.active_cameras for n in c.detect})
    need: dict[str, float] = {"CPU": sum(c.num_cpus for c in config.active_cameras)}
    for camera in config.active_cameras:
        for resource, amount in camera.resources.items():
            need[resource] = need.get(resource, 0.0) + amount
    for name in used:
        spec = config.detectors[name]
        asks = {"CPU": spec.num_cpus, "GPU": spec.num_gpus, **spec.resources}
        for resource, amount in asks.items():
            need[resource] = need.get(resource, 0.0) + amount * spec.actors
    short = [r for r, n in need.items() if n > free.get(r, 0.0) + 1e-9]
    if not short:
        return None
    parts = ", ".join(f"{n}: {config.detectors[n].actors} x {config.detectors[n].num_cpus:g} CPU"
                      + (f" {config.detectors[n].num_gpus:g} GPU"
                         if config.detectors[n].num_gpus else "") for n in used)
    lacking = "; ".join(f"{need[r]:g} {_plural(r)} and the cluster has {free.get(r, 0.0):g} of "
                        f"{total.get(r, 0.0):g} free" for r in short)
    cameras = sum(c.num_cpus for c in config.active_cameras)
    return (f"the fleet needs {lacking} ({len(config.active_cameras)} camera(s): "
            f"{cameras:g} CPU; detectors {parts}). Lower cameras' num_cpus (defaults.num_cpus), "
            "detectors.<name>.actors, num_cpus or num_gpus, or add nodes")


def _plural(resource: str) -> str:
    return f"{resource}s" if resource in ("CPU", "GPU") else resource


class FleetController:
    def __init__(self, config: FleetConfig, run_dir: str, actors: Actors, lease_s: float = 0.0):
        self.config = config
        self.lease_s = lease_s  # actors end themselves when no controller called them this long
        self.final: dict[str, CameraStats] | None = None
        self.stop_lock = threading.Lock()
        self.run_dir = Path(run_dir)
        self.actors = actors
        self.pools: dict[str, DetectorPool] = {}
        self.cameras: dict[str, ActorRef] = {}
        self.kinds = {c.id: tuple(c.detect) for c in config.active_cameras}
        self.configs = {c.id: c for c in config.active_cameras}
        self.last: dict[str, CameraStats] = {}
        self.restarts: Counter[str] = Counter()
        self.restart_due: dict[str, float] = {}  # camera id -> monotonic time of its next restart
        self.camera_nodes: dict[str, str] = {}  # camera id -> the node its actor runs on
        self.frame_sizes: dict[str, tuple[int, int]] = {}  # camera id -> (w, h) it was noted at
        self.stats = FleetStats(window_s=config.autoscaling.look_back_s)
        self.latest = FleetSnapshot(time.time())
        self.policy_state = policy.PolicyState()
        self.decisions: Counter[policy.DecisionKey] = Counter()  # (action, reason, target)
        self.metrics = FleetMetrics(config.name)
        self.metrics_url: str | None = None
        self.recent: deque[dict[str, Any]] = deque(maxlen=20)
        self.lock = threading.Lock()
        self.step_lock = threading.RLock()  # a control step and a live change never interleave
        self.retired: list[DetectorPool] = []  # pools replaced by apply(), draining away
        self.removed: dict[str, CameraStats] = {}  # cameras apply() removed: their last counters
        self.aborted = threading.Event()  # set by stop(): start-up waits give up
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Open for the fleet's lifetime; closed by stop().
        rotation = config.sinks.jsonl  # stats.jsonl rotates as the events file does
        self.stats_file = LineLog(self.run_dir / "stats.jsonl", int(rotation.rotate_mb * 1e6),
                                  rotation.keep_files)
        self.decisions_file = open(self.run_dir / "decisions.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.stats_file_every_s = stats_file_every(config)
        self.stats_file_due = 0.0

    # ------------------------------------------------------------------------------------ start
    def start(self) -> None:
        """Check the fleet fits; create the cameras (not yet capturing), learn where Ray put
        them, start each pool's actors beside its cameras, wait for them, route, and only
        then start capturing."""
        problem = fit_problem(self.config, *self.actors.resources())
        if problem:
            raise FleetError(problem)
        self._serve_metrics()
        for i, camera in enumerate(self.config.active_cameras):
            self.cameras[camera.id] = self._start_camera(camera.id, i, None)
        try:
            self._learn_camera_nodes()
            for name in sorted({n for kinds in self.kinds.values() for n in kinds}):
                spec = self.config.detectors[name]
                self.pools[name] = DetectorPool(name, spec, self.actors, self.lease_s)
            self._place_by_cameras()
            for pool in self.pools.values():
                pool.start(pool.spec.actors)
            self._wait_ready()
        except BaseException:
            for ref in self.cameras.values():  # nothing of a fleet that did not start stays
                self.actors.kill(ref)
            raise
        for name in self.pools:
            self._route(name)
        outcomes = self.actors.call_all(
            {cid: (ref, "start", ()) for cid, ref in self.cameras.items()}, START_TIMEOUT_S)
        for cid, outcome in outcomes.items():
            if isinstance(outcome, BaseException):  # that camera restarts; the others run
                log.error("camera %s: did not start: %s", cid, outcome)

    def _learn_camera_nodes(self) -> None:
        outcomes = self.actors.call_all(
            {cid: (ref, "info", ()) for cid, ref in self.cameras.items()}, START_TIMEOUT_S)
        for cid, outcome in outcomes.items():
            if isinstance(outcome, dict) and outcome.get("node"):
                self.camera_nodes[cid] = str(outcome["node"])

    def _start_camera(self, cid: str, offset: int, resume: CameraStats | None) -> ActorRef:
        camera = self.configs[cid]
        pools = {name: self.pools.get(name) for name in camera.detect}  # none yet at start-up
        routes = {name: pool.handles() if pool else [] for name, pool in pools.items()}
        nodes = {name: pool.handle_nodes() if pool else [] for name, pool in pools.items()}
        plan = CameraPlan(camera, self.config.sinks, str(self.run_dir), offset, resume,
                          self.lease_s, self.config.name)
        return self.actors.start_camera(cid, (plan, routes, nodes), Placement(
            num_cpus=camera.num_cpus, resources=dict(camera.resources)))

    def _restart_camera(self, cid: str, why: BaseException) -> None:
        """Replace a dead camera actor; its counters go on from what we last saw of it."""
        now = time.monotonic()
        due = self.restart_due.get(cid)
        if due is not None and now < due:
            return
        self.restarts[cid] += 1
        delay = min(RESTART_BACKOFF_S[1], RESTART_BACKOFF_S[0] * 2 ** (self.restarts[cid] - 1))
        self.restart_due[cid] = now + delay
        log.error("camera %s: actor died (%s); restarting it (restart %d)", cid, why,
                  self.restarts[cid])
        self.actors.kill(self.cameras[cid])
        self.camera_nodes.pop(cid, None)  # its node may be gone: placement waits for the new one
        offset = list(self.kinds).index(cid)
        self.cameras[cid] = ref = self._start_camera(cid, offset, self.last.get(cid))
        self.actors.send(ref, "start")

    def _place_by_cameras(self) -> bool:
        """Tell each pool where its cameras are (from their stats), so new actors go beside
        them. True if a camera's node changed (it started, or restarted elsewhere)."""
        demand: dict[str, dict[str, float]] = {name: {} for name in self.pools}
        for cid, node in self.camera_nodes.items():
            for name in self.kinds.get(cid, ()):
                if name in demand:
                    demand[name][node] = demand[name].get(node, 0.0) + 1.0
        changed = False
        for name, pool in self.pools.items():
            changed |= pool.demand != demand[name]
            pool.demand = demand[name]
        return changed

    # ------------------------------------------------------------------------------------ adopt
    def adopt(self) -> None:
        """Take over the actors an earlier life of this controller started (it crashed and Ray
        restarted it): cameras go on capturing meanwhile; what is missing is started anew."""
        self._serve_metrics()
        found = self.actors.adopt()
        log.warning("controller: restarted; adopting %d running actor(s)", len(found))
        used = sorted({n for kinds in self.kinds.values() for n in kinds})
        for name in used:
            self.pools[name] = DetectorPool(name, self.config.detectors[name], self.actors,
                                            self.lease_s)
        for ref in found:
            if ref.role == "detector" and ref.name in self.pools:
                self.pools[ref.name].pending.append(ref)
            elif ref.role == "camera" and ref.name in self.configs and ref.name not in self.cameras:
                self.cameras[ref.name] = ref
            else:  # no longer in the fleet, or a second actor for one camera
                self.actors.kill(ref)
        for pool in self.pools.values():
            pool.promote(timeout_s=5.0)
            if not pool.target:
                pool.start(pool.spec.actors)
        for i, cid in enumerate(self.configs):
            if cid not in self.cameras:
                self.cameras[cid] = self._start_camera(cid, i, None)
                self.actors.send(self.cameras[cid], "start")
        for name in self.pools:
            self._route(name)

    def _serve_metrics(self) -> None:
        settings = self.config.metrics
        if not settings.enabled:
            return
        try:
            self.metrics_url = self.metrics.serve(settings.host, settings.port)
        except OSError as exc:  # a busy port must not stop the cameras
            log.error("metrics: cannot listen on %s:%d (%s); set metrics.port (0 picks a free "  # noqa: TRY400 - the cause is in the message
                      "one) or metrics.enabled: false", settings.host, settings.port, exc.strerror)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while any(p.pending for p in self.pools.values()) and time.monotonic() < deadline:
            if self.aborted.is_set():
                raise FleetError("start-up was interrupted")
            for pool in self.pools.values():
                pool.promote(timeout_s=0.2)
        short = [p for p in self.pools.values() if not p.running]
        failed = [p for p in short if p.last_error]
        if failed:  # an actor's constructor raised: a bad model file, a provider missing, ...
            raise FleetError("; ".join(f"detector {p.name} could not start: {p.last_error}"
                                       for p in failed))
        if short:
            _, free = self.actors.resources()
            raise FleetError(
                f"detector pool(s) {', '.join(p.name for p in short)} did not start within "
                f"{START_TIMEOUT_S:g} s (the cluster has {free.get('CPU', 0.0):g} CPU free); "
                "lower detectors.<name>.actors or num_cpus, or add nodes"
            )

    # ------------------------------------------------------------------- collect and autoscale
    # Carried out by fleet.control.fanin and fleet.control.scaling: these are their entries.
    def collect(self) -> FleetSnapshot:
        """Gather every actor's stats once; replace actors that turn out to be dead."""
        return fanin.collect(self)

    def signals(self, snapshot: FleetSnapshot) -> policy.Snapshot:
        """What the policy sees: the same figures as the table, per camera and per pool."""
        return scaling.signals(self, snapshot)

    def autoscale(self, snapshot: FleetSnapshot) -> policy.Decision:
        """Promote ready actors, decide, apply: actors, routing, buffers; reap drained actors."""
        return scaling.autoscale(self, snapshot)

    def _route(self, name: str) -> None:
        scaling.route(self, name)

    def _reap(self) -> None:
        scaling.reap(self)

    # ------------------------------------------------------------------------------------- loop
    def step(self) -> None:
        started = time.monotonic()
        with self.step_lock:
            snapshot = self.collect()
            self.autoscale(snapshot)
        self.metrics.loop.observe(time.monotonic() - started)

    # ------------------------------------------------------------------------------------ apply
    def apply(self, new: FleetConfig) -> list[str]:
        """Change the running fleet to ``new`` (:mod:`fleet.control.changes`); returns what
        changed."""
        from fleet.control import changes

        problem = changes.refusal(self.config, new)
        if problem:
            raise FleetError(problem)
        with self.step_lock:
            return changes.apply(self, new)

    def retire(self, pool: DetectorPool) -> None:
        """Every actor of ``pool`` drains: it leaves the routing, and is reaped when done."""
        pool.resize(0)
        self.retired.append(pool)

    def stop_camera(self, cid: str) -> CameraStats:
        """Drain one camera as at stop and end its actor; its last counters."""
        ref = self.cameras.pop(cid)
        try:
            final: CameraStats = self.actors.call(ref, "stop", self.config.drain_timeout_s,
                                                  timeout_s=self.config.drain_timeout_s + 20)
        except FleetError as exc:
            log.error("camera %s: did not stop cleanly: %s", cid, exc)  # noqa: TRY400 - expected
            last = self.last.get(cid)
            final = lost_with_actor(last, "crashed") if last else CameraStats(
                cid, "crashed", 0, 0, 0, 0, 0, {}, 0, 0, 0, 0, 0, 0, {})
        self.actors.kill(ref)
        self.last[cid] = final
        self.camera_nodes.pop(cid, None)
        return final

    def start_camera(self, cid: str, resume: CameraStats | None) -> None:
        """Start one camera of ``self.configs`` (capturing at once)."""
        self.cameras[cid] = self._start_camera(cid, list(self.kinds).index(cid), resume)
        self.actors.send(self.cameras[cid], "start")

    def route(self, name: str) -> None:
        self._route(name)

    def keep_leases(self) -> None:
        """Renew every actor's lease while a long change holds the loop (no stats taken)."""
        for ref in list(self.cameras.values()):
            self.actors.send(ref, "keepalive")
        for pool in [*self.pools.values(), *self.retired]:
            for actor in pool.live():
                self.actors.send(actor, "keepalive")

    def after_apply(self) -> None:
        """What follows the new config: the stats file's spacing, the look-back window."""
        self.stats_file_every_s = stats_file_every(self.config)
        self.stats.window_s = self.config.autoscaling.look_back_s
        self.metrics.forget_cameras(self.configs)  # a removed camera's series end with it

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
        """Drain every camera (in-flight frames finish or are counted), end all actors, write
        ``summary.json``. Idempotent: a second call waits for the first and returns its result."""
        self.aborted.set()
        with self.stop_lock:
            if self.final is None:
                self.final = self._stop()
            return self.final

    def _stop(self) -> dict[str, CameraStats]:
        calls = {cid: (ref, "stop", (self.config.drain_timeout_s,))
                 for cid, ref in self.cameras.items()}
        # a camera's stop returns within drain_timeout_s + fleet.pipeline.camera.STOP_BOUND_S (12 s)
        outcomes = self.actors.call_all(calls, self.config.drain_timeout_s + 20)
        final: dict[str, CameraStats] = {}
        for cid, outcome in outcomes.items():
            if isinstance(outcome, CameraStats):
                final[cid] = outcome
                continue
            log.error("camera %s: did not stop cleanly: %s", cid, type(outcome).__name__)
            last = self.last.get(cid)
            if last is not None:  # what it had in flight is lost with it
                final[cid] = lost_with_actor(last, "crashed")
        for ref in self.cameras.values():
            self.actors.kill(ref)
        for pool in [*self.pools.values(), *self.retired]:
            pool.stop()
        final = {**self.removed, **final}  # cameras removed on the way were part of the run
        counters = {cid: {k: v for k, v in asdict(s).items() if k != "latency_s"}
                    for cid, s in final.items()}
        with self.lock:
            if not self.stats_file.closed:
                record = {"time": round(time.time(), 3), "final": counters}
                self.stats_file.write(record)
                self.stats_file.close()
                self.decisions_file.close()
        try:  # a reader (the report, a second `camfleet run` summary) never sees half of it
            write_atomically(self.run_dir / "summary.json", json.dumps(counters, indent=2) + "\n")
        except OSError as error:  # a full disk: said plainly, no traceback
            log.warning("summary.json could not be written (%s); the final counters are in the "
                        "last line of stats.jsonl, if that could be", error.strerror or error)
        self.metrics.close()
        return final


def lost_with_actor(last: CameraStats, state: str) -> CameraStats:
    """A camera's last counters with the frames it had in flight counted as lost with it."""
    dropped = dict(last.dropped)
    if last.in_flight:
        dropped["camera_lost"] = dropped.get("camera_lost", 0) + last.in_flight
    return replace(last, state=state, in_flight=0, slots_used=0, dropped=dropped, latency_s=(),
                   outstanding={})
