"""Network sources against real servers on 127.0.0.1: HTTP MJPEG and RTSP (gst-rtsp-server).

No Ray: these drive ``fleet.sources`` directly, as a camera actor does. Timeouts are only
"does not hang" guards; the tests assert behaviour, never durations.
"""

from __future__ import annotations

import numpy as np
import pytest

from fleet.config import HttpSource, RtspSource
from fleet.errors import SourceConnectionError
from fleet.sources import FrameSource, open_source
from tests.servers import fixtures
from tests.servers.fixtures import RtspServer, RtspServerOptions
from tests.servers.mjpeg_server import MjpegServer, free_port

# pytest finds fixtures by name in the module; bound, not imported, so that parameters of the
# same name are not flagged as redefinitions.
mjpeg_server = fixtures.mjpeg_server
rtsp_server = fixtures.rtsp_server

pytestmark = pytest.mark.timeout(60)

VTEST_SHAPE = (576, 768, 3)
USER, PASSWORD = "admin", "hunter2-s3cret"
WITH_AUTH = {"user": USER, "password": PASSWORD}
RTSP_WITH_AUTH = RtspServerOptions(user=USER, password=PASSWORD)


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


# ------------------------------------------------------------------------------------ HTTP MJPEG
def test_mjpeg_frames_are_decoded_into_the_reused_buffer(mjpeg_server: MjpegServer) -> None:
    source = open_source("lobby", HttpSource(url=mjpeg_server.url))
    source.open()
    try:
        first, last = read_frames(source, count=8)
    finally:
        source.close()
    assert first.shape == VTEST_SHAPE and first.dtype == np.uint8
    assert not np.array_equal(first, last), "the stream should move on through the clip"


@pytest.mark.parametrize("mjpeg_server", [WITH_AUTH], indirect=True)
def test_mjpeg_basic_auth_from_url_works_and_is_redacted(mjpeg_server: MjpegServer) -> None:
    source = open_source("lobby", HttpSource(url=mjpeg_server.url_with(USER, PASSWORD)))
    assert_redacted(source.description)
    source.open()
    try:
        first, _ = read_frames(source, count=3)
    finally:
        source.close()
    assert first.shape == VTEST_SHAPE


@pytest.mark.parametrize("mjpeg_server", [WITH_AUTH], indirect=True)
def test_mjpeg_wrong_password_fails_to_open_without_leaking_it(mjpeg_server: MjpegServer) -> None:
    wrong = PASSWORD[::-1]
    source = open_source("lobby", HttpSource(url=mjpeg_server.url_with(USER, wrong), open_timeout_s=5))
    with pytest.raises(SourceConnectionError) as caught:
        source.open()
    assert wrong not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize("mjpeg_server", [WITH_AUTH], indirect=True)
def test_mjpeg_server_going_away_raises_connection_error(mjpeg_server: MjpegServer) -> None:
    source = open_source("lobby", HttpSource(url=mjpeg_server.url_with(USER, PASSWORD),
                                             read_timeout_s=2))
    source.open()
    read_frames(source, count=2)
    mjpeg_server.stop()
    error = grab_until_error(source)
    source.close()
    assert_redacted(str(error))


@pytest.mark.parametrize("mjpeg_server", [WITH_AUTH], indirect=True)
def test_mjpeg_stalled_server_raises_after_the_read_timeout(mjpeg_server: MjpegServer) -> None:
    source = open_source("lobby", HttpSource(url=mjpeg_server.url_with(USER, PASSWORD),
                                             read_timeout_s=2))
    source.open()
    read_frames(source, count=2)
    mjpeg_server.pause()  # connection stays open, no more bytes: a hung camera
    error = grab_until_error(source)
    source.close()
    assert_redacted(str(error))


# ------------------------------------------------------------------------------------------ RTSP
@pytest.mark.parametrize(
    "rtsp_server", [RtspServerOptions(codec="h264"), RtspServerOptions(codec="jpeg")],
    indirect=True, ids=["h264", "jpeg"],
)
def test_rtsp_opens_and_decodes_into_the_reused_buffer(rtsp_server: RtspServer) -> None:
    source = open_source("gate", RtspSource(url=rtsp_server.url, open_timeout_s=5))
    source.open()
    try:
        first, _ = read_frames(source, count=8)
    finally:
        source.close()
    assert first.shape == VTEST_SHAPE
    assert source.native_fps == pytest.approx(10)


@pytest.mark.parametrize("rtsp_server", [RtspServerOptions(clip=False)], indirect=True)
def test_rtsp_live_test_pattern_opens(rtsp_server: RtspServer) -> None:
    # A live source behaves like a camera: a new client joins mid-GOP, not on a key frame.
    source = open_source("gate", RtspSource(url=rtsp_server.url, open_timeout_s=5, read_timeout_s=5))
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
    source = open_source("gate", RtspSource(url=rtsp_server.url, read_timeout_s=2))
    source.open()
    try:
        first, _ = read_frames(source, count=2)
    finally:
        source.close()
    assert first.shape == VTEST_SHAPE


@pytest.mark.parametrize("rtsp_server", [RTSP_WITH_AUTH], indirect=True)
def test_rtsp_credentials_from_url_work_and_are_redacted(rtsp_server: RtspServer) -> None:
    source = open_source("gate", RtspSource(url=rtsp_server.url_with(USER, PASSWORD)))
    assert_redacted(source.description)
    source.open()
    try:
        first, _ = read_frames(source, count=2)
    finally:
        source.close()
    assert first.shape == VTEST_SHAPE


@pytest.mark.parametrize("rtsp_server", [RTSP_WITH_AUTH], indirect=True)
def test_rtsp_wrong_password_fails_to_open_without_leaking_it(rtsp_server: RtspServer) -> None:
    wrong = PASSWORD[::-1]
    source = open_source("gate", RtspSource(url=rtsp_server.url_with(USER, wrong), open_timeout_s=5))
    with pytest.raises(SourceConnectionError) as caught:
        source.open()
    assert wrong not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize("rtsp_server", [RTSP_WITH_AUTH], indirect=True)
def test_rtsp_server_killed_raises_connection_error(rtsp_server: RtspServer) -> None:
    source = open_source("gate", RtspSource(url=rtsp_server.url_with(USER, PASSWORD),
                                            read_timeout_s=2))
    source.open()
    read_frames(source, count=2)
    rtsp_server.kill()
    error = grab_until_error(source)
    source.close()
    assert_redacted(str(error))


@pytest.mark.parametrize("rtsp_server", [RTSP_WITH_AUTH], indirect=True)
def test_rtsp_stalled_server_raises_after_the_read_timeout(rtsp_server: RtspServer) -> None:
    source = open_source("gate", RtspSource(url=rtsp_server.url_with(USER, PASSWORD),
                                            read_timeout_s=2))
    source.open()
    read_frames(source, count=2)
    rtsp_server.pause()  # SIGSTOP: the TCP connection stays up, nothing more arrives
    try:
        error = grab_until_error(source)
    finally:
        rtsp_server.resume()
        source.close()
    assert_redacted(str(error))


# ------------------------------------------------------------------------------ nothing listening
@pytest.mark.timeout(20)
@pytest.mark.parametrize("config_type, scheme", [(RtspSource, "rtsp"), (HttpSource, "http")])
def test_closed_port_fails_to_open_with_a_redacted_url(config_type, scheme) -> None:
    url = f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/cam"
    source = open_source("gate", config_type(url=url, open_timeout_s=3))
    with pytest.raises(SourceConnectionError) as caught:
        source.open()
    message = str(caught.value)
    assert_redacted(message)
    assert f"{USER}:***@127.0.0.1" in message and "gate" in message
