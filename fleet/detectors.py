"""Detectors: one registry of kinds, each a plain class over OpenCV. Imports no Ray.

A detector reads the frame it is given (in camfleet a read-only view on Ray's object store),
downscales it into a buffer of its own that it reuses across calls, and returns boxes in
original-frame coordinates. It keeps no reference to the frame after returning, or the frame
would stay pinned in the object store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from fleet.config import DetectorConfig, FaceDetectorConfig, PersonDetectorConfig
from fleet.errors import DetectorError
from fleet.frames import Detection, DetectionResult, DetectorStats, FrameMeta
from fleet.imaging import Downscaler

CASCADES: str = cv2.data.haarcascades  # type: ignore[attr-defined]


class Detector(Protocol):
    label: str

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]: ...


def _box(label: str, rect: np.ndarray, scale: float, score: float) -> Detection:
    """A box found on the downscaled image, in original-frame pixels."""
    x, y, w, h = (round(float(v) / scale) for v in rect)
    return Detection(label, x, y, w, h, score)


class HaarFaceDetector:
    """Frontal faces with an OpenCV Haar cascade."""

    label = "face"

    def __init__(self, config: FaceDetectorConfig):
        self.config = config
        path = config.cascade
        if not os.path.isabs(path):
            path = os.path.join(CASCADES, path)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise DetectorError(
                f"face detector: cannot load cascade {config.cascade}; give a file name in "
                f"{CASCADES} or an absolute path"
            )
        self.scaler = Downscaler()

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        small, scale = self.scaler.resize(frame, meta.detect_width)
        gray = self.scaler.gray(small)
        size = self.config.min_size_px
        rects, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=self.config.scale_factor, minNeighbors=self.config.min_neighbors,
            minSize=(size, size), outputRejectLevels=True,
        )
        boxes = np.asarray(rects).reshape(-1, 4)
        return [_box(self.label, rect, scale, float(weight))
                for rect, weight in zip(boxes, np.ravel(weights), strict=True)]


class HogPersonDetector:
    """Upright people with OpenCV's HOG descriptor and its default linear SVM."""

    label = "person"

    def __init__(self, config: PersonDetectorConfig):
        self.config = config
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
        self.scaler = Downscaler()

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        small, scale = self.scaler.resize(frame, meta.detect_width)
        stride = self.config.win_stride_px
        rects, weights = self.hog.detectMultiScale(
            small, winStride=(stride, stride), padding=(8, 8), scale=self.config.scale
        )
        boxes = np.asarray(rects).reshape(-1, 4)
        scores = np.ravel(weights).astype(float)
        if len(boxes) == 0:
            return []
        keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.config.min_score,
                                self.config.nms_iou)
        return [_box(self.label, boxes[i], scale, float(scores[i])) for i in np.ravel(keep)]


REGISTRY: dict[str, Callable[..., Detector]] = {
    "face": HaarFaceDetector,
    "person": HogPersonDetector,
}


def build_detector(config: DetectorConfig) -> Detector:
    """The detector for a config, from the registry of kinds."""
    try:
        factory = REGISTRY[config.type]
    except KeyError:
        raise DetectorError(
            f"unknown detector type '{config.type}'; known: {', '.join(sorted(REGISTRY))}"
        ) from None
    return factory(config)


class DetectorService:
    """Runs one detector on frames and keeps its counters. The Ray actor forwards to this."""

    def __init__(self, name: str, detector: Detector, actor: str = ""):
        self.name = name
        self.detector = detector
        self.actor = actor
        self.started = time.monotonic()
        self.calls = 0
        self.errors = 0
        self.busy_s = 0.0
        self._recent: list[float] = []

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> DetectionResult:
        start = time.perf_counter()
        try:
            detections = self.detector.detect(frame, meta)
        except Exception as exc:
            self.errors += 1
            raise DetectorError(
                f"detector '{self.name}' failed on {meta.camera}#{meta.index}: {exc}") from exc
        finally:
            elapsed = time.perf_counter() - start
            self.calls += 1
            self.busy_s += elapsed
            if len(self._recent) < 10_000:
                self._recent.append(elapsed)
        return DetectionResult(self.name, meta.camera, meta.index, tuple(detections), elapsed,
                               self.actor)

    def stats(self) -> DetectorStats:
        recent, self._recent = tuple(self._recent), []
        return DetectorStats(
            self.name, self.actor, self.calls, self.errors, self.busy_s,
            time.monotonic() - self.started, recent,
        )
