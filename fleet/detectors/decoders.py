"""Output decoders for object detectors on ONNX Runtime, one per model family.

Each turns one image's raw output into candidates (x1, y1, x2, y2 in model-input pixels, a
score and a class index) above a score; :func:`suppress` then merges overlapping boxes of one
class. The families, by the shape of the output for one image:

    yolov5  [boxes, 5 + classes]   cx, cy, w, h, objectness, class scores (YOLOv5, YOLOv7)
    yolov8  [4 + classes, boxes]   cx, cy, w, h, class scores (YOLOv8, YOLO11; no objectness)
    nms     [boxes, 6]             x1, y1, x2, y2, score, class; NMS done inside the model

``family: auto`` tells them apart from the shape when only one reading fits, with the number
of class names when it is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from fleet.detectors.base import SettingError

FAMILIES = ("yolov5", "yolov8", "nms")
LAYOUTS = {
    "yolov5": "[batch, boxes, 5 + classes] (cx, cy, w, h, objectness, class scores)",
    "yolov8": "[batch, 4 + classes, boxes] (cx, cy, w, h, class scores)",
    "nms": "[batch, boxes, 6] (x1, y1, x2, y2, score, class)",
}


@dataclass(frozen=True)
class Candidates:
    """Boxes above the score threshold, in model-input pixels."""

    boxes: np.ndarray  # (n, 4) float: x1, y1, x2, y2
    scores: np.ndarray  # (n,) float
    classes: np.ndarray  # (n,) int


def _corners(cxcywh: np.ndarray) -> np.ndarray:
    half = cxcywh[:, 2:4] / 2
    return np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)


def decode_yolov5(out: np.ndarray, min_score: float) -> Candidates:
    likely = np.flatnonzero(out[:, 4] >= min_score)  # objectness bounds the score: cheap first cut
    rows = out[likely]
    classes = rows[:, 5:].argmax(axis=1)
    scores = rows[:, 4] * rows[np.arange(len(rows)), 5 + classes]
    keep = scores >= min_score
    return Candidates(_corners(rows[keep, :4]), scores[keep], classes[keep])


def decode_yolov8(out: np.ndarray, min_score: float) -> Candidates:
    best = out[4:].max(axis=0)  # per box, over classes: no transpose of the whole output
    keep = np.flatnonzero(best >= min_score)
    columns = out[:, keep]
    classes = columns[4:].argmax(axis=0)
    return Candidates(_corners(columns[:4].T), best[keep], classes)


def decode_nms(out: np.ndarray, min_score: float) -> Candidates:
    rows = out[out[:, 4] >= min_score]
    return Candidates(rows[:, :4].astype(np.float64), rows[:, 4], rows[:, 5].astype(np.int64))


DECODERS: dict[str, Callable[[np.ndarray, float], Candidates]] = {
    "yolov5": decode_yolov5,
    "yolov8": decode_yolov8,
    "nms": decode_nms,
}


def classes_of(family: str, shape: tuple[int, int]) -> int | None:
    """The number of classes ``family`` reads from a [rows, columns] output, or None if it cannot
    be that family's output."""
    rows, columns = shape
    if family == "yolov5":
        return columns - 5 if rows > columns > 5 else None
    if family == "yolov8":
        return rows - 4 if columns > rows > 4 else None
    return 0 if columns == 6 else None  # nms: the class is a column, any number of them


def _fits(shape: tuple[int, int], names: int | None) -> list[str]:
    found = []
    for family in FAMILIES:
        classes = classes_of(family, shape)
        if classes is not None and (names is None or family == "nms" or classes == names):
            found.append(family)
    return found


def resolve_family(family: str, shape: tuple[int, int], names: int | None) -> str:
    """``family`` checked against one image's output shape (``auto`` chosen from it), or a
    SettingError that says what the output is and which family fits it."""
    fits = _fits(shape, names)
    output = f"[batch, {shape[0]}, {shape[1]}]"
    seen = f"the model's output is {output}"
    counted = f" with {names} class names" if names is not None else ""
    if family == "auto":
        if len(fits) == 1:
            return fits[0]
        if not fits:
            raise SettingError("family", f"auto: {seen}{counted}, which fits no family "
                               f"({'; '.join(f'{f} {LAYOUTS[f]}' for f in FAMILIES)})")
        raise SettingError("family", f"auto cannot tell: {seen}, which fits "
                           f"{' and '.join(fits)}; set family: to the one it is")
    if family in fits:
        return family
    classes = classes_of(family, shape)
    if classes is not None and names is not None:
        raise SettingError("family", f"{family} reads {classes} classes from the output "
                           f"{output}, but there are {names} class names; check the model and "
                           "its labels")
    hint = f"; it fits {' or '.join(fits)}: set family: {fits[0]} or auto" if fits else ""
    raise SettingError("family", f"{family} expects {LAYOUTS[family]}, but {seen}{hint}")


def suppress(found: Candidates, iou: float, limit: int) -> np.ndarray:
    """Indices of the boxes kept by non-maximum suppression within each class, best first."""
    if len(found.scores) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([found.boxes[:, :2], found.boxes[:, 2:] - found.boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), found.scores.tolist(),
                                   found.classes.tolist(), 0.0, iou)
    kept = np.asarray(keep, np.int64).reshape(-1)
    return kept[np.argsort(-found.scores[kept], kind="stable")][:limit]


def best(found: Candidates, limit: int) -> np.ndarray:
    """Indices of the ``limit`` best boxes, best first (for models that did their own NMS)."""
    return np.argsort(-found.scores, kind="stable")[:limit]
