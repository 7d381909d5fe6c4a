"""The families with one output of boxes: yolov5, yolov8, nms and yolox.

Each reads the model's first [batch, rows, columns] output. When the model has more than one,
``auto`` takes these readings only when the class names confirm them, so a model with several
outputs is read by the family made for them (detr, nanodet).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fleet.detectors.decoders.base import (
    Candidates,
    Family,
    Fit,
    Outputs,
    cells,
    corners,
    grid,
)

YOLOX_STRIDES = (8, 16, 32)


def _first(outputs: Outputs) -> tuple[int, int, int, bool] | None:
    """(index, rows, columns, alone) of the first [rows, columns] output."""
    tables = outputs.tables
    if not tables:
        return None
    rows, columns = outputs.shapes[tables[0]]
    return tables[0], rows, columns, len(tables) == 1


def yolox_cells(size: tuple[int, int]) -> int:
    """Rows of a YOLOX output: one a cell at strides 8, 16 and 32."""
    return sum(math.prod(cells(size, s)) for s in YOLOX_STRIDES)


def fit_yolov5(outputs: Outputs) -> Fit | None:
    first = _first(outputs)
    if first is None:
        return None
    index, rows, columns, alone = first
    # YOLOX has the same columns, but one row a cell where YOLOv5 has three anchors
    fits = rows > columns > 5 and rows != yolox_cells(outputs.size)
    return Fit((index,), columns - 5, alone) if fits else None


def fit_yolox(outputs: Outputs) -> Fit | None:
    first = _first(outputs)
    if first is None:
        return None
    index, rows, columns, alone = first
    fits = columns > 5 and rows == yolox_cells(outputs.size)
    return Fit((index,), columns - 5, alone) if fits else None


def fit_yolov8(outputs: Outputs) -> Fit | None:
    first = _first(outputs)
    if first is None:
        return None
    index, rows, columns, alone = first
    return Fit((index,), rows - 4, alone) if columns > rows > 4 else None


def fit_nms(outputs: Outputs) -> Fit | None:
    first = _first(outputs)
    if first is None:
        return None
    index, _, columns, alone = first
    return Fit((index,), None, alone) if columns == 6 else None  # the class is a column


def _objectness(out: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row indices, scores, classes) of the rows whose objectness x class score reaches
    ``min_score``, for [rows, 4 + 1 + classes] outputs."""
    likely = np.flatnonzero(out[:, 4] >= min_score)  # objectness bounds the score: cheap first cut
    rows = out[likely]
    classes = rows[:, 5:].argmax(axis=1)
    scores = rows[:, 4] * rows[np.arange(len(rows)), 5 + classes]
    keep = scores >= min_score
    return likely[keep], scores[keep], classes[keep]


def decode_yolov5(arrays: Sequence[np.ndarray], size: tuple[int, int],
                  min_score: float) -> Candidates:
    out = arrays[0]
    rows, scores, classes = _objectness(out, min_score)
    return Candidates(corners(out[rows, :4]), scores, classes)


def decode_yolox(arrays: Sequence[np.ndarray], size: tuple[int, int],
                 min_score: float) -> Candidates:
    """Rows are per cell (stride 8 first, row-major): x, y offsets in cells and log w, h in
    strides (the export with decode_in_inference off), then sigmoid-ed objectness and classes."""
    out = arrays[0]
    rows, scores, classes = _objectness(out, min_score)
    cell = grid(size, YOLOX_STRIDES)[rows]
    stride = cell[:, 2:]
    raw = out[rows, :4]
    centres = (raw[:, :2] + cell[:, :2]) * stride
    sides = np.exp(raw[:, 2:4]) * stride
    return Candidates(corners(np.concatenate([centres, sides], axis=1)), scores, classes)


def decode_yolov8(arrays: Sequence[np.ndarray], size: tuple[int, int],
                  min_score: float) -> Candidates:
    out = arrays[0]
    best = out[4:].max(axis=0)  # per box, over classes: no transpose of the whole output
    keep = np.flatnonzero(best >= min_score)
    columns = out[:, keep]
    classes = columns[4:].argmax(axis=0)
    return Candidates(corners(columns[:4].T), best[keep], classes)


def decode_nms(arrays: Sequence[np.ndarray], size: tuple[int, int],
               min_score: float) -> Candidates:
    out = arrays[0]
    rows = out[out[:, 4] >= min_score]
    return Candidates(rows[:, :4].astype(np.float64), rows[:, 4], rows[:, 5].astype(np.int64))


YOLOV5 = Family("yolov5", "[batch, boxes, 5 + classes] (cx, cy, w, h, objectness, class scores)",
                fit_yolov5, decode_yolov5, needs_nms=True)
YOLOV8 = Family("yolov8", "[batch, 4 + classes, boxes] (cx, cy, w, h, class scores)",
                fit_yolov8, decode_yolov8, needs_nms=True)
NMS = Family("nms", "[batch, boxes, 6] (x1, y1, x2, y2, score, class)",
             fit_nms, decode_nms, needs_nms=False)
YOLOX = Family("yolox", "[batch, cells, 5 + classes] with one row a cell of the strides 8, 16 "
               "and 32 grids (x, y offsets, log w, h, objectness, class scores)",
               fit_yolox, decode_yolox, needs_nms=True)
