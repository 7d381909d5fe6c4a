"""The detector types a fleet file can name (``type:``), and the ``DetectorConfig`` union.

BlazeFace (``face``) and NanoDet (``person``, ``objects``) are the defaults
(``_defaults.py``); Haar and HOG are the legacy OpenCV detectors those names used to mean; your
own ONNX model is in ``_onnx.py``. Adding a type: its model here, and a member of the union.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from fleet.config._base import StrictModel
from fleet.config._detector_pool import DetectorBase
from fleet.config._onnx import Label, OnnxDetectorConfig, OnnxRuntimeSettings
from fleet.config._scene import BlobSettings


class FaceDetectorConfig(DetectorBase):
    """The legacy Haar cascade (``type: haar``; ``type: face`` is its old name)."""

    type: Literal["haar", "face"] = Field(
        default="haar", description="OpenCV Haar cascade face detector (legacy; old name: face)."
    )
    cascade: str = Field(
        default="haarcascade_frontalface_default.xml",
        description="Cascade file name in OpenCV's data folder, or a path.",
    )
    scale_factor: float = Field(default=1.1, gt=1, le=2, description="Image pyramid step.")
    min_neighbors: int = Field(
        default=5, ge=0, le=50, description="Overlapping hits needed for a face."
    )
    min_size_px: int = Field(
        default=24, ge=8, le=1024, description="Smallest face, in detection pixels."
    )

    @field_validator("type")
    @classmethod
    def _current_name(cls, value: str) -> Literal["haar", "face"]:
        return "haar"


class PersonDetectorConfig(DetectorBase):
    """The legacy HOG people detector (``type: hog``; ``type: person`` is its old name)."""

    type: Literal["hog", "person"] = Field(
        default="hog",
        description="OpenCV HOG + linear SVM people detector (legacy; old name: person).",
    )
    win_stride_px: int = Field(default=8, ge=4, le=64, description="Sliding-window step.")
    scale: float = Field(default=1.05, gt=1, le=2, description="Image pyramid step.")
    min_score: float = Field(
        default=0.3, ge=-10, le=10,
        description="Lowest SVM margin kept (a box's score is its logistic: 0.3 -> 0.57).",
    )
    nms_iou: float = Field(
        default=0.5, ge=0, le=1, description="Overlap above which boxes are merged."
    )

    @field_validator("type")
    @classmethod
    def _current_name(cls, value: str) -> Literal["hog", "person"]:
        return "hog"


def _no_legacy_settings(data: Any, legacy: type[StrictModel], current: type[StrictModel],
                        legacy_name: str, current_name: str, legacy_type: str,
                        keep: str) -> Any:
    """``data`` as it is, or a ValueError naming the settings in it that belong to the legacy
    detector a name used to mean (``face``: Haar, ``person``: HOG) and how to keep it."""
    only_legacy = set(legacy.model_fields) - set(current.model_fields)
    found = sorted(k for k in data if k in only_legacy) if isinstance(data, dict) else []
    if found:
        what = "is a setting" if len(found) == 1 else "are settings"
        raise ValueError(
            f"{found[0]}: {', '.join(found)} {what} of {legacy_name}, not of {current_name}; "
            f"add type: {legacy_type} to keep {keep}, or remove "
            f"{'it' if len(found) == 1 else 'them'}"
        )
    return data


class BlazeFaceDetectorConfig(OnnxRuntimeSettings):
    """MediaPipe BlazeFace on ONNX Runtime: the default for a detector named ``face``."""

    type: Literal["blazeface"] = Field(
        default="blazeface",
        description="MediaPipe BlazeFace, a CNN face detector on ONNX Runtime (default for face).",
    )
    model: Literal["front", "back"] = Field(
        default="back",
        description="back: 256x256 input, finds faces from about 1/17 of the frame's longer "
        "side (45 px at 768x576, 112 px at 1920x1080); front: 128x128 input, from about 1/8.5 "
        "(90 px at 768x576), for faces near the camera, at a third of the cost (1.7 against "
        "5.6 ms a 768x576 frame on one core). Recall on the 768x576 composites of camfleet "
        "bench accuracy: back 0.96, front 0.49 (docs/benchmarks.md).",
    )
    path: str | None = Field(
        default=None, min_length=1,
        description="Another copy of the model's .onnx file (absolute, or a file name in the "
        "models folder); none: the front or back file that scripts/fetch_models.py fetches.",
    )
    min_score: float = Field(default=0.5, ge=0, le=1, description="Lowest face score kept.")
    nms_iou: float = Field(
        default=0.3, ge=0, le=1,
        description="Boxes that overlap more than this are blended into one (MediaPipe's "
        "weighted non-maximum suppression).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_haar_settings(cls, data: Any) -> Any:
        """A fleet file written when ``face`` meant the Haar cascade: say what changed."""
        return _no_legacy_settings(data, FaceDetectorConfig, cls, "the Haar cascade",
                                   "BlazeFace (what face runs now)", "haar", "the cascade")


class NanoDetDetectorConfig(OnnxRuntimeSettings):
    """NanoDet (80 COCO classes) on ONNX Runtime: the default for detectors named ``person`` and
    ``objects``. The model file is made at set-up (``scripts/fetch_models.py``)."""

    type: Literal["nanodet"] = Field(
        default="nanodet",
        description="NanoDet, a CNN detector of the 80 COCO classes (person, bicycle, car, "
        "motorcycle, bus, truck, dog, ...) on ONNX Runtime; default for person and objects.",
    )
    path: str | None = Field(
        default=None, min_length=1,
        description="Another copy of the model's .onnx file (absolute, or a file name in the "
        "models folder); none: nanodet.onnx, which scripts/fetch_models.py makes.",
    )
    input_size: tuple[Annotated[int, Field(ge=64, le=2048, multiple_of=32)],
                      Annotated[int, Field(ge=64, le=2048, multiple_of=32)]] = Field(
        default=(512, 384),
        description="[width, height] the model sees, multiples of 32. Frames are letterboxed "
        "into it: 512x384 fits 4:3 cameras; [512, 288] fits 16:9 ones at less cost; [416, 416] "
        "is the model's training size. More pixels find smaller people and cost more.",
    )
    min_score: float = Field(
        default=0.5, ge=0, le=1,
        description="Lowest score kept (the tracker's own min_score, 0.5, drops lower boxes "
        "anyway; lower this to see them in frame lines and the detections counters).",
    )
    nms_iou: float = Field(
        default=0.45, ge=0, le=1, description="Boxes of one class that overlap more than this "
        "are merged.",
    )
    classes: list[Label] | None = Field(
        default=None, min_length=1,
        description="Keep only these COCO class names, e.g. [person, car] (none: every class; "
        "person and objects have their own defaults).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_hog_settings(cls, data: Any) -> Any:
        """A fleet file written when ``person`` meant HOG: say what changed."""
        return _no_legacy_settings(data, PersonDetectorConfig, cls, "the HOG detector",
                                   "NanoDet (what person runs now)", "hog", "HOG")


class BlobsDetectorConfig(DetectorBase, BlobSettings):
    """Solid-colour blobs (``type: blobs``): the synthetic scene's paths, for tests."""


DetectorConfig = Annotated[
    BlazeFaceDetectorConfig | NanoDetDetectorConfig | FaceDetectorConfig | PersonDetectorConfig
    | OnnxDetectorConfig | BlobsDetectorConfig,
    Field(discriminator="type"),
]


def detectors_schema(schema: dict[str, Any]) -> None:
    """``anyOf``, not ``oneOf``: ``person: {actors: 2}`` fits several types until its name
    types it."""
    for member in schema.get("patternProperties", {}).values():
        member["anyOf"] = member.pop("oneOf", [])
        member.pop("discriminator", None)
