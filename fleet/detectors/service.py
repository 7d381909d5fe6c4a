"""DetectorService: runs one detector on frames, alone or in batches, and keeps its counters.
The Ray actor (``actors/detector.py``) forwards to this."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from fleet.detectors.base import Detector, detect_batch
from fleet.errors import DetectorError
from fleet.frames import Detection, DetectionResult, DetectorStats, FrameMeta

MAX_RECENT = 10_000  # service times kept between two stats calls


class DetectorService:
    """Runs one detector on frames and keeps its counters. The Ray actor forwards to this.

    ``calls`` counts frames, whether they came alone or in a batch, and a frame analysed in a
    batch is charged its share of the batch's time, so utilisation and service time mean the
    same either way. Detectors reuse their buffers from call to call, so the service runs one
    call at a time, whichever thread calls it.
    """

    def __init__(self, name: str, detector: Detector, actor: str = ""):
        self.name = name
        self.detector = detector
        self.actor = actor
        self.started = time.monotonic()
        self.calls = 0
        self.errors = 0
        self.busy_s = 0.0
        self._recent: list[float] = []
        self._lock = threading.Lock()  # one detector call at a time: its buffers are shared

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> DetectionResult:
        """The detections in one frame; raises DetectorError naming the frame if it fails."""
        with self._lock:
            return self._detect(frame, meta)

    def _detect(self, frame: np.ndarray, meta: FrameMeta) -> DetectionResult:
        start = time.perf_counter()
        try:
            detections = self.detector.detect(frame, meta)
        except Exception as exc:
            self.errors += 1
            raise self._failed(meta, exc) from exc
        finally:
            elapsed = time.perf_counter() - start
            self._count(1, elapsed)
        return self._result(meta, detections, elapsed)

    def detect_batch(self, frames: Sequence[np.ndarray],
                     metas: Sequence[FrameMeta]) -> list[DetectionResult | Exception]:
        """One result per frame, in order: its detections, or the DetectorError it failed with.

        The batch goes to the detector in one call. If that call fails, each frame is run
        alone, so only the frames that fail by themselves fail.
        """
        if len(frames) != len(metas):
            raise ValueError(f"{len(frames)} frames but {len(metas)} metas")
        if not frames:
            return []
        with self._lock:
            return self._detect_batch(frames, metas)

    def _detect_batch(self, frames: Sequence[np.ndarray],
                      metas: Sequence[FrameMeta]) -> list[DetectionResult | Exception]:
        start = time.perf_counter()
        try:
            found = detect_batch(self.detector, frames, metas)
        except Exception:
            self.busy_s += time.perf_counter() - start  # the failed attempt was work too
            return [self._alone(frame, meta) for frame, meta in zip(frames, metas, strict=True)]
        share = (time.perf_counter() - start) / len(frames)
        self._count(len(frames), share)
        return [self._result(meta, detections, share)
                for meta, detections in zip(metas, found, strict=True)]

    def _alone(self, frame: np.ndarray, meta: FrameMeta) -> DetectionResult | Exception:
        try:
            return self._detect(frame, meta)
        except DetectorError as exc:
            return exc

    def _count(self, frames: int, each_s: float) -> None:
        self.calls += frames
        self.busy_s += each_s * frames
        room = MAX_RECENT - len(self._recent)
        self._recent.extend([each_s] * min(frames, room))

    def _result(self, meta: FrameMeta, detections: list[Detection],
                service_s: float) -> DetectionResult:
        if meta.put_scale != 1.0:  # the camera put a smaller frame: boxes back to its pixels
            detections = [_scaled(d, meta.put_scale) for d in detections]
        return DetectionResult(self.name, meta.camera, meta.index, tuple(detections), service_s,
                               self.actor)

    def _failed(self, meta: FrameMeta, exc: Exception) -> DetectorError:
        return DetectorError(f"detector '{self.name}' failed on {meta.camera}#{meta.index}: {exc}")

    def stats(self) -> DetectorStats:
        recent, self._recent = tuple(self._recent), []
        return DetectorStats(
            self.name, self.actor, self.calls, self.errors, self.busy_s,
            time.monotonic() - self.started, recent,
        )


def _scaled(d: Detection, factor: float) -> Detection:
    return Detection(d.label, round(d.x * factor), round(d.y * factor), round(d.w * factor),
                     round(d.h * factor), d.score)
