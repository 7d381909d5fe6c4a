"""Detectors on ONNX Runtime: the runtime settings every such detector has, and ``type: onnx``,
your own model, whose input (size, layout, scaling) and outputs (family) are config, not code.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from fleet.config._base import StrictModel
from fleet.config._detector_pool import DetectorBase

_PROVIDER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*ExecutionProvider$")
_FRACTION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*/\s*([0-9]*\.?[0-9]+)\s*$")


def _provider_name(name: str) -> str:
    if not _PROVIDER_NAME.match(name):
        raise ValueError(
            f"{name!r} is not an ONNX Runtime execution provider name; use one such as "
            "CPUExecutionProvider, CUDAExecutionProvider, TensorrtExecutionProvider or "
            "OpenVINOExecutionProvider"
        )
    return name


def _fraction(value: Any) -> Any:
    """``1/255`` (YAML reads it as text) -> 0.0039...; anything else goes on to validation."""
    if isinstance(value, str) and (match := _FRACTION.match(value)):
        top, bottom = float(match.group(1)), float(match.group(2))
        if bottom == 0:
            raise ValueError(f"{value!r} divides by zero; give a number such as 1/255")
        return top / bottom
    return value


def _number_or_fraction(schema: dict[str, Any]) -> None:
    number = {k: schema.pop(k) for k in ("type", "exclusiveMinimum", "maximum") if k in schema}
    schema["anyOf"] = [number, {"type": "string", "pattern": _FRACTION.pattern}]


def _three(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) != 3:
        raise ValueError(f"expected 3 values, one per channel; found {len(value)}")
    return value


ProviderName = Annotated[str, AfterValidator(_provider_name)]
Scale = Annotated[float, BeforeValidator(_fraction)]
Channels = Annotated[
    tuple[
        Annotated[float, Field(ge=-1000, le=1000)],
        Annotated[float, Field(ge=-1000, le=1000)],
        Annotated[float, Field(ge=-1000, le=1000)],
    ],
    BeforeValidator(_three),
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class OnnxRuntimeSettings(DetectorBase):
    """What every detector on ONNX Runtime has."""

    providers: list[ProviderName] = Field(
        default_factory=lambda: ["CPUExecutionProvider"], min_length=1, max_length=8,
        description="ONNX Runtime execution providers, most wanted first: CPUExecutionProvider, "
        "CUDAExecutionProvider, TensorrtExecutionProvider, OpenVINOExecutionProvider (each "
        "needs its onnxruntime build on the node). One that is not installed stops the "
        "detector at start, naming what is.",
    )
    provider_fallback: bool = Field(
        default=False,
        description="When ONNX Runtime cannot start the first provider and runs the model on a "
        "later one (a GPU asked, the CPU used), go on with a warning instead of stopping.",
    )
    max_detections: int = Field(
        default=100, ge=1, le=10_000, description="Most boxes kept per frame, best first."
    )

    @field_validator("providers")
    @classmethod
    def _distinct_providers(cls, names: list[str]) -> list[str]:
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once; list each once")
        return names


class OnnxModelConfig(StrictModel):
    """The model file and what its input expects: the model's shape is config, not code."""

    path: str = Field(
        min_length=1,
        description="The .onnx file on every node that runs the detector: an absolute path, or "
        "a file name in the models folder ($CAMFLEET_MODELS; default models/ in the checkout).",
    )
    width: int | None = Field(
        default=None, ge=16, le=4096,
        description="Input width in pixels (none: from the model's input shape or metadata).",
    )
    height: int | None = Field(
        default=None, ge=16, le=4096,
        description="Input height in pixels (none: from the model's input shape or metadata).",
    )
    input_tensor: Literal["nchw", "nhwc"] = Field(
        default="nchw",
        description="Input layout: nchw (PyTorch, Ultralytics exports) or nhwc (TensorFlow).",
    )
    pixel_format: Literal["rgb", "bgr"] = Field(
        default="rgb", description="Channel order the model was trained on."
    )
    scale: Scale = Field(
        default=1 / 255, gt=0, le=1, json_schema_extra=_number_or_fraction,
        description="Multiplies each pixel value (0..255) first: 1/255 for inputs in 0..1.",
    )
    mean: Channels | None = Field(
        default=None,
        description="Subtracted after scale, per channel in pixel_format order "
        "(e.g. [0.485, 0.456, 0.406]); none: 0.",
    )
    std: Channels | None = Field(
        default=None,
        description="Divides after mean, per channel (e.g. [0.229, 0.224, 0.225]); none: 1.",
    )
    resize: Literal["letterbox", "stretch"] = Field(
        default="letterbox",
        description="letterbox keeps the frame's aspect ratio and pads (what YOLO exports "
        "expect); stretch fills the input and distorts.",
    )
    pad_value: int = Field(
        default=114, ge=0, le=255, description="Grey level of letterbox padding."
    )

    @field_validator("std")
    @classmethod
    def _no_zero_std(cls, std: tuple[float, float, float] | None) -> Any:
        if std is not None and 0 in std:
            raise ValueError(f"{list(std)} has a 0; every std must be non-zero")
        return std

    @model_validator(mode="after")
    def _size_together(self) -> OnnxModelConfig:
        if (self.width is None) != (self.height is None):
            missing = "height" if self.height is None else "width"
            raise ValueError(f"{missing}: give width and height together, or neither "
                             "(then the model's input shape decides)")
        return self


class OnnxDetectorConfig(OnnxRuntimeSettings):
    """Your own object detector on ONNX Runtime: a YOLO export, or any model with NMS inside."""

    type: Literal["onnx"] = Field(
        default="onnx", description="An object detector on ONNX Runtime (YOLOv5, YOLOv8, "
        "YOLO11, or a model with NMS inside)."
    )
    model: OnnxModelConfig = Field(description="The model file and what its input expects.")
    family: Literal["auto", "yolov5", "yolov8", "nms", "yolox", "detr", "nanodet"] = Field(
        default="auto",
        description="How to read the outputs: yolov5 [batch, boxes, 5 + classes] with "
        "objectness; yolov8 [batch, 4 + classes, boxes] (also YOLO11); nms [batch, boxes, 6] = "
        "x1, y1, x2, y2, score, class with NMS in the model; yolox [batch, cells, 5 + classes], "
        "one row a grid cell of strides 8, 16, 32 (YOLOX, decode_in_inference off); detr "
        "[batch, queries, 4] boxes in 0..1 and [batch, queries, classes] logits, no NMS "
        "(RT-DETR, D-FINE, RF-DETR); nanodet a pair of outputs a stride, [batch, cells, "
        "classes] scores and [batch, cells, 4 x bins] box distributions; auto tells them apart "
        "by the outputs' shapes, the input size and the number of class names.",
    )
    min_score: float = Field(default=0.25, ge=0, le=1, description="Lowest score kept.")
    nms_iou: float = Field(
        default=0.45, ge=0, le=1,
        description="Boxes of one class that overlap more than this are merged (family nms: "
        "the model's own NMS, this is not applied).",
    )
    classes: list[Label] | None = Field(
        default=None, min_length=1,
        description="Keep only these class names, e.g. [car, truck, bus] (none: every class).",
    )
    labels: str | None = Field(
        default=None, min_length=1,
        description="Class names, one a line in class order, in a text file (absolute, or in "
        "the models folder); none: the names in the model's metadata (Ultralytics exports).",
    )

    @field_validator("classes")
    @classmethod
    def _distinct_classes(cls, names: list[str] | None) -> list[str] | None:
        repeated = sorted({n for n in names or [] if (names or []).count(n) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once; list each once")
        return names
