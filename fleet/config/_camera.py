"""A camera: what every camera has (``defaults:`` holds the same), and a camera of the fleet.

The fleet merges ``defaults:`` into every camera before validation (``_defaults.py``), so these
models check each camera as it will run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fleet.config._base import ID_PATTERN, StrictModel
from fleet.config._objects import ObjectSettings
from fleet.config._sources import Source, normalise_source, source_schema


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
        default=0.2, ge=0, le=1,
        description="Each wait is drawn from [w * (1 - jitter), w]: cameras that lost one "
        "server together do not all retry at once.",
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
        json_schema_extra=source_schema,
    )
    enabled: bool = Field(
        default=True, description="Set false to keep a camera in the file but not run it."
    )

    @model_validator(mode="after")
    def _default_drop_policy(self) -> CameraConfig:
        """An archive (a file read as fast as it goes, an image folder) loses nothing: it waits
        for a buffer. A live source cannot wait (the camera would not stop sending), so it
        drops, and says why. Each source model says which it is (``_sources.py``)."""
        if self.put_width and self.detect_width and self.put_width < self.detect_width:
            raise ValueError(f"put_width: {self.put_width} is below detect_width "
                             f"({self.detect_width}): detectors would see less than they ask "
                             "for; raise put_width or lower detect_width")
        if self.drop_policy == "wait" and self.source.live:
            raise ValueError("drop_policy: a live source cannot wait for buffers (frames would "
                             "pile up in the stream); use drop_oldest or drop_newest")
        if self.drop_policy is None:
            default = "wait" if self.source.archive else "drop_oldest"
            object.__setattr__(self, "drop_policy", default)
        return self

    @field_validator("source", mode="before")
    @classmethod
    def _normalise_source(cls, value: Any) -> Any:
        """A string, or a mapping with ``url:`` or ``path:`` but no ``type:``: a typed source."""
        return normalise_source(value)
