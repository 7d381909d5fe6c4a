"""Pydantic models of a fleet file. One model per concept; every field has a description and bounds.

:class:`FleetConfig` merges ``defaults:`` into every camera before validation, so the models check
the file as the cameras will run it, whether the data came through the loader or not. The loader
(``_loader.py``) interpolates ``${VAR}`` and maps each error back to a file line.

A cross-field check names the field it is about as a ``field.path: `` prefix of its message
(relative to the model that raises it); the loader turns that prefix into the problem's location.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from fleet.config._base import ID_PATTERN, StrictModel
from fleet.config._objects import ObjectSettings
from fleet.config._push import MqttSinkConfig, WebhookSinkConfig
from fleet.config._scene import BlobSettings, ScenePath
from fleet.redact import redact_url

# Detector names that exist without being defined (their type: DEFAULT_DETECTOR_TYPES).
DETECTOR_KINDS = ("face", "person", "objects")
SafeId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


# ----------------------------------------------------------------------------------------- sources
class FileSource(StrictModel):
    type: Literal["file"] = Field(default="file", description="A video file OpenCV can decode.")
    path: str = Field(min_length=1, description="Path of the video file.")
    loop: bool = Field(default=True, description="Start again from the first frame at the end.")
    realtime: bool = Field(
        default=True,
        description="Pace reading at the file's native fps; false reads as fast as possible.",
    )


class _NetworkSource(StrictModel):
    url: str = Field(min_length=1, repr=False, description="Stream URL; put passwords in ${ENV}.")
    open_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Give up opening after this."
    )
    read_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Reconnect after no frame for this."
    )

    @property
    def safe_url(self) -> str:
        """The URL with passwords and tokens masked; the form to log or show."""
        return redact_url(self.url)


def _check_scheme(url: str, schemes: tuple[str, ...]) -> str:
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in schemes:
        expected = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(
            f"expected a URL starting with {expected}, found {redact_url(url)!r}; fix the URL, "
            "or the type (or leave type: out and let the URL choose it)"
        )
    return url


class RtspSource(_NetworkSource):
    type: Literal["rtsp"] = Field(
        default="rtsp", description="An RTSP camera or server (rtsp://, rtsps://)."
    )
    transport: Literal["tcp", "udp"] = Field(
        default="tcp", description="RTP transport; tcp survives NAT and loss."
    )

    @field_validator("url")
    @classmethod
    def _rtsp_url(cls, url: str) -> str:
        return _check_scheme(url, ("rtsp", "rtsps"))


class HttpSource(_NetworkSource):
    type: Literal["http"] = Field(default="http", description="HTTP(S) MJPEG or HLS stream.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return _check_scheme(url, ("http", "https"))


class DeviceSource(StrictModel):
    type: Literal["device"] = Field(
        default="device", description="A local capture device (/dev/videoN)."
    )
    index: int = Field(default=0, ge=0, le=63, description="Device index N of /dev/videoN.")


class ImagesSource(StrictModel):
    type: Literal["images"] = Field(
        default="images", description="A folder or glob of still images."
    )
    path: str = Field(
        min_length=1, description="Folder (all .jpg/.jpeg/.png/.bmp) or glob pattern."
    )
    fps: float = Field(default=1.0, gt=0, le=240, description="Images delivered per second.")
    loop: bool = Field(default=True, description="Start again after the last image.")


class SyntheticSource(StrictModel):
    type: Literal["synthetic"] = Field(
        default="synthetic", description="In-process moving test scene."
    )
    width: int = Field(default=1280, ge=16, le=7680, description="Frame width in pixels.")
    height: int = Field(default=720, ge=16, le=4320, description="Frame height in pixels.")
    fps: float = Field(default=30.0, gt=0, le=240, description="Frames generated per second.")
    objects: int = Field(default=3, ge=0, le=64, description="Moving shapes in the scene.")
    background: str | None = Field(
        default=None,
        description="An image (e.g. a frame of real footage) the scene is drawn on, resized to "
        "width x height: gives detectors real work in load tests.",
    )
    frames: int | None = Field(
        default=None, ge=1, description="Stop after this many frames (none: endless)."
    )
    paths: list[ScenePath] = Field(
        default_factory=list, max_length=256,
        description="Objects on known straight paths (ground truth for tracking tests), drawn "
        "besides the moving shapes (set objects: 0 for paths only).",
    )
    fps_schedule: list[tuple[float, float]] = Field(
        default_factory=list,
        description="Load steps for load tests: [[seconds after start, fps], ...]; before the "
        "first step the scene runs at fps.",
    )

    @field_validator("fps_schedule")
    @classmethod
    def _steps_in_order(cls, steps: list[tuple[float, float]]) -> list[tuple[float, float]]:
        times = [at for at, _ in steps]
        if times != sorted(times) or any(at < 0 for at in times):
            raise ValueError("fps_schedule times must be >= 0 and in increasing order")
        if any(not 0 < fps <= 240 for _, fps in steps):
            raise ValueError("fps_schedule rates must be > 0 and <= 240")
        return steps

    def fps_at(self, elapsed_s: float) -> float:
        """The scene's frame rate ``elapsed_s`` seconds after it started."""
        fps = self.fps
        for at, step_fps in self.fps_schedule:
            if elapsed_s >= at:
                fps = step_fps
        return fps


Source = Annotated[
    FileSource | RtspSource | HttpSource | DeviceSource | ImagesSource | SyntheticSource,
    Field(discriminator="type"),
]
_SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "http", "https": "http", "file": "file"}


def _source_from_string(text: str) -> dict[str, Any]:
    """``rtsp://...``, ``http://...``, ``file:///x.mp4``, ``device:0``, ``synthetic`` or a path."""
    if text == "synthetic":
        return {"type": "synthetic"}
    if text.startswith("device:"):
        return {"type": "device", "index": text.split(":", 1)[1]}
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if not scheme:
        return {"type": "file", "path": text}
    if scheme not in _SCHEMES:
        raise ValueError(
            f"unknown scheme '{scheme}' in {redact_url(text)}; expected "
            f"{', '.join(f'{s}://' for s in _SCHEMES)}, device:N, synthetic or a file path"
        )
    kind = _SCHEMES[scheme]
    return (
        {"type": "file", "path": _file_url_path(text)}
        if kind == "file"
        else {"type": kind, "url": text}
    )


def _file_url_path(url: str) -> str:
    """``file:///abs/x.mp4`` -> ``/abs/x.mp4``; ``file://rel/x.mp4`` -> ``rel/x.mp4``."""
    parts = urlsplit(url)
    host = "" if parts.netloc.lower() in ("", "localhost") else parts.netloc
    return unquote(host + parts.path)


def _source_schema(schema: dict[str, Any]) -> None:
    """In the JSON schema, a source may also be the string shorthand, or a mapping whose ``url:``
    or ``path:`` implies its ``type:`` (what ``_normalise_source`` accepts)."""
    members = schema.pop("oneOf", [])
    schema.pop("discriminator", None)
    shorthand = {
        "type": "string",
        "description": "rtsp(s)://..., http(s)://..., file:///path, a file path, device:N, "
        "or synthetic",
    }
    schema["anyOf"] = [shorthand, *members]


# ----------------------------------------------------------------------------------------- cameras
class MotionConfig(StrictModel):
    enabled: bool = Field(
        default=False, description="Analyse only frames with motion (others: no_motion)."
    )
    threshold: float = Field(
        default=0.002,
        ge=0,
        le=1,
        description="Fraction of pixels that must change to count as motion.",
    )
    width: int = Field(default=160, ge=32, le=1920, description="Width the motion model runs at.")


class ReconnectConfig(StrictModel):
    initial_backoff_s: float = Field(
        default=0.5, gt=0, le=60, description="First wait after a failure."
    )
    max_backoff_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait between tries."
    )
    jitter: float = Field(
        default=0.2, ge=0, le=1, description="Random +/- fraction added to each wait."
    )

    @model_validator(mode="after")
    def _order(self) -> ReconnectConfig:
        if self.initial_backoff_s > self.max_backoff_s:
            raise ValueError(
                f"initial_backoff_s: {self.initial_backoff_s:g} s exceeds max_backoff_s "
                f"({self.max_backoff_s:g} s); lower it or raise max_backoff_s"
            )
        return self


class CameraSettings(ObjectSettings):
    """What every camera has; ``defaults:`` holds the same fields (tracking, zones and masks
    come from :class:`ObjectSettings`)."""

    fps: float = Field(default=5.0, gt=0, le=240, description="Target analysed frames per second.")
    detect: list[str] = Field(
        default_factory=lambda: ["face"], min_length=1, description="Detector names to run."
    )
    detect_width: int | None = Field(
        default=640,
        ge=32,
        le=7680,
        description="Detectors see frames downscaled to this width (none: native).",
    )
    put_width: int | None = Field(
        default=None, ge=32, le=7680,
        description="Put frames into the object store downscaled to this width (one resize in "
        "the camera, into a reused buffer) instead of full size: fewer bytes per frame. Set it "
        "to detect_width when every detector of the camera works at that width or less. Boxes "
        "still come back in original-frame pixels; snapshots are drawn from the smaller frame.",
    )
    put_frames: int = Field(
        default=1, ge=1, le=32,
        description="Frames per object-store put and per detector call: the camera decodes "
        "up to this many consecutive admitted frames into one reused buffer and hands them "
        "off as one object (each frame still copied once, read by the detector as a "
        "zero-copy view), which divides Ray's fixed cost per object and per call among them. "
        "A group goes when full, when the next frame would make its first wait longer than "
        "put_wait_ms, or when no buffer is free. Each frame of a group takes one of the "
        "camera's buffers: give it buffers of at least twice put_frames.",
    )
    put_wait_ms: float = Field(
        default=50.0, ge=0, le=5000,
        description="Longest the first frame of a put_frames group waits for the rest (live "
        "sources: the latency it adds).",
    )
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion gate.")
    buffers: int = Field(
        default=4, ge=1, le=64, description="Frames in flight at most (initial slots)."
    )
    drop_policy: Literal["drop_newest", "drop_oldest", "wait"] | None = Field(
        default=None,
        description="No free slot: drop_newest discards the new frame; drop_oldest keeps the "
        "newest waiting frame and discards the one it replaces; wait holds capture until a slot "
        "frees (backpressure: nothing is lost). Default: wait for files with realtime: false "
        "and image folders, drop_oldest for live sources.",
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig, description="Backoff.")
    max_frame_pixels: int = Field(
        default=33_177_600, ge=256, le=268_435_456,
        description="A frame with more pixels (width x height) than this is dropped as "
        "too_large and never enters the pipeline; the stream goes on. The default is 8K UHD "
        "(7680 x 4320); a 16384 x 16384 frame, which a 245 KiB JPEG can decode to, would hold "
        "768 MB. Image folders read JPEG and PNG sizes from the header, before decoding.",
    )
    watchdog_s: float = Field(
        default=60.0, ge=1, le=3600,
        description="A capture call into the source (open, grab, decode) that lasts this long "
        "is stuck inside OpenCV/FFmpeg: the camera actor is restarted. Network sources time "
        "out sooner on their own (open_timeout_s, read_timeout_s).",
    )
    num_cpus: float = Field(
        default=0.25, ge=0, le=16, description="Ray CPUs reserved for the camera actor."
    )
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources for the camera actor, e.g. {site_a: 0.01} to run it "
        "on the node near its cameras (started with --resources '{\"site_a\": 100}'); its "
        "detectors are placed beside it.",
    )

    @field_validator("detect")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"{', '.join(repeated)} listed more than once; list each detector once"
            )
        return names


class CameraConfig(CameraSettings):
    id: str = Field(pattern=ID_PATTERN, description="Camera id: metric label and file name.")
    source: Source = Field(
        description="Where frames come from (a URL, path, or a typed mapping).",
        json_schema_extra=_source_schema,
    )
    enabled: bool = Field(
        default=True, description="Set false to keep a camera in the file but not run it."
    )

    @model_validator(mode="after")
    def _default_drop_policy(self) -> CameraConfig:
        """A file that is not live loses nothing: it waits for a buffer. A live source cannot
        wait (the camera would not stop sending), so it drops, and says why."""
        if self.put_width and self.detect_width and self.put_width < self.detect_width:
            raise ValueError(f"put_width: {self.put_width} is below detect_width "
                             f"({self.detect_width}): detectors would see less than they ask "
                             "for; raise put_width or lower detect_width")
        live = isinstance(self.source, (RtspSource, HttpSource, DeviceSource))
        if self.drop_policy == "wait" and live:
            raise ValueError("drop_policy: a live source cannot wait for buffers (frames would "
                             "pile up in the stream); use drop_oldest or drop_newest")
        if self.drop_policy is None:
            archive = isinstance(self.source, ImagesSource) or (
                isinstance(self.source, FileSource) and not self.source.realtime)
            object.__setattr__(self, "drop_policy", "wait" if archive else "drop_oldest")
        return self

    @field_validator("source", mode="before")
    @classmethod
    def _normalise_source(cls, value: Any) -> Any:
        """A string, or a mapping with ``url:`` or ``path:`` but no ``type:``: a typed source."""
        if isinstance(value, str):
            return _source_from_string(value)
        if isinstance(value, dict) and "type" not in value:
            if isinstance(value.get("url"), str):
                rest = {k: v for k, v in value.items() if k != "url"}
                return {**rest, **_source_from_string(value["url"])}
            if "path" in value:
                return {**value, "type": "file"}
        return value


# --------------------------------------------------------------------------------------- detectors
# What a detector named like a kind (DETECTOR_KINDS) runs when it names no ``type:``.
DEFAULT_DETECTOR_TYPES = {"face": "blazeface", "person": "nanodet", "objects": "nanodet"}
# ... and the classes it keeps, when it names none.
DEFAULT_DETECTOR_CLASSES = {
    "person": ["person"],
    "objects": ["person", "bicycle", "car", "motorcycle", "bus", "truck", "cat", "dog"],
}
_PROVIDER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*ExecutionProvider$")
_FRACTION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*/\s*([0-9]*\.?[0-9]+)\s*$")


class BatchingConfig(StrictModel):
    """Frames from several cameras in one model call (see fleet/pipeline/batching.py)."""

    max_batch_size: int = Field(
        default=1, ge=1, le=256,
        description="Most frames one model call takes. With autoscaling on, the batch size is "
        "tuned between 1 and this from queueing and the latency SLO; 1 turns batching off.",
    )
    batch_wait_timeout_ms: float = Field(
        default=2.0, ge=0, le=1000,
        description="Longest the first frame of a batch waits for more before the call.",
    )


GridSide = Annotated[int, Field(ge=1, le=16)]


class TilesConfig(StrictModel):
    """Small faces and objects: the detector also runs on overlapping tiles of the frame
    (see fleet/detectors/regions.py), so each tile fills the model's input."""

    enabled: bool = Field(
        default=False,
        description="Run the detector on tiles of each frame as well; costs one model call a "
        "tile (plus one for the full frame).",
    )
    grid: tuple[GridSide, GridSide] | Literal["auto"] = Field(
        default=(2, 2),
        description="[columns, rows] of tiles; auto: nearly square tiles, as many as it takes "
        "for a frame pixel to shrink at most 4x into the model's input (detect_width for "
        "detectors with no fixed input), none when the whole frame already does.",
    )
    overlap: float = Field(
        default=0.2, ge=0, le=0.5,
        description="Fraction of a tile shared with its neighbour, so an object cut by one "
        "tile's edge lies whole in the next.",
    )
    include_full_frame: bool = Field(
        default=True, description="Also run on the whole frame, for objects larger than a tile."
    )
    nms_iou: float = Field(
        default=0.4, ge=0, le=1,
        description="Boxes of one label from different tiles that overlap more than this are "
        "one object: the best-scored box is kept.",
    )


class DetectorBase(StrictModel):
    actors: int = Field(default=1, ge=0, le=1024, description="Actors started with the fleet.")
    min_actors: int = Field(
        default=1, ge=0, le=1024, description="Fewest actors the autoscaler keeps."
    )
    max_actors: int = Field(
        default=4, ge=1, le=1024, description="Most actors the autoscaler starts."
    )
    num_cpus: float = Field(default=1.0, gt=0, le=64, description="Ray CPUs per detector actor.")
    num_gpus: float = Field(
        default=0.0, ge=0, le=16,
        description="Ray GPUs per detector actor; fractions share a GPU (0.25: four actors).",
    )
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources per actor, e.g. {accelerator_a10g: 1} to land on "
        "nodes started with --resources.",
    )
    batching: BatchingConfig = Field(
        default_factory=BatchingConfig, description="Cross-camera batching of model calls."
    )
    tiles: TilesConfig = Field(
        default_factory=TilesConfig, description="Tiling, for objects small in the frame."
    )

    @model_validator(mode="after")
    def _bounds(self) -> DetectorBase:
        if self.min_actors > self.max_actors:
            raise ValueError(
                f"min_actors: {self.min_actors} exceeds max_actors ({self.max_actors}); "
                "lower min_actors or raise max_actors"
            )
        if not self.min_actors <= self.actors <= self.max_actors:
            raise ValueError(
                f"actors: {self.actors} lies outside min_actors..max_actors "
                f"({self.min_actors}..{self.max_actors}); start within the autoscaler's bounds"
            )
        return self


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


# -------------------------------------------------------------------------------------------- sinks
def _inside_run_folder(value: str) -> str:
    """Sink paths are relative and stay inside the run folder: a fleet file writes nowhere else."""
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "~")) or (len(value) > 1 and value[1] == ":"):
        raise ValueError(f"{value!r} is absolute; give a path relative to the run folder "
                         "(set output_dir or --run-dir to move the run folder itself)")
    if ".." in parts:
        raise ValueError(f"{value!r} leaves the run folder ('..'); give a path inside it")
    return value


RunPath = Annotated[str, AfterValidator(_inside_run_folder)]


class JsonlSinkConfig(StrictModel):
    enabled: bool = Field(default=True, description="Write events to a JSON-lines file.")
    path: RunPath = Field(
        default="events.jsonl", min_length=1, description="File, relative to the run folder."
    )
    objects: bool = Field(
        default=True,
        description='Object events (type "object": start, update, end, enter, leave, loiter, '
        "stationary).",
    )
    frames: bool = Field(
        default=False,
        description='Also one line per analysed frame with detections (type "frame"): many '
        "lines a second per camera; for debugging and offline analysis.",
    )
    tracks: bool = Field(
        default=False,
        description='Also one line per tracked box per analysed frame (type "track": camera, '
        "frame, time, track, label, box, score, started), after the masks and in capture "
        "order, from the frame a track is confirmed, before and after its start; for "
        "trajectories, debugging and offline analysis. Never pushed (webhook, MQTT).",
    )
    flush_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="Longest a line waits in memory."
    )
    rotate_mb: float = Field(
        default=256, ge=0, le=1_000_000,
        description="Start a new file when the file passes this size (MB): the old one becomes "
        "<path>.1 (.1 becomes .2, and so on). 0: never rotate. stats.jsonl in the run folder "
        "rotates by the same rule.",
    )
    keep_files: int = Field(
        default=5, ge=0, le=1000,
        description="Rotated files kept (<path>.1 newest ... <path>.<keep_files>); older ones "
        "are deleted. 0: a full file is deleted at rotation.",
    )
    max_pending_lines: int = Field(
        default=10_000, ge=256, le=10_000_000,
        description="Lines held in memory while the file cannot be written (a full disk); past "
        "this the oldest are dropped and counted (sink jsonl, reason disk_full). Push sinks "
        "never wait for the file.",
    )


class SnapshotSinkConfig(StrictModel):
    enabled: bool = Field(
        default=True,
        description="Save the best snapshot of every tracked object (<dir>/<camera>/<track>.jpg, "
        "its path in the object's events).",
    )
    frames: bool = Field(
        default=False,
        description="Also save frames with detections (<dir>/<camera>-<frame>.jpg), at most "
        "max_per_camera, min_interval_s apart.",
    )
    dir: RunPath = Field(
        default="snapshots", min_length=1, description="Folder, relative to the run folder."
    )
    max_per_camera: int = Field(
        default=50, ge=1, le=100_000, description="Frame snapshots kept per camera."
    )
    min_interval_s: float = Field(
        default=5.0, ge=0, le=86400, description="Least time between frame snapshots."
    )
    width: int = Field(default=640, ge=32, le=7680, description="Snapshot width (downscaled).")
    jpeg_quality: int = Field(default=85, ge=10, le=100, description="JPEG quality.")
    max_age_days: float | None = Field(
        default=None, gt=0, le=3650,
        description="Delete snapshots older than this (days, by file time). None: kept "
        "whatever their age (max_mb still applies).",
    )
    max_mb: float = Field(
        default=1024, ge=0, le=10_000_000,
        description="Disk budget of the snapshot folder (MB, all cameras of the run folder on "
        "a node together): past it the oldest snapshots are deleted first. 0: no budget.",
    )
    prune_interval_s: float = Field(
        default=60, ge=1, le=86400,
        description="How often the snapshot folder is checked against max_age_days and "
        "max_mb (seconds; once per node, whatever the number of cameras; at once after a "
        "snapshot failed for want of space).",
    )


class SinksConfig(StrictModel):
    jsonl: JsonlSinkConfig = Field(default_factory=JsonlSinkConfig, description="JSONL events.")
    snapshots: SnapshotSinkConfig = Field(default_factory=SnapshotSinkConfig, description="JPEGs.")
    webhook: WebhookSinkConfig = Field(
        default_factory=WebhookSinkConfig, description="HTTP POST of each object event."
    )
    mqtt: MqttSinkConfig = Field(
        default_factory=MqttSinkConfig, description="Object events and camera state over MQTT."
    )


# -------------------------------------------------------------------------------------------- fleet
def _merge(base: Any, override: Any) -> Any:
    """``override`` wins; mappings merge key by key, at every depth."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merge(base[k], v) if k in base else v for k, v in override.items()}}
    return override


def _apply_defaults(data: dict[str, Any]) -> dict[str, Any]:
    defaults, cameras = data.get("defaults"), data.get("cameras")
    if not isinstance(defaults, dict) or not isinstance(cameras, list):
        return data
    return {**data, "cameras": [_merge(defaults, c) if isinstance(c, dict) else c for c in cameras]}


def _add_detector_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A detector named like a kind gets its default ``type`` (face: blazeface, person and
    objects: nanodet, with their classes);
    a kind used but not defined is added. Runs before validation: anything may be anywhere."""
    detectors, cameras = data.get("detectors"), data.get("cameras")
    detectors = {} if detectors is None else detectors
    if not isinstance(detectors, dict):
        return data
    typed = {name: _typed_detector(name, spec) for name, spec in detectors.items()}
    for camera in cameras if isinstance(cameras, list) else []:  # `cameras: 1` is refused later
        names = camera.get("detect", ["face"]) if isinstance(camera, dict) else []
        for name in names if isinstance(names, list) else []:
            if name in DETECTOR_KINDS and name not in typed:
                typed[name] = _typed_detector(name, None)
    return {**data, "detectors": typed}


def _typed_detector(name: Any, spec: Any) -> Any:
    kind = DEFAULT_DETECTOR_TYPES.get(name) if isinstance(name, str) else None
    if kind is None:
        return spec
    preset: dict[str, Any] = {"type": kind}
    if name in DEFAULT_DETECTOR_CLASSES:
        preset["classes"] = list(DEFAULT_DETECTOR_CLASSES[name])
    if spec is None:  # a bare `face:` means "face, with the defaults"
        return preset
    return {**preset, **spec} if isinstance(spec, dict) and "type" not in spec else spec


def _detectors_schema(schema: dict[str, Any]) -> None:
    """``anyOf``, not ``oneOf``: ``person: {actors: 2}`` fits several types until its name
    types it."""
    for member in schema.get("patternProperties", {}).values():
        member["anyOf"] = member.pop("oneOf", [])
        member.pop("discriminator", None)


class AutoscalingConfig(StrictModel):
    """Targets and bounds for the controller's scaling policy (see fleet/control/policy.py)."""

    enabled: bool = Field(
        default=True, description="Tune detector actors and camera buffers; false keeps them fixed."
    )
    target_hit_rate: float = Field(
        default=0.99, gt=0, le=1, description="Frames admitted / frames offered, per camera."
    )
    latency_slo_ms: float = Field(
        default=1000.0, gt=0, le=600_000, description="p95 end-to-end latency to stay under."
    )
    target_utilisation: float = Field(
        default=0.75, ge=0.1, le=1, description="Busy fraction each detector actor should run at."
    )
    min_buffers: int = Field(default=1, ge=1, le=64, description="Fewest buffers per camera.")
    max_buffers: int = Field(default=16, ge=1, le=64, description="Most buffers per camera.")
    upscale_delay_s: float = Field(
        default=3.0, ge=0, le=3600, description="A need to grow must hold this long before acting."
    )
    downscale_delay_s: float = Field(
        default=30.0, ge=0, le=3600, description="A need to shrink must hold this long."
    )
    look_back_s: float = Field(
        default=10.0, ge=1, le=600, description="Window for hit-rate, latency and service time."
    )

    @model_validator(mode="after")
    def _buffer_bounds(self) -> AutoscalingConfig:
        if self.min_buffers > self.max_buffers:
            raise ValueError(
                f"min_buffers ({self.min_buffers}) exceeds max_buffers ({self.max_buffers})"
            )
        return self


class MetricsConfig(StrictModel):
    """The controller's Prometheus endpoint."""

    enabled: bool = Field(default=True, description="Serve /metrics from the controller.")
    host: str = Field(
        default="127.0.0.1", min_length=1,
        description="Address to listen on; 0.0.0.0 to let a Prometheus on another host scrape.",
    )
    port: int = Field(default=9450, ge=0, le=65535, description="Port; 0 picks a free one.")


class FleetConfig(StrictModel):
    """A whole fleet file."""

    version: Literal[1] = Field(default=1, description="Fleet file format version.")
    name: str = Field(
        default="fleet", pattern=ID_PATTERN, description="Fleet name (controller actor name)."
    )
    output_dir: str = Field(
        default="runs", min_length=1, description="Runs are written below this folder."
    )
    stats_interval_s: float = Field(
        default=1.0, ge=0.1, le=60, description="How often stats are gathered."
    )
    stats_file_interval_s: float | None = Field(
        default=None, ge=0.1, le=3600,
        description="How often a line goes to stats.jsonl (none: stats_interval_s, and one "
        "more second for every 100 cameras beyond the first 100, so a big fleet's file grows "
        "about 30 KiB a second, not 300).",
    )
    drain_timeout_s: float = Field(
        default=10.0, ge=0, le=600, description="Wait for in-flight frames at stop."
    )
    orphan_timeout_s: float = Field(
        default=30.0, ge=5, le=3600,
        description="On a cluster the fleet's actors outlive a crashed controller (a restarted "
        "one adopts them) and the controller outlives its driver (a stopped job still drains). "
        "An actor nobody has called for this long stops itself.",
    )
    defaults: CameraSettings = Field(
        default_factory=CameraSettings, description="Merged into every camera before validation."
    )
    cameras: list[CameraConfig] = Field(min_length=1, description="The cameras.")
    detectors: dict[SafeId, DetectorConfig] = Field(
        default_factory=dict,
        description="Detector pools by name; face, person and objects exist by default.",
        json_schema_extra=_detectors_schema,
    )
    sinks: SinksConfig = Field(default_factory=SinksConfig, description="Where events go.")
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig, description="Detector actors and buffers, tuned."
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig, description="Prometheus endpoint of the controller."
    )

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Merge ``defaults:`` into each camera, then add the detectors the cameras imply."""
        if not isinstance(data, dict):
            return data
        return _add_detector_defaults(_apply_defaults(data))

    @field_validator("version", mode="before")
    @classmethod
    def _supported_version(cls, value: Any) -> Any:
        if value != 1 or isinstance(value, bool):
            raise ValueError(
                f"fleet file version {value!r} is not supported; this camfleet reads version 1: "
                "set version: 1, or run the camfleet release that wrote the file"
            )
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> FleetConfig:
        problems = self._duplicate_ids() + self._unknown_detectors()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _duplicate_ids(self) -> list[str]:
        first: dict[str, int] = {}
        problems = []
        for i, camera in enumerate(self.cameras):
            if camera.id in first:
                other = first[camera.id]
                problems.append(
                    f"cameras[{i}].id: duplicate camera id '{camera.id}' (cameras[{other}] has it "
                    "too); give every camera its own id"
                )
            first.setdefault(camera.id, i)
        return problems

    def _unknown_detectors(self) -> list[str]:
        known = ", ".join(sorted({*DETECTOR_KINDS, *self.detectors}))
        return [
            f"cameras[{i}].detect[{j}]: unknown detector '{name}'; define it under detectors: "
            f"or use one of {known}"
            for i, camera in enumerate(self.cameras)
            for j, name in enumerate(camera.detect)
            if name not in self.detectors
        ]

    @property
    def active_cameras(self) -> list[CameraConfig]:
        return [c for c in self.cameras if c.enabled]
