"""The scaling policy: a pure function of a fleet snapshot, its carried state and the config.

No Ray, no clock, no sleeps: ``decide`` is given the time in the snapshot, so it is tested on a
simulated fleet (tests/unit/fleetsim.py) exactly as it runs in the controller.

Three knobs:

- **detector actors per kind.** Demand is measured in actor-seconds per second: the frames the
  cameras *offer* (after the fps limit and the motion gate, admitted or not) times the kind's
  mean service time. The wanted count is ``ceil(demand / target_utilisation)`` within
  ``min_actors..max_actors``. Sizing on offered rather than admitted frames lets a decision add
  the whole measured shortfall at once instead of one actor at a time while saturated actors
  hide the real demand (demand is a look-back average, so a sudden step is seen in one or two
  decisions). Free CPUs are shared out between kinds one actor at a time, since a frame needs
  every kind its camera runs.
- **buffers (in-flight slots) per camera.** Hit-rate below target while the camera's detectors
  have headroom means bursts: one more buffer. p95 latency above the SLO means frames queue:
  one buffer less. Buffers grow only while p95, scaled by the growth one more buffer brings,
  stays under 80% of the SLO, and change at most once per look-back window (the figures they act
  on are look-back averages): together these keep the two rules from chasing each other.

- **batch size per detector kind** (frames one model call takes, up to the kind's
  ``batching.max_batch_size``). Frames queueing at the actors while p95 latency has room: the
  batch size doubles (one model call serves them); p95 over the SLO: it halves.

Every change needs its direction to hold for a delay (``upscale_delay_s`` / ``downscale_delay_s``);
a flip of direction restarts the timer, as in Ray Serve's autoscaler. Scale-down also keeps 15%
headroom: noise around a boundary holds rather than flips. The policy never asks for more CPU
than the cluster has free: pending actors are waited for, and a shortfall is reported as a
``capacity_limited`` action instead of a larger target.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from fleet.config import AutoscalingConfig

_DOWN_HEADROOM = 1.15  # scale in only when demand fits in one actor less with 15% to spare
_SLO_RECOVERED = 0.8  # buffers may grow again once p95 is under 80% of the SLO


@dataclass(frozen=True)
class CameraSignal:
    camera: str
    kinds: tuple[str, ...]  # detector kinds the camera's frames go to
    offered_fps: float  # frames per second that passed the fps limit and motion gate
    hit_rate: float  # admitted / offered over the look-back window (1.0 if nothing offered)
    p95_ms: float | None  # end-to-end latency, None without samples
    buffers: int


@dataclass(frozen=True)
class PoolSignal:
    kind: str
    target: int  # actors the controller is running or starting
    running: int  # of which ready
    pending: int  # of which waiting for resources or starting
    utilisation: float  # busy time / wall time of the running actors, 0..1
    service_s: float | None  # mean service time per frame, None without samples
    num_cpus: float  # CPUs one actor reserves
    min_actors: int
    max_actors: int
    batch_size: int = 1  # frames one model call takes at most, now
    max_batch_size: int = 1  # the bound the policy may raise it to (1: batching off)
    queued: int = 0  # frames waiting at the pool's actors beyond the one each is working on
    num_gpus: float = 0.0  # GPUs one actor reserves


@dataclass(frozen=True)
class Snapshot:
    now: float  # seconds, any monotonic origin
    cameras: tuple[CameraSignal, ...]
    pools: tuple[PoolSignal, ...]
    free_cpus: float  # CPUs free in the cluster for new actors
    free_gpus: float = 0.0  # GPUs free likewise


class ActionKind(NamedTuple):
    on: str  # what it acts on, its target's prefix: "detector" (a pool) or "camera" (buffers)
    reasons: tuple[str, ...]  # why it is taken


DETECTOR, CAMERA = "detector", "camera"
# Every action the policy takes, what it acts on and the reasons it takes it for: the one list.
# An Action outside it cannot be made, and /metrics exports every (action, reason, target) a
# fleet can see at 0 from the start (possible_actions), so a calm fleet's dashboards read 0.
ACTIONS: dict[str, ActionKind] = {
    "scale_up": ActionKind(DETECTOR, ("demand", "below_min")),
    "scale_down": ActionKind(DETECTOR, ("low_utilisation",)),
    "capacity_limited": ActionKind(DETECTOR, ("cluster_cpus", "cluster_gpus")),
    "batch_up": ActionKind(DETECTOR, ("queueing",)),
    "batch_down": ActionKind(DETECTOR, ("latency_slo",)),
    "buffers_up": ActionKind(CAMERA, ("bursts",)),
    "buffers_down": ActionKind(CAMERA, ("latency_slo",)),
}
DecisionKey = tuple[str, str, str]  # (action, reason, target): a decisions_total series


@dataclass(frozen=True)
class Action:
    target: str  # "detector:<kind>" or "camera:<id>"
    action: str  # a key of ACTIONS
    reason: str  # one of that action's reasons
    before: int
    after: int
    inputs: dict[str, float | int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = ACTIONS.get(self.action)
        if kind is None or self.reason not in kind.reasons \
                or not self.target.startswith(f"{kind.on}:"):
            raise ValueError(f"no such scaling action: {self.action} ({self.reason}) on "
                             f"{self.target}; the policy's vocabulary is "
                             "fleet.control.policy.ACTIONS")

    @property
    def key(self) -> DecisionKey:
        return self.action, self.reason, self.target


@dataclass(frozen=True)
class Decision:
    actors: dict[str, int]  # target actors per kind
    buffers: dict[str, int]  # buffers per camera
    actions: tuple[Action, ...] = ()
    batch: dict[str, int] = field(default_factory=dict)  # max batch size per kind


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between calls: the direction each knob leans and since when."""

    leaning: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (direction, since)
    limited: dict[str, int] = field(default_factory=dict)  # key -> count wanted but not affordable

    def held(self, key: str, direction: int, now: float,
             delay_s: float) -> tuple[bool, PolicyState]:
        """Has ``direction`` (+1/-1, 0 = hold) been wanted for ``delay_s``? A flip restarts the
        timer."""
        leaning = dict(self.leaning)
        if direction == 0:
            leaning.pop(key, None)
            return False, replace(self, leaning=leaning)
        current = leaning.get(key)
        if current is None or current[0] != direction:
            leaning[key] = (direction, now)
            return delay_s <= 0, replace(self, leaning=leaning)
        return now - current[1] >= delay_s, replace(self, leaning=leaning)

    def restart(self, key: str, now: float) -> PolicyState:
        """After a change: the next one in the same direction waits a whole delay again."""
        leaning = dict(self.leaning)
        if key in leaning:
            leaning[key] = (leaning[key][0], now)
        return replace(self, leaning=leaning)

    def limit(self, key: str, wanted: int | None) -> tuple[bool, PolicyState]:
        """Note that ``wanted`` actors do not fit (None: they fit again). True when that is news,
        so a shortfall is reported once, not at every step while it lasts."""
        limited = dict(self.limited)
        news = wanted is not None and limited.get(key) != wanted
        if wanted is None:
            limited.pop(key, None)
        else:
            limited[key] = wanted
        return news, replace(self, limited=limited)


def demand(snapshot: Snapshot, pool: PoolSignal) -> float | None:
    """Actor-seconds per second the cameras offer to ``pool``'s kind (None: service time
    unknown)."""
    if pool.service_s is None:
        return None
    fps = sum(c.offered_fps for c in snapshot.cameras if pool.kind in c.kinds)
    return fps * pool.service_s


def wanted_actors(snapshot: Snapshot, pool: PoolSignal,
                  config: AutoscalingConfig) -> tuple[int, int]:
    """(direction, count): +1 with the count to grow to, -1 with the count to shrink to, or 0."""
    load = demand(snapshot, pool)
    if load is None:
        # nothing measured: hold, except that a pool without actors would never measure anything
        offered = any(pool.kind in c.kinds and c.offered_fps > 0 for c in snapshot.cameras)
        floor = max(pool.min_actors, 1 if offered else 0)
        return (1, floor) if pool.target < floor else (0, pool.target)
    needed = load / config.target_utilisation
    up = min(pool.max_actors, max(pool.min_actors, math.ceil(needed)))
    down = min(pool.max_actors, max(pool.min_actors, math.ceil(needed * _DOWN_HEADROOM)))
    if pool.target < pool.min_actors or up > pool.target:
        return 1, max(up, pool.min_actors)
    if down < pool.target:
        return -1, down
    return 0, pool.target


def _scale_pool(snapshot: Snapshot, pool: PoolSignal, config: AutoscalingConfig,
                state: PolicyState,
                free_cpus: float) -> tuple[int, list[Action], PolicyState, float]:
    key = f"detector:{pool.kind}"
    direction, count = wanted_actors(snapshot, pool, config)
    delay = config.upscale_delay_s if direction > 0 else config.downscale_delay_s
    ready, state = state.held(key, direction, snapshot.now, delay)
    inputs = {"demand": _round(demand(snapshot, pool)), "utilisation": round(pool.utilisation, 3),
              "service_ms": _round(pool.service_s and pool.service_s * 1000),
              "running": pool.running,
              "pending": pool.pending, "free_cpus": round(snapshot.free_cpus, 2)}
    if not ready or count == pool.target:
        if direction <= 0:
            _, state = state.limit(key, None)
        return pool.target, [], state, free_cpus
    if direction < 0:
        action = Action(key, "scale_down", "low_utilisation", pool.target, count, inputs)
        return count, [action], state.restart(key, snapshot.now), free_cpus
    if pool.pending:
        return pool.target, [], state, free_cpus  # wait for the actors already asked for
    affordable = int(free_cpus // pool.num_cpus) if pool.num_cpus > 0 else count - pool.target
    limit = "cluster_cpus"
    if pool.num_gpus > 0:  # an actor needs its GPU share as well as its CPUs
        gpus = int((snapshot.free_gpus + 1e-9) // pool.num_gpus)
        if gpus < affordable:
            affordable, limit = gpus, "cluster_gpus"
    affordable = max(0, affordable)  # free_cpus < 0 (a node lost): no growth, and no shrinking
    grow = min(count - pool.target, affordable)
    actions = []
    news, state = state.limit(key, count if grow < count - pool.target else None)
    if news:
        actions.append(Action(key, "capacity_limited", limit, pool.target,
                              pool.target + grow,
                              {**inputs, "wanted": count}))
    if grow > 0:
        reason = "below_min" if pool.target < pool.min_actors else "demand"
        actions.append(Action(key, "scale_up", reason, pool.target, pool.target + grow, inputs))
        state = state.restart(key, snapshot.now)
    return pool.target + grow, actions, state, free_cpus - grow * pool.num_cpus


def _tune_buffers(camera: CameraSignal, saturated: bool, config: AutoscalingConfig,
                  state: PolicyState, now: float) -> tuple[int, list[Action], PolicyState]:
    key = f"camera:{camera.camera}"
    slo = config.latency_slo_ms
    late = camera.p95_ms is not None and camera.p95_ms > slo
    grown = (camera.buffers + 1) / camera.buffers  # queueing grows about with the buffers
    calm = camera.p95_ms is None or camera.p95_ms * grown <= slo * _SLO_RECOVERED
    if late and camera.buffers > config.min_buffers:
        direction, reason = -1, "latency_slo"
    elif (camera.hit_rate < config.target_hit_rate and not saturated and calm
          and camera.buffers < config.max_buffers):
        direction, reason = 1, "bursts"
    else:
        direction, reason = 0, ""
    # p95 and hit-rate are look-back averages: acting sooner than that acts on stale figures
    delay = max(config.upscale_delay_s, config.look_back_s)
    ready, state = state.held(key, direction, now, delay)
    if not ready:
        return camera.buffers, [], state
    after = camera.buffers + direction
    inputs = {"hit_rate": round(camera.hit_rate, 4), "p95_ms": _round(camera.p95_ms),
              "offered_fps": round(camera.offered_fps, 2)}
    action = Action(key, "buffers_up" if direction > 0 else "buffers_down", reason,
                    camera.buffers, after, inputs)
    return after, [action], state.restart(key, now)


def _worst_p95(snapshot: Snapshot, kind: str) -> float | None:
    values = [c.p95_ms for c in snapshot.cameras if kind in c.kinds and c.p95_ms is not None]
    return max(values) if values else None


def _tune_batch(snapshot: Snapshot, pool: PoolSignal, config: AutoscalingConfig,
                state: PolicyState) -> tuple[int, list[Action], PolicyState]:
    """Batch size per kind: doubled while frames queue at the actors (a bigger batch serves
    them in one model call) and latency has room; halved when p95 is over the SLO."""
    key = f"batch:{pool.kind}"
    p95 = _worst_p95(snapshot, pool.kind)
    slo = config.latency_slo_ms
    per_actor = pool.queued / max(1, pool.running)
    if p95 is not None and p95 > slo and pool.batch_size > 1:
        direction, reason, after = -1, "latency_slo", max(1, pool.batch_size // 2)
    elif (per_actor >= pool.batch_size and pool.batch_size < pool.max_batch_size
          and (p95 is None or p95 <= slo * _SLO_RECOVERED)):
        direction, reason = 1, "queueing"
        after = min(pool.max_batch_size, pool.batch_size * 2)
    else:
        direction, reason, after = 0, "", pool.batch_size
    delay = max(config.upscale_delay_s, config.look_back_s)
    ready, state = state.held(key, direction, snapshot.now, delay)
    if not ready or direction == 0:
        return pool.batch_size, [], state
    inputs = {"queued_per_actor": round(per_actor, 2), "p95_ms": _round(p95),
              "running": pool.running}
    action = Action(f"detector:{pool.kind}", "batch_up" if direction > 0 else "batch_down",
                    reason, pool.batch_size, after, inputs)
    return after, [action], state.restart(key, snapshot.now)


def _shares(snapshot: Snapshot, config: AutoscalingConfig) -> dict[str, float]:
    """Free CPUs split between the pools that want to grow, one actor each in turn: a frame needs
    every kind its camera runs, so one kind must not take the whole cluster."""
    short: dict[str, int] = {}
    for pool in snapshot.pools:
        direction, count = wanted_actors(snapshot, pool, config)
        if direction > 0 and not pool.pending:
            short[pool.kind] = count - pool.target
    shares = {pool.kind: 0.0 for pool in snapshot.pools}
    cpus = {pool.kind: pool.num_cpus for pool in snapshot.pools}
    free, granted = snapshot.free_cpus, True
    while granted:
        granted = False
        for kind in sorted(short):
            if short[kind] > 0 and cpus[kind] <= free:
                short[kind] -= 1
                shares[kind] += cpus[kind]
                free -= cpus[kind]
                granted = True
    return shares


def decide(snapshot: Snapshot, state: PolicyState,
           config: AutoscalingConfig) -> tuple[Decision, PolicyState]:
    """One control step: target actors per kind and buffers per camera, with the actions taken."""
    actors: dict[str, int] = {}
    actions: list[Action] = []
    shares = _shares(snapshot, config)
    for pool in sorted(snapshot.pools, key=lambda p: p.kind):
        share = shares[pool.kind]
        actors[pool.kind], taken, state, _ = _scale_pool(snapshot, pool, config, state, share)
        actions += taken
    # Saturated: busy, growing, short of CPUs, or wanting to grow (utilisation lags a step).
    saturated = {
        p.kind for p in snapshot.pools
        if p.utilisation >= config.target_utilisation or actors[p.kind] > p.running
        or f"detector:{p.kind}" in state.limited or wanted_actors(snapshot, p, config)[0] > 0
    }
    buffers: dict[str, int] = {}
    for camera in snapshot.cameras:
        busy = any(kind in saturated for kind in camera.kinds)
        buffers[camera.camera], taken, state = _tune_buffers(camera, busy, config, state,
                                                             snapshot.now)
        actions += taken
    batch: dict[str, int] = {}
    for pool in sorted(snapshot.pools, key=lambda p: p.kind):
        batch[pool.kind], taken, state = _tune_batch(snapshot, pool, config, state)
        actions += taken
    return Decision(actors, buffers, tuple(actions), batch), state


def possible_actions(pools: Iterable[PoolSignal], cameras: Iterable[str]) -> set[DecisionKey]:
    """Every (action, reason, target) the policy can take on these pools and cameras: each
    detector action on each pool, each buffer action on each camera, less what a pool's shape
    rules out (``cluster_cpus`` for actors that take no CPU, ``cluster_gpus`` for actors that
    take no GPU, the batch actions with batching off)."""
    keys: set[DecisionKey] = set()
    for pool in pools:
        for action, kind in ACTIONS.items():
            keys.update((action, reason, f"detector:{pool.kind}") for reason in kind.reasons
                        if kind.on == DETECTOR and _can_occur(pool, action, reason))
    for camera in cameras:
        keys.update((action, reason, f"camera:{camera}") for action, kind in ACTIONS.items()
                    if kind.on == CAMERA for reason in kind.reasons)
    return keys


def _can_occur(pool: PoolSignal, action: str, reason: str) -> bool:
    if (action, reason) == ("capacity_limited", "cluster_cpus"):
        return pool.num_cpus > 0
    if (action, reason) == ("capacity_limited", "cluster_gpus"):
        return pool.num_gpus > 0
    if action in ("batch_up", "batch_down"):
        return pool.max_batch_size > 1  # the size starts at the bound and stays within 1..it
    return True


def disabled(snapshot: Snapshot) -> Decision:
    """``autoscaling.enabled: false``: every count stays as it is."""
    return Decision({p.kind: p.target for p in snapshot.pools},
                    {c.camera: c.buffers for c in snapshot.cameras}, (),
                    {p.kind: p.batch_size for p in snapshot.pools})


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
