"""NanoDet, the person and objects detector camfleet ships: the model set-up made (fetched from
npm, converted to ONNX, hash-checked), on real frames of vtest.avi (the demo's town-square):
people of their real size, the cars parked at the back, classes kept as asked, batches, other
input sizes, and the errors a missing model gives."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fleet.config import NanoDetDetectorConfig
from fleet.detectors import NanoDetDetector, build_detector
from fleet.detectors.models import models_dir
from fleet.detectors.nanodet import MODEL_FILE
from fleet.errors import DetectorError
from fleet.frames import Detection, FrameMeta
from tests.conftest import REPO, VTEST

sys.path.insert(0, str(REPO / "scripts"))
import fetch_models  # noqa: E402

SETUP = "run `bash scripts/setup.sh test` (or `python scripts/fetch_models.py`)"


@pytest.fixture(scope="module")
def model() -> Path:
    path = models_dir() / MODEL_FILE
    if not path.is_file():
        pytest.fail(f"NanoDet missing at {path}: {SETUP}")
    return path


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Frames 100, 300 and 500 of vtest.avi: people walking, two cars parked at the back."""
    video = cv2.VideoCapture(str(VTEST))
    out, index = [], 0
    while len(out) < 3:
        ok, frame = video.read()
        assert ok, "vtest.avi ended early"
        if index in (100, 300, 500):
            out.append(frame)
        index += 1
    video.release()
    return out


def meta(frame: np.ndarray, index: int = 0) -> FrameMeta:
    return FrameMeta("town-square", index, 0.0, frame.shape[1], frame.shape[0], 640)


def test_the_model_is_the_one_set_up_pinned(model: Path) -> None:
    assert fetch_models.sha256(model) == fetch_models.NANODET.sha256


def test_people_come_back_at_their_size_and_the_parked_cars_as_cars(model, frames) -> None:
    detector = build_detector(NanoDetDetectorConfig(classes=["person", "car"]), "objects")
    for i, frame in enumerate(frames):
        found = detector.detect(frame, meta(frame, i))
        people = [d for d in found if d.label == "person" and d.score >= 0.5]
        # 4 to 9 people walk on the square in these frames, 60 to 100 px tall in the frame
        # (and one on the path at the back, about 35 px)
        assert len([d for d in people if 55 <= d.h <= 110]) >= 4, found
        assert all(25 <= d.h <= 130 and d.w < d.h for d in people), people
        assert all(0 <= d.x and d.x + d.w <= 768 and 0 <= d.y and d.y + d.h <= 576
                   for d in found)
        cars = [d for d in found if d.label == "car"]
        # the white van and the car at the top right, parked all clip long
        assert any(d.x > 600 and d.y < 120 for d in cars), found


def test_only_the_classes_asked_for_come_back(model, frames) -> None:
    people = build_detector(NanoDetDetectorConfig(classes=["person"]), "person")
    every = build_detector(NanoDetDetectorConfig(), "objects")
    frame = frames[1]
    assert {d.label for d in people.detect(frame, meta(frame))} == {"person"}
    assert {"person", "car"} <= {d.label for d in every.detect(frame, meta(frame))}


def test_a_batch_gives_what_frame_by_frame_gives(model, frames) -> None:
    detector = build_detector(NanoDetDetectorConfig(classes=["person"]), "person")
    one_by_one = [detector.detect(f, meta(f, i)) for i, f in enumerate(frames)]
    batched = detector.detect_batch(frames, [meta(f, i) for i, f in enumerate(frames)])
    for alone, together in zip(one_by_one, batched, strict=True):
        assert len(alone) == len(together)
        for a, b in zip(alone, together, strict=True):
            assert (a.label, a.x, a.y, a.w, a.h) == (b.label, b.x, b.y, b.w, b.h)
            assert a.score == pytest.approx(b.score, abs=1e-4)


def test_another_input_size_finds_the_same_people(model, frames) -> None:
    frame = frames[0]
    default = build_detector(NanoDetDetectorConfig(classes=["person"]), "person")
    square = build_detector(NanoDetDetectorConfig(classes=["person"], input_size=(416, 416)),
                            "person")
    strong = [d for d in default.detect(frame, meta(frame)) if d.score >= 0.6]
    again = square.detect(frame, meta(frame))
    for d in strong:
        assert max(iou(d, e) for e in again) >= 0.5, (d, again)


def iou(a: Detection, b: Detection) -> float:
    w = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    h = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return w * h / (a.w * a.h + b.w * b.h - w * h)


def test_a_missing_model_names_the_setting_and_how_to_fetch_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CAMFLEET_MODELS", str(tmp_path))
    with pytest.raises(DetectorError, match=r"detectors\.person\.path: no file at .*nanodet"
                                            r"\.onnx; fetch it with `python scripts/fetch_"):
        build_detector(NanoDetDetectorConfig(), "person")


def test_a_frame_that_is_not_an_image_fails_alone(model) -> None:
    detector = NanoDetDetector(NanoDetDetectorConfig())
    with pytest.raises(DetectorError, match="HxWx3 uint8"):
        detector.detect(np.zeros((10, 10), np.uint8), meta(np.zeros((10, 10, 3), np.uint8)))
