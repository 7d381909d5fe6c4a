"""The legacy OpenCV detectors: a Haar cascade for faces, HOG + linear SVM for people.

Both downscale into a buffer of their own (``detect_width``), reused across calls, and return
boxes in original-frame coordinates.
"""

from __future__ import annotations

import math
import os

import cv2
import numpy as np

from fleet.config import FaceDetectorConfig, PersonDetectorConfig
from fleet.errors import SettingError
from fleet.frames import Detection, FrameMeta
from fleet.imaging import Downscaler

CASCADES: str = cv2.data.haarcascades  # type: ignore[attr-defined]


def _box(label: str, rect: np.ndarray, scale: float, weight: float) -> Detection:
    """A box found on the downscaled image, in original-frame pixels. Its score is the
    logistic of the cascade's or SVM's margin, so that it lies in 0..1 as every other
    detector's does and the tracker's thresholds mean the same for all (margin 0 -> 0.5)."""
    x, y, w, h = (round(float(v) / scale) for v in rect)
    return Detection(label, x, y, w, h, 1.0 / (1.0 + math.exp(-weight)))


class HaarFaceDetector:
    """Frontal faces with an OpenCV Haar cascade (``type: haar``)."""

    label = "face"

    def __init__(self, config: FaceDetectorConfig):
        self.config = config
        path = config.cascade
        if not os.path.isabs(path):
            path = os.path.join(CASCADES, path)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise SettingError(
                "cascade", f"cannot load cascade {config.cascade}; give a file name in "
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
    """Upright people with OpenCV's HOG descriptor and its default linear SVM (``type: hog``)."""

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
