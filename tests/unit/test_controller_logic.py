"""The controller's logic on fake actors: start-up, stats fan-in, applying decisions, and what
it does when an actor dies or hangs. The same controller on real Ray is in tests/integration."""

from __future__ import annotations

import pytest

from fleet.config import parse_fleet
from fleet.control.controller import FleetController, fit_problem
from fleet.control.pools import UNHEALTHY_AFTER
from fleet.errors import FleetError
from tests.unit.fakeactors import FakeActors

FLEET = """
name: t
metrics: {enabled: false}
autoscaling: {enabled: false}
defaults: {fps: 5, buffers: 2, num_cpus: 0.25}
cameras:
  - {id: a, source: {type: synthetic, width: 320, height: 240, fps: 10}, detect: [face]}
  - {id: b, source: {type: synthetic, width: 320, height: 240, fps: 10}, detect: [face, person]}
detectors:
  face: {actors: 2, num_cpus: 0.5}
  person: {actors: 1, num_cpus: 0.5}
"""


@pytest.fixture
def fleet(tmp_path):
    actors = FakeActors(cpus=4)
    controller = FleetController(parse_fleet(FLEET, env={}), str(tmp_path), actors)
    controller.start()
    yield controller, actors
    if not controller.stats_file.closed:
        controller.stop()


def camera(actors, controller, cid):
    return actors.obj(controller.cameras[cid])


def test_start_cameras_then_pools_beside_them_and_capture_once_routed_to_ready_actors(fleet):
    controller, actors = fleet
    roles = [r.role for r in actors.started]
    assert roles == ["camera"] * 2 + ["detector"] * 3
    b = camera(actors, controller, "b")
    assert b.state == "up"
    assert b.routes["face"] == controller.pools["face"].handles() and len(b.routes["face"]) == 2
    assert set(camera(actors, controller, "a").routes) == {"face"}


def test_detectors_start_beside_their_cameras_and_routes_say_where(tmp_path):
    # given cameras a on node n1 and b on node n2, each with 1 face actor of 2 to place
    actors = FakeActors(cpus=8)
    actors.camera_node = {"a": "n1", "b": "n2"}
    controller = FleetController(parse_fleet(FLEET, env={}), str(tmp_path), actors)
    controller.start()
    try:
        # then one face actor was asked for on each camera's node, the person one beside b
        pool = controller.pools["face"]
        assert sorted(pool.handle_nodes()) == ["n1", "n2"]
        assert controller.pools["person"].handle_nodes() == ["n2"]
        # and every camera was told where each actor runs
        b = camera(actors, controller, "b")
        assert sorted(b.route_nodes["face"]) == ["n1", "n2"]
        # when face scales to 3, the new actor goes where the cameras per actor are most
        actors.camera_node["c"] = "n2"
        pool.demand = {"n1": 1.0, "n2": 3.0}
        pool.resize(3)
        assert pool.nodes[pool.pending[-1].id] == "n2"
        # and scaling back down retires the actor on the node with the fewest cameras per actor
        pool.promote()
        pool.resize(2)
        assert [pool.nodes[a.id] for a in pool.draining] == ["n1"]
    finally:
        controller.stop()


def test_a_detector_asked_for_on_a_full_node_lands_elsewhere_and_says_so(tmp_path):
    actors = FakeActors(cpus=8)
    actors.camera_node = {"a": "n1", "b": "n1"}
    actors.full_nodes = {"n1"}
    controller = FleetController(parse_fleet(FLEET, env={}), str(tmp_path), actors)
    controller.start()
    try:  # Ray's soft affinity put them on n0: the pool records where they really run
        assert controller.pools["face"].handle_nodes() == ["n0", "n0"]
    finally:
        controller.stop()


def test_a_fleet_that_does_not_fit_fails_at_once_naming_the_numbers(tmp_path):
    actors = FakeActors(cpus=2)
    text = FLEET.replace("num_cpus: 0.25", "num_cpus: 0.75")  # 1.5 + 1.5 = 3 CPUs
    controller = FleetController(parse_fleet(text, env={}), str(tmp_path), actors)
    with pytest.raises(FleetError) as err:
        controller.start()
    message = str(err.value)
    assert "needs 3 CPUs" in message and "has 2 of 2 free" in message and "num_cpus" in message
    assert actors.started == []  # nothing was started
    controller.stop()


def test_fit_problem_is_none_when_it_fits():
    config = parse_fleet(FLEET, env={})
    assert fit_problem(config, {"CPU": 2.0}, {"CPU": 2.0}) is None  # 0.5 + 1.5


def test_collect_gathers_every_camera_and_pool(fleet):
    controller, _ = fleet
    snapshot = controller.collect()
    assert set(snapshot.cameras) == {"a", "b"}
    assert all(v.stats.accounted for v in snapshot.cameras.values())
    assert snapshot.detectors["face"].running == 2 and snapshot.detectors["person"].running == 1


def test_collect_exports_every_decision_the_fleets_pools_and_cameras_can_see_at_0(fleet):
    # given: autoscaling off (it may be turned on by apply), nothing decided yet
    controller, _ = fleet
    controller.collect()
    possible = controller.metrics.possible
    # then: each pool's and camera's decisions are known, pairs only as the policy makes them
    assert {t for _, _, t in possible} == {"detector:face", "detector:person", "camera:a",
                                           "camera:b"}
    assert ("buffers_up", "bursts", "camera:a") in possible
    assert ("capacity_limited", "cluster_cpus", "detector:face") in possible
    assert not {k for k in possible if k[1] == "cluster_gpus" or k[0].startswith("batch")}
    # and a camera removed by apply leaves the list, one added joins it
    a_line = next(line for line in FLEET.splitlines(keepends=True) if "{id: a," in line)
    text = FLEET.replace(a_line, "").replace("detectors:", "  - {id: c, source: synthetic}\n"
                                                           "detectors:")
    controller.apply(parse_fleet(text, env={}))
    controller.collect()
    assert {t for _, _, t in controller.metrics.possible if t.startswith("camera:")} == {
        "camera:b", "camera:c"}


def test_once_a_cameras_frame_size_is_known_what_its_face_detector_misses_is_logged_once(
        fleet, caplog):
    controller, actors = fleet
    controller.collect()  # no frame yet: nothing to say
    camera(actors, controller, "a").frame = (1920, 1080)  # its first frame came
    for _ in range(3):
        controller.collect()
    notes = [r for r in caplog.records if "face detector" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in notes] == [(
        "WARNING", "camera a: face detector 'face' (BlazeFace back, 256 px input) sees this "
        "1920x1080 frame at 1/7.5: faces smaller than about 112 px are likely missed; tiles: "
        "{enabled: true, grid: auto} finds smaller ones, at a model call a tile")]


def test_a_hung_camera_does_not_stop_the_others(fleet):
    controller, actors = fleet
    controller.collect()
    actors.hang(controller.cameras["a"])
    before = controller.last["a"].captured
    snapshot = controller.collect()
    assert snapshot.cameras["b"].stats.captured == 20
    assert snapshot.cameras["a"].stats.captured == before  # its last known counters


def test_a_dead_detector_is_replaced_and_leaves_the_routing(fleet):
    controller, actors = fleet
    pool = controller.pools["face"]
    victim = pool.running[0]
    actors.die(victim)
    controller.collect()
    assert victim.id in actors.killed
    assert victim not in pool.running and len(pool.pending) == 1 and pool.replaced == 1
    routes = camera(actors, controller, "b").routes["face"]
    assert victim.handle not in routes and len(routes) == 1  # left the routing at once
    controller.autoscale(controller.latest)  # promotes the replacement
    assert len(pool.running) == 2
    assert camera(actors, controller, "b").routes["face"] == pool.handles()


def test_a_hung_detector_is_replaced_after_missed_health_checks(fleet):
    controller, actors = fleet
    pool = controller.pools["person"]
    victim = pool.running[0]
    actors.hang(victim)
    for _ in range(UNHEALTHY_AFTER - 1):
        controller.collect()
        assert victim in pool.running
    controller.collect()
    assert victim not in pool.running and victim.id in actors.killed and pool.pending


def test_a_detector_that_fails_to_start_is_not_routed(tmp_path):
    actors = FakeActors(cpus=4)
    actors.failing_start.add("person")
    controller = FleetController(parse_fleet(FLEET, env={}), str(tmp_path), actors)
    with pytest.raises(FleetError, match="person"):
        controller.start()
    cameras = [r for r in actors.started if r.role == "camera"]
    assert cameras and all(r.id in actors.killed for r in cameras)  # created, never started
    assert all(actors.obj(r).state == "starting" for r in cameras)
    controller.stop()


def test_a_dead_camera_restarts_with_its_counters(fleet):
    controller, actors = fleet
    controller.collect()
    controller.collect()
    old = controller.cameras["a"]
    last = controller.last["a"]
    actors.die(old)
    view = controller.collect().cameras["a"]
    assert view.stats.state == "restarting"
    new = controller.cameras["a"]
    assert new.id != old.id and old.id in actors.killed
    restarted = actors.obj(new)
    assert restarted.state == "up" and restarted.resume == last
    stats = controller.collect().cameras["a"].stats
    assert stats.captured == last.captured + 10  # neither reset nor double counted
    assert stats.dropped["camera_lost"] == last.in_flight  # frames that died with the actor
    assert stats.accounted


def test_a_camera_that_keeps_dying_is_restarted_with_backoff(fleet):
    controller, actors = fleet
    actors.die(controller.cameras["a"])
    controller.collect()
    actors.die(controller.cameras["a"])
    controller.collect()  # within the backoff: not restarted again yet
    assert controller.restarts["a"] == 1


def test_a_camera_stuck_inside_its_source_is_restarted_by_the_watchdog(fleet):
    controller, actors = fleet
    stuck = controller.cameras["a"]
    actors.obj(stuck).stuck_s = 59.0  # under watchdog_s (60 by default): left alone
    controller.collect()
    assert controller.cameras["a"] == stuck
    actors.obj(stuck).stuck_s = 61.0
    assert controller.collect().cameras["a"].stats.state == "restarting"
    assert controller.cameras["a"] != stuck and stuck.id in actors.killed
    assert controller.collect().cameras["a"].stats.accounted


def test_scale_in_kills_an_actor_only_when_no_camera_has_a_frame_at_it(fleet):
    controller, actors = fleet
    pool = controller.pools["face"]
    assert pool.resize(1)
    controller._route("face")
    leaving = pool.draining[0]
    camera(actors, controller, "b").outstanding_at = {leaving.id: 1}
    controller._reap()
    assert leaving.id not in actors.killed
    camera(actors, controller, "b").outstanding_at = {}
    controller._reap()
    assert leaving.id in actors.killed and not pool.draining


def test_stop_counts_what_a_dead_camera_had_in_flight(fleet):
    controller, actors = fleet
    controller.collect()
    last = controller.last["a"]
    actors.die(controller.cameras["a"])
    final = controller.stop()
    assert final["b"].state == "stopped" and final["b"].accounted
    assert final["a"].state == "crashed" and final["a"].in_flight == 0
    assert final["a"].dropped["camera_lost"] == last.in_flight and final["a"].accounted
    assert all(r.id in actors.killed for r in actors.started)


def test_fit_counts_gpus_and_custom_resources():
    config = parse_fleet(FLEET.replace("person: {actors: 1, num_cpus: 0.5}",
                                       "person: {actors: 3, num_cpus: 0.5, num_gpus: 0.5, "
                                       "resources: {edge_tpu: 1}}"), env={})
    enough = {"CPU": 8.0, "GPU": 2.0, "edge_tpu": 4.0}
    assert fit_problem(config, enough, enough) is None
    short = {"CPU": 8.0, "GPU": 1.0, "edge_tpu": 2.0}
    message = fit_problem(config, short, short)
    assert message is not None
    assert "needs 1.5 GPUs and the cluster has 1 of 1 free" in message
    assert "3 edge_tpu and the cluster has 2 of 2 free" in message and "num_gpus" in message


def test_detector_pools_ask_ray_for_their_gpus_and_resources(tmp_path):
    actors = FakeActors(cpus=8)
    actors.gpus = 1.0
    text = FLEET.replace("person: {actors: 1, num_cpus: 0.5}",
                         "person: {actors: 1, num_cpus: 0.5, num_gpus: 0.25, "
                         "resources: {edge_tpu: 1}, batching: {max_batch_size: 4}}")
    controller = FleetController(parse_fleet(text, env={}), str(tmp_path), actors)
    controller.start()
    person = controller.pools["person"].running[0]
    placement = actors.placements[person.id]
    assert placement.num_gpus == 0.25 and dict(placement.resources) == {"edge_tpu": 1}
    assert actors.obj(person).batching == (4, 2.0)  # told its batch size when it joined
    controller.stop()


# ------------------------------------------------------------------------------------ apply
def test_apply_adds_removes_and_changes_cameras_and_leaves_the_others_running(fleet):
    controller, actors = fleet
    controller.collect()
    a_before, b_before = controller.cameras["a"], controller.cameras["b"]
    b_counters = controller.last["b"]
    # given a file that removes a, changes b's fps, adds c
    a_line = next(line for line in FLEET.splitlines(keepends=True) if "{id: a," in line)
    text = FLEET.replace(a_line, "").replace("detect: [face, person]}",
                                             "detect: [face, person], fps: 2}")
    text = text.replace("detectors:", "  - {id: c, source: synthetic}\ndetectors:")
    lines = controller.apply(parse_fleet(text, env={}))
    # then it says what it did
    assert any(line.startswith("camera a: removed") for line in lines), lines
    assert "camera b: restarted with its new settings; counters go on" in lines
    assert "camera c: added" in lines
    # a drained and ended; b restarted from its counters; c started
    assert a_before.id in actors.killed and "a" not in controller.cameras
    resume = actors.obj(controller.cameras["b"]).resume  # its drained counters: they go on
    assert controller.cameras["b"] != b_before and resume.captured >= b_counters.captured
    assert resume.in_flight == 0 and resume.state == "stopped"
    assert actors.obj(controller.cameras["c"]).state == "up"
    assert actors.obj(controller.cameras["c"]).routes["face"]  # routed
    # and the removed camera's counters are still in the run's summary
    final = controller.stop()
    assert set(final) == {"a", "b", "c"} and final["a"].state == "stopped"


def test_apply_with_new_detector_settings_starts_a_new_pool_first_and_drains_the_old(fleet):
    controller, actors = fleet
    old_face = controller.pools["face"]
    old_ids = {a.id for a in old_face.running}
    untouched = controller.cameras["a"]
    lines = controller.apply(parse_fleet(FLEET.replace("face: {actors: 2, num_cpus: 0.5}",
                                                       "face: {actors: 1, num_cpus: 0.5, "
                                                       "min_score: 0.7}"), env={}))
    assert "detector face: new settings; 1 new actor(s), the old ones drain" in lines
    new_face = controller.pools["face"]
    assert new_face is not old_face and len(new_face.running) == 1
    # cameras now send to the new actor only; the old ones drain and are reaped
    assert actors.obj(untouched).routes["face"] == new_face.handles()
    assert controller.cameras["a"] == untouched  # the cameras were not touched
    controller.autoscale(controller.collect())
    assert old_ids <= set(actors.killed)


def test_apply_refuses_what_needs_a_restart_and_changes_nothing(fleet):
    controller, actors = fleet
    started = len(actors.started)
    with pytest.raises(FleetError, match="sinks cannot change in a running fleet"):
        controller.apply(parse_fleet(FLEET + "sinks: {jsonl: {frames: true}}\n", env={}))
    assert len(actors.started) == started


def test_apply_of_the_same_file_changes_nothing(fleet):
    controller, actors = fleet
    started = len(actors.started)
    assert controller.apply(parse_fleet(FLEET, env={})) == [
        "nothing to change: the running fleet already matches the file"]
    assert len(actors.started) == started


def test_a_big_fleet_writes_stats_lines_less_often():
    from fleet.control.fanin import stats_file_every

    def fleet_of(n: int, extra: str = "") -> object:
        rows = "".join(f"  - {{id: c{i}, source: synthetic}}\n" for i in range(n))
        return parse_fleet(f"stats_interval_s: 1\n{extra}cameras:\n{rows}", env={})

    assert stats_file_every(fleet_of(50)) == 1.0
    assert stats_file_every(fleet_of(1000)) == 10.0  # one line holds every camera
    assert stats_file_every(fleet_of(1000, "stats_file_interval_s: 2\n")) == 2.0


def test_an_actor_that_dies_as_it_starts_is_started_again_elsewhere(tmp_path):
    # given a person actor asked for on a node that is lost as it starts
    actors = FakeActors(cpus=4)
    actors.failing_once.add("person")
    controller = FleetController(parse_fleet(FLEET, env={}), str(tmp_path), actors)
    controller.start()
    try:  # then the pool started another one, with no node asked for, and it runs
        pool = controller.pools["person"]
        assert len(pool.running) == 1 and pool.start_failures == 1
        assert actors.placements[pool.running[0].id].node is None
    finally:
        controller.stop()


def test_apply_of_a_new_actor_count_resizes_the_pool(fleet):
    controller, actors = fleet
    lines = controller.apply(parse_fleet(FLEET.replace("face: {actors: 2, num_cpus: 0.5}",
                                                       "face: {actors: 3, num_cpus: 0.5}"),
                                         env={}))
    assert any(line.startswith("detector face: 3 actor(s), autoscaling bounds") for line in lines)
    assert controller.pools["face"].target == 3


def test_a_long_change_renews_the_leases_it_keeps_from_the_stats_calls(fleet):
    controller, actors = fleet
    controller.apply(parse_fleet(FLEET.replace("detect: [face, person]}",
                                               "detect: [face, person], fps: 2}"), env={}))
    # b drained and restarted: a, untouched, got a keepalive meanwhile, as did the detectors
    assert getattr(camera(actors, controller, "a"), "keepalives", 0) >= 1
    assert all(getattr(actors.obj(a), "keepalives", 0) >= 1
               for a in controller.pools["face"].running)


def test_an_actor_whose_constructor_raises_is_not_started_again(tmp_path):
    actors = FakeActors(cpus=4)
    actors.failing_start.add("person")
    controller = FleetController(parse_fleet(FLEET, env={}), str(tmp_path), actors)
    with pytest.raises(FleetError, match="person"):
        controller.start()
    assert controller.pools["person"].start_failures == 1  # once: it would fail the same again
    controller.stop()
