"""A real HTTP MJPEG server for tests: ``multipart/x-mixed-replace`` JPEG frames of a real clip.

It is what cheap IP cameras serve at ``/video`` or ``/mjpg/video.mjpg``. It listens on 127.0.0.1
on a port the OS chooses, runs in a daemon thread of the test process, paces frames at ``fps``
and can require HTTP Basic auth. Tests can make it stall (``pause``) or go away (``stop``), or
serve parts no decoder can read among the good ones (``corrupt_jpeg``), as a camera with a
failing encoder or a flaky link does.

>>> server = MjpegServer(clip_jpegs(frames=5), fps=10).start()
>>> server.url.startswith("http://127.0.0.1:")
True
>>> server.stop()
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import io
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from tests.conftest import VTEST

BOUNDARY = "camfleetframe"


@functools.lru_cache(maxsize=4)
def clip_jpegs(path: str = str(VTEST), frames: int = 50, quality: int = 80) -> tuple[bytes, ...]:
    """The first ``frames`` frames of a clip, JPEG-encoded once per process."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no clip at {path}; install Debian's opencv-doc for vtest.avi")
    cap = cv2.VideoCapture(path)
    encoded: list[bytes] = []
    try:
        while len(encoded) < frames:
            ok, frame = cap.read()
            if not ok:
                break
            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                encoded.append(jpeg.tobytes())
    finally:
        cap.release()
    if not encoded:
        raise ValueError(f"OpenCV decoded no frames from {path}")
    return tuple(encoded)


def corrupt_jpeg(size: int = 4000, seed: int = 0) -> bytes:
    """A part that claims to be a JPEG (starts with the SOI marker) but is random bytes: FFmpeg
    fails on it, and the stream goes on with the next part."""
    return b"\xff\xd8" + random.Random(seed).randbytes(size)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path.split("?", 1)[0] != owner.path:
            self.send_error(404, f"the stream is at {owner.path}")
            return
        if not owner.authorized(self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="camfleet-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            owner.stream_to(self.wfile)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean; requests carry credentials anyway


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: MjpegServer


class MjpegServer:
    """Serves ``jpegs`` in a loop at ``fps`` on ``http://127.0.0.1:PORT{path}``."""

    def __init__(self, jpegs: tuple[bytes, ...], fps: float = 10.0, *, path: str = "/video",
                 user: str | None = None, password: str | None = None):
        if not jpegs:
            raise ValueError("MjpegServer needs at least one JPEG frame")
        self.jpegs, self.fps, self.path = jpegs, fps, path
        self.user, self.password = user, password
        self.frames_sent = 0
        self._stopped = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------------------- lifecycle
    def start(self) -> MjpegServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mjpeg-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go away: stop listening and close every open stream (clients see end of file)."""
        self._stopped.set()
        self._running.set()  # wake paused streams so they notice the stop
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def pause(self) -> None:
        """Stall: keep connections open but send nothing, like a hung camera."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    # ------------------------------------------------------------------------------------ urls
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def url_with(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}{self.path}"

    # ----------------------------------------------------------------------------- per request
    def authorized(self, header: str | None) -> bool:
        if self.user is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.user}:{self.password or ''}".encode()
        return hmac.compare_digest(given, expected)

    def stream_to(self, out: io.BufferedIOBase) -> None:
        """Write frames paced at ``fps`` until the server stops or the client leaves."""
        period = 1.0 / self.fps
        deadline = time.monotonic()
        index = 0
        while not self._stopped.is_set():
            if not self._running.is_set():
                self._running.wait(0.1)
                deadline = time.monotonic()
                continue
            jpeg = self.jpegs[index % len(self.jpegs)]
            part = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n").encode()
            out.write(part + jpeg + b"\r\n")
            out.flush()
            self.frames_sent += 1
            index += 1
            deadline += period
            self._stopped.wait(max(0.0, deadline - time.monotonic()))
