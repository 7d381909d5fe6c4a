"""What every family shares: the outputs it is fitted to, its fit, the candidates it decodes,
the grid of a dense head, and the two ways of choosing boxes among candidates."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

STRIDES = (8, 16, 32, 64, 128)  # what a dense head's levels downsample the input by


@dataclass(frozen=True)
class Outputs:
    """What a model gives for one image, as read once at start (no batch dimension)."""

    shapes: tuple[tuple[int, ...], ...]  # every output's shape, in the model's order
    names: tuple[str, ...]  # every output's name, in the same order
    size: tuple[int, int]  # the model input's (width, height)
    known_classes: int | None  # the number of class names, when known

    @property
    def tables(self) -> list[int]:
        """The outputs that are [rows, columns] for one image: where boxes can be."""
        return [i for i, shape in enumerate(self.shapes) if len(shape) == 2]

    def listed(self, picks: Sequence[int] | None = None) -> str:
        """``[batch, 84, 8400]``, or several of them: every output, or the ones picked."""
        chosen = range(len(self.shapes)) if picks is None else picks
        return ", ".join(str(["batch", *self.shapes[i]]).replace("'", "") for i in chosen)

    def seen(self) -> str:
        """``the model's output is [batch, 84, 8400]``, or ``outputs are ...`` for several."""
        several = len(self.shapes) > 1
        return f"the model's output{'s are' if several else ' is'} {self.listed()}"


@dataclass(frozen=True)
class Fit:
    """How a family reads a model's outputs."""

    picks: tuple[int, ...]  # the outputs it reads, in the order its decoder takes them
    classes: int | None  # the classes it reads from them; None: any (a class column)
    sure: bool = True  # False: the shape alone does not say it; auto needs the class names


@dataclass(frozen=True)
class Candidates:
    """Boxes above the score threshold, in model-input pixels."""

    boxes: np.ndarray  # (n, 4) float: x1, y1, x2, y2
    scores: np.ndarray  # (n,) float
    classes: np.ndarray  # (n,) int


Decode = Callable[[Sequence[np.ndarray], tuple[int, int], float], Candidates]


@dataclass(frozen=True)
class Family:
    """A model family: the layout it reads (for messages), how it fits a model's outputs, how
    it decodes the picked outputs of one image for an input (width, height) above a score, and
    whether its boxes still need non-maximum suppression."""

    name: str
    layout: str
    fit: Callable[[Outputs], Fit | None]
    decode: Decode
    needs_nms: bool


def corners(cxcywh: np.ndarray) -> np.ndarray:
    half = cxcywh[:, 2:4] / 2
    return np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)


def concat(parts: Sequence[Candidates]) -> Candidates:
    return Candidates(np.concatenate([p.boxes for p in parts]),
                      np.concatenate([p.scores for p in parts]),
                      np.concatenate([p.classes for p in parts]))


def cells(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """(columns, rows) of a level's grid: a stride-2 convolution rounds up."""
    return math.ceil(size[0] / stride), math.ceil(size[1] / stride)


def stride_of(rows: int, size: tuple[int, int]) -> int | None:
    """The stride whose grid over the input has ``rows`` cells, if one has."""
    return next((s for s in STRIDES if math.prod(cells(size, s)) == rows), None)


@lru_cache(maxsize=32)
def grid(size: tuple[int, int], strides: tuple[int, ...]) -> np.ndarray:
    """(cells, 3): column, row and stride of every cell, a level after another, each row-major.
    Cached per input size and read-only: decoders index it every frame."""
    levels = []
    for stride in strides:
        columns, rows = cells(size, stride)
        row, column = np.divmod(np.arange(columns * rows), columns)
        levels.append(np.stack([column, row, np.full_like(row, stride)], axis=1))
    out = np.concatenate(levels).astype(np.float32)
    out.flags.writeable = False
    return out


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
    """Indices of the ``limit`` best boxes, best first (for models that need no NMS)."""
    return np.argsort(-found.scores, kind="stable")[:limit]
