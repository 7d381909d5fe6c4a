"""Pydantic models of a fleet file. One model per concept; every field has a description and bounds.

The loader (``_loader.py``) merges ``defaults:`` into every camera and interpolates ``${VAR}``
before these models see the data, so the models validate the file as the cameras will run it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleet.redact import redact_url

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ID_RE = re.compile(ID_PATTERN)
DETECTOR_KINDS = ("face", "person")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------------------- sources
class FileSource(StrictModel):
    type: Literal["file"] = Field("file", description="A video file OpenCV can decode.")
    path: str = Field(min_length=1, description="Path of the video file.")
    loop: bool = Field(True, description="Start again from the first frame at the end.")
    realtime: bool = Field(
        True, description="Pace reading at the file's native fps; false reads as fast as possible."
    )


class _NetworkSource(StrictModel):
    url: str = Field(min_length=1, repr=False, description="Stream URL; put passwords in ${ENV}.")
    open_timeout_s: float = Field(5.0, gt=0, le=120, description="Give up opening after this.")
    read_timeout_s: float = Field(5.0, gt=0, le=120, description="Reconnect after no frame for this.")

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)


class RtspSource(_NetworkSource):
    type: Literal["rtsp"] = Field("rtsp", description="An RTSP camera or server (rtsp://, rtsps://).")
    transport: Literal["tcp", "udp"] = Field("tcp", description="RTP transport; tcp survives NAT and loss.")


class HttpSource(_NetworkSource):
    type: Literal["http"] = Field("http", description="HTTP(S) MJPEG or HLS stream.")


class DeviceSource(StrictModel):
    type: Literal["device"] = Field("device", description="A local capture device (/dev/videoN).")
    index: int = Field(0, ge=0, le=63, description="Device index N of /dev/videoN.")


class ImagesSource(StrictModel):
    type: Literal["images"] = Field("images", description="A folder or glob of still images.")
    path: str = Field(min_length=1, description="Folder (all .jpg/.jpeg/.png/.bmp) or glob pattern.")
    fps: float = Field(1.0, gt=0, le=240, description="Images delivered per second.")
    loop: bool = Field(True, description="Start again after the last image.")


class SyntheticSource(StrictModel):
    type: Literal["synthetic"] = Field("synthetic", description="In-process moving test scene.")
    width: int = Field(1280, ge=16, le=7680, description="Frame width in pixels.")
    height: int = Field(720, ge=16, le=4320, description="Frame height in pixels.")
    fps: float = Field(30.0, gt=0, le=240, description="Frames generated per second.")
    objects: int = Field(3, ge=0, le=64, description="Moving shapes in the scene.")
    frames: int | None = Field(None, ge=1, description="Stop after this many frames (none: endless).")


Source = Annotated[
    Union[FileSource, RtspSource, HttpSource, DeviceSource, ImagesSource, SyntheticSource],
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
            f"unknown scheme '{scheme}' in {redact_url(text)}; expected one of "
            f"{', '.join(sorted(_SCHEMES))}, device:N, synthetic or a file path"
        )
    kind = _SCHEMES[scheme]
    return {"type": "file", "path": urlsplit(text).path} if kind == "file" else {"type": kind, "url": text}


# ----------------------------------------------------------------------------------------- cameras
class MotionConfig(StrictModel):
    enabled: bool = Field(False, description="Analyse only frames with motion (others: no_motion).")
    threshold: float = Field(
        0.002, ge=0, le=1, description="Fraction of pixels that must change to count as motion."
    )
    width: int = Field(160, ge=32, le=1920, description="Width the motion model runs at.")


class ReconnectConfig(StrictModel):
    initial_backoff_s: float = Field(0.5, gt=0, le=60, description="First wait after a failure.")
    max_backoff_s: float = Field(30.0, gt=0, le=3600, description="Longest wait between tries.")
    jitter: float = Field(0.2, ge=0, le=1, description="Random +/- fraction added to each wait.")


class CameraSettings(StrictModel):
    """What every camera has; ``defaults:`` holds the same fields."""

    fps: float = Field(5.0, gt=0, le=240, description="Target analysed frames per second.")
    detect: list[str] = Field(
        default_factory=lambda: ["face"], min_length=1, description="Detector names to run."
    )
    detect_width: int | None = Field(
        640, ge=32, le=7680, description="Detectors see frames downscaled to this width (none: native)."
    )
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion gate.")
    buffers: int = Field(4, ge=1, le=64, description="Frames in flight at most (initial slots).")
    drop_policy: Literal["drop_newest", "drop_oldest"] = Field(
        "drop_oldest",
        description="No free slot: drop_newest discards the new frame; drop_oldest keeps the newest "
        "waiting frame and discards the one it replaces.",
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig, description="Backoff.")
    num_cpus: float = Field(0.25, ge=0, le=16, description="Ray CPUs reserved for the camera actor.")


class CameraConfig(CameraSettings):
    id: str = Field(pattern=ID_PATTERN, description="Camera id: metric label and file name.")
    source: Source = Field(description="Where frames come from (a URL, path, or a typed mapping).")
    enabled: bool = Field(True, description="Set false to keep a camera in the file but not run it.")

    @field_validator("source", mode="before")
    @classmethod
    def _normalise_source(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _source_from_string(value)
        if isinstance(value, dict) and "type" not in value:
            if "url" in value and isinstance(value["url"], str):
                kind = _source_from_string(value["url"])["type"]
                return {**value, "type": kind}
            if "path" in value:
                return {**value, "type": "file"}
        return value


# --------------------------------------------------------------------------------------- detectors
class DetectorBase(StrictModel):
    actors: int = Field(1, ge=0, le=1024, description="Actors started with the fleet.")
    min_actors: int = Field(1, ge=0, le=1024, description="Fewest actors the autoscaler keeps.")
    max_actors: int = Field(4, ge=1, le=1024, description="Most actors the autoscaler starts.")
    num_cpus: float = Field(1.0, gt=0, le=64, description="Ray CPUs per detector actor.")

    @model_validator(mode="after")
    def _bounds(self) -> DetectorBase:
        if self.min_actors > self.max_actors:
            raise ValueError(f"min_actors ({self.min_actors}) exceeds max_actors ({self.max_actors})")
        if not self.min_actors <= self.actors <= self.max_actors:
            raise ValueError(
                f"actors ({self.actors}) must lie within min_actors..max_actors "
                f"({self.min_actors}..{self.max_actors})"
            )
        return self


class FaceDetectorConfig(DetectorBase):
    type: Literal["face"] = Field("face", description="OpenCV Haar cascade face detector.")
    cascade: str = Field(
        "haarcascade_frontalface_default.xml",
        description="Cascade file name in OpenCV's data folder, or a path.",
    )
    scale_factor: float = Field(1.1, gt=1, le=2, description="Image pyramid step.")
    min_neighbors: int = Field(5, ge=0, le=50, description="Overlapping hits needed for a face.")
    min_size_px: int = Field(24, ge=8, le=1024, description="Smallest face, in detection pixels.")


class PersonDetectorConfig(DetectorBase):
    type: Literal["person"] = Field("person", description="OpenCV HOG + linear SVM people detector.")
    win_stride_px: int = Field(8, ge=4, le=64, description="Sliding-window step.")
    scale: float = Field(1.05, gt=1, le=2, description="Image pyramid step.")
    min_score: float = Field(0.3, ge=-10, le=10, description="Lowest SVM score kept.")
    nms_iou: float = Field(0.5, ge=0, le=1, description="Overlap above which boxes are merged.")


DetectorConfig = Annotated[
    Union[FaceDetectorConfig, PersonDetectorConfig], Field(discriminator="type")
]


# -------------------------------------------------------------------------------------------- sinks
class JsonlSinkConfig(StrictModel):
    enabled: bool = Field(True, description="Write one JSON line per analysed frame with detections.")
    path: str = Field("events.jsonl", min_length=1, description="File, relative to the run folder.")
    flush_interval_s: float = Field(1.0, gt=0, le=60, description="Longest a line waits in memory.")


class SnapshotSinkConfig(StrictModel):
    enabled: bool = Field(False, description="Save JPEG snapshots of frames with detections.")
    dir: str = Field("snapshots", min_length=1, description="Folder, relative to the run folder.")
    max_per_camera: int = Field(50, ge=1, le=100_000, description="Snapshots kept per camera.")
    min_interval_s: float = Field(5.0, ge=0, le=86400, description="Least time between snapshots.")
    width: int = Field(640, ge=32, le=7680, description="Snapshot width (downscaled).")
    jpeg_quality: int = Field(85, ge=10, le=100, description="JPEG quality.")


class SinksConfig(StrictModel):
    jsonl: JsonlSinkConfig = Field(default_factory=JsonlSinkConfig, description="JSONL events.")
    snapshots: SnapshotSinkConfig = Field(default_factory=SnapshotSinkConfig, description="JPEGs.")


# -------------------------------------------------------------------------------------------- fleet
class FleetConfig(StrictModel):
    """A whole fleet file."""

    version: Literal[1] = Field(1, description="Fleet file format version.")
    name: str = Field("fleet", pattern=ID_PATTERN, description="Fleet name (controller actor name).")
    output_dir: str = Field("runs", min_length=1, description="Runs are written below this folder.")
    stats_interval_s: float = Field(1.0, ge=0.1, le=60, description="How often stats are gathered.")
    drain_timeout_s: float = Field(10.0, ge=0, le=600, description="Wait for in-flight frames at stop.")
    defaults: CameraSettings = Field(
        default_factory=CameraSettings, description="Merged into every camera before validation."
    )
    cameras: list[CameraConfig] = Field(min_length=1, description="The cameras.")
    detectors: dict[str, DetectorConfig] = Field(
        default_factory=dict, description="Detector pools by name; face and person exist by default."
    )
    sinks: SinksConfig = Field(default_factory=SinksConfig, description="Where events go.")

    @model_validator(mode="before")
    @classmethod
    def _detector_defaults(cls, data: Any) -> Any:
        """A detector named like a kind gets that ``type``; a kind used but not defined is added."""
        if not isinstance(data, dict):
            return data
        detectors = data.get("detectors") or {}
        if not isinstance(detectors, dict):
            return data
        detectors = {
            name: ({"type": name, **spec} if isinstance(spec, dict) and "type" not in spec
                   and name in DETECTOR_KINDS else spec)
            for name, spec in detectors.items()
        }
        for camera in data.get("cameras") or []:
            names = camera.get("detect", ["face"]) if isinstance(camera, dict) else []
            for name in names if isinstance(names, list) else []:
                if name in DETECTOR_KINDS and name not in detectors:
                    detectors[name] = {"type": name}
        return {**data, "detectors": detectors}

    @model_validator(mode="after")
    def _cross_checks(self) -> FleetConfig:
        seen: set[str] = set()
        for i, camera in enumerate(self.cameras):
            if camera.id in seen:
                raise ValueError(f"cameras[{i}].id: duplicate camera id '{camera.id}'")
            seen.add(camera.id)
            for name in camera.detect:
                if name not in self.detectors:
                    raise ValueError(
                        f"cameras[{i}].detect: unknown detector '{name}'; define it under "
                        f"detectors: or use one of {', '.join(DETECTOR_KINDS)}"
                    )
        for name in self.detectors:
            if not _ID_RE.match(name):
                raise ValueError(f"detectors.{name}: detector names must match {ID_PATTERN}")
        return self

    @property
    def active_cameras(self) -> list[CameraConfig]:
        return [c for c in self.cameras if c.enabled]
