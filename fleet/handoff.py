"""The zero-copy hand-off: one ``ray.put`` per frame, the ObjectRef to one detector per kind.

The detector receives the ObjectRef as a top-level argument, so Ray resolves it to a read-only
numpy view on the object store: the only copy of the pixels is the one ``ray.put`` made.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from fleet.frames import Completion, FrameMeta
from fleet.rayactors import actor_id

_LOST = (RayActorError, ActorDiedError, ActorUnavailableError)


@dataclass
class _Route:
    handle: Any
    actor: str
    outstanding: int = 0
    dead: bool = False  # a call to it found it dead: no new frame goes there


@dataclass
class _Ticket:
    completion: Completion
    frame_ref: ray.ObjectRef
    waiting: dict[ray.ObjectRef, _Route] = field(default_factory=dict)


class RayDispatcher:
    """Routes each frame to the least-loaded actor of every detector kind the camera runs."""

    def __init__(self, pools: dict[str, list[Any]], offset: int = 0):
        self.lock = threading.Lock()
        self.routes: dict[str, list[_Route]] = {}
        self.rotation = itertools.count(offset)
        for kind, handles in pools.items():
            self.set_pool(kind, handles)
        self.tickets: dict[ray.ObjectRef, _Ticket] = {}  # by result ref
        self.submitted = threading.Event()  # wakes an idle wait() as soon as a frame goes out

    def set_pool(self, kind: str, handles: list[Any]) -> None:
        """Replace a kind's actors. Kept actors keep their counts; a removed actor gets no new
        frame, and the frames it has finish normally (they are still tracked by their tickets)."""
        with self.lock:
            old = {r.actor: r for r in self.routes.get(kind, [])}
            self.routes[kind] = [old.get(actor_id(h)) or _Route(h, actor_id(h)) for h in handles]

    def outstanding(self) -> dict[str, int]:
        """Frames sent and not yet answered, per detector actor id (removed actors included)."""
        with self.lock:
            counts: dict[str, int] = {}
            for ticket in {id(t): t for t in self.tickets.values()}.values():
                for route in ticket.waiting.values():
                    counts[route.actor] = counts.get(route.actor, 0) + 1
            return counts

    def _pick(self, kind: str) -> _Route | None:
        routes = [r for r in self.routes[kind] if not r.dead]
        if not routes:
            return None
        start = next(self.rotation) % len(routes)
        ordered = routes[start:] + routes[:start]  # ties go round-robin
        return min(ordered, key=lambda r: r.outstanding)

    def submit(self, frame: np.ndarray, meta: FrameMeta, started: float) -> None:
        with self.lock:  # choose every kind's actor first: a frame is sent whole or not at all
            picks = {kind: self._pick(kind) for kind in self.routes}
        missing = sorted(kind for kind, route in picks.items() if route is None)
        if missing:
            names = ", ".join(missing)
            raise RuntimeError(f"no live detector actor of kind(s) {names}; the controller "
                               "is replacing it")
        frame_ref = ray.put(frame)
        completion = Completion(meta, started, view=lambda: ray.get(frame_ref))
        ticket = _Ticket(completion, frame_ref)
        with self.lock:
            for route in picks.values():
                assert route is not None
                route.outstanding += 1
                result_ref = route.handle.detect.remote(frame_ref, meta)
                ticket.waiting[result_ref] = route
                self.tickets[result_ref] = ticket
        self.submitted.set()

    def wait(self, timeout_s: float) -> list[Completion]:
        with self.lock:
            refs = list(self.tickets)
            if not refs:
                self.submitted.clear()
        if not refs:
            # Nothing in flight: sleep until a frame is submitted (not the whole timeout, which
            # would add up to timeout_s to that frame's latency), then wait for its result.
            if not self.submitted.wait(timeout_s):
                return []
            with self.lock:
                refs = list(self.tickets)
            if not refs:
                return []
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout_s, fetch_local=True)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=True)
        done: list[Completion] = []
        for ref in ready:
            ticket, finished = self._resolve(ref)
            if finished:
                done.append(ticket.completion)
        return done

    def _resolve(self, ref: ray.ObjectRef) -> tuple[_Ticket, bool]:
        error: BaseException | None
        try:
            result, error = ray.get(ref), None
        except _LOST as exc:
            result, error = None, exc
        except Exception as exc:  # noqa: BLE001 - the detector raised: the frame failed
            result, error = None, exc
        with self.lock:
            ticket = self.tickets.pop(ref)
            route = ticket.waiting.pop(ref)
            route.outstanding -= 1
            if result is not None:
                ticket.completion.results.append(result)
            elif isinstance(error, _LOST):
                ticket.completion.lost = True
                route.dead = True  # leaves the routing now, before the controller notices
            else:
                ticket.completion.errors.append(str(error).splitlines()[-1][:300])
            return ticket, not ticket.waiting

    def abandon(self) -> list[Completion]:
        with self.lock:
            tickets = {id(t): t for t in self.tickets.values()}
            for ref in self.tickets:
                ray.cancel(ref)
            self.tickets.clear()
            for routes in self.routes.values():
                for route in routes:
                    route.outstanding = 0
        return [t.completion for t in tickets.values()]
