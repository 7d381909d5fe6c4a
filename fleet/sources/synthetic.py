"""The synthetic scene: moving shapes, and boxes on known straight paths (``path_box`` is their
ground truth), drawn on a gradient or a background image. Imports no Ray."""

from __future__ import annotations

import math
import time

import cv2
import numpy as np

from fleet.config import ScenePath, SyntheticSource
from fleet.errors import EndOfStreamError, SourceConnectionError


def path_box(path: ScenePath, t: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Where a path's box is at ``t`` s on the scene's clock: (x0, y0, x1, y1) in pixels,
    inclusive. The ground truth the tracking tests compare with."""
    f = (t - path.start_s) / (path.end_s - path.start_s)
    cx = (path.start[0] + f * (path.end[0] - path.start[0])) * width
    cy = (path.start[1] + f * (path.end[1] - path.start[1])) * height
    bw, bh = path.size[0] * width, path.size[1] * height
    x0, y0 = max(0, round(cx - bw / 2)), max(0, round(cy - bh / 2))
    x1, y1 = min(width - 1, round(cx + bw / 2)), min(height - 1, round(cy + bh / 2))
    return x0, y0, x1, y1


class SyntheticScene:
    """A moving test scene drawn in place into the reused buffer: no allocation per frame."""

    def __init__(self, camera: str, config: SyntheticSource):
        self.camera = camera
        self.config = config
        self.description = f"synthetic {config.width}x{config.height}@{config.fps:g}"
        self.native_fps = config.fps
        self.index = -1
        self.background: np.ndarray | None = None
        self.started = time.monotonic()

    @property
    def pace_fps(self) -> float:
        return self.config.fps_at(time.monotonic() - self.started)

    def open(self) -> None:
        w, h = self.config.width, self.config.height
        if self.config.background:
            image = cv2.imread(self.config.background, cv2.IMREAD_COLOR)
            if image is None:
                raise SourceConnectionError(
                    f"camera '{self.camera}': cannot read background image {self.config.background}"
                )
            self.background = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        else:
            ramp_x = np.linspace(40, 200, w, dtype=np.float32)[None, :]
            ramp_y = np.linspace(0, 60, h, dtype=np.float32)[:, None]
            gray = (ramp_x + ramp_y).astype(np.uint8)
            self.background = np.dstack([gray, np.flipud(gray), np.full_like(gray, 90)])
        self.index = -1
        self.started = time.monotonic()

    def grab(self) -> None:
        self.index += 1
        if self.config.frames is not None and self.index >= self.config.frames:
            raise EndOfStreamError(f"camera '{self.camera}': synthetic scene ended")

    def retrieve(self, into: np.ndarray | None) -> np.ndarray:
        assert self.background is not None
        frame = into if into is not None and into.shape == self.background.shape else np.empty_like(
            self.background
        )
        np.copyto(frame, self.background)
        w, h, t = self.config.width, self.config.height, self.index / self.native_fps
        radius = max(4, min(w, h) // 12)
        for k in range(self.config.objects):
            cx = int((0.5 + 0.4 * math.sin(t * (0.7 + 0.3 * k) + k)) * w)
            cy = int((0.5 + 0.4 * math.cos(t * (0.5 + 0.2 * k) + 2 * k)) * h)
            colour = (255 - 60 * k % 255, 80 + 50 * k % 175, 40 * k % 255)
            cv2.circle(frame, (cx, cy), radius, colour, -1)
        for path in self.config.paths:
            if path.start_s <= t < path.end_s:
                x0, y0, x1, y1 = path_box(path, t, w, h)
                cv2.rectangle(frame, (x0, y0), (x1, y1), path.colour, -1)
        scale = max(0.5, h / 720)
        cv2.putText(frame, f"{self.camera} #{self.index}", (10, int(30 * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(2 * scale)))
        return frame

    def close(self) -> None:
        self.background = None
