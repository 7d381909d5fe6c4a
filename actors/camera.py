"""CameraActor: a Ray actor that owns one :class:`fleet.pipeline.camera.Camera` pipeline."""

from __future__ import annotations

import os
from typing import Any

import ray

from actors.handoff import RayDispatcher
from actors.lease import Lease
from fleet.frames import CameraPlan, CameraStats
from fleet.logsafe import install_log_redaction
from fleet.pipeline.camera import Camera
from fleet.sinks.events import EventSink
from fleet.sources import open_source


class CameraWorker:
    def __init__(self, plan: CameraPlan, pools: dict[str, list[Any]],
                 nodes: dict[str, list[str | None]] | None = None):
        install_log_redaction(plan.config, plan.sinks)
        config = plan.config
        self.node = ray.get_runtime_context().get_node_id()
        self.dispatcher = RayDispatcher(pools, plan.offset, self.node, nodes)
        sink = EventSink(plan.sinks, plan.run_dir, config.id, plan.fleet)
        self.camera = Camera(config, open_source(config.id, config.source), self.dispatcher,
                             sink, plan.resume)
        self.camera.node = self.node
        self.drain_timeout_s = 5.0
        self.lease = Lease(f"camera {config.id}", lambda: self.camera.stop(self.drain_timeout_s))
        self.lease.set(plan.lease_s)

    def start(self) -> None:
        self.camera.start()

    def info(self) -> dict[str, Any]:
        """Where this camera runs (for `camfleet status` and for operators)."""
        return {"camera": self.camera.config.id, "pid": os.getpid(), "node": self.node}

    def stats(self) -> CameraStats:
        self.lease.renew()
        return self.camera.stats()

    def keepalive(self) -> None:
        """Renews the lease without taking stats (the controller is busy, e.g. applying)."""
        self.lease.renew()

    def set_pool(self, kind: str, handles: list[Any],
                 nodes: list[str | None] | None = None) -> None:
        self.dispatcher.set_pool(kind, handles, nodes)

    def outstanding(self) -> dict[str, int]:
        return self.dispatcher.outstanding()

    def set_buffers(self, buffers: int) -> None:
        self.camera.set_buffers(buffers)

    def stop(self, drain_timeout_s: float) -> CameraStats:
        return self.camera.stop(drain_timeout_s)


CameraActor = ray.remote(CameraWorker)
