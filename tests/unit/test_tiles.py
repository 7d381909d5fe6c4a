"""Tiling (fleet/detectors/regions.py): tiles cover the frame, boxes found in a tile map back to
frame pixels exactly, one object seen by several tiles comes back as one box, the frame is read
through views (never copied, never written), and on a real composite BlazeFace finds a 40 px
face with tiles that it misses without."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from pydantic import ValidationError

from fleet.bench import accuracy, composites
from fleet.config import BlazeFaceDetectorConfig, FaceDetectorConfig, parse_fleet
from fleet.config import TilesConfig
from fleet.detectors import build_detector
from fleet.detectors.regions import (
    TiledDetector,
    auto_grid,
    grid_tiles,
    spans,
    suppress,
    with_tiles,
)
from fleet.frames import Detection, FrameMeta

W, H = 1920, 1080


def meta(width: int = W, height: int = H, detect_width: int | None = None) -> FrameMeta:
    return FrameMeta("cam", 0, 0.0, width, height, detect_width)


def frame_with(*squares: tuple[int, int, int]) -> np.ndarray:
    """A black read-only 1080p frame with white squares (x, y, side)."""
    frame = np.zeros((H, W, 3), np.uint8)
    for x, y, side in squares:
        frame[y:y + side, x:x + side] = 255
    frame.flags.writeable = False
    return frame


class SquareFinder:
    """Finds each white square in the image it is given, in that image's pixels, and notes
    what it was given (so tests can see views, not copies)."""

    label = "square"

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def detect(self, image: np.ndarray, meta: FrameMeta) -> list[Detection]:
        self.seen.append(image)
        assert (meta.width, meta.height) == (image.shape[1], image.shape[0])
        white = image[:, :, 0] == 255
        rows, cols = np.flatnonzero(white.any(axis=1)), np.flatnonzero(white.any(axis=0))
        if not len(rows):
            return []
        return [Detection(self.label, int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1),
                          int(rows[-1] - rows[0] + 1), 0.9)]


def tiled(inner: object, **settings: object) -> TiledDetector:
    config = TilesConfig(enabled=True, **settings)  # type: ignore[arg-type]
    return TiledDetector(inner, config)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ layout
@pytest.mark.parametrize(("length", "count", "overlap"),
                         [(1920, 2, 0.2), (1080, 3, 0.2), (1920, 6, 0.25), (1000, 1, 0.2)])
def test_spans_cover_the_frame_with_at_least_the_overlap(length, count, overlap):
    windows = spans(length, count, overlap)
    assert len(windows) == count
    assert windows[0][0] == 0 and windows[-1][0] + windows[-1][1] == length
    assert len({size for _, size in windows}) == 1  # every tile the same size: one model input
    size = windows[0][1]
    for (a, _), (b, _) in zip(windows, windows[1:], strict=False):
        assert a + size - b >= overlap * size - 1  # shared pixels, at least the overlap asked


def test_grid_tiles_mark_only_edges_inside_the_frame():
    tiles = grid_tiles(W, H, 2, 2, 0.2)
    assert len(tiles) == 4
    top_left, bottom_right = tiles[0], tiles[-1]
    assert (top_left.x, top_left.y) == (0, 0)
    assert top_left.inner == (False, False, True, True)
    assert bottom_right.x + bottom_right.w == W and bottom_right.y + bottom_right.h == H
    assert bottom_right.inner == (True, True, False, False)


@pytest.mark.parametrize(("side", "grid"), [(128, (6, 3)), (256, (4, 2)), (320, (2, 1)),
                                            (640, (1, 1)), (2000, (1, 1))])
def test_auto_grid_keeps_tiles_square_and_shrink_at_most_four(side, grid):
    assert auto_grid(W, H, side, 0.2) == grid
    tiles = grid_tiles(W, H, *grid, 0.2)
    assert max(max(t.w, t.h) for t in tiles) / side <= 4 or grid == (1, 1)


def test_auto_grid_follows_the_model_input_and_detect_width(models_present):
    front = tiled(build_detector(BlazeFaceDetectorConfig(model="front")), grid="auto")
    haar = tiled(build_detector(FaceDetectorConfig(type="haar")), grid="auto")
    assert len(front.tiles(W, H, meta(detect_width=640))) == 6 * 3 + 1  # 128 px input
    # Haar sees detect_width: at 640 the frame shrinks 3x, so no tiles; at 320, 6x: 2x1
    assert len(haar.tiles(W, H, meta(detect_width=640))) == 1
    assert len(haar.tiles(W, H, meta(detect_width=320))) == 2 * 1 + 1
    assert len(haar.tiles(W, H, meta(detect_width=None))) == 1  # native: the frame once


# ----------------------------------------------------------------------------- mapping back
def test_a_box_found_in_one_tile_maps_back_to_frame_pixels_exactly():
    finder = SquareFinder()
    detector = tiled(finder, grid=(2, 2), include_full_frame=False)
    found = detector.detect(frame_with((1500, 900, 37)), meta())  # in the bottom-right tile
    assert found == [Detection("square", 1500, 900, 37, 37, 0.9)]
    assert len(finder.seen) == 4  # each tile once, no full frame


def test_one_square_in_the_overlap_of_four_tiles_is_one_box():
    finder = SquareFinder()
    detector = tiled(finder, grid=(2, 2), include_full_frame=True)
    centre = (W // 2 - 20, H // 2 - 20, 40)  # seen whole by all four tiles and the frame
    found = detector.detect(frame_with(centre), meta())
    assert found == [Detection("square", *centre[:2], 40, 40, 0.9)]
    assert len(finder.seen) == 5


def test_a_square_cut_by_a_tile_edge_merges_into_its_whole_box():
    tiles = grid_tiles(W, H, 2, 2, 0.1)
    edge = tiles[0].x + tiles[0].w  # the left tiles end here; the square straddles the edge
    square = (edge - 30, 200, 80)  # 30 px in the left tile (IoU with the whole: 0.375)
    detector = tiled(SquareFinder(), grid=(2, 2), overlap=0.1, include_full_frame=False)
    assert detector.detect(frame_with(square), meta()) == [
        Detection("square", edge - 30, 200, 80, 80, 0.9)]


def test_squares_in_different_tiles_stay_apart_and_labels_never_merge():
    detector = tiled(SquareFinder(), grid=(2, 2), include_full_frame=False)
    found = detector.detect(frame_with((100, 100, 30), (1700, 900, 50)), meta())
    assert sorted((d.x, d.y, d.w) for d in found) == [(100, 100, 30), (1700, 900, 50)]
    face = Detection("face", 0, 0, 50, 50, 0.9)
    assert len(suppress([(face, False), (Detection("mask", 0, 0, 50, 50, 0.8), False)],
                        0.4)) == 2


def test_batches_give_what_single_frames_give():
    frames = [frame_with((W // 2 - 20, H // 2 - 20, 40)), frame_with((10, 10, 60))]
    metas = [meta(), meta()]
    detector = tiled(SquareFinder(), grid=(3, 2))
    assert detector.detect_batch(frames, metas) == [detector.detect(f, m)
                                                     for f, m in zip(frames, metas, strict=True)]
    assert detector.regions == 2 * (6 + 1) * 2 and detector.frames == 4


def test_disabled_tiles_leave_the_detector_as_it_is():
    finder = SquareFinder()
    assert with_tiles(finder, TilesConfig()) is finder
    assert isinstance(with_tiles(finder, TilesConfig(enabled=True)), TiledDetector)


# ---------------------------------------------------------------------- the frame untouched
def test_tiles_are_read_only_views_of_the_frame_never_copies():
    finder = SquareFinder()
    frame = frame_with((500, 500, 40))
    tiled(finder, grid=(3, 2)).detect(frame, meta())
    assert len(finder.seen) == 7
    for view in finder.seen:
        assert np.shares_memory(view, frame)
        assert view.base is frame or view.base is frame.base
        assert not view.flags.writeable  # a write would raise, so none happened


class Touch:
    """Reads one pixel of whatever it gets; allocates nothing."""

    label = "touch"

    def detect(self, image: np.ndarray, meta: FrameMeta) -> list[Detection]:
        _ = int(image[-1, -1, -1])
        return []


@pytest.mark.parametrize("inner", ["touch", "blazeface"])
def test_tiling_allocates_far_less_than_a_frame(inner, request):
    if inner == "blazeface":
        request.getfixturevalue("models_present")
        wrapped = build_detector(BlazeFaceDetectorConfig(model="back"))
    else:
        wrapped = Touch()
    detector = tiled(wrapped, grid=(4, 2))
    frame = frame_with((700, 400, 60))
    detector.detect(frame, meta(detect_width=640))  # warm up: the model's own buffers
    tracemalloc.start()
    try:
        detector.detect(frame, meta(detect_width=640))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < frame.nbytes / 4, f"{peak} bytes traced for a {frame.nbytes}-byte frame"


# ----------------------------------------------------------------------------------- config
def test_tiles_config_takes_a_grid_or_auto_and_checks_bounds():
    assert TilesConfig(grid="auto").grid == "auto"
    assert TilesConfig(grid=(4, 2)).grid == (4, 2)
    for bad in ({"grid": (0, 2)}, {"grid": "big"}, {"overlap": 0.7}, {"nms_iou": 2}):
        with pytest.raises(ValidationError):
            TilesConfig(**bad)  # type: ignore[arg-type]


def test_a_fleet_file_sets_tiles_per_detector():
    fleet = parse_fleet(
        "cameras: [{id: gate, source: 'synthetic', detect: [face, far]}]\n"
        "detectors:\n"
        "  far: {type: blazeface, model: back, tiles: {enabled: true, grid: auto}}\n")
    assert fleet.detectors["far"].tiles.enabled and fleet.detectors["far"].tiles.grid == "auto"
    assert not fleet.detectors["face"].tiles.enabled


# -------------------------------------------------------------------- a real small face
@pytest.fixture(scope="module")
def models_present() -> None:
    from fleet.detectors.blazeface import VARIANTS
    from fleet.detectors.models import models_dir

    missing = [v.file for v in VARIANTS.values() if not (models_dir() / v.file).is_file()]
    if missing:
        pytest.fail(f"BlazeFace models missing ({', '.join(missing)}): run "
                    "`python scripts/fetch_models.py`")


def test_a_40px_face_missed_without_tiles_is_found_with_them(models_present, footage):
    background = composites.background_frames(1)
    frame = next(composites.composites(1, ["clean"], [40], seed=3, backgrounds=background))
    accuracy.read_only(frame.frame)
    face = frame.truths[0]
    plain = build_detector(BlazeFaceDetectorConfig(model="back"))
    with_grid = with_tiles(plain, TilesConfig(enabled=True, grid="auto"))
    look = meta(detect_width=640)
    assert not accuracy.match([face], plain.detect(frame.frame, look)).hits
    found = accuracy.match([face], with_grid.detect(frame.frame, look), people=frame.people)
    assert len(found.hits) == 1 and not found.false
