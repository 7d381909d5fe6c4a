"""Which detector actor gets a frame (fleet/pipeline/routing.py), as pure functions: least loaded
wins, the camera's own node is preferred by REMOTE_PENALTY frames, ties go round-robin, dead and
removed actors get nothing. The Ray side (actors/handoff.py) is in tests/integration and
tests/e2e/test_locality.py."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from fleet.pipeline.routing import REMOTE_PENALTY, Route, is_remote, load, pick, repool

pytestmark = pytest.mark.timeout(60)

HERE = "node-a"


def route(actor: str, outstanding: int = 0, node: str | None = HERE, dead: bool = False) -> Route:
    return Route(handle=f"handle-{actor}", actor=actor, node=node, outstanding=outstanding,
                 dead=dead)


def chosen(routes: list[Route], here: str | None = HERE, turn: int = 0) -> str | None:
    choice = pick(routes, here, itertools.count(turn))
    return choice.actor if choice is not None else None


# ------------------------------------------------------------------------------ least loaded
def test_the_least_loaded_actor_wins():
    routes = [route("a", 3), route("b", 1), route("c", 2)]
    assert {chosen(routes, turn=t) for t in range(3)} == {"b"}  # wherever the turn starts


def test_frames_spread_to_keep_the_load_even():
    # given three idle actors, when nine frames go out and none is answered
    routes = [route("a"), route("b"), route("c")]
    turns = itertools.count()
    for _ in range(9):
        choice = pick(routes, HERE, turns)
        assert choice is not None
        choice.outstanding += 1
    # then each has three
    assert [r.outstanding for r in routes] == [3, 3, 3]


# ------------------------------------------------------------------------------ same node
def test_a_local_actor_is_preferred_unless_a_remote_one_is_the_penalty_less_loaded():
    local = route("local", outstanding=REMOTE_PENALTY + 1)
    for remote_load in range(REMOTE_PENALTY + 2):
        remote = route("remote", outstanding=remote_load, node="node-b")
        # penalty less loaded or more: the remote wins; less than that: local wins (or ties)
        wins = {chosen([local, remote], turn=t) for t in range(2)}
        if remote_load + REMOTE_PENALTY < local.outstanding:
            assert wins == {"remote"}, remote_load
        elif remote_load + REMOTE_PENALTY > local.outstanding:
            assert wins == {"local"}, remote_load
        else:  # exactly the penalty less loaded: a tie, shared round-robin
            assert wins == {"local", "remote"}, remote_load


def test_the_remote_is_chosen_when_the_camera_has_no_local_actor():
    routes = [route("far", 5, node="node-b"), route("farther", 7, node="node-c")]
    assert chosen(routes) == "far"


def test_unknown_nodes_count_as_local():
    # an actor not located yet, or a camera whose node is not known: no penalty
    unknown = route("unknown", 1, node=None)
    assert not is_remote(unknown, HERE) and load(unknown, HERE) == 1
    remote = route("remote", 1, node="node-b")
    assert not is_remote(remote, None) and load(remote, None) == 1
    assert is_remote(remote, HERE) and load(remote, HERE) == 1 + REMOTE_PENALTY
    assert chosen([route("local", 2), unknown]) == "unknown"


# ------------------------------------------------------------------------------ ties
def test_ties_go_round_robin_from_the_turn():
    routes = [route("a"), route("b"), route("c")]
    assert [chosen(routes, turn=t) for t in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_a_tie_between_local_and_penalised_remote_is_shared():
    routes = [route("local", REMOTE_PENALTY), route("remote", 0, node="node-b")]
    counts = Counter(chosen(routes, turn=t) for t in range(10))
    assert counts == {"local": 5, "remote": 5}


def test_the_turn_is_drawn_only_when_there_is_a_choice():
    # the dispatcher's one counter is shared by every kind: a kind with no live actor skips it
    turns = itertools.count()
    assert pick([], HERE, turns) is None
    assert pick([route("x", dead=True)], HERE, turns) is None
    assert next(turns) == 0


# ------------------------------------------------------------------------------ few actors
def test_no_actor_no_choice():
    assert chosen([]) is None


def test_one_actor_gets_every_frame_however_loaded_or_far():
    for outstanding, node in ((0, HERE), (50, HERE), (9, "node-b"), (0, None)):
        only = route("only", outstanding, node=node)
        assert {chosen([only], turn=t) for t in range(3)} == {"only"}


# ------------------------------------------------------------------------------ actors that left
def test_a_dead_actor_gets_no_frame_however_idle():
    routes = [route("dead", 0, dead=True), route("busy", 9)]
    assert {chosen(routes, turn=t) for t in range(4)} == {"busy"}
    assert chosen([route("dead", dead=True), route("also", dead=True)]) is None


def test_a_new_pool_keeps_the_counts_of_kept_actors_and_leaves_out_the_removed():
    # given a kind with actors a (2 outstanding) and b (5), b's node known
    a, b = route("a", 2, node=None), route("b", 5, node="node-b")
    # when the pool becomes b (node not reported this time) and a new c
    routes = repool([a, b], [("handle-b", "b", None), ("handle-c", "c", HERE)])
    # then b is the same route, counts and node kept; c starts idle; a is gone from the choice
    assert [r.actor for r in routes] == ["b", "c"]
    assert routes[0] is b and (b.outstanding, b.node) == (5, "node-b")
    assert (routes[1].outstanding, routes[1].node, routes[1].handle) == (0, HERE, "handle-c")
    assert {chosen(routes, turn=t) for t in range(2)} == {"c"}
    # a's frames still finish on its route (the tickets hold it); it just gets no new one
    assert a.outstanding == 2


def test_a_kept_actor_learns_its_node():
    a = route("a", 1, node=None)
    (again,) = repool([a], [("handle-a", "a", "node-b")])
    assert again is a and a.node == "node-b" and is_remote(a, HERE)


def test_a_dead_actor_kept_in_the_pool_stays_dead():
    # the controller has not replaced it yet: it stays out of the choice until it does
    dead = route("a", dead=True)
    routes = repool([dead], [("handle-a", "a", HERE), ("handle-b", "b", HERE)])
    assert routes[0].dead and chosen(routes) == "b"
