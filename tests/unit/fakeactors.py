"""An in-process stand-in for :class:`fleet.control.actorsys.Actors`, for the controller's logic.

Actors are plain objects; a test makes one die (``die``) or stop answering (``hang``) and the
controller learns it the way it would from Ray: ActorLostError or ActorTimeoutError.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fleet.control.actorsys import ActorLostError, ActorRef, ActorTimeoutError, Outcome, Placement
from fleet.frames import CameraStats, DetectorStats


@dataclass
class FakeCamera:
    """Captures 10 frames and processes 8 between stats calls, 2 stay in flight."""

    config: Any
    routes: dict[str, list[Any]]
    resume: CameraStats | None
    state: str = "starting"
    captured: int = 0
    processed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    buffers: int = 0
    routing_updates: int = 0
    outstanding_at: dict[str, int] = field(default_factory=dict)
    stuck_s: float = 0.0
    node: str = "n0"
    route_nodes: dict[str, list[Any]] = field(default_factory=dict)
    frame: tuple[int, int] = (0, 0)  # width, height of its frames: 0 until a test sets them

    def __post_init__(self) -> None:
        self.buffers = self.config.buffers
        if self.resume is not None:
            self.captured, self.processed = self.resume.captured, self.resume.processed
            self.dropped = dict(self.resume.dropped)
            if self.resume.in_flight:
                lost = self.dropped.get("camera_lost", 0) + self.resume.in_flight
                self.dropped["camera_lost"] = lost

    def start(self) -> None:
        self.state = "up"

    def stats(self) -> CameraStats:
        if self.state == "up":
            self.captured += 10
            self.processed += 8
        in_flight = self.captured - self.processed - sum(self.dropped.values())
        return CameraStats(
            camera=self.config.id, state=self.state, captured=self.captured,
            processed=self.processed, failed=0, in_flight=in_flight, slots_used=in_flight,
            dropped=dict(self.dropped), offered=self.captured, admitted=self.captured,
            buffers=self.buffers, peak_slots_used=in_flight, reconnects=0,
            frames_with_detections=0, detections={}, outstanding=dict(self.outstanding_at),
            stuck_s=self.stuck_s, node=self.node, width=self.frame[0], height=self.frame[1],
        )

    def info(self) -> dict[str, Any]:
        return {"camera": self.config.id, "node": self.node}

    def keepalive(self) -> None:
        self.keepalives = getattr(self, "keepalives", 0) + 1

    def set_pool(self, kind: str, handles: list[Any], nodes: list[Any] | None = None) -> None:
        self.routes[kind] = list(handles)
        self.route_nodes[kind] = list(nodes or [])
        self.routing_updates += 1

    def set_buffers(self, buffers: int) -> None:
        self.buffers = buffers

    def outstanding(self) -> dict[str, int]:
        return dict(self.outstanding_at)

    def stop(self, drain_timeout_s: float) -> CameraStats:
        self.state = "stopped"
        self.dropped["shutdown"] = self.dropped.get("shutdown", 0) + (
            self.captured - self.processed - sum(self.dropped.values()))
        return replace(self.stats(), in_flight=0, slots_used=0)


@dataclass
class FakeDetector:
    kind: str
    actor: str
    calls: int = 0
    batching: tuple[int, float] = (1, 0.0)
    lease_s: float = 0.0
    node: str = "n0"

    def info(self) -> dict[str, Any]:
        return {"node": self.node}

    def keepalive(self) -> None:
        self.keepalives = getattr(self, "keepalives", 0) + 1

    def set_batching(self, max_batch_size: int, wait_ms: float) -> None:
        self.batching = (max_batch_size, wait_ms)

    def set_lease(self, timeout_s: float) -> None:
        self.lease_s = timeout_s

    def stats(self) -> DetectorStats:
        self.calls += 5
        return DetectorStats(self.kind, self.actor, self.calls, 0, busy_s=0.1 * self.calls,
                             uptime_s=10.0)


class FakeActors:
    def __init__(self, cpus: float = 8.0, slow_start: bool = False):
        self.cpus = cpus
        self.gpus = 0.0
        self.slow_start = slow_start  # detectors need one ready() call before they are ready
        self.ids = itertools.count()
        self.objects: dict[str, Any] = {}
        self.placements: dict[str, Placement] = {}
        self.dead: set[str] = set()
        self.hung: set[str] = set()
        self.failing_start: set[str] = set()  # detector kinds whose constructor raises
        self.failing_once: set[str] = set()  # ... once (its node went away as it started)
        self.killed: list[str] = []
        self.started: list[ActorRef] = []
        self.asked_ready: set[str] = set()
        self.camera_node: dict[str, str] = {}  # camera id -> the node Ray "puts" it on
        self.full_nodes: set[str] = set()  # nodes with no room: soft affinity goes elsewhere

    # -- test controls
    def die(self, ref: ActorRef) -> None:
        self.dead.add(ref.id)

    def hang(self, ref: ActorRef) -> None:
        self.hung.add(ref.id)

    def obj(self, ref: ActorRef) -> Any:
        return self.objects[ref.id]

    # -- the Actors protocol
    def start_camera(self, camera: str, args: Sequence[Any], placement: Placement) -> ActorRef:
        plan, routes, _ = args
        fake = FakeCamera(plan.config, dict(routes), plan.resume,
                          node=self.camera_node.get(camera, "n0"))
        return self._new("camera", camera, fake, placement)

    def start_detector(self, kind: str, args: Sequence[Any], placement: Placement) -> ActorRef:
        ref_id = f"detector-{next(self.ids)}"
        node = placement.node if placement.node and placement.node not in self.full_nodes \
            else "n0"
        return self._new("detector", kind, FakeDetector(kind, ref_id, node=node), placement,
                         ref_id)

    def _new(self, role: str, name: str, obj: Any, placement: Placement,
             ref_id: str | None = None) -> ActorRef:
        ref = ActorRef(ref_id or f"{role}-{next(self.ids)}", role, name, handle=f"handle:{name}")
        ref = replace(ref, handle=f"handle:{ref.id}")
        self.objects[ref.id], self.placements[ref.id] = obj, placement
        self.started.append(ref)
        return ref

    def ready(self, actors: Sequence[ActorRef], timeout_s: float) -> dict[str, Outcome]:
        out: dict[str, Outcome] = {}
        for ref in actors:
            if self.slow_start and ref.id not in self.asked_ready:
                self.asked_ready.add(ref.id)
                continue
            if ref.name in self.failing_once:
                self.failing_once.discard(ref.name)
                self.dead.add(ref.id)
                out[ref.id] = ActorLostError("the actor died unexpectedly")
            elif ref.name in self.failing_start:
                self.dead.add(ref.id)
                out[ref.id] = ActorLostError("The actor died because of an error raised in its "
                                             "creation task: the actor died in its constructor")
            else:
                out[ref.id] = True
        return out

    def call(self, actor: ActorRef, method: str, *args: Any, timeout_s: float) -> Any:
        if actor.id in self.dead:
            raise ActorLostError(f"{actor.id} is dead")
        if actor.id in self.hung:
            raise ActorTimeoutError(f"no answer within {timeout_s:g} s")
        return getattr(self.objects[actor.id], method)(*args)

    def call_all(self, calls: Mapping[str, tuple[ActorRef, str, tuple[Any, ...]]],
                 timeout_s: float) -> dict[str, Outcome]:
        out: dict[str, Outcome] = {}
        for key, (actor, method, args) in calls.items():
            try:
                out[key] = self.call(actor, method, *args, timeout_s=timeout_s)
            except Exception as exc:  # noqa: BLE001 - an outcome, as Ray's fan-in reports it
                out[key] = exc
        return out

    def send(self, actor: ActorRef, method: str, *args: Any) -> None:
        try:
            self.call(actor, method, *args, timeout_s=0)
        except Exception:  # noqa: BLE001, S110 - fire and forget
            pass

    def adopt(self) -> list[ActorRef]:
        """What a restarted controller finds: every actor still alive."""
        return [r for r in self.started if r.id not in self.dead]

    def kill(self, actor: ActorRef) -> None:
        self.dead.add(actor.id)
        self.killed.append(actor.id)

    def resources(self) -> tuple[dict[str, float], dict[str, float]]:
        live = [p for i, p in self.placements.items() if i not in self.dead]
        total = {"CPU": self.cpus, "GPU": self.gpus, "edge_tpu": 4.0}
        free = dict(total)
        for p in live:
            free["CPU"] -= p.num_cpus
            free["GPU"] -= p.num_gpus
            for name, amount in p.resources.items():
                free[name] -= amount
        return total, free
