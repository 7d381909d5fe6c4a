"""The controller's narrow view of actors: start one, call it with a timeout, learn that it
died, kill it. Imports no Ray.

``fleet.control.controller`` and ``fleet.control.pools`` talk to actors only through
:class:`Actors`, so their logic (start-up, stats fan-in, applying decisions, reacting to a dead
actor) is unit-tested with an in-process fake, the way ``fleet.pipeline.camera`` is tested with a
fake dispatcher. ``actors.rayactors.RayActors`` is the real thing.

A call's outcome is its value, or one of two exceptions: :class:`ActorLostError` (the actor is
dead, for good or while Ray restarts it) or :class:`ActorTimeoutError` (no answer in time;
the actor may still be alive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# Defined in fleet.errors with every other exception; re-exported, as older code imports them here
from fleet.errors import ActorLostError as ActorLostError
from fleet.errors import ActorTimeoutError as ActorTimeoutError


@dataclass(frozen=True)
class ActorRef:
    """One actor: its id (stable across processes), its role and the handle to pass on.

    ``handle`` is what other actors need to call it (a Ray actor handle for the real thing);
    the controller itself never calls through it, only through :class:`Actors`.
    """

    id: str
    role: str  # "camera" | "detector"
    name: str  # camera id, or detector kind
    handle: Any = field(compare=False, repr=False)


@dataclass(frozen=True)
class Placement:
    """What an actor asks of the cluster."""

    num_cpus: float = 0.0
    num_gpus: float = 0.0
    resources: Mapping[str, float] = field(default_factory=dict)
    max_restarts: int = 0
    node: str | None = None  # prefer this node (soft: elsewhere if it has no room)


# A call's outcome as fan-in reports it: the value, or the exception it raised.
Outcome = Any


class Actors(Protocol):
    def start_camera(self, camera: str, args: Sequence[Any], placement: Placement) -> ActorRef:
        """Create a camera actor; it is not known to be up until a call succeeds."""

    def start_detector(self, kind: str, args: Sequence[Any], placement: Placement) -> ActorRef:
        """Create a detector actor; ``ready()`` tells when its constructor finished."""

    def ready(self, actors: Sequence[ActorRef], timeout_s: float) -> dict[str, Outcome]:
        """Actors whose constructor finished (True) or failed (an exception), by id; actors
        still starting are absent. Waits up to ``timeout_s`` for the first answer."""

    def call(self, actor: ActorRef, method: str, *args: Any, timeout_s: float) -> Any:
        """Call and wait; raises ActorLostError or ActorTimeoutError."""

    def call_all(self, calls: Mapping[str, tuple[ActorRef, str, tuple[Any, ...]]],
                 timeout_s: float) -> dict[str, Outcome]:
        """Send every call at once and wait up to ``timeout_s`` for them all. The result holds
        each key's value, or the ActorLostError / ActorTimeoutError / exception it ended with."""

    def send(self, actor: ActorRef, method: str, *args: Any) -> None:
        """Call without waiting (calls to one actor run in the order they were sent)."""

    def kill(self, actor: ActorRef) -> None:
        """End the actor now, without restarting it. Never raises."""

    def adopt(self) -> list[ActorRef]:
        """The fleet's actors that are alive now, started by an earlier life of the controller
        (empty for a fleet whose actors die with their controller)."""

    def resources(self) -> tuple[dict[str, float], dict[str, float]]:
        """The cluster's (total, available) resources, e.g. {"CPU": 4.0, "GPU": 0.0}."""
