"""Frame sources: video files, RTSP/HTTP streams, devices, image folders and a synthetic scene.

A source hands out frames in two steps, so that frames the fps limit skips cost no colour
conversion or copy: ``grab()`` advances one frame, ``retrieve(into)`` decodes it into ``into``
(the camera's reused buffer) and returns the array that holds it, which is ``into`` whenever the
shape matches. Pacing (a file at its native fps) is the caller's job: see ``pace_fps``.

A frame that cannot be used is not a lost connection: ``grab`` or ``retrieve`` raise
:class:`FrameError` for it, the camera drops it (``corrupt``) and the next ``grab`` goes on from
the frame after it. Only a source that is gone raises :class:`SourceConnectionError`, and only
then is it closed and opened again. A source that can tell a grabbed frame's size without
decoding it has ``frame_size()``, so that the camera drops a frame larger than
``max_frame_pixels`` before it costs a decode.
"""

from __future__ import annotations

import bisect
import glob
import math
import os
import time
from pathlib import Path
from typing import BinaryIO, Protocol

import cv2
import numpy as np

from fleet.config import (
    DeviceSource,
    FileSource,
    HttpSource,
    ImagesSource,
    RtspSource,
    ScenePath,
    SyntheticSource,
)
from fleet.errors import EndOfStreamError, FrameError, SourceConnectionError

# FFmpeg and OpenCV print the URLs they fail on, credentials included: keep them quiet and let
# camfleet report failures with redacted URLs. Set before the first capture opens.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

SourceConfig = FileSource | RtspSource | HttpSource | DeviceSource | ImagesSource | SyntheticSource
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# FFmpeg's grab() fails at once on a part it cannot decode and reads the next frame on the next
# call; this many failures in a row, each quick, and the connection is taken for lost.
MAX_BAD_FRAMES_IN_A_ROW = 4


class FrameSource(Protocol):
    """What the camera reads. Optional: ``frame_size() -> (height, width) | None``, the grabbed
    frame's size when it is known before decoding."""

    description: str  # safe to log: no credentials
    native_fps: float

    @property
    def pace_fps(self) -> float:
        """The caller paces reads at this rate; 0 means the source paces itself."""

    def open(self) -> None: ...

    def grab(self) -> None: ...

    def retrieve(self, into: np.ndarray | None) -> np.ndarray: ...

    def close(self) -> None: ...


def _into(frame: np.ndarray, into: np.ndarray | None) -> np.ndarray:
    if into is not None and into.shape == frame.shape and into.dtype == frame.dtype:
        np.copyto(into, frame)
        return into
    return frame


class CaptureSource:
    """Anything OpenCV's VideoCapture opens: files, rtsp://, http(s)://, devices."""

    def __init__(self, camera: str, config: FileSource | RtspSource | HttpSource | DeviceSource):
        self.camera = camera
        self.config = config
        self.cap: cv2.VideoCapture | None = None
        self.grabbed = False  # a frame came since the source was opened
        self.pending = False  # the next frame was grabbed already, after a bad one
        self.native_fps = 0.0
        if isinstance(config, FileSource):
            self.description = f"file {config.path}"
        elif isinstance(config, DeviceSource):
            self.description = f"device {config.index}"
        else:
            self.description = config.safe_url
        self.pace_fps = 0.0

    def open(self) -> None:
        config = self.config
        if isinstance(config, FileSource):
            if not Path(config.path).is_file():
                raise SourceConnectionError(
                    f"camera '{self.camera}': no video file at {config.path}; check the path"
                )
            cap = cv2.VideoCapture(config.path)
        elif isinstance(config, DeviceSource):
            cap = cv2.VideoCapture(config.index)
        else:
            cap = self._open_stream(config)
        if not cap.isOpened():
            cap.release()
            raise SourceConnectionError(self._open_failure())
        self.cap, self.grabbed, self.pending = cap, False, False
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.native_fps = fps if 0 < fps < 1000 and math.isfinite(fps) else 0.0
        if isinstance(config, FileSource) and config.realtime:
            self.pace_fps = self.native_fps or 25.0

    def _open_stream(self, config: RtspSource | HttpSource) -> cv2.VideoCapture:
        # FFmpeg reads these options at open time; each camera actor is its own process.
        # Probing ends at whichever limit comes first: 64 KB (one JPEG, or a fraction of a
        # second of a camera's H.264) or 0.5 s of stream. analyzeduration 0 would mean FFmpeg's
        # default of 5 s. No fflags=nobuffer: it discards the probed packets, key frame
        # included, so the first frame would wait for the next key frame (seconds on many
        # cameras, beyond read_timeout_s on some).
        options = ["analyzeduration;500000", "probesize;65536"]
        if isinstance(config, RtspSource):
            options.insert(0, f"rtsp_transport;{config.transport}")
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "|".join(options)
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(config.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(config.read_timeout_s * 1000),
        ]
        return cv2.VideoCapture(config.url, cv2.CAP_FFMPEG, params)

    def _open_failure(self) -> str:
        config = self.config
        if isinstance(config, FileSource):
            return (f"camera '{self.camera}': OpenCV cannot decode {config.path}; "
                    "is it a video file?")
        if isinstance(config, DeviceSource):
            return f"camera '{self.camera}': cannot open /dev/video{config.index}; is it connected?"
        return (
            f"camera '{self.camera}': could not open {config.safe_url} "
            f"(timeout {config.open_timeout_s:g} s); check the URL, the network and credentials"
        )

    def grab(self) -> None:
        if self.cap is None:
            raise SourceConnectionError(f"camera '{self.camera}': source is not open")
        if self.pending:  # grabbed after the bad frame reported last time
            self.pending = False
            return
        started = time.monotonic()
        if self.cap.grab():
            self._check_stall(time.monotonic() - started)
            return
        if isinstance(self.config, FileSource):
            if self.config.loop and self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0) and self.cap.grab():
                return
            raise EndOfStreamError(f"camera '{self.camera}': end of {self.config.path}")
        self._bad_or_lost(time.monotonic() - started)

    def _bad_or_lost(self, elapsed_s: float) -> None:
        """A stream's grab() failed: an undecodable frame (FFmpeg fails at once, and the next
        grab succeeds) or a lost connection (end of file, a read timeout, nothing after it).
        Raises FrameError for the first, with the next frame grabbed; else
        SourceConnectionError."""
        config = self.config
        if isinstance(config, (RtspSource, HttpSource)) and elapsed_s < config.read_timeout_s:
            assert self.cap is not None
            deadline = time.monotonic() + config.read_timeout_s
            for bad in range(1, MAX_BAD_FRAMES_IN_A_ROW + 1):
                if time.monotonic() >= deadline:
                    break
                if self.cap.grab():
                    self.pending = True
                    raise FrameError(
                        f"camera '{self.camera}': {self.description} sent {bad} frame(s) that "
                        "could not be decoded; skipped them, the stream goes on", count=bad)
        raise SourceConnectionError(
            f"camera '{self.camera}': {self.description} stopped delivering frames")

    def _check_stall(self, elapsed_s: float) -> None:
        """A stream that needed a whole read timeout for a frame has stalled.

        After a read timeout FFmpeg flushes the H.264 decoder, which hands back frames it still
        held: grab() then succeeds with old frames, each after another full timeout. Treat the
        first such grab as the stall it is. The first frame after opening may take longer (a
        camera joined between key frames), so it is not checked.
        """
        config = self.config
        first, self.grabbed = not self.grabbed, True
        if not isinstance(config, (RtspSource, HttpSource)) or first:
            return
        if elapsed_s >= config.read_timeout_s:
            raise SourceConnectionError(
                f"camera '{self.camera}': {self.description} stalled: no frame for "
                f"{elapsed_s:.1f} s (read timeout {config.read_timeout_s:g} s)"
            )

    def frame_size(self) -> tuple[int, int] | None:
        """(height, width) of what ``retrieve`` will return: FFmpeg scales every frame of a
        stream to the size it opened with."""
        if self.cap is None:
            return None
        w, h = self.cap.get(cv2.CAP_PROP_FRAME_WIDTH), self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        return (int(h), int(w)) if w > 0 and h > 0 else None

    def retrieve(self, into: np.ndarray | None) -> np.ndarray:
        assert self.cap is not None
        ok, frame = self.cap.retrieve(into) if into is not None else self.cap.retrieve()
        if not ok or frame is None:
            raise FrameError(
                f"camera '{self.camera}': could not decode a frame from {self.description}; "
                "skipped it")
        return frame

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class ImageFolderSource:
    """Still images from a folder or glob, in name order, at ``fps``."""

    def __init__(self, camera: str, config: ImagesSource):
        self.camera = camera
        self.config = config
        self.description = f"images {config.path}"
        self.pace_fps = config.fps
        self.native_fps = config.fps
        self.files: list[str] = []
        self.position = -1
        self.last_name = ""  # the image grabbed last: a reopened folder goes on after it

    def open(self) -> None:
        path = self.config.path
        if os.path.isdir(path):
            names = [str(p) for p in sorted(Path(path).iterdir())
                     if p.suffix.lower() in _IMAGE_SUFFIXES]
        else:
            names = sorted(glob.glob(path))
        if not names:
            raise SourceConnectionError(
                f"camera '{self.camera}': no images at {path}; expected a folder of "
                f"{'/'.join(_IMAGE_SUFFIXES)} files or a glob pattern"
            )
        # never replay: opened again (after a failure), the folder goes on after the last image
        self.files, self.position = names, bisect.bisect_right(names, self.last_name) - 1

    def grab(self) -> None:
        self.position += 1
        if self.position >= len(self.files):
            if not self.config.loop:
                raise EndOfStreamError(f"camera '{self.camera}': last image of {self.config.path}")
            self.position = 0
        self.last_name = self.files[self.position]

    def frame_size(self) -> tuple[int, int] | None:
        """(height, width) from a JPEG's or PNG's header, without decoding; None otherwise."""
        return image_header_size(self.files[self.position])

    def retrieve(self, into: np.ndarray | None) -> np.ndarray:
        name = self.files[self.position]
        frame = cv2.imread(name, cv2.IMREAD_COLOR)
        if frame is None:
            raise FrameError(f"camera '{self.camera}': cannot decode image {name}; skipped it, "
                             "the folder goes on with the next")
        return _into(frame, into)

    def close(self) -> None:
        self.files = []


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers: baseline, progressive, lossless, arithmetic (not DHT C4, JPG C8,
# DAC CC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_header_size(path: str) -> tuple[int, int] | None:
    """(height, width) of a JPEG or PNG file read from its header (a few hundred bytes, or the
    segments before the frame header of a JPEG), or None when the file is neither or its header
    is damaged (decoding it will say)."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
            if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
                return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
            if head[:2] != b"\xff\xd8":
                return None
            f.seek(2)
            return _jpeg_sof_size(f)
    except OSError:
        return None


def _jpeg_sof_size(f: BinaryIO) -> tuple[int, int] | None:
    """Walk a JPEG's marker segments, from after SOI, to its start-of-frame header."""
    while True:
        byte = f.read(1)
        if byte != b"\xff":
            return None  # not at a marker: a damaged file
        while byte == b"\xff":  # a marker may be preceded by fill bytes
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker == 0xD9 or marker == 0xDA:  # end of image, start of scan: no frame header
            return None
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            continue
        length = f.read(2)
        if len(length) < 2:
            return None
        if marker in _JPEG_SOF:
            header = f.read(5)  # precision, height, width
            if len(header) < 5:
                return None
            return int.from_bytes(header[1:3], "big"), int.from_bytes(header[3:5], "big")
        f.seek(int.from_bytes(length, "big") - 2, os.SEEK_CUR)


def path_box(path: ScenePath, t: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Where a path's box is at ``t`` s on the scene's clock: (x0, y0, x1, y1) in pixels,
    inclusive. The ground truth the tracking tests compare with."""
    f = (t - path.start_s) / (path.end_s - path.start_s)
    cx = (path.start[0] + f * (path.end[0] - path.start[0])) * width
    cy = (path.start[1] + f * (path.end[1] - path.start[1])) * height
    bw, bh = path.size[0] * width, path.size[1] * height
    x0, y0 = max(0, round(cx - bw / 2)), max(0, round(cy - bh / 2))
    x1, y1 = min(width - 1, round(cx + bw / 2)), min(height - 1, round(cy + bh / 2))
    return x0, y0, x1, y1


class SyntheticScene:
    """A moving test scene drawn in place into the reused buffer: no allocation per frame."""

    def __init__(self, camera: str, config: SyntheticSource):
        self.camera = camera
        self.config = config
        self.description = f"synthetic {config.width}x{config.height}@{config.fps:g}"
        self.native_fps = config.fps
        self.index = -1
        self.background: np.ndarray | None = None
        self.started = time.monotonic()

    @property
    def pace_fps(self) -> float:
        return self.config.fps_at(time.monotonic() - self.started)

    def open(self) -> None:
        w, h = self.config.width, self.config.height
        if self.config.background:
            image = cv2.imread(self.config.background, cv2.IMREAD_COLOR)
            if image is None:
                raise SourceConnectionError(
                    f"camera '{self.camera}': cannot read background image {self.config.background}"
                )
            self.background = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        else:
            ramp_x = np.linspace(40, 200, w, dtype=np.float32)[None, :]
            ramp_y = np.linspace(0, 60, h, dtype=np.float32)[:, None]
            gray = (ramp_x + ramp_y).astype(np.uint8)
            self.background = np.dstack([gray, np.flipud(gray), np.full_like(gray, 90)])
        self.index = -1
        self.started = time.monotonic()

    def grab(self) -> None:
        self.index += 1
        if self.config.frames is not None and self.index >= self.config.frames:
            raise EndOfStreamError(f"camera '{self.camera}': synthetic scene ended")

    def retrieve(self, into: np.ndarray | None) -> np.ndarray:
        assert self.background is not None
        frame = into if into is not None and into.shape == self.background.shape else np.empty_like(
            self.background
        )
        np.copyto(frame, self.background)
        w, h, t = self.config.width, self.config.height, self.index / self.native_fps
        radius = max(4, min(w, h) // 12)
        for k in range(self.config.objects):
            cx = int((0.5 + 0.4 * math.sin(t * (0.7 + 0.3 * k) + k)) * w)
            cy = int((0.5 + 0.4 * math.cos(t * (0.5 + 0.2 * k) + 2 * k)) * h)
            colour = (255 - 60 * k % 255, 80 + 50 * k % 175, 40 * k % 255)
            cv2.circle(frame, (cx, cy), radius, colour, -1)
        for path in self.config.paths:
            if path.start_s <= t < path.end_s:
                x0, y0, x1, y1 = path_box(path, t, w, h)
                cv2.rectangle(frame, (x0, y0), (x1, y1), path.colour, -1)
        scale = max(0.5, h / 720)
        cv2.putText(frame, f"{self.camera} #{self.index}", (10, int(30 * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(2 * scale)))
        return frame

    def close(self) -> None:
        self.background = None


def open_source(camera: str, config: SourceConfig) -> FrameSource:
    """Build the source for a camera's config (not yet opened)."""
    if isinstance(config, SyntheticSource):
        return SyntheticScene(camera, config)
    if isinstance(config, ImagesSource):
        return ImageFolderSource(camera, config)
    return CaptureSource(camera, config)
