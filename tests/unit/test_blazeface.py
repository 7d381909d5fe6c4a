"""BlazeFace, the face detector camfleet ships: MediaPipe's anchors and weighted NMS, faces on
real frames (Megamind, Grace Hopper) in original-frame pixels, the same face as a YOLOv8 export
finds (the nudenet test fixture), batches, and the errors a missing or wrong model gives."""

from __future__ import annotations

import importlib.util
import sys
import tracemalloc
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from fleet.config import BlazeFaceDetectorConfig, OnnxDetectorConfig
from fleet.detectors import BlazeFaceDetector, DetectorService, build_detector
from fleet.detectors.blazeface import VARIANTS, decode, ssd_anchors, weighted_nms
from fleet.detectors.models import models_dir
from fleet.errors import DetectorError
from fleet.frames import Detection, FrameMeta
from tests.conftest import MEGAMIND, REPO

FIXTURE = REPO / "tests" / "fixtures" / "models" / "nudenet-320n.onnx"
SETUP = "run `bash scripts/setup.sh test` (or `python scripts/fetch_models.py --fixtures`)"


@pytest.fixture(scope="module")
def models() -> Path:
    folder = models_dir()
    missing = [v.file for v in VARIANTS.values() if not (folder / v.file).is_file()]
    if missing:
        pytest.fail(f"BlazeFace models missing in {folder} ({', '.join(missing)}): {SETUP}")
    return folder


@pytest.fixture(scope="module")
def front(models) -> BlazeFaceDetector:
    detector = build_detector(BlazeFaceDetectorConfig(model="front"), "face")
    assert isinstance(detector, BlazeFaceDetector)
    return detector


@pytest.fixture(scope="module")
def yolo():
    if not FIXTURE.is_file():
        pytest.fail(f"the YOLOv8 test fixture {FIXTURE} is missing: {SETUP}")
    return build_detector(OnnxDetectorConfig(model={"path": str(FIXTURE)},
                                             classes=["FACE_FEMALE", "FACE_MALE"]))


def read_only(image: np.ndarray) -> np.ndarray:
    image.flags.writeable = False  # as the object store hands it over
    return image


def grace_hopper() -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        data = np.frombuffer(handle.read(), np.uint8)
    return read_only(cv2.imdecode(data, cv2.IMREAD_COLOR))


def megamind(every: int, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(MEGAMIND))
    out = []
    for i in range(every * count):
        ok, image = cap.read()
        assert ok, f"{MEGAMIND} ended early"
        if i % every == every - 1:
            out.append(read_only(image))
    cap.release()
    return out


def meta(image: np.ndarray, detect_width: int | None = 640, index: int = 0) -> FrameMeta:
    return FrameMeta("cam", index, 0.0, image.shape[1], image.shape[0], detect_width)


def iou(a: Detection, b: Detection) -> float:
    w = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    h = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inner = w * h
    return inner / (a.w * a.h + b.w * b.h - inner)


# ----------------------------------------------------------------------- anchors and decoding
@pytest.mark.parametrize("variant", ["front", "back"])
def test_anchors_are_a_16_grid_of_2_then_an_8_grid_of_6(variant):
    v = VARIANTS[variant]
    anchors = ssd_anchors(v.size, v.strides)
    assert anchors.shape == (16 * 16 * 2 + 8 * 8 * 6, 2) == (896, 2)
    # first cell of the fine grid twice, then the next cell; the coarse grid after 512
    assert anchors[:3].tolist() == [[0.5 / 16, 0.5 / 16]] * 2 + [[1.5 / 16, 0.5 / 16]]
    assert anchors[512:519].tolist() == [[0.5 / 8, 0.5 / 8]] * 6 + [[1.5 / 8, 0.5 / 8]]
    assert anchors[-1].tolist() == [7.5 / 8, 7.5 / 8]


def test_decode_offsets_boxes_from_their_anchor_and_applies_the_sigmoid():
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    raw[0, :4] = (12.8, -12.8, 25.6, 51.2)  # in input pixels of a 128 input
    logits = np.array([2.0, -3.0], np.float32)
    boxes, scores = decode(logits, raw, anchors, 128, min_score=0.5)
    assert scores == pytest.approx([1 / (1 + np.exp(-2.0))])
    # centre (0.25 + 0.1, 0.5 - 0.1), size (0.2, 0.4)
    assert boxes[0] == pytest.approx([0.25, 0.2, 0.45, 0.6])


def test_weighted_nms_blends_overlapping_boxes_by_score_and_keeps_the_best_score():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.3, 0.8])
    merged, kept = weighted_nms(boxes, scores, iou=0.3, limit=10)
    assert kept.tolist() == [0.9, 0.8]
    assert merged[0] == pytest.approx([0.25, 0.25, 10.25, 10.25])  # (0.9 * 0 + 0.3 * 1) / 1.2
    assert merged[1].tolist() == [50, 50, 60, 60]
    assert len(weighted_nms(boxes, scores, iou=0.3, limit=1)[1]) == 1


# ------------------------------------------------------------------------------ real frames
def test_finds_the_faces_on_most_frames_of_megamind(front, footage):
    frames = megamind(every=10, count=26)
    found = [front.detect(image, meta(image)) for image in frames]
    assert sum(bool(d) for d in found) >= 22
    for image, detections in zip(frames, found, strict=True):
        for d in detections:
            assert d.label == "face" and 0.5 <= d.score <= 1
            assert 0 <= d.x and d.x + d.w <= image.shape[1] and d.y + d.h <= image.shape[0]
            assert 40 <= d.w <= 400


@pytest.mark.parametrize("variant", ["front", "back"])
def test_blazeface_and_a_yolov8_export_find_the_same_face_on_grace_hopper(models, yolo, variant):
    image = grace_hopper()
    detector = build_detector(BlazeFaceDetectorConfig(model=variant))
    faces = detector.detect(image, meta(image))
    theirs = yolo.detect(image, meta(image))
    assert len(faces) == 1 and faces[0].score > 0.8, faces
    assert theirs and theirs[0].label == "FACE_FEMALE", theirs
    assert iou(faces[0], theirs[0]) > 0.5, (faces, theirs)


def test_boxes_are_in_original_frame_pixels_at_any_detect_width(front, footage):
    image = megamind(every=100, count=1)[0]
    big = read_only(cv2.resize(image, (image.shape[1] * 3, image.shape[0] * 3)))
    (native,) = front.detect(image, meta(image, None))
    for detect_width in (image.shape[1], 100):  # 100: below the model's 128, resized up again
        (scaled,) = front.detect(big, meta(big, detect_width))
        for a, b in ((native.x, scaled.x), (native.y, scaled.y), (native.w, scaled.w)):
            assert abs(b - 3 * a) <= 12, (native, scaled, detect_width)


def test_a_batch_gives_what_frame_by_frame_gives(front, yolo, footage):
    frames = megamind(every=30, count=6)
    metas = [meta(image, index=i) for i, image in enumerate(frames)]
    for detector in (front, yolo):
        service = DetectorService("d", detector)
        batched = service.detect_batch(frames, metas)
        alone = [service.detect(image, m) for image, m in zip(frames, metas, strict=True)]
        assert [r.detections for r in batched] == [r.detections for r in alone]  # type: ignore[union-attr]
        assert any(r.detections for r in alone)
        assert service.calls == 12 and service.errors == 0


def test_the_frame_is_left_as_it_was_and_nothing_frame_sized_is_allocated(front, footage):
    image = cv2.resize(megamind(every=100, count=1)[0], (1920, 1080))
    before = image.copy()
    read_only(image)
    front.detect(image, meta(image))  # sizes the buffers for this shape
    tracemalloc.start()
    try:
        found = [front.detect(image, meta(image)) for _ in range(3)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(found)
    assert peak < image.nbytes // 20, peak
    assert np.array_equal(image, before)


# ------------------------------------------------------------------------------ start errors
def test_a_missing_model_names_the_field_the_folder_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMFLEET_MODELS", str(tmp_path))
    with pytest.raises(DetectorError, match=r"^detectors\.face\.model: no file at "
                       rf"{tmp_path}/face_detection_back_256x256_barracuda\.onnx; fetch it with "
                       r"`python scripts/fetch_models.py`"):
        build_detector(BlazeFaceDetectorConfig(), "face")  # the default model: back


def test_the_wrong_file_for_the_variant_is_a_clear_error(models):
    front_file = str(models / VARIANTS["front"].file)
    with pytest.raises(DetectorError, match=r"detectors\.face\.path: .*input is \[1, 128, 128, 3\]"
                                            r"; BlazeFace back takes \[1, 256, 256, 3\]"):
        build_detector(BlazeFaceDetectorConfig(model="back", path=front_file), "face")


def test_a_model_that_is_not_blazeface_is_a_clear_error(models, yolo):
    with pytest.raises(DetectorError, match=r"path: nudenet-320n.onnx's input is "
                                            r"\['batch', 3, 'height', 'width'\]"):
        build_detector(BlazeFaceDetectorConfig(path=str(FIXTURE)))


def test_the_fetched_files_are_the_pinned_ones(models, monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("fetch_models", REPO / "scripts" /
                                                  "fetch_models.py")
    assert spec and spec.loader
    fetch = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fetch_models", fetch)  # dataclasses look themselves up
    spec.loader.exec_module(fetch)
    assert {a.name for a in fetch.BLAZEFACE.assets} == {v.file for v in VARIANTS.values()}
    assert all(fetch.present(asset, models) for asset in fetch.BLAZEFACE.assets)
    assert fetch.NUDENET.assets[0].name == FIXTURE.name
    # and a file that does not have the pinned hash is refused, and nothing is written
    asset = fetch.BLAZEFACE.assets[0]
    with pytest.raises(SystemExit, match="SHA-256 .* expected d388b1cf"):
        fetch.install(b"not the model", asset, tmp_path)
    assert not any(tmp_path.iterdir())
