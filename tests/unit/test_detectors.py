"""The legacy OpenCV detectors on real footage, without Ray (faces on Megamind, people on
vtest, boxes in original-frame coordinates whatever the detection width, read-only input
accepted), the registry of kinds, and DetectorService alone and in batches. BlazeFace and the
onnx kind have their own files (test_blazeface.py, test_onnx_detector.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fleet.config import (
    BlazeFaceDetectorConfig,
    BlobsDetectorConfig,
    FaceDetectorConfig,
    NanoDetDetectorConfig,
    OnnxDetectorConfig,
    PersonDetectorConfig,
    ScenePath,
    SyntheticSource,
)
from fleet.detectors import (
    REGISTRY,
    BlazeFaceDetector,
    BlobsDetector,
    Detection,
    DetectorService,
    HaarFaceDetector,
    HogPersonDetector,
    NanoDetDetector,
    OnnxDetector,
    build_detector,
)
from fleet.errors import DetectorError
from fleet.frames import DetectionResult, FrameMeta
from fleet.imaging import Downscaler
from fleet.sources import SyntheticScene, path_box
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
    with pytest.raises(DetectorError, match=r"^detectors\.faces-hd\.cascade: cannot load"):
        build_detector(FaceDetectorConfig(cascade="nope.xml"), "faces-hd")


# ------------------------------------------------------------------------------------ registry
def test_the_registry_has_every_type_the_config_knows():
    assert REGISTRY == {"blazeface": BlazeFaceDetector, "nanodet": NanoDetDetector,
                        "onnx": OnnxDetector, "haar": HaarFaceDetector,
                        "hog": HogPersonDetector, "blobs": BlobsDetector}
    assert {BlazeFaceDetectorConfig().type, NanoDetDetectorConfig().type,
            FaceDetectorConfig().type, PersonDetectorConfig().type,
            OnnxDetectorConfig(model={"path": "x"}).type, BlobsDetectorConfig().type} == set(
        REGISTRY)


def test_blobs_finds_the_synthetic_paths_exactly():
    # given a synthetic scene with two objects on known paths and no moving shapes
    paths = [ScenePath(start=(0.2, 0.3), end=(0.8, 0.3), end_s=4),
             ScenePath(start=(0.7, 0.7), end=(0.3, 0.7), start_s=1, end_s=5)]
    scene = SyntheticScene("s", SyntheticSource(width=640, height=480, fps=10, objects=0,
                                                paths=paths))
    scene.open()
    detector = BlobsDetector(BlobsDetectorConfig(label="person"))
    for index in range(50):
        scene.grab()
        frame = scene.retrieve(None)
        found = detector.detect(frame, FrameMeta("s", index, 0.0, 640, 480, None))
        t = index / 10
        truth = sorted(path_box(p, t, 640, 480) for p in paths if p.start_s <= t < p.end_s)
        # then every box is found where the path puts it, and nothing else
        assert sorted((d.x, d.y, d.x + d.w - 1, d.y + d.h - 1) for d in found) == truth


def test_the_old_type_names_still_build_the_legacy_detectors():
    assert FaceDetectorConfig(type="face").type == "haar"
    assert PersonDetectorConfig(type="person").type == "hog"
    assert isinstance(build_detector(FaceDetectorConfig(type="face")), HaarFaceDetector)


# ---------------------------------------------------------------------------- the service
class Counting:
    """A detector without detect_batch, that fails on frames whose first pixel is 255."""

    label = "thing"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        self.calls += 1
        if frame[0, 0, 0] == 255:
            raise ValueError("bad pixel")
        return [Detection(self.label, meta.index, 0, 1, 1, 0.5)]


def test_a_detector_without_detect_batch_gets_one_call_per_frame():
    detector = Counting()
    service = DetectorService("things", detector, "actor-1")
    frames = [np.zeros((4, 4, 3), np.uint8) for _ in range(3)]
    results = service.detect_batch(frames, [meta(f, None) for f in frames])
    assert detector.calls == 3 and service.calls == 3
    assert all(isinstance(r, DetectionResult) and r.actor == "actor-1" for r in results)
    assert service.detect_batch([], []) == []


def test_in_a_batch_only_the_failing_frame_fails():
    service = DetectorService("things", Counting())
    frames = [np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8),
              np.zeros((4, 4, 3), np.uint8)]
    metas = [FrameMeta("cam", i, 0.0, 4, 4, None) for i in range(3)]
    results = service.detect_batch(frames, metas)
    assert isinstance(results[1], DetectorError)
    assert str(results[1]) == "detector 'things' failed on cam#1: bad pixel"
    assert [r.detections[0].x for r in (results[0], results[2])] == [0, 2]  # type: ignore[union-attr]
    stats = service.stats()
    assert (stats.calls, stats.errors, len(stats.service_s)) == (3, 1, 3)


def test_a_batch_charges_each_frame_its_share_of_the_time():
    service = DetectorService("things", Counting())
    frames = [np.zeros((4, 4, 3), np.uint8) for _ in range(4)]
    results = service.detect_batch(frames, [meta(f, None) for f in frames])
    shares = {r.service_s for r in results if isinstance(r, DetectionResult)}
    assert len(shares) == 1
    assert service.busy_s == pytest.approx(4 * shares.pop())


def test_detect_still_raises_for_its_frame():
    service = DetectorService("things", Counting())
    with pytest.raises(DetectorError, match="failed on cam#0: bad pixel"):
        service.detect(np.full((4, 4, 3), 255, np.uint8), meta(np.zeros((4, 4, 3)), None))
    assert service.errors == 1 and service.calls == 1
