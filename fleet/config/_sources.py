"""Where a camera's frames come from: one model per kind of source, and the ``Source`` union.

Adding a source touches only this file in ``fleet/config``: its model (with ``live``), the union,
and, if it has a URL scheme or a shorthand, ``_SCHEMES`` / ``source_from_string``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator

from fleet.config._base import StrictModel
from fleet.config._scene import ScenePath
from fleet.redact import redact_url


class SourceSettings(StrictModel):
    """What the camera needs to know of any source besides its fields."""

    # Declared by each source model: a network or device stream keeps sending whether or not it
    # is read, so a camera cannot hold it back (no drop_policy: wait); a file, a folder or a
    # scene waits for its reader.
    live: ClassVar[bool]

    @property
    def archive(self) -> bool:
        """Read at the reader's pace, losing nothing while the camera waits for a buffer: the
        camera's drop_policy is then wait by default (else drop_oldest)."""
        return False


class FileSource(SourceSettings):
    live: ClassVar[bool] = False
    type: Literal["file"] = Field(default="file", description="A video file OpenCV can decode.")
    path: str = Field(min_length=1, description="Path of the video file.")
    loop: bool = Field(default=True, description="Start again from the first frame at the end.")
    realtime: bool = Field(
        default=True,
        description="Pace reading at the file's native fps; false reads as fast as possible.",
    )

    @property
    def archive(self) -> bool:
        return not self.realtime


class _NetworkSource(SourceSettings):
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
    live: ClassVar[bool] = True
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
    live: ClassVar[bool] = True
    type: Literal["http"] = Field(default="http", description="HTTP(S) MJPEG or HLS stream.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return _check_scheme(url, ("http", "https"))


class DeviceSource(SourceSettings):
    live: ClassVar[bool] = True
    type: Literal["device"] = Field(
        default="device", description="A local capture device (/dev/videoN)."
    )
    index: int = Field(default=0, ge=0, le=63, description="Device index N of /dev/videoN.")


class ImagesSource(SourceSettings):
    live: ClassVar[bool] = False
    type: Literal["images"] = Field(
        default="images", description="A folder or glob of still images."
    )
    path: str = Field(
        min_length=1, description="Folder (all .jpg/.jpeg/.png/.bmp) or glob pattern."
    )
    fps: float = Field(default=1.0, gt=0, le=240, description="Images delivered per second.")
    loop: bool = Field(default=True, description="Start again after the last image.")

    @property
    def archive(self) -> bool:
        return True


class SyntheticSource(SourceSettings):
    live: ClassVar[bool] = False
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


def normalise_source(value: Any) -> Any:
    """A string, or a mapping with ``url:`` or ``path:`` but no ``type:``: a typed source."""
    if isinstance(value, str):
        return source_from_string(value)
    if isinstance(value, dict) and "type" not in value:
        if isinstance(value.get("url"), str):
            rest = {k: v for k, v in value.items() if k != "url"}
            return {**rest, **source_from_string(value["url"])}
        if "path" in value:
            return {**value, "type": "file"}
    return value


def source_from_string(text: str) -> dict[str, Any]:
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


def source_schema(schema: dict[str, Any]) -> None:
    """In the JSON schema, a source may also be the string shorthand, or a mapping whose ``url:``
    or ``path:`` implies its ``type:`` (what ``normalise_source`` accepts)."""
    members = schema.pop("oneOf", [])
    schema.pop("discriminator", None)
    shorthand = {
        "type": "string",
        "description": "rtsp(s)://..., http(s)://..., file:///path, a file path, device:N, "
        "or synthetic",
    }
    schema["anyOf"] = [shorthand, *members]
