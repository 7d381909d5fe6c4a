"""Frames of any size and shape, and frames that cannot be decoded, through the camera: a bad
frame is dropped with a reason and counted, never taken for a lost connection, and the stream
goes on; a frame over ``max_frame_pixels`` never enters the pipeline; a change of resolution
remakes the camera's buffers. Real sources (an MJPEG server, image folders); a fake hand-off."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from fleet.config import parse_fleet
from fleet.imaging import Downscaler
from fleet.pipeline.camera import Camera
from fleet.sources import open_source
from tests.helpers import wait_until
from tests.servers.fixtures import serving_mjpeg
from tests.servers.mjpeg_server import MjpegServer, clip_jpegs, corrupt_jpeg
from tests.unit.test_camera_logic import GroupDispatcher, HeldDispatcher, ListSource, NullSink

pytestmark = pytest.mark.timeout(60)


def run_camera(source_yaml: str, source=None, **settings):
    """A camera on a real source (from its config) or a fake one, answered at once."""
    extra = "".join(f", {k}: {v}" for k, v in settings.items())
    config = parse_fleet(f"cameras: [{{id: cam, source: {source_yaml}{extra}}}]",
                         env={}).cameras[0]
    dispatcher = GroupDispatcher(answer=True)
    cam = Camera(config, source or open_source(config.id, config.source), dispatcher, NullSink())
    cam.media_time = source is not None  # a fake: limit on its 30 fps timeline, not the clock
    cam.start()
    return cam, dispatcher


def write_folder(folder, images: dict[str, np.ndarray | bytes]) -> None:
    for name, image in images.items():
        if isinstance(image, bytes):
            (folder / name).write_bytes(image)
        else:
            cv2.imwrite(str(folder / name), image)


def folder(path, fps: float = 100) -> str:
    """An image folder source read once, at ``fps`` images a second."""
    return f"{{type: images, path: '{path}', fps: {fps}, loop: false}}"


def grey(value: int, height: int = 32, width: int = 40) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


# ------------------------------------------------------------------------------- corrupt frames
def test_an_mjpeg_camera_keeps_its_connection_through_parts_it_cannot_decode():
    # given a camera whose server sends a garbage part after every 3 good ones
    good = clip_jpegs(frames=6)
    parts = (*good[:3], corrupt_jpeg(seed=1), *good[3:], corrupt_jpeg(seed=2))
    server = MjpegServer(parts, fps=25).start()
    try:
        cam, _ = run_camera(f'"{server.url}"', fps=240)
        wait_until(lambda: cam.stats().dropped.get("corrupt", 0) >= 4, 20,
                   lambda: f"4 corrupt frames counted: {cam.stats()}")
        final = cam.stop(drain_timeout_s=2)
    finally:
        server.stop()
    # then it never reconnected, counted each bad part, and analysed the good ones
    assert final.reconnects == 0 and final.state == "stopped", final.dropped
    corrupt = final.dropped["corrupt"]
    assert corrupt >= 4 and final.captured - corrupt >= 3 * (corrupt - 1) and final.processed
    assert "could not be decoded" in final.last_error and final.accounted


def test_an_image_folder_skips_a_corrupt_image_and_ends_without_replaying(tmp_path):
    # given a folder of 5 images, the third random bytes, the fourth cut in half, no loop
    half = cv2.imencode(".png", grey(40))[1].tobytes()
    write_folder(tmp_path, {"0.png": grey(10), "1.png": grey(20),
                            "2.png": np.random.default_rng(0).bytes(5000),
                            "3.png": half[: len(half) // 2], "4.png": grey(50)})
    # (read at 10 a second, the camera's 240 fps limit never drops one, even when a loaded
    # machine makes the folder's pacing catch up)
    cam, dispatcher = run_camera(folder(tmp_path, fps=10), fps=240)
    wait_until(lambda: cam.ended, 10, "the folder to end")
    final = cam.stop(drain_timeout_s=2)
    # then each good image was analysed once, in order, the bad ones counted, and it ended
    assert [value for _, value in dispatcher.pixels] == [10, 20, 50]
    assert final.dropped == {"corrupt": 2} and final.processed == 3
    assert final.reconnects == 0 and final.state == "ended" and final.accounted
    assert "cannot decode image" in final.last_error and "3.png" in final.last_error


# --------------------------------------------------------------------------- max_frame_pixels
def png_header_only(height: int, width: int) -> bytes:
    """A PNG that claims height x width and holds no pixels: only reading its header is safe."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + ihdr + bytes(4)


def test_a_frame_over_max_frame_pixels_is_dropped_before_or_after_decoding_and_goes_no_further(
        tmp_path):
    # given a folder with a PNG claiming 100000 x 100000 (judged by its header: it cannot be
    # decoded) and a BMP of 128 x 128 (no header read: decoded, then judged), limit 64 x 64
    write_folder(tmp_path, {"0.png": grey(10), "1.png": png_header_only(100_000, 100_000),
                            "2.bmp": grey(20, 128, 128), "3.png": grey(30)})
    cam, dispatcher = run_camera(folder(tmp_path), fps=240, max_frame_pixels=4096)
    wait_until(lambda: cam.ended, 10, "the folder to end")
    final = cam.stop(drain_timeout_s=2)
    # then both were dropped as too_large (the PNG never decoded: it was not "corrupt")
    assert final.dropped == {"too_large": 2}
    assert [value for _, value in dispatcher.pixels] == [10, 30]
    assert "128x128" in final.last_error and "max_frame_pixels (4,096)" in final.last_error
    assert final.reconnects == 0 and final.accounted and (final.height, final.width) == (32, 40)


def test_a_stream_of_frames_over_max_frame_pixels_drops_them_and_stays_up():
    with serving_mjpeg({"fps": 25}) as server:  # 768 x 576 frames: 442,368 pixels
        cam, dispatcher = run_camera(f'"{server.url}"', max_frame_pixels=100_000)
        wait_until(lambda: cam.stats().dropped.get("too_large", 0) >= 5, 20, "5 frames dropped")
        stats = cam.stats()
        final = cam.stop(drain_timeout_s=2)
    assert stats.state == "up" and final.reconnects == 0 and dispatcher.pixels == []
    assert "768x576" in final.last_error and final.accounted


# ------------------------------------------------------------------------- change of resolution
class ResizingSource(ListSource):
    """Frames of ``shapes[i * len(shapes) // count]``: the stream changes resolution. Decodes
    into ``into`` only when its shape matches, as the real sources do."""

    def __init__(self, count: int, shapes):
        super().__init__(count)
        self.shapes = shapes

    def retrieve(self, into):
        shape = self.shapes[self.i * len(self.shapes) // self.count]
        frame = into if into is not None and into.shape == shape else np.empty(shape, np.uint8)
        frame.fill(self.i % 255)
        return frame


def test_an_mjpeg_camera_that_changes_resolution_keeps_its_connection():
    # given a real MJPEG server whose camera switches from 768x576 to 384x288 and back, as one
    # does when its operator changes the stream profile
    good = clip_jpegs(frames=8)
    small = tuple(cv2.imencode(".jpg", cv2.resize(cv2.imdecode(np.frombuffer(j, np.uint8),
                                                               cv2.IMREAD_COLOR), (384, 288)))[1]
                  .tobytes() for j in good)
    server = MjpegServer((*good[:4], *small[:4], *good[4:]), fps=25).start()
    sizes: set[tuple[int, int]] = set()
    try:
        cam, dispatcher = run_camera(f'"{server.url}"', fps=240, buffers=2)
        take = dispatcher._take
        dispatcher._take = lambda frame, meta, t: (sizes.add(frame.shape[:2]), take(frame, meta,
                                                                                    t))
        wait_until(lambda: cam.stats().captured >= 36, 20,
                   lambda: f"three rounds of the stream: {cam.stats()}")
        final = cam.stop(drain_timeout_s=2)
    finally:
        server.stop()
    # then it kept its connection and failed no frame. (OpenCV's FFmpeg reader scales every
    # frame to the size it opened the stream at, so the detector sees one size.)
    assert final.reconnects == 0 and final.failed == 0 and final.accounted, final
    assert sizes == {(576, 768)}


def test_an_image_folder_of_mixed_sizes_goes_on_at_each_size(tmp_path):
    # given a folder whose images change size twice, read once
    write_folder(tmp_path, {f"{i}.png": grey(10 * i, *size) for i, size in
                            enumerate([(48, 64)] * 3 + [(96, 96)] * 3 + [(30, 40)] * 3)})
    sizes: list[tuple[int, int]] = []
    cam, dispatcher = run_camera(folder(tmp_path), fps=240, buffers=2)
    take = dispatcher._take
    dispatcher._take = lambda frame, meta, t: (sizes.append(frame.shape[:2]), take(frame, meta, t))
    wait_until(lambda: cam.ended, 10, "the folder read")
    final = cam.stop(drain_timeout_s=2)
    # then every image was analysed at its own size, in order, and the camera ends at the last
    assert final.reconnects == 0 and final.failed == 0 and final.accounted, final
    assert (final.height, final.width) == (30, 40)
    assert set(sizes) <= {(48, 64), (96, 96), (30, 40)} and sizes[-1] == (30, 40)
    held = [b.shape[:2] for b in (cam.slots.spare, cam.small) if b is not None]
    assert set(held) <= {(30, 40)}, held


@pytest.mark.parametrize("settings", [
    {"drop_policy": "drop_oldest", "buffers": 1},
    {"drop_policy": "wait", "buffers": 8, "put_frames": 4},
    {"drop_policy": "wait", "buffers": 2, "put_width": 32, "detect_width": 32},
], ids=["waiting-frame", "put_frames", "put_width"])
def test_a_change_of_resolution_remakes_the_buffers_and_lets_the_old_ones_go(settings):
    # given a stream whose frames go from 48 x 64 to 96 x 96 half way
    shapes = [(48, 64, 3), (96, 96, 3)]
    source = ResizingSource(40, shapes)
    cam, dispatcher = run_camera("synthetic", source, fps=240, **settings)
    wait_until(lambda: cam.ended and cam.stats().in_flight == 0, 10, "the stream to end")
    final = cam.stop(drain_timeout_s=2)
    # then every frame the camera kept went out whole, and it holds no buffer of the old shape
    assert final.reconnects == 0 and final.failed == 0 and final.accounted
    assert (final.height, final.width) == (96, 96)
    assert {index for index, _ in dispatcher.pixels} >= {0, 39}
    assert all(value == index % 255 for index, value in dispatcher.pixels)
    buffers = (cam.slots.spare, cam.small, cam.group.stack)
    held = [b.shape[-3:-1] for b in buffers if b is not None]
    assert not set(held) & {(48, 64), (24, 32)}, held  # (24, 32): 48 x 64 at put_width


def test_the_spare_buffer_of_the_old_resolution_is_let_go_at_the_change():
    # given drop_oldest with one buffer: frame 0 (48 x 64) at the detector, frame 1 waiting;
    # when frame 0 is answered, frame 1 goes and its buffer becomes the spare
    source = ResizingSource(3, [(48, 64, 3), (48, 64, 3), (96, 96, 3)])
    to_frame_2 = threading.Event()
    grab = source.grab
    source.grab = lambda: (source.i == 1 and to_frame_2.wait(10), grab())[1]
    config = parse_fleet("cameras: [{id: cam, source: synthetic, fps: 240, buffers: 1, "
                         "drop_policy: drop_oldest}]", env={}).cameras[0]
    dispatcher = HeldDispatcher()
    cam = Camera(config, source, dispatcher, NullSink())
    cam.media_time = True
    cam.start()
    wait_until(lambda: cam.slots.waiting is not None, 10, "frame 1 waiting")
    dispatcher.release_all()
    wait_until(lambda: cam.slots.spare is not None, 10, "frame 1 sent, its buffer spare")
    dispatcher.release_all()
    wait_until(lambda: cam.stats().slots_used == 0, 10, "frame 1 answered")
    # when the stream's next frame is 96 x 96 (it goes at once: a slot is free)
    to_frame_2.set()
    wait_until(lambda: cam.ended, 10, "the stream to end")
    # then the camera no longer holds the 48 x 64 spare
    assert cam.slots.spare is None or cam.slots.spare.shape == (96, 96, 3)
    dispatcher.release_all()
    final = cam.stop(drain_timeout_s=2)
    assert final.processed == 3 and final.accounted


# ----------------------------------------------------------------------------------- Downscaler
def test_a_downscaler_keeps_a_few_buffers_whatever_the_heights_it_sees():
    scaler = Downscaler()
    for height in range(100, 1100):  # 1,000 different frame heights, as many output shapes
        small, _ = scaler.resize(np.zeros((height, 320, 3), np.uint8), 160)
        scaler.gray(small)
    assert scaler.kept() == 8  # resized and gray: the last 4 shapes of each
    # and the shape used most recently is still reused
    again, _ = scaler.resize(np.zeros((1099, 320, 3), np.uint8), 160)
    assert again is small
