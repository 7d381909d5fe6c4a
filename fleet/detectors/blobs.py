"""Solid-colour blobs (``type: blobs``): finds the synthetic scene's path objects exactly, so
tracking and zone tests have ground truth without a model's misses. Not for real footage."""

from __future__ import annotations

import cv2
import numpy as np

from fleet.config import BlobsDetectorConfig
from fleet.frames import Detection, FrameMeta
from fleet.imaging import Downscaler


class BlobsDetector:
    def __init__(self, config: BlobsDetectorConfig):
        self.config = config
        self.label = config.label
        colour = np.array(config.colour, dtype=int)
        self.low = np.clip(colour - config.tolerance, 0, 255).astype(np.uint8)
        self.high = np.clip(colour + config.tolerance, 0, 255).astype(np.uint8)
        self.scaler = Downscaler()

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        small, scale = self.scaler.resize(frame, meta.detect_width)
        mask = cv2.inRange(small, self.low, self.high)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        found = []
        for x, y, w, h, area in stats[1:count]:  # row 0 is the background
            if area >= self.config.min_area_px:
                found.append(Detection(self.label, round(x / scale), round(y / scale),
                                       round(w / scale), round(h / scale), self.config.score))
        return found
