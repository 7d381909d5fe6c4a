"""RayActors: :class:`fleet.control.actorsys.Actors` on real Ray actors."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from fleet.control.actorsys import ActorRef, Outcome, Placement
from fleet.errors import ActorLostError, ActorTimeoutError

_LOST = (RayActorError,)  # ActorDiedError and ActorUnavailableError are subclasses


def actor_id(handle: Any) -> str:
    """A Ray actor's id, the same in every process (handles are not)."""
    return str(handle._actor_id.hex())


def _options(placement: Placement) -> dict[str, Any]:
    options: dict[str, Any] = {"num_cpus": placement.num_cpus,
                               "max_restarts": placement.max_restarts}
    if placement.num_gpus:
        options["num_gpus"] = placement.num_gpus
    if placement.resources:
        options["resources"] = dict(placement.resources)
    if placement.node:  # Ray places actors by resources only; locality is camfleet's to ask for
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(placement.node, soft=True)
    return options


def actor_name(fleet: str, role: str, name: str) -> str:
    """``camfleet-<fleet>/<role>/<name>/<unique>``: found again by a restarted controller."""
    return f"camfleet-{fleet}/{role}/{name}/{uuid.uuid4().hex[:8]}"


class RayActors:
    """Starts camera and detector actors from the classes it is given, and calls them.

    With ``fleet`` set, actors are named and detached: they outlive a controller that crashes,
    and its restarted self finds them by name (:meth:`adopt`). Leases end them if it never comes
    back. Without it, actors are owned by their controller and die with it (tests, benchmarks).
    """

    def __init__(self, camera_cls: Any, detector_cls: Any, fleet: str | None = None):
        self.camera_cls = camera_cls
        self.detector_cls = detector_cls
        self.fleet = fleet
        self._ready: dict[str, Any] = {}  # actor id -> ready() ref, for detectors not yet ready

    def _create(self, cls: Any, role: str, name: str, args: Sequence[Any],
                placement: Placement) -> ActorRef:
        options = _options(placement)
        if self.fleet is not None:
            options.update(name=actor_name(self.fleet, role, name), lifetime="detached")
        handle = cls.options(**options).remote(*args)
        return ActorRef(actor_id(handle), role, name, handle)

    def start_camera(self, camera: str, args: Sequence[Any], placement: Placement) -> ActorRef:
        return self._create(self.camera_cls, "camera", camera, args, placement)

    def start_detector(self, kind: str, args: Sequence[Any], placement: Placement) -> ActorRef:
        ref = self._create(self.detector_cls, "detector", kind, args, placement)
        self._ready[ref.id] = ref.handle.ready.remote()
        return ref

    def adopt(self) -> list[ActorRef]:
        if self.fleet is None:
            return []
        found = []
        prefix = f"camfleet-{self.fleet}/"
        for full in ray.util.list_named_actors():
            if not full.startswith(prefix) or full.count("/") != 3:
                continue
            _, role, name, _ = full.split("/")
            try:
                handle = ray.get_actor(full)
            except ValueError:  # gone since it was listed
                continue
            ref = ActorRef(actor_id(handle), role, name, handle)
            if role == "detector":
                self._ready[ref.id] = handle.ready.remote()
            found.append(ref)
        return found

    def ready(self, actors: Sequence[ActorRef], timeout_s: float) -> dict[str, Outcome]:
        refs = {self._ready[a.id]: a for a in actors if a.id in self._ready}
        if not refs:
            return {}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        if not done and timeout_s > 0:
            done, _ = ray.wait(list(refs), num_returns=1, timeout=0)
        out: dict[str, Outcome] = {}
        for ref in done:
            actor = refs[ref]
            del self._ready[actor.id]
            out[actor.id] = self._outcome(ref)
        return out

    def call(self, actor: ActorRef, method: str, *args: Any, timeout_s: float) -> Any:
        ref = getattr(actor.handle, method).remote(*args)
        outcome = self._outcome(ref, timeout_s)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def call_all(self, calls: Mapping[str, tuple[ActorRef, str, tuple[Any, ...]]],
                 timeout_s: float) -> dict[str, Outcome]:
        refs = {key: getattr(actor.handle, method).remote(*args)
                for key, (actor, method, args) in calls.items()}
        if refs:
            ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
        return {key: self._outcome(ref, 0) for key, ref in refs.items()}

    def send(self, actor: ActorRef, method: str, *args: Any) -> None:
        getattr(actor.handle, method).remote(*args)

    def kill(self, actor: ActorRef) -> None:
        self._ready.pop(actor.id, None)
        try:
            ray.kill(actor.handle, no_restart=True)
        except Exception:  # noqa: BLE001, S110 - already gone
            pass

    def resources(self) -> tuple[dict[str, float], dict[str, float]]:
        return dict(ray.cluster_resources()), dict(ray.available_resources())

    @staticmethod
    def _outcome(ref: Any, timeout_s: float | None = 0) -> Outcome:
        try:
            return ray.get(ref, timeout=timeout_s)
        except GetTimeoutError:
            return ActorTimeoutError(f"no answer within {timeout_s:g} s")
        except _LOST as exc:
            text = str(exc).strip()
            return ActorLostError(text.splitlines()[0][:300] if text else "actor died")
        except Exception as exc:  # noqa: BLE001 - the method raised: report it as the outcome
            return exc
