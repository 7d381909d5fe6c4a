"""Output decoders for object detectors on ONNX Runtime, one per model family.

A decoder takes all of a model's outputs for one image and the model input's (width, height),
and returns candidates: x1, y1, x2, y2 in model-input pixels, a score and a class index, for
the boxes above ``min_score``. Families whose boxes overlap then go through :func:`suppress`
(non-maximum suppression within each class); the others, whose models did their own, through
:func:`best`. The families, by their outputs for one image:

    yolov5   [boxes, 5 + classes]   cx, cy, w, h, objectness, class scores (YOLOv5, YOLOv7)
    yolov8   [4 + classes, boxes]   cx, cy, w, h, class scores (YOLOv8, YOLO11; no objectness)
    nms      [boxes, 6]             x1, y1, x2, y2, score, class; NMS done inside the model
    yolox    [cells, 5 + classes]   YOLOX (Megvii, Apache-2.0), decode_in_inference off: one
                                    row a grid cell of strides 8, 16, 32 (x, y offsets, log w,
                                    h, objectness, class scores); yolov5 has 3 rows a cell
    detr     [queries, 4] boxes (cx, cy, w, h in 0..1) and [queries, classes] logits, scored
             by a sigmoid (RT-DETR, D-FINE, RF-DETR; Apache-2.0); no NMS. Or one
             [queries, 4 + classes] output with sigmoid scores (Ultralytics, Paddle RT-DETR)
    nanodet  per stride, [cells, classes] scores and [cells, 4 x bins] box distributions
             (NanoDet, RangiLyu, Apache-2.0); outputs paired by shape, in any order

``family: auto`` chooses from the shapes, the input size and the number of class names when
it is known, and says so when more than one reading fits. A single [rows, 5 + classes] output
is yolox when its rows are one a cell at strides 8, 16, 32 of the input, else yolov5; a
single output that could be detr's combined one is taken as detr only when the class names
count its columns minus 4.

    base      Outputs, Fit, Candidates, Family; the grid of a dense head; suppress, best
    yolo      yolov5, yolov8, nms, yolox
    detr      detr
    nanodet   nanodet
    resolve   FAMILIES, resolve_family -> Decoder
"""

from __future__ import annotations

from fleet.detectors.decoders.base import Candidates, Family, Fit, Outputs, best, suppress
from fleet.detectors.decoders.resolve import FAMILIES, Decoder, resolve_family

__all__ = [
    "FAMILIES",
    "Candidates",
    "Decoder",
    "Family",
    "Fit",
    "Outputs",
    "best",
    "resolve_family",
    "suppress",
]
