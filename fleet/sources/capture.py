"""Sources OpenCV's VideoCapture opens: video files, rtsp:// and http(s):// streams (through
FFmpeg, with open and read timeouts), and local devices. Imports no Ray.

A stream's grab() fails both on a frame FFmpeg cannot decode and on a lost connection; the
first is a :class:`FrameError` (the next grab goes on), the second a
:class:`SourceConnectionError` (the camera reopens).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import cv2
import numpy as np

from fleet.config import DeviceSource, FileSource, HttpSource, RtspSource
from fleet.errors import EndOfStreamError, FrameError, SourceConnectionError

# FFmpeg and OpenCV print the URLs they fail on, credentials included: keep them quiet and let
# camfleet report failures with redacted URLs. Set before the first capture opens (the registry
# imports this module, so importing fleet.sources does it).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

# FFmpeg's grab() fails at once on a part it cannot decode and reads the next frame on the next
# call; this many failures in a row, each quick, and the connection is taken for lost.
MAX_BAD_FRAMES_IN_A_ROW = 4


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
