"""Per-camera motion gate: a MOG2 background model at low resolution. Imports no Ray."""

from __future__ import annotations

import cv2
import numpy as np

from fleet.config import MotionConfig
from fleet.imaging import Downscaler


class MotionGate:
    """Says whether a frame differs enough from the scene's background to be worth analysing."""

    def __init__(self, config: MotionConfig):
        self.config = config
        self.model = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25,
                                                        detectShadows=False)
        self.scaler = Downscaler()
        self.mask: np.ndarray | None = None
        self.last_fraction = 1.0

    def moving(self, frame: np.ndarray) -> bool:
        small, _ = self.scaler.resize(frame, self.config.width)
        if self.mask is None or self.mask.shape != small.shape[:2]:
            self.mask = np.empty(small.shape[:2], np.uint8)
        self.model.apply(small, fgmask=self.mask)
        self.last_fraction = cv2.countNonZero(self.mask) / self.mask.size
        return self.last_fraction >= self.config.threshold
