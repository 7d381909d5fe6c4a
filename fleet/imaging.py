"""Image helpers shared by detectors, the motion gate and the snapshot sink. Imports no Ray.

Every helper writes into buffers it owns and reuses, so steady-state work allocates nothing
frame-sized, and none of them writes into the frame it is given (in camfleet a read-only view
on Ray's object store).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import cv2
import numpy as np

from fleet.frames import Detection

BOX_COLOUR = (0, 255, 0)


class Downscaler:
    """Resizes into buffers it owns and reuses: one allocation per distinct output shape, and
    at most ``max_shapes`` shapes kept per role (the least recently used goes). A detector
    shares one Downscaler among every camera it serves, and frames come in any size: kept for
    ever, a buffer per shape would grow without bound (1,000 heights, 1,000 buffers)."""

    def __init__(self, max_shapes: int = 4) -> None:
        self.max_shapes = max_shapes
        self._buffers: dict[str, OrderedDict[tuple[int, ...], np.ndarray]] = {}

    def buffer(self, role: str, shape: tuple[int, ...]) -> np.ndarray:
        kept = self._buffers.setdefault(role, OrderedDict())
        buf = kept.get(shape)
        if buf is None:
            buf = kept[shape] = np.empty(shape, np.uint8)
            while len(kept) > self.max_shapes:
                kept.popitem(last=False)  # whoever still uses it keeps it alive, not us
        else:
            kept.move_to_end(shape)
        return buf

    def kept(self) -> int:
        """Buffers held now, all roles together."""
        return sum(len(kept) for kept in self._buffers.values())

    def resize(self, frame: np.ndarray, width: int | None) -> tuple[np.ndarray, float]:
        """Return (image, scale) where scale = image width / frame width."""
        h, w = frame.shape[:2]
        if not width or width >= w:
            return frame, 1.0
        scale = width / w
        shape = (max(1, round(h * scale)), width, *frame.shape[2:])
        out = self.buffer("resized", shape)
        cv2.resize(frame, (shape[1], shape[0]), dst=out, interpolation=cv2.INTER_AREA)
        return out, scale

    def gray(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            return image
        out = self.buffer("gray", image.shape[:2])
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=out)
        return out


def draw_boxes(canvas: np.ndarray, detections: Iterable[Detection], scale: float = 1.0) -> None:
    """Draw labelled boxes (given in original-frame pixels) on ``canvas``, scaled by ``scale``."""
    for d in detections:
        p1 = (round(d.x * scale), round(d.y * scale))
        p2 = (round((d.x + d.w) * scale), round((d.y + d.h) * scale))
        cv2.rectangle(canvas, p1, p2, BOX_COLOUR, 2)
        cv2.putText(canvas, d.label, (p1[0], max(12, p1[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, BOX_COLOUR, 1)


def plasma_mapping(address: int) -> str:
    """The /proc/self/maps line whose range holds ``address`` ('' if none): where a frame's
    memory lives (a ``/dev/shm/plasma`` mapping for a zero-copy view on Ray's object store)."""
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if start <= address < end:
                return line.strip()
    return ""
