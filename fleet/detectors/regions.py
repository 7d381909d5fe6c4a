"""Tiling (``tiles:`` on a detector): the wrapped detector also runs on overlapping tiles.

A 40 px face in a 1920x1080 frame is under 3 px once the frame is letterboxed into BlazeFace
front's 128x128 input: no model finds that. Cut the frame into tiles and each tile fills the
input, so the face is several times larger where the model looks. The price is one model call a
tile, plus one for the whole frame (``include_full_frame``, for faces larger than a tile).

How: each tile is a slice of the frame, a view (the frame, read-only on Ray's object store, is
neither copied nor written). All regions of a frame go to the wrapped detector as one batch
(one model call when its batch size is free). Its boxes come back in tile pixels and are
shifted to frame pixels; then one object seen by several regions is merged into one box:
greedy non-maximum suppression per label (``nms_iou``), where a box cut by a tile's inner edge
ranks below every whole box and also goes when a kept box covers most of it. Tiles overlap by
``overlap`` of their size, so an object smaller than the overlap lies whole in some tile.

Each tile is analysed as a frame of its own: ``detect_width`` caps each tile's width, not the
frame's, so tiling raises the detail a detector sees (which is the point) for every kind.
Imports no Ray.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from fleet.config import TilesConfig
from fleet.detectors.base import Detector, detect_batch
from fleet.frames import Detection, FrameMeta

MAX_SHRINK = 4.0  # grid "auto": frame pixels per model-input pixel, at most
COVERED = 0.6  # a cut box goes when a kept box covers this much of it
EDGE_PX = 2  # a box this close to a tile's inner edge was cut by it


@dataclass(frozen=True)
class Tile:
    """A region of the frame, in frame pixels; ``inner`` marks the edges that are not the
    frame's own (left, top, right, bottom): boxes touching those were cut by the tile."""

    x: int
    y: int
    w: int
    h: int
    inner: tuple[bool, bool, bool, bool] = (False, False, False, False)

    def view(self, frame: np.ndarray) -> np.ndarray:
        """The tile as a view of ``frame``: basic slicing, never a copy."""
        return frame[self.y:self.y + self.h, self.x:self.x + self.w]

    def cut(self, d: Detection) -> bool:
        """Whether box ``d`` (in tile pixels) touches one of the tile's inner edges."""
        left, top, right, bottom = self.inner
        return ((left and d.x <= EDGE_PX) or (top and d.y <= EDGE_PX)
                or (right and d.x + d.w >= self.w - EDGE_PX)
                or (bottom and d.y + d.h >= self.h - EDGE_PX))


def spans(length: int, count: int, overlap: float) -> list[tuple[int, int]]:
    """(start, size) of ``count`` equal windows from 0 to ``length``, neighbours sharing at
    least ``overlap`` of a window; the first starts at 0 and the last ends at ``length``."""
    if count <= 1:
        return [(0, length)]
    size = min(length, math.ceil(length / (count - (count - 1) * overlap)))
    last = length - size
    return [(round(i * last / (count - 1)), size) for i in range(count)]


def grid_tiles(width: int, height: int, columns: int, rows: int, overlap: float) -> list[Tile]:
    """The tiles of a ``columns`` x ``rows`` grid over a ``width`` x ``height`` frame."""
    xs, ys = spans(width, columns, overlap), spans(height, rows, overlap)
    return [Tile(x, y, w, h, (x > 0, y > 0, x + w < width, y + h < height))
            for y, h in ys for x, w in xs]


def auto_grid(width: int, height: int, input_side: int, overlap: float) -> tuple[int, int]:
    """(columns, rows) for nearly square tiles (a square input wastes nothing on padding)
    small enough that a frame pixel shrinks at most ``MAX_SHRINK`` times into the input."""
    side = max(1.0, input_side * MAX_SHRINK)
    if max(width, height) <= side:  # the whole frame already shrinks little enough
        return 1, 1
    rows = max(1, math.ceil((height / side - overlap) / (1 - overlap)))
    tile_h = height / (rows - (rows - 1) * overlap)
    columns = max(1, math.ceil((width / min(side, tile_h) - overlap) / (1 - overlap)))
    return min(columns, 16), min(rows, 16)


def input_side(detector: Detector, meta: FrameMeta) -> int | None:
    """The longer side of the model's fixed input (CNNs letterbox into it), else the width a
    frame is cut to (``detect_width``, as the Haar and HOG detectors see it), else None."""
    spec = getattr(getattr(detector, "packer", None), "spec", None)
    if spec is not None:
        return int(max(spec.width, spec.height))
    return meta.detect_width


class TiledDetector:
    """Runs ``inner`` on the whole frame (optional) and on overlapping tiles, as one batch, and
    merges what the regions found into one box an object. Counts the regions it analysed."""

    def __init__(self, inner: Detector, config: TilesConfig):
        self.inner = inner
        self.config = config
        self.label = inner.label
        self.regions = 0  # regions analysed (model inputs), for the cost of tiling
        self.frames = 0
        self._tiles: dict[tuple[int, int, int | None], list[Tile]] = {}

    def tiles(self, width: int, height: int, meta: FrameMeta) -> list[Tile]:
        """The regions of a frame of this size: tiles, then the frame itself if asked."""
        key = (width, height, meta.detect_width)
        found = self._tiles.get(key)
        if found is None:
            found = self._tiles[key] = self._layout(width, height, meta)
        return found

    def _layout(self, width: int, height: int, meta: FrameMeta) -> list[Tile]:
        grid = self.config.grid
        if grid == "auto":
            side = input_side(self.inner, meta)
            grid = auto_grid(width, height, side, self.config.overlap) if side else (1, 1)
        tiles = grid_tiles(width, height, grid[0], grid[1], self.config.overlap)
        whole = Tile(0, 0, width, height)
        if len(tiles) == 1:  # a 1x1 grid is the frame: analyse it once
            return [whole]
        return [*tiles, whole] if self.config.include_full_frame else tiles

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        return self.detect_batch([frame], [meta])[0]

    def detect_batch(self, frames: Sequence[np.ndarray],
                     metas: Sequence[FrameMeta]) -> list[list[Detection]]:
        """Every region of every frame in one batch for the wrapped detector, then merged back
        frame by frame."""
        views: list[np.ndarray] = []
        region_metas: list[FrameMeta] = []
        layouts: list[list[Tile]] = []
        for frame, meta in zip(frames, metas, strict=True):
            tiles = self.tiles(frame.shape[1], frame.shape[0], meta)
            layouts.append(tiles)
            views.extend(t.view(frame) for t in tiles)
            region_metas.extend(replace(meta, width=t.w, height=t.h) for t in tiles)
        found = detect_batch(self.inner, views, region_metas)
        self.regions += len(views)
        self.frames += len(frames)
        out, start = [], 0
        for tiles in layouts:
            out.append(self._merge(tiles, found[start:start + len(tiles)]))
            start += len(tiles)
        return out

    def _merge(self, tiles: Sequence[Tile], found: Sequence[list[Detection]]) -> list[Detection]:
        candidates = [(replace(d, x=d.x + t.x, y=d.y + t.y), t.cut(d))
                      for t, boxes in zip(tiles, found, strict=True) for d in boxes]
        return suppress(candidates, self.config.nms_iou)


def suppress(candidates: Sequence[tuple[Detection, bool]], iou: float) -> list[Detection]:
    """Greedy NMS per label over (box, cut) pairs: whole boxes first, best score first; a box
    goes when a kept one overlaps it more than ``iou``, and a cut box also when a kept one
    covers ``COVERED`` of it (a face cut in half by a tile has a small IoU with its whole box)."""
    order = sorted(candidates, key=lambda c: (c[1], -c[0].score))
    kept: list[Detection] = []
    for box, cut in order:
        if not any(k.label == box.label and (box_iou(k, box) > iou
                                             or (cut and covered(box, k) >= COVERED))
                   for k in kept):
            kept.append(box)
    return kept


def _inner(a: Detection, b: Detection) -> int:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(0, w) * max(0, h)


def box_iou(a: Detection, b: Detection) -> float:
    """Intersection over union of two boxes."""
    inner = _inner(a, b)
    union = a.w * a.h + b.w * b.h - inner
    return inner / union if union > 0 else 0.0


def covered(box: Detection, by: Detection) -> float:
    """The fraction of ``box`` that ``by`` covers."""
    area = box.w * box.h
    return _inner(box, by) / area if area > 0 else 0.0


def with_tiles(detector: Detector, config: TilesConfig) -> Detector:
    """``detector`` wrapped in tiling when ``config.enabled``, else ``detector`` itself."""
    return TiledDetector(detector, config) if config.enabled else detector
