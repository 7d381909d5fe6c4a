"""What a face detector misses at a camera's frame size (fleet.pipeline.facesize): the smallest
face is
about 15 px of the model's input scaled back to the frame, a note says so when that is over
48 px and names what would see smaller faces, and `camfleet validate` prints it for cameras whose
size the file gives, without importing numpy or OpenCV (test_imports.py holds that)."""

from __future__ import annotations

import pytest

from fleet.cli import main
from fleet.config import (
    BlazeFaceDetectorConfig,
    CameraConfig,
    FaceDetectorConfig,
    NanoDetDetectorConfig,
    TilesConfig,
)
from fleet.pipeline.facesize import SMALL_FACE_PX, face_notes, small_face_note, smallest_face_px


def camera(**settings) -> CameraConfig:
    return CameraConfig(id="town-square", source="synthetic", **settings)


def blazeface(model: str, **settings) -> BlazeFaceDetectorConfig:
    return BlazeFaceDetectorConfig(model=model, **settings)


@pytest.mark.parametrize(("model", "width", "height", "smallest"), [
    ("front", 768, 576, 90),  # measured at 768x576: 88 px faces 93%, 80 px 50%
    ("back", 768, 576, 45),  # 44 px 97%, 40 px 83-85%
    ("front", 1920, 1080, 225),  # at 1080p: 200 px faces 58%
    ("back", 1920, 1080, 112.5),  # 140 px all, 90 px 79%
    ("back", 576, 768, 45),  # a portrait frame: its longer side counts
    ("back", 128, 96, 7.5),  # a frame smaller than the input is enlarged
])
def test_the_smallest_face_is_15_px_of_the_models_input_scaled_to_the_frame(
        model, width, height, smallest):
    assert smallest_face_px(model, width, height) == pytest.approx(smallest)


def test_detect_width_or_put_width_lower_the_detail_only_when_narrower_than_the_input():
    assert smallest_face_px("back", 768, 576, detect_width=640) == pytest.approx(45)
    assert smallest_face_px("back", 768, 576, detect_width=192) == pytest.approx(60)
    assert smallest_face_px("back", 768, 576, None, put_width=192) == pytest.approx(60)


def test_front_on_the_issues_768x576_camera_is_noted_with_back_as_the_fix():
    note = small_face_note(camera(), "face", blazeface("front"), 768, 576)
    assert note == ("camera town-square: face detector 'face' (BlazeFace front, 128 px input) "
                    "sees this 768x576 frame at 1/6: faces smaller than about 90 px are likely "
                    "missed; model: back finds them from about 45 px")


def test_back_on_the_same_camera_finds_small_faces_and_is_not_noted():
    assert smallest_face_px("back", 768, 576) <= SMALL_FACE_PX
    assert small_face_note(camera(), "face", blazeface("back"), 768, 576) is None


def test_at_1080p_even_back_misses_small_faces_and_tiles_are_the_fix():
    note = small_face_note(camera(), "face", blazeface("back"), 1920, 1080)
    assert note is not None
    assert "at 1/7.5: faces smaller than about 112 px are likely missed" in note
    assert note.endswith("tiles: {enabled: true, grid: auto} finds smaller ones, at a model "
                         "call a tile")
    front = small_face_note(camera(), "face", blazeface("front"), 1920, 1080)
    assert front is not None and "model: back finds them from about 112 px; tiles:" in front


def test_a_narrow_detect_width_is_named_with_the_width_that_would_do():
    note = small_face_note(camera(detect_width=192), "face", blazeface("back"), 768, 576)
    assert note is not None
    assert "768x576 frame at 1/4 (detect_width 192): faces smaller than about 60 px" in note
    assert note.endswith("raise detect_width to 256 for faces from about 45 px")


@pytest.mark.parametrize("detector", [
    blazeface("front", tiles=TilesConfig(enabled=True)),  # its tiles see more
    FaceDetectorConfig(),  # Haar: no fixed input
    NanoDetDetectorConfig(),
])
def test_tiled_and_other_detectors_get_no_note(detector):
    assert small_face_note(camera(), "face", detector, 1920, 1080) is None


def test_notes_cover_the_detectors_the_camera_runs_only():
    detectors = {"face": blazeface("front"), "far": blazeface("front")}
    notes = face_notes(camera(detect=["face"]), detectors, 768, 576)
    assert len(notes) == 1 and "'face'" in notes[0]


def test_validate_notes_a_synthetic_camera_and_still_exits_0(tmp_path, capsys):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("cameras:\n"
                     "  - {id: sd, source: {type: synthetic, width: 768, height: 576}}\n"
                     "  - {id: file, source: /data/cam.mp4}\n"
                     "detectors:\n  face: {model: front}\n", encoding="utf-8")
    assert main(["validate", str(fleet)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{fleet}: ok (2 camera(s)")
    assert lines[1:] == [f"{fleet}: note: camera sd: face detector 'face' (BlazeFace front, 128 "
                         "px input) sees this 768x576 frame at 1/6: faces smaller than about "
                         "90 px are likely missed; model: back finds them from about 45 px"]
