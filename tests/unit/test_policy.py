"""The scaling policy (fleet/control/policy.py) on a simulated fleet (tests/unit/fleetsim.py), and
its pieces as pure functions. No Ray, no sleeps: every run is a fake clock and a seed."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from fleet.config import AutoscalingConfig
from fleet.control.policy import (
    ACTIONS,
    Action,
    CameraSignal,
    Decision,
    PolicyState,
    PoolSignal,
    Snapshot,
    decide,
    disabled,
    possible_actions,
    wanted_actors,
)
from tests.unit.fleetsim import (
    Burst,
    CameraSpec,
    FleetSim,
    Pause,
    PoolSpec,
    SimSpec,
    Tick,
    direction_flips,
    scaling_actions,
    steps,
)

pytestmark = pytest.mark.timeout(60)

# Defaults: hit-rate 0.99, p95 SLO 1000 ms, utilisation 0.75, up 3 s, down 30 s, window 10 s.
CONFIG = AutoscalingConfig()


def simulate(cameras: list[CameraSpec], pools: list[PoolSpec], until_s: float,
             config: AutoscalingConfig = CONFIG, seed: int = 0,
             cpu_budget: float = 64.0) -> tuple[FleetSim, list[Tick]]:
    sim = FleetSim(SimSpec(tuple(cameras), tuple(pools), config, cpu_budget, seed=seed))
    timeline = sim.run(until_s)
    assert_accounted(sim, timeline)
    return sim, timeline


def assert_accounted(sim: FleetSim, timeline: list[Tick]) -> None:
    """captured = processed + dropped + in flight for every camera, at every tick and at the end,
    and the in-flight count is the number of frames actually queued or served."""
    for tick in timeline:
        for camera, ledger in tick.ledgers.items():
            assert ledger.balanced, f"t={tick.time}: {camera} {ledger}"
    assert sim.balanced(), sim.ledgers()


def needed(fps: float, service_s: float, config: AutoscalingConfig = CONFIG) -> int:
    return math.ceil(fps * service_s / config.target_utilisation)


def hit_ok(tick: Tick, config: AutoscalingConfig = CONFIG) -> bool:
    return all(c.hit_rate >= config.target_hit_rate for c in tick.snapshot.cameras)


# ------------------------------------------------------------------------------ load step x3
STEP_AT = 60.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_load_step_x3_reaches_needed_actors_and_hit_rate_recovers(seed):
    # given: 2 cameras at 5 fps that triple to 15 fps at t=60 s; detector ~0.1 s a frame,
    # 2 actors (enough for 10 fps at 75%), new actors ready 2 s after they are asked for
    pool = PoolSpec("person", service_s=0.1, actors=2, start_delay_s=2.0)
    cameras = [CameraSpec(f"cam{i}", steps((0, 5.0), (STEP_AT, 15.0))) for i in range(2)]
    need = needed(30.0, pool.service_s)  # ceil(3.0 / 0.75) = 4

    # when
    _, timeline = simulate(cameras, [pool], 240.0, seed=seed)

    # then: the count is within +-1 of the need once the offered rate has filled the window and
    # one scale-up has come through, and stays there (the demand sits on the 4.0 boundary, so
    # jitter may add the 5th actor, which the 15% scale-in headroom then keeps)
    settle_s = CONFIG.look_back_s + CONFIG.upscale_delay_s + pool.start_delay_s  # 15 s
    after = [t for t in timeline if t.time >= STEP_AT + settle_s]
    assert all(abs(t.actors["person"] - need) <= 1 for t in after), [t.actors for t in after]
    assert not [a for _, a in scaling_actions(timeline) if a.action == "scale_down"]
    # and the hit-rate is back above target within: one window for the offered rate to show the
    # step, two scale-ups (the first sees a part of the step) each waiting delay + start, one
    # window for the drops to leave the hit-rate (seen: 20-25 intervals)
    bound_s = 2 * CONFIG.look_back_s + 2 * (CONFIG.upscale_delay_s + pool.start_delay_s)  # 30
    recovered = next(t.time for t in timeline if t.time > STEP_AT and hit_ok(t))
    assert recovered - STEP_AT <= bound_s
    assert all(hit_ok(t) for t in timeline if t.time >= 180.0)


# ------------------------------------------------------------------------------ load drop
DROP_AT = 90.0


def test_load_drop_scales_in_only_after_the_downscale_delay_and_ends_at_the_need():
    # given: 2 cameras at 15 fps dropping to 5 fps at t=90 s, 4 actors (the need at 15 fps)
    pool = PoolSpec("person", service_s=0.1, actors=4)
    cameras = [CameraSpec(f"cam{i}", steps((0, 15.0), (DROP_AT, 5.0)), buffers=3) for i in range(2)]

    # when
    _, timeline = simulate(cameras, [pool], 240.0)

    # then: no scale-down until the need to shrink has held for downscale_delay_s
    downs = [(t, a) for t, a in scaling_actions(timeline, "detector:person")
             if a.action == "scale_down"]
    assert downs, "never scaled in"
    assert all(t >= DROP_AT + CONFIG.downscale_delay_s for t, _ in downs), downs
    assert all(a.reason == "low_utilisation" for _, a in downs)
    # and it ends at ceil(1.0 / 0.75) = 2 with the hit-rate on target
    assert timeline[-1].actors["person"] == needed(10.0, pool.service_s) == 2
    assert timeline[-1].pool("person").running == 2
    assert hit_ok(timeline[-1])


# ------------------------------------------------------------------------------ steady noise
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_steady_noisy_load_flips_direction_at_most_once_in_ten_minutes(seed):
    # given: a constant 22.5 fps at ~0.1 s a frame, i.e. exactly 3.0 actors at 75%, with a
    # heavy service-time jitter (lognormal sigma 0.5): the measured demand wobbles across 3
    pool = PoolSpec("person", service_s=0.1, jitter=0.5, actors=3)
    cameras = [CameraSpec(f"cam{i}", steps((0, 11.25)), buffers=3) for i in range(2)]

    # when: 10 simulated minutes
    _, timeline = simulate(cameras, [pool], 600.0, seed=seed)

    # then: at most one reversal of direction per knob, and the count stays at the need +1 at most
    for target in ("detector:person", "camera:cam0", "camera:cam1"):
        assert direction_flips(timeline, target) <= 1, scaling_actions(timeline, target)
    assert {t.actors["person"] for t in timeline} <= {3, 4}


# ------------------------------------------------------------------------------ bursts
def test_bursty_camera_is_absorbed_by_buffers_not_by_more_detectors():
    # given: 10 fps on average (0.5 actor-s/s, one actor is plenty) but an I-frame pause every
    # 5 s: nothing for 1 s, then the 10 missed frames at once, with only 2 buffers
    pool = PoolSpec("person", service_s=0.05, actors=1)
    camera = CameraSpec("cam", steps((0, 10.0)), buffers=2, pause=Pause(every_s=5.0, pause_s=1.0))

    # when
    _, timeline = simulate([camera], [pool], 240.0)

    # then: buffers grow (to the burst plus the frame in flight: 11 was seen), the hit-rate
    # reaches the target within 2 minutes and stays there (seen: from t=42 s), and no detector
    # is added
    ups = scaling_actions(timeline, "camera:cam")
    assert ups and all(a.action == "buffers_up" and a.reason == "bursts" for _, a in ups)
    assert timeline[-1].buffers["cam"] > camera.buffers
    assert all(hit_ok(t) for t in timeline if t.time >= 120.0)
    assert all(t.actors["person"] == 1 for t in timeline)
    assert all((t.camera("cam").p95_ms or 0) <= CONFIG.latency_slo_ms for t in timeline)


# ------------------------------------------------------------------------------ capacity
def test_cluster_capacity_limit_is_respected_and_reported():
    # given: demand for 6 actors (30 fps at ~0.14 s: 5.6 at 75%) but CPUs for only 3, and slow
    # actor starts (5 s)
    pool = PoolSpec("person", service_s=0.14, actors=1, max_actors=8, start_delay_s=5.0)
    cameras = [CameraSpec(f"cam{i}", steps((0, 5.0), (20.0, 15.0)), buffers=4) for i in range(2)]
    budget = 3.0

    # when
    _, timeline = simulate(cameras, [pool], 120.0, cpu_budget=budget)

    # then: the target never exceeds what fits, and CPUs are never over-claimed
    assert all(t.actors["person"] <= budget // pool.num_cpus for t in timeline)
    assert all(t.claimed_cpus <= budget and t.snapshot.free_cpus >= 0 for t in timeline)
    assert timeline[-1].actors["person"] == 3
    # and the shortfall is reported, with what was wanted
    limited = [a for _, a in scaling_actions(timeline) if a.action == "capacity_limited"]
    assert limited and all(a.reason == "cluster_cpus" for a in limited)
    assert limited[-1].inputs["wanted"] == needed(30.0, pool.service_s) == 6
    # and nothing more is asked for while actors are pending
    for tick in timeline:
        if tick.pool("person").pending:
            assert tick.actors["person"] <= tick.pool("person").target, tick.time
            assert not [a for a in tick.actions if a.action == "scale_up"], tick.time


def test_capacity_is_shared_between_kinds_that_every_frame_needs():
    # given: every frame goes to face and person; each kind wants 6 actors; CPUs for 5 in all
    pools = [PoolSpec(kind, service_s=0.15, actors=1, start_delay_s=5.0)
             for kind in ("face", "person")]
    cameras = [CameraSpec(f"cam{i}", steps((0, 15.0)), kinds=("face", "person"), buffers=4)
               for i in range(2)]

    # when
    _, timeline = simulate(cameras, pools, 90.0, cpu_budget=5.0)

    # then: the CPUs are split about evenly (now face=4, person=1: 3 face actors sit idle
    # waiting for the person detector, which caps the whole fleet at ~6.7 fps of 30)
    end = timeline[-1].actors
    assert sum(end.values()) <= 5
    assert abs(end["face"] - end["person"]) <= 1, end


# ------------------------------------------------------------------------------ latency SLO
@pytest.mark.parametrize(("slo_ms", "min_buffers", "final"), [(1000.0, 1, None), (400.0, 6, 6)])
def test_latency_above_slo_lowers_buffers_never_below_min_and_without_oscillation(
        slo_ms, min_buffers, final):
    # given: one detector at most (~10 fps) for a 12 fps camera with 16 buffers: frames queue,
    # p95 ~ buffers x 0.1 s is well above the SLO, and the pool is saturated
    config = AutoscalingConfig(latency_slo_ms=slo_ms, min_buffers=min_buffers)
    pool = PoolSpec("person", service_s=0.1, actors=1, max_actors=1)
    camera = CameraSpec("cam", steps((0, 12.0)), buffers=16)

    # when: 10 simulated minutes
    _, timeline = simulate([camera], [pool], 600.0, config=config)

    # then: buffers only go down, for latency_slo, each time with p95 above the SLO
    actions = [a for _, a in scaling_actions(timeline, "camera:cam")]
    assert actions
    assert all(a.action == "buffers_down" and a.reason == "latency_slo" for a in actions)
    assert all(a.inputs["p95_ms"] > slo_ms for a in actions)
    assert direction_flips(timeline, "camera:cam") == 0
    assert all(t.buffers["cam"] >= min_buffers for t in timeline)
    # and end with p95 under the SLO, or at min_buffers if even that cannot get there
    if final is None:
        assert timeline[-1].camera("cam").p95_ms <= slo_ms
    else:
        assert timeline[-1].buffers["cam"] == final


def test_service_bound_latency_takes_buffers_to_min_and_they_stay():
    # given: each frame alone takes ~0.3 s (p95 ~0.45 s) against a 250 ms SLO, plenty of actors
    # (not saturated): fewer buffers cannot help, more would not hurt the SLO any further
    config = AutoscalingConfig(latency_slo_ms=250.0, min_buffers=2)
    pool = PoolSpec("person", service_s=0.3, actors=3, min_actors=3)
    camera = CameraSpec("cam", steps((0, 3.0)), buffers=5)

    # when
    _, timeline = simulate([camera], [pool], 300.0, config=config)

    # then: down to min_buffers and no regrowth while p95 is above 80% of the SLO
    assert timeline[-1].buffers["cam"] == 2
    assert direction_flips(timeline, "camera:cam") == 0
    assert all(t.buffers["cam"] >= 2 for t in timeline)


@pytest.mark.parametrize(("camera", "service_s", "slo_ms"), [
    # 10 fps with a 3 s I-frame pause every 10 s: 30 frames at once, ~70 ms a frame, one actor
    (CameraSpec("cam", steps((0, 10.0)), buffers=2, pause=Pause(every_s=10.0, pause_s=3.0)),
     0.07, 1000.0),
    # 2 fps plus 10 frames at once every 5 s against a 390 ms SLO: 3 buffers ~300 ms, 4 ~400 ms
    (CameraSpec("cam", steps((0, 2.0)), buffers=2, burst=Burst(every_s=5.0, frames=10)),
     0.1, 390.0),
], ids=["iframe-pause", "small-buffers"])
def test_bursts_against_the_slo_do_not_make_buffers_oscillate(camera, service_s, slo_ms):
    # given: bursts that want more buffers for the hit-rate, and fewer for the latency SLO;
    # the pool is far from saturated, so only the 80% band keeps the two rules apart
    config = AutoscalingConfig(latency_slo_ms=slo_ms)
    pool = PoolSpec("person", service_s=service_s, jitter=0.1, actors=1)

    # when: 10 simulated minutes
    _, timeline = simulate([camera], [pool], 600.0, config=config)

    # then: at most one reversal (now 12-45: the buffers cycle every ~25-50 s)
    assert direction_flips(timeline, "camera:cam") <= 1, [t.buffers["cam"] for t in timeline][::10]


def test_an_idle_pool_keeps_its_actors_as_its_service_time_is_unknown():
    # given: a pool allowed to go to 0 actors, whose camera stops for a minute
    pool = PoolSpec("person", service_s=0.1, actors=1, min_actors=0)
    camera = CameraSpec("cam", steps((0, 5.0), (30.0, 0.0), (120.0, 5.0)))

    # when
    _, timeline = simulate([camera], [pool], 180.0)

    # then: with no samples the service time is unknown, so the count holds (never 0), and the
    # frames are served again as soon as the camera comes back
    assert all(t.actors["person"] == 1 for t in timeline)
    assert hit_ok(timeline[-1])


def test_a_pool_with_no_actors_starts_one_when_frames_are_offered():
    # given: min_actors 0 and actors 0 (a valid config), a camera offering 5 fps to that kind
    pool = PoolSpec("person", service_s=0.1, actors=0, min_actors=0)
    camera = CameraSpec("cam", steps((0, 5.0)))

    # when
    sim, timeline = simulate([camera], [pool], 60.0)

    # then: an actor is started and frames are processed (now: target 0 forever, hit-rate 0,
    # and the buffers climb to max_buffers for "bursts": an empty pool does not count as saturated)
    assert timeline[-1].actors["person"] >= 1
    assert sim.ledgers()["cam"].processed > 0
    assert hit_ok(timeline[-1])


# ------------------------------------------------------------------------------ autoscaling off
def test_disabled_policy_keeps_every_count_in_the_simulator():
    # given: a x3 load step with autoscaling disabled
    pool = PoolSpec("person", service_s=0.1, actors=2)
    cameras = [CameraSpec(f"cam{i}", steps((0, 5.0), (30.0, 15.0))) for i in range(2)]
    sim = FleetSim(SimSpec(tuple(cameras), (pool,), CONFIG), policy=False)

    # when
    timeline = sim.run(90.0)

    # then: counts stay, nothing is reported, every frame is still accounted for
    assert all(t.actors == {"person": 2} and t.buffers == {"cam0": 4, "cam1": 4} for t in timeline)
    assert not scaling_actions(timeline)
    assert_accounted(sim, timeline)


# ------------------------------------------------------------------------------ property: bounds
def random_fleet(seed: int) -> SimSpec:
    """A fleet drawn from ``seed``: config, 1-2 kinds, 1-3 cameras with steps, pauses, bursts."""
    rng = np.random.default_rng(seed)
    min_b = int(rng.integers(1, 4))
    config = AutoscalingConfig(
        latency_slo_ms=float(rng.uniform(200, 2000)), min_buffers=min_b,
        max_buffers=int(rng.integers(min_b, 17)), target_utilisation=float(rng.uniform(0.5, 0.9)),
        upscale_delay_s=float(rng.integers(0, 6)), downscale_delay_s=float(rng.integers(5, 40)))
    kinds = ("face", "person")[: int(rng.integers(1, 3))]
    pools = tuple(random_pool(rng, kind) for kind in kinds)
    cameras = tuple(random_camera(rng, f"cam{i}", kinds, config) for i in range(rng.integers(1, 4)))
    used = sum(p.actors * p.num_cpus for p in pools)
    return SimSpec(cameras, pools, config, float(rng.uniform(used, used + 12)), seed=seed)


def random_pool(rng: np.random.Generator, kind: str) -> PoolSpec:
    lo = int(rng.integers(0, 3))
    hi = int(rng.integers(max(lo, 1), 7))
    return PoolSpec(kind, service_s=float(rng.uniform(0.02, 0.2)),
                    jitter=float(rng.uniform(0.05, 0.6)),
                    actors=int(rng.integers(max(lo, 1), hi + 1)), min_actors=lo, max_actors=hi,
                    num_cpus=float(rng.choice([0.5, 1.0, 2.0])),
                    start_delay_s=float(rng.uniform(0, 5)))


def random_camera(rng: np.random.Generator, name: str, kinds: tuple[str, ...],
                  config: AutoscalingConfig) -> CameraSpec:
    points = [(float(t), float(rng.uniform(0, 25))) for t in np.sort(rng.uniform(0, 150, 3))]
    pause = Pause(float(rng.uniform(3, 10)), float(rng.uniform(0.5, 2)))
    burst = Burst(float(rng.uniform(3, 10)), int(rng.integers(2, 30)))
    return CameraSpec(
        name, steps((0, float(rng.uniform(1, 20))), *points),
        kinds=tuple(k for k in kinds if rng.random() < 0.8) or kinds[:1],
        buffers=int(rng.integers(config.min_buffers, config.max_buffers + 1)),
        pause=pause if rng.random() < 0.3 else None, burst=burst if rng.random() < 0.3 else None)


@pytest.mark.parametrize("seed", range(10))
def test_targets_and_buffers_stay_within_their_bounds(seed):
    # given: a random fleet (cameras, steps, pauses, bursts, kinds, CPU budget, config)
    spec = random_fleet(seed)
    config = spec.autoscaling
    sim = FleetSim(spec)

    # when: 3 simulated minutes
    timeline = sim.run(180.0)

    # then: every decision is within the bounds and the budget, and every frame is accounted for
    bounds = {p.kind: (p.min_actors, p.max_actors) for p in spec.pools}
    for tick in timeline:
        for kind, target in tick.actors.items():
            assert bounds[kind][0] <= target <= bounds[kind][1], (tick.time, kind, target)
        for camera, buffers in tick.buffers.items():
            assert config.min_buffers <= buffers <= config.max_buffers, (tick.time, camera, buffers)
        assert tick.claimed_cpus <= spec.cpu_budget + 1e-9, tick.time
    assert_accounted(sim, timeline)


# ------------------------------------------------------------------------------ pure pieces
def test_held_waits_for_the_delay():
    # given: a need to grow first seen at t=10
    _, state = PolicyState().held("k", 1, 10.0, 3.0)
    # when / then: not before 3 s, then yes
    assert state.held("k", 1, 12.9, 3.0)[0] is False
    assert state.held("k", 1, 13.0, 3.0)[0] is True
    # and a delay of 0 acts at once
    assert PolicyState().held("k", 1, 0.0, 0.0)[0] is True


def test_held_flip_restarts_the_timer_and_zero_clears_it():
    # given: leaning up since t=0
    _, state = PolicyState().held("k", 1, 0.0, 3.0)
    # when: the need flips down at t=2
    ready, flipped = state.held("k", -1, 2.0, 3.0)
    # then: the down timer starts at 2, not 0
    assert ready is False and flipped.leaning["k"] == (-1, 2.0)
    assert flipped.held("k", -1, 4.9, 3.0)[0] is False
    assert flipped.held("k", -1, 5.0, 3.0)[0] is True
    # when: direction 0 (hold) at t=3
    ready, cleared = state.held("k", 0, 3.0, 3.0)
    # then: the lean is gone; a new need to grow starts from scratch
    assert ready is False and "k" not in cleared.leaning
    assert cleared.held("k", 1, 4.0, 3.0)[0] is False
    # and the states are values: the original is untouched
    assert state.leaning == {"k": (1, 0.0)}


def test_restart_keeps_the_direction_and_resets_the_time():
    _, state = PolicyState().held("k", 1, 0.0, 3.0)
    assert state.restart("k", 7.0).leaning == {"k": (1, 7.0)}
    assert PolicyState().restart("k", 7.0).leaning == {}


POOL = PoolSignal(kind="person", target=2, running=2, pending=0, utilisation=0.5, service_s=0.1,
                  num_cpus=1.0, min_actors=1, max_actors=8)
CAMERA = CameraSignal(camera="cam", kinds=("person",), offered_fps=10.0, hit_rate=1.0, p95_ms=100.0,
                      buffers=2)


def pool_signal(**changes: Any) -> PoolSignal:
    return replace(POOL, **changes)


def snapshot(fps: float, pool: PoolSignal, free_cpus: float = 8.0, **camera: Any) -> Snapshot:
    """At t=100 s: one camera offering ``fps`` to ``pool``'s kind."""
    return Snapshot(100.0, (replace(CAMERA, offered_fps=fps, **camera),), (pool,), free_cpus)


@pytest.mark.parametrize(("fps", "pool", "expected"), [
    (30.0, pool_signal(), (1, 4)),  # 3.0 actor-s/s at 75%: 4
    (30.0, pool_signal(max_actors=3), (1, 3)),  # clamped to max_actors
    (0.0, pool_signal(min_actors=2), (0, 2)),  # no load: held at min_actors
    (0.0, pool_signal(target=1, running=1, min_actors=2), (1, 2)),  # below min: up to it
    (20.25, pool_signal(target=4, running=4), (0, 4)),  # need 2.7 -> 3, but 2.7 x 1.15 -> 4: hold
    (18.75, pool_signal(target=4, running=4), (-1, 3)),  # need 2.5, 2.875 -> 3: shrink to 3
    (60.0, pool_signal(target=6, running=6, max_actors=4), (-1, 4)),  # above max: down to it
    (30.0, pool_signal(service_s=None), (0, 2)),  # service time unknown: hold
], ids=["demand", "max-clamp", "min-hold", "below-min", "headroom-holds", "shrinks",
        "above-max", "unknown-service"])
def test_wanted_actors(fps, pool, expected):
    assert wanted_actors(snapshot(fps, pool), pool, CONFIG) == expected


def test_disabled_keeps_the_counts_and_reports_nothing():
    # given: a fleet that badly wants more actors and has a low hit-rate
    snap = snapshot(60.0, pool_signal(target=3), hit_rate=0.5, buffers=5)
    # when
    decision = disabled(snap)
    # then
    assert decision.actors == {"person": 3} and decision.buffers == {"cam": 5}
    assert decision.actions == ()


def held(snap: Snapshot, config: AutoscalingConfig = CONFIG) -> tuple[Decision, PolicyState]:
    """``decide`` twice on the same figures, the second time a minute later: what a need that
    holds past every delay leads to (the first call only starts leaning)."""
    first, state = decide(snap, PolicyState(), config)
    assert first.actions == (), "acted before any delay"
    return decide(replace(snap, now=snap.now + 60.0), state, config)


def test_scale_up_carries_its_reason_and_inputs():
    # given: 3.0 actor-s/s offered to 2 actors
    snap = snapshot(30.0, pool_signal(utilisation=0.98))
    # when
    decision, state = held(snap)
    # then
    (action,) = [a for a in decision.actions if a.target == "detector:person"]
    assert (action.action, action.reason, action.before, action.after) == (
        "scale_up", "demand", 2, 4)
    assert action.inputs == {"demand": 3.0, "utilisation": 0.98, "service_ms": 100.0, "running": 2,
                             "pending": 0, "free_cpus": 8.0}
    assert decision.actors == {"person": 4}
    # and the next step up waits a whole delay again (restart)
    assert state.leaning["detector:person"] == (1, 160.0)


def test_below_min_scale_down_and_capacity_actions_carry_reasons():
    below, _ = held(snapshot(0.0, pool_signal(target=0, running=0, min_actors=1)))
    assert [(a.action, a.reason) for a in below.actions] == [("scale_up", "below_min")]

    down, _ = held(snapshot(5.0, pool_signal(target=4, running=4)))
    assert [(a.action, a.reason, a.after) for a in down.actions] == [
        ("scale_down", "low_utilisation", 1)]

    short, _ = held(snapshot(60.0, pool_signal(), free_cpus=2.5))
    limited, up = short.actions[:2]
    assert (limited.action, limited.reason, limited.after, limited.inputs["wanted"]) == (
        "capacity_limited", "cluster_cpus", 4, 8)
    assert (up.action, up.after) == ("scale_up", 4)
    assert short.actors == {"person": 4}


def test_no_more_actors_while_some_are_pending():
    decision, _ = held(snapshot(60.0, pool_signal(target=3, running=2, pending=1)))
    assert decision.actors == {"person": 3} and decision.actions == ()


def test_buffer_actions_carry_reason_and_inputs():
    # given: a camera with a low hit-rate and calm latency, detectors with headroom
    # (15 fps x 0.1 s wants the 2 actors there are: the pool itself holds)
    calm = pool_signal(utilisation=0.3)
    decision, _ = held(snapshot(15.0, calm, hit_rate=0.9, p95_ms=200.0))
    (action,) = decision.actions
    assert (action.target, action.action, action.reason, action.before, action.after) == (
        "camera:cam", "buffers_up", "bursts", 2, 3)
    assert action.inputs == {"hit_rate": 0.9, "p95_ms": 200.0, "offered_fps": 15.0}

    # given: p95 above the SLO
    (action,) = held(snapshot(15.0, calm, p95_ms=1500.0, buffers=4))[0].actions
    assert (action.action, action.reason, action.after) == ("buffers_down", "latency_slo", 3)

    # given: p95 in the band (80-100% of the SLO) with a low hit-rate: neither rule acts
    assert held(snapshot(15.0, calm, hit_rate=0.5, p95_ms=900.0))[0].actions == ()

    # given: a low hit-rate, but the detectors are saturated: more buffers would only queue
    busy = pool_signal(utilisation=0.9)
    assert held(snapshot(15.0, busy, hit_rate=0.5, p95_ms=200.0))[0].actions == ()

    # given: at min_buffers and late: no lower
    floor = held(snapshot(15.0, calm, p95_ms=1500.0, buffers=CONFIG.min_buffers))[0]
    assert floor.buffers == {"cam": CONFIG.min_buffers} and floor.actions == ()


def test_negative_free_cpus_never_shrinks_the_target():
    # given: the cluster lost a node, so more CPUs are in use than exist (free = -1)
    snap = snapshot(60.0, pool_signal(target=3, running=3), free_cpus=-1.0)
    # when
    decision, _ = held(snap)
    # then: no growth, but no shrinking either: that is scale_down's business, with its delay
    assert decision.actors == {"person": 3}
    assert all(a.after >= a.before for a in decision.actions)


# ----------------------------------------------------------------------------- batch size
def batch_snapshot(now: float, queued: int, batch: int, p95_ms: float | None,
                   limit: int = 8) -> Snapshot:
    camera = CameraSignal("cam", ("face",), 30.0, 1.0, p95_ms, 4)
    pool = PoolSignal("face", target=2, running=2, pending=0, utilisation=0.6, service_s=0.01,
                      num_cpus=1, min_actors=1, max_actors=4, batch_size=batch,
                      max_batch_size=limit, queued=queued)
    return Snapshot(now, (camera,), (pool,), free_cpus=0.0)


def run_batch(frames: list[tuple[int, float | None]], batch: int = 1,
              limit: int = 8) -> tuple[list[int], list[Any]]:
    """Feed (queued, p95) once a second; apply each decision's batch size. Sizes and actions."""
    state, sizes, actions = PolicyState(), [], []
    for t, (queued, p95) in enumerate(frames):
        decision, state = decide(batch_snapshot(float(t), queued, batch, p95, limit), state,
                                 CONFIG)
        batch = decision.batch["face"]
        sizes.append(batch)
        actions += [a for a in decision.actions if a.action.startswith("batch")]
    return sizes, actions


def test_batch_size_doubles_while_frames_queue_and_latency_has_room():
    sizes, actions = run_batch([(8, 200.0)] * 40)
    assert sizes[-1] == 8 and sorted(set(sizes)) == [1, 2, 4, 8]  # 1 -> 2 -> 4 -> 8, capped
    assert all(a.reason == "queueing" for a in actions) and len(actions) == 3
    assert sizes.index(2) >= CONFIG.look_back_s  # only after the direction held a window


def test_batch_size_halves_when_p95_is_over_the_slo_and_never_below_one():
    sizes, actions = run_batch([(0, 1500.0)] * 60, batch=8)
    assert sizes[-1] == 1 and [a.after for a in actions] == [4, 2, 1]
    assert all(a.reason == "latency_slo" for a in actions)


def test_batch_size_holds_without_queueing_or_when_batching_is_off():
    assert run_batch([(0, 200.0)] * 30, batch=2)[0][-1] == 2  # no queue: no change
    assert run_batch([(20, 200.0)] * 30, batch=1, limit=1)[0][-1] == 1  # max_batch_size 1


def test_batch_size_does_not_oscillate_on_a_noisy_boundary():
    rng = np.random.default_rng(3)
    frames = [(int(rng.integers(1, 4)), float(rng.normal(780, 60))) for _ in range(600)]
    _, actions = run_batch(frames, batch=2)
    flips = sum(1 for a, b in zip(actions, actions[1:], strict=False) if a.action != b.action)
    assert flips <= 2, [(a.action, a.after) for a in actions]


def test_gpu_actors_grow_only_as_far_as_free_gpus_allow():
    camera = CameraSignal("cam", ("yolo",), 100.0, 0.5, 300.0, 4)
    pool = PoolSignal("yolo", target=1, running=1, pending=0, utilisation=1.0, service_s=0.03,
                      num_cpus=1, min_actors=1, max_actors=8, num_gpus=0.5)
    state = PolicyState()
    for t in range(10):
        decision, state = decide(Snapshot(float(t), (camera,), (pool,), free_cpus=16.0,
                                          free_gpus=1.0), state, CONFIG)
        if decision.actions:
            break
    assert decision.actors["yolo"] == 3  # 1 + two more half-GPU actors, not the 4 wanted
    limited = [a for a in decision.actions if a.action == "capacity_limited"]
    assert limited and limited[0].reason == "cluster_gpus"


# ----------------------------------------------------------------------------- vocabulary
def random_walk(seed: int, steps_n: int = 200) -> list[tuple[Snapshot, Decision]]:
    """``decide`` on random pools and cameras of every shape (no CPU, GPUs, batching on or off)
    whose figures drift from step to step, each decision applied: the snapshots and decisions."""
    rng = np.random.default_rng(seed)
    config = AutoscalingConfig(upscale_delay_s=float(rng.integers(0, 3)),
                               downscale_delay_s=float(rng.integers(0, 5)), look_back_s=1.0,
                               min_buffers=1, max_buffers=int(rng.integers(2, 8)))
    pools = []
    for kind in ("face", "person", "yolo")[: int(rng.integers(1, 4))]:
        lo = int(rng.integers(0, 3))
        batch = int(rng.choice([1, 1, 4, 8]))
        pools.append(PoolSignal(
            kind, target=lo, running=lo, pending=0, utilisation=0.5, service_s=None,
            num_cpus=float(rng.choice([0.0, 0.5, 1.0])), min_actors=lo,
            max_actors=lo + int(rng.integers(0, 6)), batch_size=batch, max_batch_size=batch,
            num_gpus=float(rng.choice([0.0, 0.0, 0.5]))))
    cameras = [CameraSignal(f"cam{i}", tuple(p.kind for p in pools if rng.random() < 0.8)
                            or (pools[0].kind,), 5.0, 1.0, None, 2)
               for i in range(int(rng.integers(1, 4)))]
    state, now, seen = PolicyState(), 0.0, []
    for _ in range(steps_n):
        now += float(rng.uniform(0.5, 4.0))
        pools = [replace(
            p, utilisation=float(rng.uniform(0, 1)),
            service_s=None if rng.random() < 0.1 else float(rng.uniform(0.01, 0.3)),
            running=max(0, p.target - (pending := int(rng.integers(0, 2)) * (p.target > 0))),
            pending=pending, queued=int(rng.integers(0, 20)),
            min_actors=max(0, p.min_actors + int(rng.integers(-1, 2))) if rng.random() < 0.05
            else p.min_actors) for p in pools]
        pools = [replace(p, max_actors=max(p.max_actors, p.min_actors)) for p in pools]
        cameras = [replace(c, offered_fps=float(rng.uniform(0, 40)),
                           hit_rate=float(rng.uniform(0.5, 1)),
                           p95_ms=None if rng.random() < 0.1 else float(rng.uniform(50, 2500)))
                   for c in cameras]
        snap = Snapshot(now, tuple(cameras), tuple(pools), float(rng.uniform(-1, 6)),
                        float(rng.uniform(0, 2)))
        decision, state = decide(snap, state, config)
        seen.append((snap, decision))
        pools = [replace(p, target=decision.actors[p.kind], batch_size=decision.batch[p.kind])
                 for p in pools]
        cameras = [replace(c, buffers=decision.buffers[c.camera]) for c in cameras]
    return seen


def test_every_action_the_policy_takes_is_one_the_metrics_export_from_the_start():
    # given: random walks over pools and cameras of every shape, and random simulated fleets
    runs = [step for seed in range(40) for step in random_walk(seed)]
    for seed in range(5):
        runs += [(t.snapshot, t.decision) for t in FleetSim(random_fleet(seed)).run(120.0)]
    taken = set()
    for snap, decision in runs:
        # then: each action is a series /metrics exported at 0 for that fleet before it was taken
        possible = possible_actions(snap.pools, [c.camera for c in snap.cameras])
        for action in decision.actions:
            assert action.key in possible, (snap, action)
            taken.add((action.action, action.reason))
    # and the vocabulary holds nothing the policy never does: every pair was taken somewhere
    assert taken == {(a, r) for a, kind in ACTIONS.items() for r in kind.reasons}


@pytest.mark.parametrize(("target", "action", "reason"), [
    ("detector:face", "scale_sideways", "demand"),  # no such action
    ("detector:face", "scale_up", "a_hunch"),  # no such reason
    ("detector:face", "scale_up", "bursts"),  # another action's reason
    ("camera:cam", "scale_up", "demand"),  # a detector action on a camera
    ("detector:face", "buffers_up", "bursts"),  # a camera action on a pool
    ("face", "scale_up", "demand"),  # a target without its kind
])
def test_an_action_outside_the_vocabulary_cannot_be_made(target, action, reason):
    with pytest.raises(ValueError, match="no such scaling action"):
        Action(target, action, reason, 1, 2)


def test_possible_actions_pair_each_action_with_its_own_reasons_and_targets():
    cpu = pool_signal(kind="face", num_cpus=1.0)
    gpu = pool_signal(kind="yolo", num_cpus=0.0, num_gpus=0.5, max_batch_size=8, batch_size=8)
    keys = possible_actions([cpu, gpu], ["cam"])
    assert {k for k in keys if k[2] == "detector:face"} == {
        ("scale_up", "demand", "detector:face"), ("scale_up", "below_min", "detector:face"),
        ("scale_down", "low_utilisation", "detector:face"),
        ("capacity_limited", "cluster_cpus", "detector:face")}  # no GPUs, batching off
    assert {k for k in keys if k[2] == "detector:yolo"} == {
        ("scale_up", "demand", "detector:yolo"), ("scale_up", "below_min", "detector:yolo"),
        ("scale_down", "low_utilisation", "detector:yolo"),
        ("capacity_limited", "cluster_gpus", "detector:yolo"),  # no CPU per actor to run out of
        ("batch_up", "queueing", "detector:yolo"), ("batch_down", "latency_slo", "detector:yolo")}
    assert {k for k in keys if k[2] == "camera:cam"} == {
        ("buffers_up", "bursts", "camera:cam"), ("buffers_down", "latency_slo", "camera:cam")}
    assert possible_actions([], []) == set()
