"""``camfleet bench accuracy``: the composites put each face exactly where its ground truth says,
matching counts hits, false alarms, misses and ignored boxes right on a hand-made case, and a
tiny run finishes without Ray and returns every field the docs read."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from fleet.bench import accuracy, composites
from fleet.bench import main as bench_main
from fleet.bench.composites import Background, Face, Truth
from fleet.frames import Detection

RED, BLUE, GREY = (0, 0, 255), (255, 0, 0), (90, 90, 90)


def synthetic_face() -> Face:
    """A 'photograph' 200x200: a red face box (60..140) on blue, so pixels say where it went."""
    image = np.full((200, 200, 3), BLUE, np.uint8)
    image[60:140, 60:140] = RED
    return Face("red", image, (60, 60, 80, 80))


def grey_background(people: tuple[int, int, int, int] | None = None) -> Background:
    frame = np.full((1080, 1920, 3), GREY, np.uint8)
    mask = np.zeros((1080, 1920), bool)
    if people:
        x, y, w, h = people
        mask[y:y + h, x:x + w] = True
    return Background(frame, mask)


def compose(sizes: list[int], variant: str = "clean", seed: int = 1,
            background: Background | None = None) -> composites.Composite:
    rng = np.random.default_rng(seed)
    return composites.compose(background or grey_background(), [synthetic_face()], sizes,
                              variant, rng)


# ---------------------------------------------------------------------------- composites
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_face_is_where_its_ground_truth_says(seed):
    sizes = [20, 40, 90, 200]
    made = compose(sizes, seed=seed)
    assert [t.size for t in made.truths] == sizes
    for t in made.truths:
        assert t.h == t.size and t.w == t.size  # the box is square in the photograph
        inside = made.frame[t.y + 1:t.y + t.h - 1, t.x + 1:t.x + t.w - 1]
        assert (inside == RED).all(), f"{t}: the face box is not all face"
        ring = [made.frame[t.y + t.h // 2, t.x - 3], made.frame[t.y + t.h // 2, t.x + t.w + 2],
                made.frame[t.y - 3, t.x + t.w // 2], made.frame[t.y + t.h + 2, t.x + t.w // 2]]
        assert all(tuple(p) != RED for p in ring), f"{t}: face pixels outside the box"


def test_outside_the_pasted_crops_the_background_is_untouched():
    made = compose([30, 140])
    changed = (made.frame != np.asarray(GREY, np.uint8)).any(axis=2)
    ys, xs = np.nonzero(changed)
    for t in made.truths:  # every changed pixel lies within a face's crop (box + margin)
        near = (xs >= t.x - t.w) & (xs < t.x + 2 * t.w) & (ys >= t.y - t.h) & (ys < t.y + 2 * t.h)
        xs, ys = xs[~near], ys[~near]
    assert len(xs) == 0


def test_faces_never_overlap_and_tilt_keeps_the_box_centred():
    clean, tilted = compose(composites.SIZES, "clean"), compose(composites.SIZES, "tilt")
    assert clean.truths == tilted.truths  # same places for every variant
    for a in clean.truths:
        for b in clean.truths:
            assert a is b or accuracy.iou(a, b) == 0
        centre = tilted.frame[a.y + a.h // 2, a.x + a.w // 2]
        assert tuple(centre) == RED
    differs = [(clean.frame[t.y:t.y + t.h, t.x:t.x + t.w] != tilted.frame[t.y:t.y + t.h,
                                                                          t.x:t.x + t.w]).any()
               for t in clean.truths]
    assert all(differs)  # each face was turned


def test_a_pasted_face_hides_the_pedestrians_under_it():
    made = compose([200], background=grey_background(people=(0, 0, 1920, 1080)))
    t = made.truths[0]
    assert made.people is not None
    assert not made.people[t.y:t.y + t.h, t.x:t.x + t.w].any()
    assert made.people[0:5, 0:5].all() or made.people[-5:, -5:].all()


def test_a_768x576_frame_too_small_for_whole_crops_keeps_the_visible_parts_apart():
    sizes = [40, 64, 96, 144]
    small = Background(np.full((576, 768, 3), GREY, np.uint8), np.zeros((576, 768), bool))
    for seed in range(8):
        clean = compose(sizes, "clean", seed, small)
        assert clean.truths == compose(sizes, "tilt", seed, small).truths
        assert all(0 <= t.x and t.x + t.w <= 768 and 0 <= t.y and t.y + t.h <= 576
                   for t in clean.truths)
        shown = [(t.x - t.w // 2, t.y - t.h // 2, 2 * t.w, 2 * t.h) for t in clean.truths]
        for i, a in enumerate(shown):  # face box and margin: never on another face's
            for b in shown[i + 1:]:
                assert (a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1]
                        or b[1] + b[3] <= a[1])


def test_frame_sizes_parse_and_the_default_face_sizes_scale_with_the_frame():
    assert accuracy.parse_frame_size("768x576") == (768, 576)
    with pytest.raises(argparse.ArgumentTypeError, match="WIDTHxHEIGHT"):
        accuracy.parse_frame_size("768")
    assert accuracy.default_sizes(composites.FRAME_SIZE) == list(composites.SIZES)
    assert accuracy.default_sizes((768, 576)) == [11, 16, 21, 32, 48, 75, 107]


@pytest.mark.parametrize("variant", ["low_light", "blur", "jpeg"])
def test_degradations_change_the_frame_but_not_the_truth(variant):
    clean, worse = compose([60], "clean"), compose([60], variant)
    assert clean.truths == worse.truths
    assert worse.frame.shape == clean.frame.shape and worse.frame.dtype == np.uint8
    assert (worse.frame != clean.frame).any()
    if variant == "low_light":
        assert worse.frame.mean() < clean.frame.mean() * 0.6


def test_the_face_photographs_and_backgrounds_load(footage):
    faces = composites.faces()
    assert "hopper" in [f.name for f in faces]
    for f in faces:
        x, y, w, h = f.box
        assert 0 <= x and 0 <= y and x + w <= f.image.shape[1] and y + h <= f.image.shape[0]
    backgrounds = composites.background_frames(2)
    assert backgrounds[0].frame.shape == (1080, 1920, 3)
    assert 0 < backgrounds[0].people.mean() < 0.2  # some pedestrians, mostly empty scene


# ------------------------------------------------------------------------------ matching
def box(x: int, y: int, w: int, h: int, score: float = 0.9) -> Detection:
    return Detection("face", x, y, w, h, score)


def test_matching_counts_hits_false_alarms_misses_and_ignored_boxes():
    a, b = Truth(0, 0, 100, 100, 90, "x"), Truth(300, 0, 40, 40, 40, "y")
    people = np.zeros((1080, 1920), bool)
    people[500:700, 500:700] = True
    found = [box(5, 5, 100, 100, 0.8),  # A, IoU 0.82: a hit
             box(0, 0, 95, 95, 0.95),  # A too, better score: takes A first
             box(1000, 1000, 30, 30),  # nothing there: a false alarm
             box(550, 550, 40, 40)]  # on a pedestrian: ignored
    out = accuracy.match([a, b], found, people=people)
    assert [(t, d.score) for t, d in out.hits] == [(a, 0.95)]
    assert sorted(d.score for d in out.false) == [0.8, 0.9]  # the duplicate and the stray
    assert out.missed == [b]
    assert [d.x for d in out.ignored] == [550]
    tally = accuracy.Tally([40, 90], runs=1)
    tally.add("clean", out)
    assert (tally.total().tp, tally.total().fp, tally.total().fn,
            tally.total().ignored) == (1, 2, 1, 1)
    assert tally.cell("clean", 90).tp == 1 and tally.cell("clean", 40).fn == 1
    assert tally.cell("clean", 40).fp == 1  # the 30 px stray bins with the 40 px faces
    assert tally.total().recall() == 0.5 and tally.total().precision() == pytest.approx(1 / 3)


def test_the_iou_threshold_is_inclusive_and_boxes_bin_by_log_size():
    t = Truth(0, 0, 100, 100, 90, "x")
    exactly = box(0, 0, 100, 40)  # IoU 0.4
    assert accuracy.iou(t, exactly) == pytest.approx(0.4)
    assert len(accuracy.match([t], [exactly]).hits) == 1
    assert not accuracy.match([t], [box(0, 0, 100, 39)]).hits
    sizes = composites.SIZES
    assert [accuracy.bucket(h, sizes) for h in (5, 24, 26, 48, 50, 170, 900)] == [
        20, 20, 30, 40, 60, 200, 200]


# ------------------------------------------------------------------------------- the mode
def tiny_args(tmp_path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    accuracy.add_arguments(parser)
    parser.add_argument("--json")
    parser.add_argument("--address")
    parser.add_argument("--num-cpus", type=int)
    parser.add_argument("--object-store-mb", type=int)
    return parser.parse_args(["--sizes", "40", "90", "--variants", "clean", "--frames", "3",
                              "--kinds", "blazeface-back", "haar", "blazeface-back+tiles:auto",
                              "--plot", str(tmp_path / "acc.png"), *extra])


def test_a_tiny_run_finishes_and_returns_the_fields(tmp_path, footage, capsys):
    results = accuracy.run(tiny_args(tmp_path, "--runs", "2"), lambda _: None)
    assert results["deterministic"] is True
    assert results["sizes"] == [40, 90] and results["match_iou"] == accuracy.MATCH_IOU
    names = [k["name"] for k in results["kinds"]]
    assert names == ["blazeface-back", "haar", "blazeface-back+tiles:auto"]
    for k in results["kinds"]:
        cells = k["by_variant"]["clean"]
        assert set(cells) == {"40", "90", "all"}
        assert cells["all"]["tp"] + cells["all"]["fn"] == 3 * 2  # 3 frames, 2 faces each
        assert k["frames"] == 3 and k["ms_per_frame"] > 0 and len(k["ms_per_frame_runs"]) == 2
        assert 0 < k["cpu_ms_per_frame"] and len(k["cpu_ms_per_frame_runs"]) == 2
    tiled = results["kinds"][2]
    assert tiled["grid"] == "4x2" and tiled["calls_per_frame"] == 9
    assert results["kinds"][0]["calls_per_frame"] == 1
    out = capsys.readouterr().out
    assert "| blazeface-back+tiles:auto | clean |" in out and "Recall by face height" in out
    assert (tmp_path / "acc.png").stat().st_size > 10_000


def test_a_run_at_768x576_says_its_size_and_keeps_back_untiled(tmp_path, footage):
    args = tiny_args(tmp_path, "--frame-size", "768x576", "--sizes", "40", "144", "--plot", "")
    results = accuracy.run(args, lambda _: None)
    assert results["frame_size"] == [768, 576] and results["sizes"] == [40, 144]
    # the frame shrinks only 3x into back's 256 px input: grid auto cuts nothing, no tiled row
    assert [k["name"] for k in results["kinds"]] == ["blazeface-back", "haar"]
    back = results["kinds"][0]["by_variant"]["clean"]
    assert back["144"]["recall"] == 1.0


def test_the_bench_command_runs_accuracy_without_starting_ray(tmp_path, footage, monkeypatch):
    def no_ray(*_: object) -> bool:
        raise AssertionError("bench accuracy started Ray")

    assert bench_main.MODES["accuracy"][0] is accuracy and accuracy.NEEDS_RAY is False
    monkeypatch.setattr(bench_main.runtime, "init_ray", no_ray)
    args = tiny_args(tmp_path, "--kinds", "blazeface-front")
    args.mode, args.json = "accuracy", str(tmp_path / "acc.json")
    assert bench_main.main(args) == 0
    written = json.loads((tmp_path / "acc.json").read_text())
    assert written["kinds"][0]["name"] == "blazeface-front" and "machine" in written
