"""DetectorActor: a Ray actor that forwards to :class:`fleet.detectors.DetectorService`.

An asyncio actor: every ``detect`` call (one frame, from any camera) waits in a
:class:`fleet.pipeline.batching.BatchQueue`, and the queue runs one model call per batch in a
thread of its own, so frames from several cameras share a model call while the event loop
keeps taking calls. The frame each call carries is a read-only view on the object store, held only
until its batch is done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import ray

from actors.lease import Lease
from fleet.config import DetectorConfig
from fleet.detectors import Detector, DetectorService, build_detector
from fleet.frames import DetectionResult, DetectorStats, FrameMeta
from fleet.logsafe import install_log_redaction
from fleet.pipeline.batching import BatchQueue

Item = tuple[np.ndarray, FrameMeta]
log = logging.getLogger(__name__)


class DetectorWorker:
    def __init__(self, name: str, config: DetectorConfig,
                 factory: Callable[[DetectorConfig], Detector] = build_detector):
        install_log_redaction(config)
        # One OpenCV thread per reserved CPU: the pool, not OpenCV, spreads work over cores.
        cv2.setNumThreads(max(1, int(config.num_cpus)))
        context = ray.get_runtime_context()
        actor = context.get_actor_id() or ""
        if config.num_gpus and not context.get_accelerator_ids().get("GPU"):
            log.warning("detector %s: asked for %g GPU but Ray gave this actor none: it runs "
                        "on the CPU", name, config.num_gpus)
        detector = factory(config, name) if factory is build_detector else factory(config)
        self.service = DetectorService(name, detector, actor)
        batching = getattr(config, "batching", None)
        size = batching.max_batch_size if batching else 1
        wait_s = batching.batch_wait_timeout_ms / 1000 if batching else 0.0
        self.queue: BatchQueue[Item, DetectionResult] = BatchQueue(self._run, size, wait_s)
        self.lease = Lease(f"detector {name} {actor[:8]}")

    def _run(self, items: list[Item]) -> Sequence[DetectionResult | BaseException]:
        frames, metas = [f for f, _ in items], [m for _, m in items]
        try:
            return self.service.detect_batch(frames, metas)
        finally:
            frames.clear()  # keep no view of a frame past its batch

    async def ready(self) -> bool:
        return True

    async def detect(self, frame: np.ndarray, meta: FrameMeta) -> DetectionResult:
        # ``frame`` is a read-only view on the object store; nothing here may keep it.
        return await self.queue.submit((frame, meta))

    async def detect_group(self, frames: np.ndarray, metas: list[FrameMeta]
                           ) -> list[DetectionResult | BaseException]:
        """Several frames of one camera, stacked in one object (``put_frames``): each goes to
        the batch queue as a view of its own; one result per frame (the caller asked for as
        many returns), a frame that failed as its exception, the others unaffected."""
        results = await asyncio.gather(
            *(self.queue.submit((frames[i], meta)) for i, meta in enumerate(metas)),
            return_exceptions=True)
        del frames
        return [r if not isinstance(r, BaseException) else _portable(r) for r in results]

    @ray.method(concurrency_group="control")
    async def stats(self) -> DetectorStats:
        self.lease.renew()  # the controller's health check
        sizes, waits = self.queue.stats.take()
        return replace(self.service.stats(), batch_sizes=sizes, queue_wait_s=waits,
                       batch_size=self.queue.max_batch_size, queued=self.queue.queued)

    @ray.method(concurrency_group="control")
    async def set_batching(self, max_batch_size: int, wait_ms: float) -> None:
        self.queue.configure(max_batch_size, wait_ms / 1000)

    @ray.method(concurrency_group="control")
    async def info(self) -> dict[str, Any]:
        """Where this detector runs (for `camfleet status` and for operators)."""
        return {"detector": self.service.name, "pid": os.getpid(),
                "node": ray.get_runtime_context().get_node_id()}

    @ray.method(concurrency_group="control")
    async def keepalive(self) -> None:
        """Renews the lease without a health check (the controller is busy, e.g. applying)."""
        self.lease.renew()

    async def set_lease(self, timeout_s: float) -> None:
        self.lease.set(timeout_s)


def _portable(exc: BaseException) -> BaseException:
    """The exception a frame failed with, as a value the camera can unpickle."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - a detector's own exception class may not pickle
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# Health checks and stats answer in their own group, never queued behind frames.
DetectorActor = ray.remote(concurrency_groups={"control": 1})(DetectorWorker)  # type: ignore[call-overload]
