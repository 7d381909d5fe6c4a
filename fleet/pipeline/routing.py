"""Which detector actor of a kind gets the next frame: plain data in, a choice out, no Ray.

The camera puts a frame into the object store on its own node. A detector on that node reads it
zero-copy; a detector on another node pulls the whole frame over the network first, and Ray routes
actor calls without regard to where their arguments are. So the choice prefers the camera's own
node: the least loaded actor wins, and a remote one counts ``REMOTE_PENALTY`` frames more than it
has outstanding. It gets a frame only when it is that much less loaded than the least loaded local
one (local capacity is short, or there is none). An actor whose node is not known yet (or a
camera whose node is not) counts as local. Ties go round-robin, so equal actors share the frames.

:class:`actors.handoff.RayDispatcher` keeps one :class:`Route` per actor, under its lock, and asks
:func:`pick` for every frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

REMOTE_PENALTY = 2  # frames a remote actor must be less loaded by to get a frame


@dataclass
class Route:
    """One detector actor as a camera routes to it."""

    handle: Any  # what the frame is sent to (a Ray actor handle); never looked into here
    actor: str  # the actor's id: a kept actor keeps its route when the pool changes
    node: str | None = None  # where the actor runs (None: not known yet)
    outstanding: int = 0  # frames sent to it and not answered yet
    dead: bool = False  # a call to it found it dead: no new frame goes there


def is_remote(route: Route, here: str | None) -> bool:
    """Whether a frame put on node ``here`` crosses the network to reach the actor."""
    return here is not None and route.node is not None and route.node != here


def load(route: Route, here: str | None) -> int:
    """What the choice compares: frames outstanding, plus the penalty for another node."""
    return route.outstanding + REMOTE_PENALTY * is_remote(route, here)


def pick(routes: Sequence[Route], here: str | None, turns: Iterator[int]) -> Route | None:
    """The live route with the lowest :func:`load` (None: no live actor of the kind).

    ``turns`` (the dispatcher's one counter, shared by every kind) says where the round-robin
    starts among equals; it is drawn from only when there is a live route to choose.
    """
    live = [r for r in routes if not r.dead]
    if not live:
        return None
    start = next(turns) % len(live)
    ordered = live[start:] + live[:start]  # min keeps the first of equals: ties go round-robin
    return min(ordered, key=lambda r: load(r, here))


def repool(old: Sequence[Route], members: Sequence[tuple[Any, str, str | None]]) -> list[Route]:
    """A kind's routes after its pool changed to ``members`` (handle, actor id, node or None).

    An actor kept keeps its route: its count of outstanding frames and its node when the new
    one is not known. An actor left out gets no new frame; the frames it has finish normally
    (the dispatcher's tickets still hold its route).
    """
    kept = {r.actor: r for r in old}
    routes = []
    for handle, actor, node in members:
        route = kept.get(actor) or Route(handle, actor)
        route.node = node or route.node
        routes.append(route)
    return routes
