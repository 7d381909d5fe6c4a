"""NanoDet (Apache-2.0, RangiLyu/nanodet; the NanoDet-m graph): a pair of outputs a stride.

For each stride (8, 16, 32 for NanoDet-m; a level's cells are ceil(H/s) x ceil(W/s),
row-major): class scores [batch, cells, classes] with the sigmoid applied, and box
distributions [batch, cells, 4 x bins] (bins = reg_max + 1; 11 for NanoDet-m, 8 for
NanoDet-Plus). For each side (left, top, right, bottom) the softmax over its bins gives an
expected bin, times the stride the distance from the cell's centre ((column + 0.5) x stride,
(row + 0.5) x stride) to that side of the box.

Outputs are matched by shape, never by name or order: the two with the same number of rows
are a level, the number of rows gives the stride, and the one whose width is a multiple of
four is the distributions. When both are (80 classes and 44 = 4 x 11), the class names say
which is the scores; without them, NanoDet's usual 8 or 11 bins do.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from fleet.detectors.decoders.base import (
    Candidates,
    Family,
    Fit,
    Outputs,
    concat,
    grid,
    stride_of,
)

USUAL_BINS = (8, 11)  # reg_max 7 (NanoDet-Plus) and 10 (NanoDet-m)


def _box_width(widths: tuple[int, int], known_classes: int | None) -> int | None:
    """Which of a level's two widths is the box distributions' (4 x bins, 2 bins at least)."""
    fitting = [w for w in widths if w % 4 == 0 and w >= 8]
    if len(fitting) > 1 and known_classes is not None:
        named = [w for w in fitting if sum(widths) - w == known_classes]
        fitting = named or fitting
    if len(fitting) > 1:
        fitting = [w for w in fitting if w // 4 in USUAL_BINS]
    return fitting[0] if len(fitting) == 1 else None


def _levels(outputs: Outputs) -> dict[int, list[int]] | None:
    """Outputs by stride, two a stride, when every output's rows are a grid's cells."""
    by_stride: dict[int, list[int]] = {}
    for index in outputs.tables:
        stride = stride_of(outputs.shapes[index][0], outputs.size)
        if stride is None:
            return None
        by_stride.setdefault(stride, []).append(index)
    pairs = len(by_stride) >= 2 and all(len(v) == 2 for v in by_stride.values())
    return dict(sorted(by_stride.items())) if pairs else None


def fit_nanodet(outputs: Outputs) -> Fit | None:
    levels = _levels(outputs)
    if levels is None:
        return None
    widths = {tuple(sorted(outputs.shapes[i][1] for i in pair)) for pair in levels.values()}
    if len(widths) != 1:
        return None
    (pair_widths,) = widths
    box_width = _box_width((pair_widths[0], pair_widths[1]), outputs.known_classes)
    if box_width is None:
        return None
    picks: list[int] = []
    for pair in levels.values():  # stride by stride: scores, then distributions
        picks += sorted(pair, key=lambda i: outputs.shapes[i][1] == box_width)
    return Fit(tuple(picks), sum(pair_widths) - box_width)


@lru_cache(maxsize=32)
def _centres(rows: int, size: tuple[int, int]) -> tuple[int, np.ndarray]:
    """(stride, (rows, 2) cell centres) of the level with ``rows`` cells, cached per input."""
    stride = stride_of(rows, size)
    assert stride is not None  # fit_nanodet checked every level
    cell = grid(size, (stride,))
    centres = (cell[:, :2] + 0.5) * stride
    centres.flags.writeable = False
    return stride, centres


def _level(scores: np.ndarray, distributions: np.ndarray, size: tuple[int, int],
           min_score: float) -> Candidates:
    best = scores.max(axis=1)
    keep = np.flatnonzero(best >= min_score)  # only these cells' distributions are decoded
    stride, centres = _centres(len(scores), size)
    bins = distributions.shape[1] // 4
    logits = distributions[keep].reshape(len(keep), 4, bins)
    weights = np.exp(logits - logits.max(axis=2, keepdims=True))  # softmax over the bins
    weights /= weights.sum(axis=2, keepdims=True)
    sides = (weights @ np.arange(bins, dtype=np.float32)) * stride  # left, top, right, bottom
    centre = centres[keep]
    boxes = np.concatenate([centre - sides[:, :2], centre + sides[:, 2:]], axis=1)
    return Candidates(boxes, best[keep], scores[keep].argmax(axis=1))


def decode_nanodet(arrays: Sequence[np.ndarray], size: tuple[int, int],
                   min_score: float) -> Candidates:
    return concat([_level(arrays[i], arrays[i + 1], size, min_score)
                   for i in range(0, len(arrays), 2)])


NANODET = Family("nanodet", "pairs of [batch, cells, classes] scores and [batch, cells, "
                 "4 x bins] box distributions, one pair a stride (8, 16, 32, ...), cells = "
                 "the stride's grid over the input", fit_nanodet, decode_nanodet, needs_nms=True)
