"""Local sources on real files: reused decode buffers, looping, end of stream, image folders,
the synthetic scene. Network sources are in test_network_sources.py."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fleet.config import FileSource, ImagesSource, SyntheticSource
from fleet.errors import EndOfStreamError, FrameError, SourceConnectionError
from fleet.sources import image_header_size, open_source
from tests.conftest import MEGAMIND


def test_file_decodes_into_the_reused_buffer(footage):
    source = open_source("cam", FileSource(path=str(MEGAMIND)))
    source.open()
    source.grab()
    buf = source.retrieve(None)
    assert buf.shape == (528, 720, 3)
    for _ in range(5):
        source.grab()
        assert source.retrieve(buf) is buf  # no fresh array per frame
    assert source.native_fps == pytest.approx(23.976, abs=0.01)
    assert source.pace_fps == source.native_fps  # realtime by default
    source.close()


def test_file_loops_or_ends(footage, tmp_path):
    clip = tmp_path / "three.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), i * 80, np.uint8))
    writer.release()
    looping = open_source("cam", FileSource(path=str(clip), loop=True))
    looping.open()
    for _ in range(7):
        looping.grab()  # past the end: starts again
    once = open_source("cam", FileSource(path=str(clip), loop=False, realtime=False))
    once.open()
    assert once.pace_fps == 0
    for _ in range(3):
        once.grab()
    with pytest.raises(EndOfStreamError):
        once.grab()


@pytest.mark.parametrize("path, fragment", [
    ("/nonexistent/clip.mp4", "no video file at /nonexistent/clip.mp4"),
    ("/etc/hostname", "OpenCV cannot decode /etc/hostname"),
])
def test_unopenable_files_say_why(path, fragment):
    with pytest.raises(SourceConnectionError, match=fragment):
        open_source("cam", FileSource(path=path)).open()


def test_image_folder_in_name_order_then_end(tmp_path):
    for i, value in enumerate((10, 20, 30)):
        cv2.imwrite(str(tmp_path / f"img-{i}.png"), np.full((32, 40, 3), value, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source("cam", ImagesSource(path=str(tmp_path), loop=False))
    source.open()
    buf = None
    values = []
    for _ in range(3):
        source.grab()
        buf = source.retrieve(buf)
        values.append(int(buf[0, 0, 0]))
    assert values == [10, 20, 30]
    with pytest.raises(EndOfStreamError):
        source.grab()


def write_images(folder, values, corrupt=()):
    """img-<i>.png of one grey value each; the names in ``corrupt`` hold random bytes."""
    rng = np.random.default_rng(1)
    for i, value in enumerate(values):
        path = folder / f"img-{i}.png"
        if i in corrupt:
            path.write_bytes(rng.integers(0, 256, 3000, np.uint8).tobytes())
        else:
            cv2.imwrite(str(path), np.full((32, 40, 3), value, np.uint8))


def read_folder(source):
    """Grey values of every image the folder gives, None for each it cannot decode, to its end."""
    values, buf = [], None
    while True:
        try:
            source.grab()
        except EndOfStreamError:
            return values
        try:
            buf = source.retrieve(buf)
            values.append(int(buf[0, 0, 0]))
        except FrameError:
            values.append(None)


def test_a_corrupt_image_is_skipped_and_the_folder_goes_on_with_the_next(tmp_path):
    write_images(tmp_path, (10, 20, 30, 40), corrupt={1})
    source = open_source("cam", ImagesSource(path=str(tmp_path), loop=False))
    source.open()
    assert read_folder(source) == [10, None, 30, 40]


def test_a_reopened_image_folder_goes_on_after_the_last_image_instead_of_replaying(tmp_path):
    write_images(tmp_path, (10, 20, 30, 40))
    source = open_source("cam", ImagesSource(path=str(tmp_path), loop=False))
    source.open()
    source.grab()
    source.grab()
    source.close()  # as the camera does after a source failure
    source.open()
    assert read_folder(source) == [30, 40]


def test_image_sizes_come_from_jpeg_and_png_headers(tmp_path):
    image = np.zeros((123, 457, 3), np.uint8)
    for name, params in (("a.jpg", []), ("p.jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                         ("a.png", []), ("a.bmp", [])):
        cv2.imwrite(str(tmp_path / name), image, params)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8" + bytes(100))
    sizes = {p.name: image_header_size(str(p)) for p in tmp_path.iterdir()}
    assert sizes == {"a.jpg": (123, 457), "p.jpg": (123, 457), "a.png": (123, 457),
                     "a.bmp": None, "broken.jpg": None}  # None: decode it to know


def test_empty_image_folder_is_a_connection_error(tmp_path):
    with pytest.raises(SourceConnectionError, match="no images at"):
        open_source("cam", ImagesSource(path=str(tmp_path))).open()


def test_synthetic_scene_moves_in_place_and_ends_after_its_frames():
    source = open_source("cam", SyntheticSource(width=320, height=240, fps=30, frames=3))
    source.open()
    source.grab()
    first = source.retrieve(None).copy()
    buf = np.empty((240, 320, 3), np.uint8)
    source.grab()
    source.grab()
    assert source.retrieve(buf) is buf and not np.array_equal(first, buf)
    with pytest.raises(EndOfStreamError):
        source.grab()
