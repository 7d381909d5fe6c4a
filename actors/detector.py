"""DetectorActor: a Ray actor that forwards to :class:`fleet.detectors.DetectorService`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import ray

from actors.lease import Lease
from fleet.config import DetectorConfig
from fleet.detectors import Detector, DetectorService, build_detector
from fleet.frames import DetectionResult, DetectorStats, FrameMeta


class DetectorWorker:
    def __init__(self, name: str, config: DetectorConfig,
                 factory: Callable[[DetectorConfig], Detector] = build_detector):
        # One OpenCV thread per reserved CPU: the pool, not OpenCV, spreads work over cores.
        cv2.setNumThreads(max(1, int(config.num_cpus)))
        actor = ray.get_runtime_context().get_actor_id() or ""
        self.service = DetectorService(name, factory(config), actor)
        self.lease = Lease(f"detector {name} {actor[:8]}")

    def ready(self) -> bool:
        return True

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> DetectionResult:
        # ``frame`` is a read-only view on the object store; nothing here may keep it.
        return self.service.detect(frame, meta)

    @ray.method(concurrency_group="control")
    def stats(self) -> DetectorStats:
        self.lease.renew()  # the controller's health check
        return self.service.stats()

    @ray.method(concurrency_group="control")
    def info(self) -> dict[str, Any]:
        """Where this detector runs (for `camfleet status` and for operators)."""
        return {"detector": self.service.name, "pid": os.getpid(),
                "node": ray.get_runtime_context().get_node_id()}

    @ray.method(concurrency_group="control")
    def set_lease(self, timeout_s: float) -> None:
        self.lease.set(timeout_s)


# detect runs one frame at a time; stats answers in its own thread, never queued behind frames.
DetectorActor = ray.remote(concurrency_groups={"control": 1})(DetectorWorker)  # type: ignore[call-overload]
