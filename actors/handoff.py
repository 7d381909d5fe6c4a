"""The zero-copy hand-off: one ``ray.put`` per frame, the ObjectRef to one detector per kind.

The detector receives the ObjectRef as a top-level argument, so Ray resolves it to a read-only
numpy view on the object store: the only copy of the pixels is the one ``ray.put`` made. That
holds on the camera's node only: a detector on another node pulls the whole frame over the
network first. Which actor of a kind gets a frame (least loaded, the camera's own node preferred
by ``REMOTE_PENALTY``) is decided in :mod:`fleet.pipeline.routing`, without Ray; this module
sends the frames, collects the results and counts every hand-off local or remote, with the bytes
that cross.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors.rayactors import actor_id
from fleet.frames import Completion, FrameMeta
from fleet.pipeline.routing import Route, is_remote, pick, repool
from fleet.errors import ActorLostError

_LOST = (RayActorError, ActorDiedError, ActorUnavailableError)


@dataclass
class _Ticket:
    completion: Completion
    frame_ref: ray.ObjectRef
    waiting: dict[ray.ObjectRef, Route] = field(default_factory=dict)


class RayDispatcher:
    """Routes each frame to the least-loaded actor of every detector kind the camera runs."""

    def __init__(self, pools: dict[str, list[Any]], offset: int = 0, node: str | None = None,
                 nodes: dict[str, list[str | None]] | None = None):
        self.lock = threading.Lock()
        self.node = node  # the camera's node
        self.routes: dict[str, list[Route]] = {}
        self.rotation = itertools.count(offset)
        for kind, handles in pools.items():
            self.set_pool(kind, handles, (nodes or {}).get(kind))
        self.tickets: dict[ray.ObjectRef, _Ticket] = {}  # by result ref
        self.submitted = threading.Event()  # wakes an idle wait() as soon as a frame goes out
        self.local = 0  # hand-offs to an actor on the camera's node (or of unknown node)
        self.remote = 0  # hand-offs to an actor on another node
        self.remote_bytes = 0  # frame bytes those pulled across the network
        self.puts = 0  # objects put (one per frame, or per group with put_frames)

    def set_pool(self, kind: str, handles: list[Any],
                 nodes: list[str | None] | None = None) -> None:
        """Replace a kind's actors (``nodes``: where each runs). Kept actors keep their counts;
        a removed actor gets no new frame, and the frames it has finish normally (they are
        still tracked by their tickets)."""
        where = list(nodes) if nodes is not None else [None] * len(handles)
        members = [(h, actor_id(h), node) for h, node in zip(handles, where, strict=True)]
        with self.lock:
            self.routes[kind] = repool(self.routes.get(kind, []), members)

    def locality(self) -> tuple[int, int, int]:
        """Hand-offs so far: (local, remote, bytes that crossed nodes)."""
        with self.lock:
            return self.local, self.remote, self.remote_bytes

    def outstanding(self) -> dict[str, int]:
        """Frames sent and not yet answered, per detector actor id (removed actors included)."""
        with self.lock:
            counts: dict[str, int] = {}
            for ticket in {id(t): t for t in self.tickets.values()}.values():
                for route in ticket.waiting.values():
                    counts[route.actor] = counts.get(route.actor, 0) + 1
            return counts

    def _picks(self) -> dict[str, Route]:
        with self.lock:  # choose every kind's actor first: a frame is sent whole or not at all
            picks = {kind: pick(routes, self.node, self.rotation)
                     for kind, routes in self.routes.items()}
        missing = sorted(kind for kind, route in picks.items() if route is None)
        if missing:
            names = ", ".join(missing)
            raise ActorLostError(f"no live detector actor of kind(s) {names}; the controller "
                                 "is replacing it")
        return {kind: route for kind, route in picks.items() if route is not None}

    def _count(self, route: Route, frames: int, nbytes: int) -> None:
        route.outstanding += frames
        if is_remote(route, self.node):
            self.remote += frames
            self.remote_bytes += nbytes
        else:
            self.local += frames

    def submit(self, frame: np.ndarray, meta: FrameMeta, started: float) -> None:
        picks = self._picks()
        frame_ref = ray.put(frame)
        completion = Completion(meta, started, view=lambda: ray.get(frame_ref))
        ticket = _Ticket(completion, frame_ref)
        with self.lock:
            self.puts += 1
            for route in picks.values():
                self._count(route, 1, frame.nbytes)
                result_ref = route.handle.detect.remote(frame_ref, meta)
                ticket.waiting[result_ref] = route
                self.tickets[result_ref] = ticket
        self.submitted.set()

    def submit_group(self, frames: np.ndarray, metas: list[FrameMeta],
                     started: list[float]) -> None:
        """``frames`` stacked (``frames[i]`` is ``metas[i]``'s), put as one object and sent in
        one ``detect_group`` call per kind, which returns one result per frame (its own
        ObjectRef): each frame is then settled on its own, as if it had come alone."""
        if len(metas) == 1:
            self.submit(frames[0], metas[0], started[0])
            return
        picks = self._picks()
        group_ref = ray.put(frames)

        def view(i: int) -> Callable[[], np.ndarray]:
            return lambda: ray.get(group_ref)[i]

        tickets = [_Ticket(Completion(meta, t0, view=view(i)), group_ref)
                   for i, (meta, t0) in enumerate(zip(metas, started, strict=True))]
        with self.lock:
            self.puts += 1
            for route in picks.values():
                self._count(route, len(metas), frames.nbytes)
                refs = route.handle.detect_group.options(num_returns=len(metas)).remote(
                    group_ref, metas)
                for ticket, result_ref in zip(tickets, refs, strict=True):
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
            if isinstance(result, BaseException):  # one frame of a group failed, not the call
                result, error = None, result
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
