"""Network sources against real servers on 127.0.0.1: HTTP MJPEG and RTSP (gst-rtsp-server).

No Ray: these drive ``fleet.sources`` directly, as a camera actor does. Timeouts are only
"does not hang" guards; the tests assert behaviour, never durations. What both kinds of camera
must do is one test parametrised over them (ids ``mjpeg`` and ``rtsp``); what only RTSP has
(codecs, a live source joined mid-GOP, key frames) has tests of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from fleet.config import HttpSource, RtspSource
from fleet.errors import FrameError, SourceConnectionError
from fleet.sources import FrameSource, open_source
from tests.helpers import free_port
from tests.servers import fixtures
from tests.servers.fixtures import RtspServer, RtspServerOptions, serving_mjpeg, serving_rtsp
from tests.servers.mjpeg_server import MjpegServer, clip_jpegs, corrupt_jpeg

# pytest finds fixtures by name in the module; bound, not imported, so that parameters of the
# same name are not flagged as redefinitions.
rtsp_server = fixtures.rtsp_server

pytestmark = pytest.mark.timeout(60)

CAMERA = "gate"
VTEST_SHAPE = (576, 768, 3)
USER, PASSWORD = "admin", "hunter2-s3cret"
WITH_AUTH = {"user": USER, "password": PASSWORD}

Server = MjpegServer | RtspServer


@dataclass(frozen=True)
class Kind:
    """A kind of network camera and what differs between the kinds."""

    name: str  # the pytest id
    scheme: str
    config_type: type[HttpSource] | type[RtspSource]
    serve: Callable[[Any, pytest.TempPathFactory], contextlib.AbstractContextManager[Server]]
    go_away: Callable[[Any], None]  # stop at once: clients see their connection end
    stream_fps: float | None  # the frame rate the stream announces; MJPEG over HTTP has none


MJPEG = Kind("mjpeg", "http", HttpSource, lambda options, _: serving_mjpeg(options),
             MjpegServer.stop, stream_fps=None)
RTSP = Kind("rtsp", "rtsp", RtspSource, serving_rtsp,
            RtspServer.kill,  # SIGKILL, as a camera that loses power: the kernel closes sockets
            stream_fps=10)
KINDS = [pytest.param(MJPEG, id=MJPEG.name), pytest.param(RTSP, id=RTSP.name)]


def both_kinds(options: Mapping[str, Any]) -> list[Any]:
    """Parameters of ``camera_server``: each kind of server, started with ``options``."""
    return [pytest.param((kind, options), id=kind.name) for kind in (MJPEG, RTSP)]


@dataclass
class CameraServer:
    """A running server of one kind."""

    kind: Kind
    server: Server

    def source(self, *, auth: tuple[str, str] | None = None, **options: Any) -> FrameSource:
        """A source of the kind's config type for this server's stream, not opened yet."""
        url = self.server.url if auth is None else self.server.url_with(*auth)
        return open_source(CAMERA, self.kind.config_type(url=url, **options))

    def go_away(self) -> None:
        self.kind.go_away(self.server)


@pytest.fixture
def camera_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraServer]:
    """The server a parameter ``(kind, options)`` names, started with those options."""
    kind, options = request.param
    with kind.serve(options, tmp_path_factory) as server:
        yield CameraServer(kind, server)


def read_frames(source: FrameSource, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Grab and retrieve ``count`` frames into one reused buffer; return (first copy, buffer)."""
    source.grab()
    buffer = source.retrieve(None)
    first = buffer.copy()
    for _ in range(count - 1):
        source.grab()
        frame = source.retrieve(buffer)
        assert frame is buffer, "the decoder must write into the camera's reused buffer"
    return first, buffer


def grab_until_error(source: FrameSource, max_grabs: int = 500) -> SourceConnectionError:
    """Frames already in socket buffers may still arrive; the error must come after them."""
    with pytest.raises(SourceConnectionError) as caught:
        for _ in range(max_grabs):
            source.grab()
    return caught.value


def assert_redacted(text: str) -> None:
    assert PASSWORD not in text
    assert "***" in text


# ---------------------------------------------------------------------------- MJPEG and RTSP alike
@pytest.mark.parametrize("camera_server", [
    pytest.param((MJPEG, {}), id="mjpeg"),
    pytest.param((RTSP, RtspServerOptions(codec="h264")), id="rtsp-h264"),
    pytest.param((RTSP, RtspServerOptions(codec="jpeg")), id="rtsp-jpeg"),
], indirect=True)
def test_frames_are_decoded_into_the_reused_buffer(camera_server: CameraServer) -> None:
    source = camera_server.source(open_timeout_s=5)
    source.open()
    try:
        first, last = read_frames(source, count=8)
    finally:
        source.close()
    assert first.shape == VTEST_SHAPE and first.dtype == np.uint8
    assert not np.array_equal(first, last), "the stream should move on through the clip"
    if camera_server.kind.stream_fps is not None:  # else OpenCV reports FFmpeg's default guess
        assert source.native_fps == pytest.approx(camera_server.kind.stream_fps)


@pytest.mark.parametrize("camera_server", both_kinds(WITH_AUTH), indirect=True)
def test_credentials_from_url_work_and_are_redacted(camera_server: CameraServer) -> None:
    source = camera_server.source(auth=(USER, PASSWORD))
    assert_redacted(source.description)
    source.open()
    try:
        first, _ = read_frames(source, count=3)
    finally:
        source.close()
    assert first.shape == VTEST_SHAPE


@pytest.mark.parametrize("camera_server", both_kinds(WITH_AUTH), indirect=True)
def test_wrong_password_fails_to_open_without_leaking_it(camera_server: CameraServer) -> None:
    wrong = PASSWORD[::-1]
    source = camera_server.source(auth=(USER, wrong), open_timeout_s=5)
    with pytest.raises(SourceConnectionError) as caught:
        source.open()
    assert wrong not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize("camera_server", both_kinds(WITH_AUTH), indirect=True)
def test_server_going_away_raises_connection_error(camera_server: CameraServer) -> None:
    source = camera_server.source(auth=(USER, PASSWORD), read_timeout_s=2)
    source.open()
    read_frames(source, count=2)
    camera_server.go_away()
    error = grab_until_error(source)
    source.close()
    assert_redacted(str(error))


@pytest.mark.parametrize("camera_server", both_kinds(WITH_AUTH), indirect=True)
def test_stalled_server_raises_after_the_read_timeout(camera_server: CameraServer) -> None:
    source = camera_server.source(auth=(USER, PASSWORD), read_timeout_s=2)
    source.open()
    read_frames(source, count=2)
    # a hung camera: the connection stays up, nothing more arrives (RTSP: the server is SIGSTOPped)
    camera_server.server.pause()
    try:
        error = grab_until_error(source)
    finally:
        camera_server.server.resume()
        source.close()
    assert_redacted(str(error))


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", KINDS)
def test_closed_port_fails_to_open_with_a_redacted_url(kind: Kind) -> None:
    url = f"{kind.scheme}://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/cam"
    source = open_source(CAMERA, kind.config_type(url=url, open_timeout_s=3))
    with pytest.raises(SourceConnectionError) as caught:
        source.open()
    message = str(caught.value)
    assert_redacted(message)
    assert f"{USER}:***@127.0.0.1" in message and CAMERA in message


# ------------------------------------------------------------------------------------ MJPEG only
def test_mjpeg_parts_that_cannot_be_decoded_are_bad_frames_not_a_lost_connection() -> None:
    good = clip_jpegs(frames=4)
    parts = (good[0], good[1], corrupt_jpeg(seed=1), good[2], corrupt_jpeg(seed=2),
             corrupt_jpeg(seed=3), good[3])
    server = MjpegServer(parts, fps=20).start()
    source = open_source(CAMERA, HttpSource(url=server.url, read_timeout_s=3))
    source.open()
    seen = []
    try:
        while len(seen) < 3 * len(parts):
            try:
                source.grab()
                seen.append("good" if source.retrieve(None).shape == VTEST_SHAPE else "?")
            except FrameError as bad:
                seen += ["bad"] * bad.count
    finally:
        source.close()
        server.stop()
    # the stream went on past each bad part, in step with what the server sent
    assert seen[:2 * len(parts)] == ["good", "good", "bad", "good", "bad", "bad", "good"] * 2


# ------------------------------------------------------------------------------------- RTSP only
@pytest.mark.parametrize("rtsp_server", [RtspServerOptions(clip=False)], indirect=True)
def test_rtsp_live_test_pattern_opens(rtsp_server: RtspServer) -> None:
    # A live source behaves like a camera: a new client joins mid-GOP, not on a key frame.
    source = open_source(CAMERA, RtspSource(url=rtsp_server.url, open_timeout_s=5,
                                            read_timeout_s=5))
    source.open()
    try:
        first, _ = read_frames(source, count=3)
    finally:
        source.close()
    assert first.shape == VTEST_SHAPE


@pytest.mark.parametrize("rtsp_server", [RtspServerOptions(keyframe_interval_s=5)], indirect=True)
def test_rtsp_key_frame_read_while_probing_is_not_thrown_away(rtsp_server: RtspServer) -> None:
    # The server starts each client on a key frame, and the next one is 5 s later, beyond the read
    # timeout: if opening discarded the packets it probed (fflags=nobuffer), the first grab would
    # wait for the next key frame and time out.
    source = open_source(CAMERA, RtspSource(url=rtsp_server.url, read_timeout_s=2))
    source.open()
    try:
        first, _ = read_frames(source, count=2)
    finally:
        source.close()
    assert first.shape == VTEST_SHAPE
