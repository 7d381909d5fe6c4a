"""The DETR family, which needs no NMS: RT-DETR, D-FINE, RF-DETR exports (Apache-2.0).

Two outputs with one row a query: boxes [batch, queries, 4] as cx, cy, w, h in fractions of
the model input, and class logits [batch, queries, classes]. These models are trained with a
sigmoid focal loss, so each class's score is the sigmoid of its logit, not a softmax over the
classes: a query's score is the sigmoid of its best logit, its class that logit's. Each query
is one object already (set prediction): the best ``max_detections`` above ``min_score`` are
kept as they are.

The two are told apart by shape ([queries, 4] against [queries, classes]) and, when there
are four classes, by name (``boxes``, ``pred_boxes``, ``dets`` against ``logits``,
``pred_logits``, ``labels``, ``scores``). Some exports (Ultralytics' and Paddle's RT-DETR)
give one [batch, queries, 4 + classes] output with the sigmoid applied: ``family: detr`` reads
that too, and ``auto`` chooses it when the class names count 4 fewer than its columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fleet.detectors.decoders.base import Candidates, Family, Fit, Outputs, corners

BOX_NAMES = ("boxes", "pred_boxes", "dets", "bboxes")
LOGIT_NAMES = ("logits", "pred_logits", "labels", "scores")


def _named(name: str, wanted: tuple[str, ...]) -> bool:
    return name.lower().split(":")[0] in wanted


def _boxes_and_logits(outputs: Outputs, a: int, b: int) -> tuple[int, int] | None:
    """(boxes, logits) of two outputs with one row a query, by shape, else by name."""
    (queries_a, columns_a), (queries_b, columns_b) = outputs.shapes[a], outputs.shapes[b]
    if queries_a != queries_b:
        return None
    if columns_a == 4 and columns_b != 4:
        return a, b
    if columns_b == 4 and columns_a != 4:
        return b, a
    if columns_a == columns_b == 4:  # four classes: only the names can say
        for boxes, logits in ((a, b), (b, a)):
            if _named(outputs.names[boxes], BOX_NAMES) and \
                    _named(outputs.names[logits], LOGIT_NAMES):
                return boxes, logits
    return None


def fit_detr(outputs: Outputs) -> Fit | None:
    tables = outputs.tables
    if len(tables) == 1:  # boxes and sigmoid-ed scores in one: the shape alone cannot say so
        (index,) = tables
        columns = outputs.shapes[index][1]
        return Fit((index,), columns - 4, sure=False) if columns > 4 else None
    if len(tables) != 2:
        return None
    pair = _boxes_and_logits(outputs, *tables)
    if pair is None:
        return None
    return Fit(pair, outputs.shapes[pair[1]][1])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for very negative logits


def decode_detr(arrays: Sequence[np.ndarray], size: tuple[int, int],
                min_score: float) -> Candidates:
    if len(arrays) == 1:  # [queries, 4 + classes], scores already sigmoid-ed
        boxes, scores = arrays[0][:, :4], arrays[0][:, 4:]
        classes = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), classes]
    else:
        boxes, logits = arrays
        classes = logits.argmax(axis=1)
        best = _sigmoid(logits[np.arange(len(logits)), classes])  # the sigmoid keeps the order
    keep = np.flatnonzero(best >= min_score)
    width, height = size
    scaled = boxes[keep] * np.array([width, height, width, height], np.float32)
    return Candidates(corners(scaled), best[keep], classes[keep])


DETR = Family("detr", "[batch, queries, 4] boxes (cx, cy, w, h in 0..1 of the input) and "
              "[batch, queries, classes] logits; or one [batch, queries, 4 + classes] with "
              "sigmoid scores", fit_detr, decode_detr, needs_nms=False)
