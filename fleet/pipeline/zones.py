"""Zones and masks on a camera's frame: which polygons a box's anchor point is in.

Polygons come from the fleet file in fractions of the frame or in pixels
(:mod:`fleet.config._objects`); they are turned into pixel polygons once per frame size, so the
test per box is one ``cv2.pointPolygonTest`` per polygon. Imports no Ray.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from fleet.config import MaskConfig, ZoneConfig
from fleet.frames import Detection

log = logging.getLogger(__name__)


def anchor_point(box: Detection, anchor: str) -> tuple[float, float]:
    """The point of a box that decides whether it is inside: where a person stands, or its
    centre."""
    x = box.x + box.w / 2
    return (x, float(box.y + box.h)) if anchor == "bottom_center" else (x, box.y + box.h / 2)


def pixel_polygon(points: Sequence[tuple[float, float]], width: int, height: int) -> np.ndarray:
    """The polygon in pixels of a ``width`` x ``height`` frame: fractions are scaled (every
    coordinate at most 1), pixels are clipped to the frame."""
    pts = np.asarray(points, dtype=np.float32)
    if float(pts.max()) <= 1.0:
        pts = pts * np.array([width, height], dtype=np.float32)
    return np.clip(pts, 0, [width, height]).astype(np.float32).reshape(-1, 1, 2)


class Regions:
    """A camera's zones and masks at one frame size (rebuilt when the size changes)."""

    def __init__(self, camera: str, zones: Sequence[ZoneConfig], masks: Sequence[MaskConfig]):
        self.camera = camera
        self.zones = list(zones)
        self.masks = list(masks)
        self.size: tuple[int, int] = (0, 0)
        self.zone_polygons: list[np.ndarray] = []
        self.mask_polygons: list[np.ndarray] = []

    def _at(self, width: int, height: int) -> None:
        if (width, height) == self.size:
            return
        self.size = (width, height)
        self.zone_polygons = [pixel_polygon(z.polygon, width, height) for z in self.zones]
        self.mask_polygons = [pixel_polygon(m.polygon, width, height) for m in self.masks]
        for zone in self.zones:
            flat = [c for point in zone.polygon for c in point]
            if max(flat) > 1 and (max(x for x, _ in zone.polygon) > width
                                  or max(y for _, y in zone.polygon) > height):
                log.warning("camera %s: zone %s reaches outside the %dx%d frame; it is clipped",
                            self.camera, zone.name, width, height)

    @staticmethod
    def _inside(polygon: np.ndarray, point: tuple[float, float]) -> bool:
        return cv2.pointPolygonTest(polygon, point, False) >= 0

    def unmasked(self, boxes: Sequence[Detection], width: int, height: int) -> list[Detection]:
        """The boxes whose anchor point is in no mask."""
        if not self.masks:
            return list(boxes)
        self._at(width, height)
        return [b for b in boxes
                if not any(self._inside(poly, anchor_point(b, mask.anchor))
                           for mask, poly in zip(self.masks, self.mask_polygons, strict=True))]

    def zones_of(self, box: Detection, width: int, height: int) -> list[str]:
        """The names of the zones the box is in (those that care about its label)."""
        if not self.zones:
            return []
        self._at(width, height)
        return [zone.name for zone, poly in zip(self.zones, self.zone_polygons, strict=True)
                if (zone.objects is None or box.label in zone.objects)
                and self._inside(poly, anchor_point(box, zone.anchor))]

    def loitering_s(self, name: str) -> float | None:
        for zone in self.zones:
            if zone.name == name:
                return zone.loitering_s
        return None
