"""Pytest fixtures that start real camera servers on 127.0.0.1.

A test module opts in by importing them::

    from tests.servers.fixtures import mjpeg_server, rtsp_server  # noqa: F401

Both fixtures take options through indirect parametrisation::

    @pytest.mark.parametrize("mjpeg_server", [{"user": "admin", "password": "pw"}], indirect=True)
    @pytest.mark.parametrize("rtsp_server", [RtspServerOptions(codec="jpeg")], indirect=True)

``serving_mjpeg`` and ``serving_rtsp`` are the same as context managers, for a fixture of a test
module that picks the kind of server per parameter.

The RTSP server runs gst-rtsp-server under the system python3 in a subprocess; the fixture skips,
saying which packages to install, when that python cannot import it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers.mjpeg_server import MjpegServer, clip_jpegs

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
APT_PACKAGES = Path(__file__).resolve().parents[2] / "scripts" / "apt-packages.txt"


# ------------------------------------------------------------------------------------------ MJPEG
@contextlib.contextmanager
def serving_mjpeg(options: Mapping[str, Any] | None = None) -> Iterator[MjpegServer]:
    """An MJPEG server streaming vtest.avi at 10 fps for the block; options: MjpegServer keywords.

    Skips the test when the clip is missing.
    """
    try:
        jpegs = clip_jpegs()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    server = MjpegServer(jpegs, **{"fps": 10.0, **(options or {})}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mjpeg_server(request: pytest.FixtureRequest) -> Iterator[MjpegServer]:
    """A started MJPEG server streaming vtest.avi at 10 fps; params: MjpegServer keywords."""
    with serving_mjpeg(getattr(request, "param", None)) as server:
        yield server


# ------------------------------------------------------------------------------------------- RTSP
@dataclass(frozen=True)
class RtspServerOptions:
    """Command-line options of ``rtsp_server.py``; ``clip=False`` serves a live test pattern."""

    codec: str = "h264"
    clip: bool = True
    fps: int = 10
    keyframe_interval_s: float = 1.0
    path: str = "/cam"
    user: str | None = None
    password: str | None = None
    port: int = 0  # 0 picks a free one; a fixed port lets a test bring a killed server back


@dataclass
class RtspServer:
    """A running ``rtsp_server.py`` subprocess, controlled by its PID."""

    process: subprocess.Popen[str]
    url: str
    options: RtspServerOptions

    @property
    def pid(self) -> int:
        return self.process.pid

    def url_with(self, user: str, password: str) -> str:
        return self.url.replace("rtsp://", f"rtsp://{user}:{password}@", 1)

    def pause(self) -> None:
        """Stall like a hung camera: connections stay open, nothing is sent."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """Go away at once, as a camera that loses power does (the kernel closes its sockets)."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()


@functools.lru_cache(maxsize=1)
def rtsp_unavailable() -> str | None:
    """Why the RTSP server cannot run here, or None when it can."""
    probe = ("import gi; gi.require_version('Gst', '1.0');"
             " gi.require_version('GstRtspServer', '1.0');"
             " from gi.repository import Gst, GstRtspServer")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"no {SYSTEM_PYTHON} to run gst-rtsp-server with"
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True,
                                timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return f"{SYSTEM_PYTHON} took over 30 s to import GstRtspServer"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return (f"{SYSTEM_PYTHON} cannot import gi's GstRtspServer ({last}); install the apt "
                f"packages in {APT_PACKAGES.relative_to(APT_PACKAGES.parents[1])}")
    return None


def write_clip_frames(folder: Path) -> Path:
    """vtest.avi's first frames as 00000.jpg, 00001.jpg, ... for ``rtsp_server.py --frames-dir``."""
    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.glob("*.jpg")):
        for index, jpeg in enumerate(clip_jpegs()):
            (folder / f"{index:05d}.jpg").write_bytes(jpeg)
    return folder


def start_rtsp_server(options: RtspServerOptions, frames_dir: Path | None, log_path: Path,
                      ready_timeout_s: float = 20.0) -> RtspServer:
    """Start ``rtsp_server.py`` and wait for the URL it prints once it listens."""
    args = [SYSTEM_PYTHON, str(RTSP_SERVER_SCRIPT), "--port", str(options.port),
            "--path", options.path,
            "--codec", options.codec, "--fps", str(options.fps),
            "--keyframe-interval-s", str(options.keyframe_interval_s)]
    if options.clip and frames_dir is not None:
        args += ["--frames-dir", str(frames_dir)]
    if options.user is not None:
        args += ["--user", options.user, "--password", options.password or ""]
    with log_path.open("w") as log:  # a file, not a pipe: GStreamer warnings can never block it
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=0.1):
                line = process.stdout.readline().strip()
                if line.startswith("rtsp://"):
                    return RtspServer(process, line, options)
                break
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    raise RuntimeError(
        f"rtsp_server.py did not become ready within {ready_timeout_s:g} s "
        f"(exit code {process.returncode}): {log_path.read_text()[-2000:]}"
    )


@contextlib.contextmanager
def serving_rtsp(options: RtspServerOptions | Mapping[str, Any] | None,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspServer]:
    """An RTSP server (vtest.avi as H.264 by default) for the block; options: RtspServerOptions
    or its fields as a mapping.

    Skips the test when the system python3 cannot run gst-rtsp-server or the clip is missing.
    """
    reason = rtsp_unavailable()
    if reason:
        pytest.skip(reason)
    if not isinstance(options, RtspServerOptions):
        options = RtspServerOptions(**(options or {}))
    frames_dir = None
    if options.clip:
        try:
            frames_dir = write_clip_frames(tmp_path_factory.getbasetemp() / "vtest-jpegs")
        except FileNotFoundError as error:
            pytest.skip(str(error))
    log_path = tmp_path_factory.mktemp("rtsp-server") / "server.log"
    server = start_rtsp_server(options, frames_dir, log_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rtsp_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspServer]:
    """A started RTSP server (vtest.avi as H.264 by default); params: RtspServerOptions or dict."""
    with serving_rtsp(getattr(request, "param", None), tmp_path_factory) as server:
        yield server


__all__ = [
    "MjpegServer", "RtspServer", "RtspServerOptions", "mjpeg_server", "rtsp_server",
    "rtsp_unavailable", "serving_mjpeg", "serving_rtsp", "start_rtsp_server", "write_clip_frames",
]
