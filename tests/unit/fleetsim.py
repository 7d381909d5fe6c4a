"""A discrete-event fleet simulator for the scaling policy: fake clock, no Ray, no sleeps.

It models what ``fleet.control.policy.decide`` reacts to, at the grain the controller sees it:

- **cameras** offer frames at a rate that is a function of time (:func:`steps` models a load
  step), optionally with I-frame pauses (:class:`Pause`: nothing for ``pause_s``, then the missed
  frames at once) or bursts (:class:`Burst`: ``frames`` extra frames at once every ``every_s``).
  Each camera has ``buffers`` in-flight slots with drop_newest semantics: a frame offered with no
  free slot is dropped and counted. A frame holds its slot until every detector kind it goes to
  has answered.
- **detector pools**, one per kind: actors that serve one frame at a time from their own FIFO;
  each frame goes to the running actor with the fewest outstanding frames (ties round-robin, as in
  actors/handoff.py). Service times are lognormal around ``service_s``. A new actor is pending until
  the cluster has ``num_cpus`` free for it and then for ``start_delay_s``; a removed actor takes no
  new frames, finishes its queue and only then gives its CPUs back.
- **the controller**: every ``interval_s`` it builds a :class:`fleet.control.policy.Snapshot` from
  the last ``look_back_s`` (offered fps, hit-rate, p95 capture-to-result latency, utilisation
  busy/wall of the running actors, mean service time, free CPUs), calls ``decide`` and applies the
  decision.

Not modelled: the fps limiter and motion gate (every frame a camera produces is offered), frame
transfer and object store time, actor failures, stats arriving late, multi-node placement.

    >>> from fleet.config import AutoscalingConfig
    >>> spec = SimSpec(cameras=(CameraSpec("cam", steps((0, 5.0))),),
    ...                pools=(PoolSpec("person", service_s=0.1),),
    ...                autoscaling=AutoscalingConfig())
    >>> sim = FleetSim(spec)
    >>> ticks = sim.run(30.0)
    >>> ticks[-1].actors["person"], sim.balanced()
    (1, True)
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleet.config import AutoscalingConfig
from fleet.control.policy import (
    Action,
    CameraSignal,
    Decision,
    PolicyState,
    PoolSignal,
    Snapshot,
    decide,
    disabled,
)

Rate = Callable[[float], float]  # frames per second at a simulated time
_IDLE_POLL_S = 0.1  # a camera at 0 fps looks again this often


def steps(*points: tuple[float, float]) -> Rate:
    """A step function: ``steps((0, 5), (60, 15))`` is 5 fps until t=60 s, then 15 fps."""
    ordered = sorted(points)

    def rate(t: float) -> float:
        fps = 0.0
        for at, value in ordered:
            if t >= at:
                fps = value
        return fps

    return rate


@dataclass(frozen=True)
class Pause:
    """I-frame pause: from every ``k * every_s`` (k >= 1), no frames for ``pause_s``; then the
    frames due meanwhile arrive back-to-back (at the same instant)."""

    every_s: float
    pause_s: float


@dataclass(frozen=True)
class Burst:
    """``frames`` extra frames at once every ``every_s`` (first at ``every_s``)."""

    every_s: float
    frames: int


@dataclass(frozen=True)
class CameraSpec:
    name: str
    fps: Rate
    kinds: tuple[str, ...] = ("person",)
    buffers: int = 4  # as CameraSettings.buffers
    pause: Pause | None = None
    burst: Burst | None = None


@dataclass(frozen=True)
class PoolSpec:
    kind: str
    service_s: float  # mean service time per frame
    jitter: float = 0.25  # sigma of the lognormal service time
    actors: int = 1  # ready at t=0
    min_actors: int = 1
    max_actors: int = 8
    num_cpus: float = 1.0
    start_delay_s: float = 2.0  # from getting its CPUs to ready


@dataclass(frozen=True)
class SimSpec:
    cameras: tuple[CameraSpec, ...]
    pools: tuple[PoolSpec, ...]
    autoscaling: AutoscalingConfig
    cpu_budget: float = 64.0
    interval_s: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class Ledger:
    """One camera's frame accounting at a tick."""

    captured: int
    processed: int
    dropped: int
    in_flight: int

    @property
    def balanced(self) -> bool:
        return self.captured == self.processed + self.dropped + self.in_flight


@dataclass(frozen=True)
class Tick:
    """What the controller saw and did at one interval."""

    time: float
    snapshot: Snapshot
    decision: Decision
    ledgers: dict[str, Ledger]
    claimed_cpus: float  # CPUs held by actors (pending, running, draining) after the decision

    @property
    def actions(self) -> tuple[Action, ...]:
        return self.decision.actions

    @property
    def actors(self) -> dict[str, int]:
        return self.decision.actors

    @property
    def buffers(self) -> dict[str, int]:
        return self.decision.buffers

    def camera(self, name: str) -> CameraSignal:
        return next(c for c in self.snapshot.cameras if c.camera == name)

    def pool(self, kind: str) -> PoolSignal:
        return next(p for p in self.snapshot.pools if p.kind == kind)

    @property
    def offered_fps(self) -> float:
        return sum(c.offered_fps for c in self.snapshot.cameras)


# ------------------------------------------------------------------------------------ internals
@dataclass
class _Frame:
    camera: _Camera
    captured: float
    waiting: int  # detector kinds still to answer


@dataclass
class _Camera:
    spec: CameraSpec
    buffers: int
    captured: int = 0
    processed: int = 0
    dropped: int = 0
    in_flight: int = 0
    held: int = 0  # frames due during a pause
    offers: deque[tuple[float, bool]] = field(default_factory=deque)  # (time, admitted)
    latencies: deque[tuple[float, float]] = field(default_factory=deque)  # (done, seconds)

    def ledger(self) -> Ledger:
        return Ledger(self.captured, self.processed, self.dropped, self.in_flight)


@dataclass
class _Actor:
    pool: _Pool
    state: str = "waiting"  # waiting (for CPUs) | starting | running | draining | gone
    ready_at: float = 0.0
    queue: deque[_Frame] = field(default_factory=deque)
    current: _Frame | None = None  # the frame being served
    busy: deque[tuple[float, float]] = field(default_factory=deque)  # service intervals

    @property
    def outstanding(self) -> int:
        return len(self.queue) + (self.current is not None)


@dataclass
class _Pool:
    spec: PoolSpec
    actors: list[_Actor] = field(default_factory=list)
    backlog: deque[_Frame] = field(default_factory=deque)  # sent while no actor was running
    services: deque[tuple[float, float]] = field(default_factory=deque)  # (done, seconds)
    rotation: itertools.count[int] = field(default_factory=itertools.count)

    def live(self, *states: str) -> list[_Actor]:
        return [a for a in self.actors if a.state in states]


class FleetSim:
    """Runs the fleet on a fake clock; ``run`` returns the controller's timeline."""

    def __init__(self, spec: SimSpec, policy: bool = True):
        self.spec = spec
        self.policy = policy  # False: autoscaling.enabled is false, ``disabled()`` decides
        self.config = spec.autoscaling
        self.rng = np.random.default_rng(spec.seed)
        self.now = 0.0
        self.events: list[tuple[float, int, str, object]] = []
        self.seq = itertools.count()
        self.state = PolicyState()
        self.timeline: list[Tick] = []
        self.cameras = [_Camera(c, c.buffers) for c in spec.cameras]
        self.pools = {p.kind: _Pool(p) for p in spec.pools}
        for pool in self.pools.values():
            for _ in range(pool.spec.actors):
                pool.actors.append(_Actor(pool, "running"))
        for cam in self.cameras:
            self._at(0.0, "arrive", cam)
            if cam.spec.burst:
                self._at(cam.spec.burst.every_s, "burst", cam)
        self._at(spec.interval_s, "tick", None)

    # ------------------------------------------------------------------------------ public
    def run(self, until_s: float) -> list[Tick]:
        """Advance the clock to ``until_s``; returns the whole timeline so far."""
        handlers: dict[str, Callable[[object], None]] = {
            "arrive": self._arrive, "release": self._release, "burst": self._burst,
            "done": self._done, "ready": self._ready, "tick": self._tick,
        }
        while self.events and self.events[0][0] <= until_s:
            self.now, _, kind, subject = heapq.heappop(self.events)
            handlers[kind](subject)
        self.now = until_s
        return self.timeline

    def ledgers(self) -> dict[str, Ledger]:
        return {c.spec.name: c.ledger() for c in self.cameras}

    def balanced(self) -> bool:
        """Every frame accounted for, and the in-flight count matches the frames in the system."""
        live: dict[str, int] = {c.spec.name: 0 for c in self.cameras}
        seen: set[int] = set()
        for pool in self.pools.values():
            queued = itertools.chain(pool.backlog, *(a.queue for a in pool.actors),
                                     (a.current for a in pool.actors if a.current))
            for frame in queued:
                if id(frame) not in seen:
                    seen.add(id(frame))
                    live[frame.camera.spec.name] += 1
        return all(c.ledger().balanced and live[c.spec.name] == c.in_flight for c in self.cameras)

    # ------------------------------------------------------------------------------ cameras
    def _at(self, t: float, kind: str, subject: object) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, subject))

    def _arrive(self, cam: object) -> None:
        assert isinstance(cam, _Camera)
        fps = cam.spec.fps(self.now)
        if fps <= 0:
            self._at(self.now + _IDLE_POLL_S, "arrive", cam)
            return
        self._at(self.now + 1.0 / fps, "arrive", cam)
        pause = cam.spec.pause
        k = math.floor(self.now / pause.every_s) if pause else 0
        if pause and k >= 1 and self.now < k * pause.every_s + pause.pause_s:
            if cam.held == 0:
                self._at(k * pause.every_s + pause.pause_s, "release", cam)
            cam.held += 1
            return
        self._offer(cam)

    def _release(self, cam: object) -> None:
        assert isinstance(cam, _Camera)
        held, cam.held = cam.held, 0
        for _ in range(held):
            self._offer(cam)

    def _burst(self, cam: object) -> None:
        assert isinstance(cam, _Camera) and cam.spec.burst
        self._at(self.now + cam.spec.burst.every_s, "burst", cam)
        for _ in range(cam.spec.burst.frames):
            self._offer(cam)

    def _offer(self, cam: _Camera) -> None:
        cam.captured += 1
        admitted = cam.in_flight < cam.buffers
        cam.offers.append((self.now, admitted))
        if not admitted:
            cam.dropped += 1
            return
        cam.in_flight += 1
        frame = _Frame(cam, self.now, len(cam.spec.kinds))
        for kind in cam.spec.kinds:
            self._send(self.pools[kind], frame)

    # ------------------------------------------------------------------------------ detectors
    def _send(self, pool: _Pool, frame: _Frame) -> None:
        running = pool.live("running")
        if not running:
            pool.backlog.append(frame)
            return
        start = next(pool.rotation) % len(running)
        actor = min(running[start:] + running[:start], key=lambda a: a.outstanding)
        actor.queue.append(frame)
        if actor.current is None:
            self._serve(actor)

    def _serve(self, actor: _Actor) -> None:
        spec = actor.pool.spec
        frame = actor.queue.popleft()
        sigma = spec.jitter
        seconds = float(self.rng.lognormal(math.log(spec.service_s) - sigma**2 / 2, sigma))
        actor.current = frame
        actor.busy.append((self.now, self.now + seconds))
        self._at(self.now + seconds, "done", actor)

    def _done(self, subject: object) -> None:
        assert isinstance(subject, _Actor)
        actor, frame = subject, subject.current
        assert frame is not None
        start, end = actor.busy[-1]
        actor.pool.services.append((self.now, end - start))
        actor.current = None
        frame.waiting -= 1
        if frame.waiting == 0:
            cam = frame.camera
            cam.in_flight -= 1
            cam.processed += 1
            cam.latencies.append((self.now, self.now - frame.captured))
        if actor.queue:
            self._serve(actor)
        elif actor.state == "draining":
            self._retire(actor)

    def _ready(self, subject: object) -> None:
        assert isinstance(subject, _Actor)
        if subject.state != "starting":
            return  # cancelled while starting
        subject.state = "running"
        pool = subject.pool
        while pool.backlog:
            self._send(pool, pool.backlog.popleft())

    def _retire(self, actor: _Actor) -> None:
        actor.state = "gone"
        self._grant()

    def claimed_cpus(self) -> float:
        return sum(a.pool.spec.num_cpus for p in self.pools.values()
                   for a in p.live("waiting", "starting", "running", "draining"))

    def _granted_cpus(self) -> float:
        return sum(a.pool.spec.num_cpus for p in self.pools.values()
                   for a in p.live("starting", "running", "draining"))

    def _grant(self) -> None:
        """Actors waiting for CPUs start, oldest first, while the budget allows."""
        for pool in self.pools.values():
            for actor in pool.live("waiting"):
                if self._granted_cpus() + pool.spec.num_cpus > self.spec.cpu_budget + 1e-9:
                    return
                actor.state = "starting"
                actor.ready_at = self.now + pool.spec.start_delay_s
                self._at(actor.ready_at, "ready", actor)

    def _resize(self, pool: _Pool, target: int) -> None:
        current = pool.live("waiting", "starting", "running")
        for _ in range(target - len(current)):
            pool.actors.append(_Actor(pool))
        surplus = len(current) - target
        # cancel actors that are not running yet (newest first), then drain the least loaded
        order = pool.live("waiting", "starting")[::-1] + sorted(
            pool.live("running"), key=lambda a: (a.outstanding, -a.ready_at))
        for actor in order[:max(0, surplus)]:
            if actor.state == "running" and actor.outstanding:
                actor.state = "draining"
            else:
                actor.state = "gone"
        pool.actors = [a for a in pool.actors if a.state != "gone"]
        self._grant()

    # ------------------------------------------------------------------------------ controller
    def _tick(self, _: object) -> None:
        snapshot = self.snapshot()
        if self.policy:
            decision, self.state = decide(snapshot, self.state, self.config)
        else:
            decision = disabled(snapshot)
        for kind, target in decision.actors.items():
            self._resize(self.pools[kind], target)
        for cam in self.cameras:
            cam.buffers = decision.buffers.get(cam.spec.name, cam.buffers)
        tick = Tick(self.now, snapshot, decision, self.ledgers(), self.claimed_cpus())
        self.timeline.append(tick)
        self._at(self.now + self.spec.interval_s, "tick", None)

    def snapshot(self) -> Snapshot:
        lo = self.now - self.config.look_back_s
        span = min(self.config.look_back_s, self.now) or 1.0
        cams = tuple(self._camera_signal(c, lo, span) for c in self.cameras)
        pools = tuple(self._pool_signal(p, lo) for p in self.pools.values())
        return Snapshot(self.now, cams, pools, self.spec.cpu_budget - self.claimed_cpus())

    def _camera_signal(self, cam: _Camera, lo: float, span: float) -> CameraSignal:
        _prune(cam.offers, lo)
        _prune(cam.latencies, lo)
        offered = len(cam.offers)
        admitted = sum(1 for _, ok in cam.offers if ok)
        latencies = [s for _, s in cam.latencies]
        p95 = float(np.percentile(latencies, 95)) * 1000 if latencies else None
        return CameraSignal(cam.spec.name, cam.spec.kinds, offered / span,
                            admitted / offered if offered else 1.0, p95, cam.buffers)

    def _pool_signal(self, pool: _Pool, lo: float) -> PoolSignal:
        _prune(pool.services, lo)
        running = pool.live("running")
        busy = wall = 0.0
        for actor in running:
            while actor.busy and actor.busy[0][1] < lo:
                actor.busy.popleft()
            since = max(lo, actor.ready_at)
            wall += self.now - since
            busy += sum(max(0.0, min(end, self.now) - max(start, since))
                        for start, end in actor.busy)
        services = [s for _, s in pool.services]
        spec = pool.spec
        pending = len(pool.live("waiting", "starting"))
        return PoolSignal(spec.kind, len(running) + pending, len(running), pending,
                          busy / wall if wall > 0 else 0.0,
                          float(np.mean(services)) if services else None,
                          spec.num_cpus, spec.min_actors, spec.max_actors)


def _prune(samples: deque[tuple[float, Any]], lo: float) -> None:
    while samples and samples[0][0] <= lo:
        samples.popleft()


# ------------------------------------------------------------------------------------ analysis
def scaling_actions(timeline: Iterable[Tick],
                    target: str | None = None) -> list[tuple[float, Action]]:
    """(time, action) for every action, or only those on ``target`` ("detector:person")."""
    return [(t.time, a) for t in timeline for a in t.actions if target in (None, a.target)]


def direction_flips(timeline: Iterable[Tick], target: str) -> int:
    """How often the direction of the changes to ``target`` reversed (up then down, or back)."""
    signs = [1 if a.after > a.before else -1 for _, a in scaling_actions(timeline, target)
             if a.after != a.before]
    return sum(1 for a, b in itertools.pairwise(signs) if a != b)
