"""Detectors on real footage, without Ray: faces on Megamind, people on vtest, boxes in
original-frame coordinates whatever the detection width, read-only input accepted."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fleet.config import FaceDetectorConfig, PersonDetectorConfig
from fleet.detectors import build_detector
from fleet.imaging import Downscaler
from fleet.errors import DetectorError
from fleet.frames import FrameMeta
from tests.conftest import MEGAMIND, VTEST


def frames(path, every: int, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    i = 0
    while len(out) < count:
        ok, frame = cap.read()
        assert ok, f"{path} ended early"
        if i % every == 0:
            frame.flags.writeable = False  # as the object store hands it over
            out.append(frame)
        i += 1
    return out


def meta(frame: np.ndarray, detect_width: int | None) -> FrameMeta:
    return FrameMeta("cam", 0, 0.0, frame.shape[1], frame.shape[0], detect_width)


def centre(d) -> tuple[float, float]:
    return d.x + d.w / 2, d.y + d.h / 2


@pytest.mark.parametrize("kind, clip, config", [
    ("face", MEGAMIND, FaceDetectorConfig()),
    ("person", VTEST, PersonDetectorConfig()),
])
def test_finds_its_label_on_most_frames_of_a_real_clip(kind, clip, config, footage):
    detector = build_detector(config)
    found = [detector.detect(f, meta(f, 640)) for f in frames(clip, every=25, count=8)]
    assert sum(bool(d) for d in found) >= 6
    for detections in found:
        for d in detections:
            assert d.label == kind and d.w > 0 and d.h > 0


@pytest.mark.parametrize("config, clip", [
    (FaceDetectorConfig(), MEGAMIND), (PersonDetectorConfig(), VTEST),
])
def test_boxes_are_in_original_frame_coordinates_at_any_detection_width(config, clip, footage):
    detector = build_detector(config)
    frame = frames(clip, every=1, count=11)[10]
    big = cv2.resize(frame, (frame.shape[1] * 2, frame.shape[0] * 2))
    native = detector.detect(frame, meta(frame, None))
    scaled = detector.detect(big, meta(big, frame.shape[1]))  # 2x frame, detected at native width
    assert native and scaled
    # the 2x frame's boxes are the native boxes doubled (same pixels were analysed)
    for a, b in zip(sorted(native, key=centre), sorted(scaled, key=centre), strict=False):
        assert abs(b.x - 2 * a.x) <= 4 and abs(b.w - 2 * a.w) <= 4
    for d in scaled:
        assert 0 <= d.x and d.x + d.w <= big.shape[1] + 8 and d.y + d.h <= big.shape[0] + 8


def test_downscaler_reuses_its_buffers():
    scaler = Downscaler()
    frame = np.zeros((1080, 1920, 3), np.uint8)
    first, scale = scaler.resize(frame, 640)
    second, _ = scaler.resize(frame, 640)
    assert first is second and first.shape == (360, 640, 3) and scale == pytest.approx(1 / 3)
    same, one = scaler.resize(frame, None)
    assert same is frame and one == 1.0


def test_a_missing_cascade_is_a_clear_error():
    with pytest.raises(DetectorError, match="cannot load cascade nope.xml"):
        build_detector(FaceDetectorConfig(cascade="nope.xml"))
