"""CameraActor: a Ray actor that owns one :class:`fleet.camera.Camera` pipeline."""

from __future__ import annotations

from typing import Any

import ray

from fleet.camera import Camera
from fleet.config import CameraConfig, SinksConfig
from fleet.frames import CameraStats
from fleet.handoff import RayDispatcher
from fleet.sinks import EventSink
from fleet.sources import open_source


class CameraWorker:
    def __init__(self, config: CameraConfig, pools: dict[str, list[Any]], sinks: SinksConfig,
                 run_dir: str, offset: int = 0, resume: CameraStats | None = None):
        self.dispatcher = RayDispatcher(pools, offset)
        self.camera = Camera(config, open_source(config.id, config.source), self.dispatcher,
                             EventSink(sinks, run_dir, config.id), resume)

    def start(self) -> None:
        self.camera.start()

    def stats(self) -> CameraStats:
        return self.camera.stats()

    def set_pool(self, kind: str, handles: list[Any]) -> None:
        self.dispatcher.set_pool(kind, handles)

    def outstanding(self) -> dict[str, int]:
        return self.dispatcher.outstanding()

    def set_buffers(self, buffers: int) -> None:
        self.camera.set_buffers(buffers)

    def stop(self, drain_timeout_s: float) -> CameraStats:
        return self.camera.stop(drain_timeout_s)


CameraActor = ray.remote(CameraWorker)
