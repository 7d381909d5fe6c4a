"""DetectorPool: the actors of one detector kind, as they start, run and drain.

A state manager with small steps the controller calls each loop (as Ray Serve's deployment
state does): ``promote`` ready actors, ``resize`` to a target, ``reap`` drained actors.
Scaling in never loses a frame: a removed actor first leaves every camera's routing, and is
killed only once no camera has a frame outstanding at it.
"""

from __future__ import annotations

import logging
from typing import Any

import ray

from fleet.config import DetectorConfig
from fleet.handoff import actor_id

log = logging.getLogger(__name__)


class DetectorPool:
    def __init__(self, name: str, spec: DetectorConfig, actor_cls: Any):
        self.name = name
        self.spec = spec
        # Detectors are stateless: a crashed one restarts; its in-flight frames count as
        # detector_lost on their camera.
        self.actor = actor_cls.options(num_cpus=spec.num_cpus, max_restarts=3)
        self.running: list[Any] = []
        self.pending: dict[Any, Any] = {}  # ready() ref -> handle, not yet ready
        self.draining: list[Any] = []

    @property
    def target(self) -> int:
        return len(self.running) + len(self.pending)

    def start(self, count: int) -> None:
        for _ in range(count):
            handle = self.actor.remote(self.name, self.spec)
            self.pending[handle.ready.remote()] = handle

    def promote(self, timeout_s: float = 0) -> bool:
        """Move actors that became ready to ``running``. True if the routing must change."""
        if not self.pending:
            return False
        ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=timeout_s)
        for ref in ready:
            handle = self.pending.pop(ref)
            try:
                ray.get(ref)
                self.running.append(handle)
            except ray.exceptions.RayError as exc:
                log.error("detector %s: an actor failed to start: %s", self.name, exc)
                ray.kill(handle)
        return bool(ready)

    def resize(self, target: int) -> bool:
        """Start or retire actors to reach ``target``. True if the routing must change."""
        if target > self.target:
            self.start(target - self.target)
            return False
        changed = False
        while self.target > target and self.pending:  # not routed yet: no frame can be lost
            _, handle = self.pending.popitem()
            ray.kill(handle)
        while self.target > target and self.running:
            self.draining.append(self.running.pop())
            changed = True
        return changed

    def reap(self, outstanding: dict[str, int]) -> int:
        """Kill draining actors no camera has a frame at any more. Returns how many."""
        done = [h for h in self.draining if outstanding.get(actor_id(h), 0) == 0]
        for handle in done:
            self.draining.remove(handle)
            ray.kill(handle)
        return len(done)

    def stop(self) -> None:
        for handle in [*self.running, *self.pending.values(), *self.draining]:
            ray.kill(handle)
        self.running, self.pending, self.draining = [], {}, []

    def actors(self) -> list[Any]:
        """Every live actor whose stats count: running and draining."""
        return [*self.running, *self.draining]
