"""MOT scoring (fleet.bench.mot_score) on synthetic ground truth that each test writes itself:
people walking in lanes of their own, in MOTChallenge's gt.txt format, and camfleet's track
lines built from the same boxes. Never the PETS file: its licence keeps it out of the repo."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleet.bench.mot_score import (
    GtBox,
    TrackBox,
    Tracks,
    detection_score,
    read_gt,
    read_tracks,
    score,
)
from tests.conftest import REPO

FRAMES = 20
PEOPLE = 3


def walker(person: int, frame: int) -> tuple[float, float, float, float]:
    """Person ``person``'s box in clip frame ``frame``: lanes 150 px apart, 3 px a frame."""
    return (40.0 + 3 * frame, 50.0 + 150 * person, 40.0, 100.0)


def write_gt(path: Path, rows: list[tuple[int, int, tuple[float, ...], int]]) -> Path:
    """MOT15 lines (1-based frames, world coordinates -1) for (clip frame, id, box, flag)."""
    path.write_text("".join(
        f"{frame + 1},{pid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{flag},-1,-1,-1\n"
        for frame, pid, (x, y, w, h), flag in rows))
    return path


def scene_rows(frames: int = FRAMES, people: int = PEOPLE) -> list[Any]:
    return [(f, p + 1, walker(p, f), 1) for f in range(frames) for p in range(people)]


@pytest.fixture
def gt(tmp_path: Path) -> dict[int, tuple[GtBox, ...]]:
    return read_gt(write_gt(tmp_path / "gt.txt", scene_rows()))


def tracks_of(boxes: Callable[[int], list[tuple[str, tuple[float, ...]]]],
              frames: range = range(FRAMES), starts: tuple[int, ...] = ()) -> Tracks:
    """Tracks whose frame ``f`` holds ``boxes(f)`` as (track id, box) pairs."""
    return Tracks({f: tuple(TrackBox(t, b, True) for t, b in boxes(f)) for f in frames}, starts)


def perfect(frame: int) -> list[tuple[str, tuple[float, ...]]]:
    return [(f"cam-{p}", walker(p, frame)) for p in range(PEOPLE)]


def test_read_gt_maps_gt_frame_k_plus_1_to_clip_frame_k_and_keeps_the_flag(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,7,10,20,30,40,1,-1,-1,-1\n1,8,0,0,5,5,0,-1,-1,-1\n"
                    "3,7,11.5,20,30,40,1,-1,-1,-1,extra\n\n4,9,1,2,3,4\n")
    gt = read_gt(path)
    assert sorted(gt) == [0, 2, 3]
    assert gt[0] == (GtBox(7, (10.0, 20.0, 30.0, 40.0), True),
                     GtBox(8, (0.0, 0.0, 5.0, 5.0), False))
    assert gt[2] == (GtBox(7, (11.5, 20.0, 30.0, 40.0), True),)
    assert gt[3][0].scored  # no flag column: scored


def test_read_gt_names_the_line_it_cannot_read(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,7,10,20,30,40,1\n2,7,ten,20,30,40,1\n")
    with pytest.raises(ValueError, match=r"gt.txt:2"):
        read_gt(path)


def test_perfect_tracks_score_one_everywhere(gt):
    result = score(gt, tracks_of(perfect))
    assert result["MOTA"] == pytest.approx(1.0)
    assert result["IDF1"] == pytest.approx(1.0)
    assert result["HOTA"] == pytest.approx(1.0)
    assert result["MOTP"] == pytest.approx(1.0)
    assert (result["id_switches"], result["fragmentations"]) == (0, 0)
    assert (result["precision"], result["recall"]) == (1.0, 1.0)
    assert (result["gt_ids"], result["frames"], result["gt_boxes"]) == (PEOPLE, FRAMES, 60)


def test_two_ids_swapped_halfway_are_two_switches_and_half_the_identity(gt):
    def swapped(frame: int) -> list[tuple[str, tuple[float, ...]]]:
        names = ["cam-0", "cam-1", "cam-2"] if frame < 10 else ["cam-1", "cam-0", "cam-2"]
        return [(names[p], walker(p, frame)) for p in range(PEOPLE)]

    result = score(gt, tracks_of(swapped))
    assert result["id_switches"] == 2  # person 1 and person 2 each change track once
    assert result["MOTA"] == pytest.approx(1 - 2 / 60)
    # people 1 and 2 keep their best track for 10 of 20 frames; person 3 for all 20
    assert result["IDF1"] == pytest.approx((10 + 10 + 20) / 60)
    assert result["recall"] == 1.0 and result["HOTA"] < 0.9


def test_each_missed_box_lowers_recall_by_one_gt_box(gt):
    missed = {(2, 5), (2, 6), (2, 7), (0, 12), (1, 3), (1, 19)}  # (person, frame)

    def missing(frame: int) -> list[tuple[str, tuple[float, ...]]]:
        return [(f"cam-{p}", walker(p, frame)) for p in range(PEOPLE) if (p, frame) not in missed]

    result = score(gt, tracks_of(missing))
    assert result["recall"] == pytest.approx(1 - 6 / 60)
    assert result["misses"] == 6 and result["precision"] == 1.0
    assert result["MOTA"] == pytest.approx(1 - 6 / 60)
    # person 3 comes back after 5-7, person 1 after 12, person 2 after 3 (not after 19: the end)
    assert result["fragmentations"] == 3


def test_false_positives_lower_precision_and_not_recall(gt):
    def extra(frame: int) -> list[tuple[str, tuple[float, ...]]]:
        ghost = [("ghost", (600.0, 10.0, 30.0, 30.0))] if frame % 4 == 0 else []
        return perfect(frame) + ghost

    result = score(gt, tracks_of(extra))
    assert result["false_positives"] == 5
    assert result["precision"] == pytest.approx(60 / 65)
    assert result["recall"] == 1.0


def test_a_track_on_a_dont_care_box_is_neither_a_hit_nor_a_false_positive(tmp_path):
    crowd = (400.0, 400.0, 50.0, 80.0)
    rows = scene_rows() + [(f, 99, crowd, 0) for f in range(FRAMES)]
    gt = read_gt(write_gt(tmp_path / "gt.txt", rows))

    def on_crowd(frame: int) -> list[tuple[str, tuple[float, ...]]]:
        # the crowd is tracked in the first half only: a miss of it later is not counted
        return perfect(frame) + ([("crowd", crowd)] if frame < 10 else [])

    result = score(gt, tracks_of(on_crowd))
    assert (result["precision"], result["recall"], result["MOTA"]) == (1.0, 1.0, 1.0)
    assert result["dont_care_matches"] == 10
    assert (result["gt_boxes"], result["track_boxes"], result["gt_ids"]) == (60, 60, PEOPLE)
    raw = {f: [b for _, b in on_crowd(f)] for f in range(FRAMES)}
    assert detection_score(gt, raw)["precision"] == 1.0
    assert detection_score(gt, raw)["recall"] == 1.0


def test_a_box_beside_a_dont_care_box_is_still_a_false_positive(tmp_path):
    rows = scene_rows() + [(f, 99, (400.0, 400.0, 50.0, 80.0), 0) for f in range(FRAMES)]
    gt = read_gt(write_gt(tmp_path / "gt.txt", rows))
    raw = {f: [walker(p, f) for p in range(PEOPLE)] + [(470.0, 400.0, 50.0, 80.0)]
           for f in range(FRAMES)}
    assert detection_score(gt, raw)["false_positives"] == FRAMES


def test_frames_limits_scoring_to_the_analysed_frames(gt):
    every_other = range(0, FRAMES, 2)

    def garbage_on_odd(frame: int) -> list[tuple[str, tuple[float, ...]]]:
        return perfect(frame) if frame % 2 == 0 else [("ghost", (600.0, 10.0, 30.0, 30.0))]

    analysed = score(gt, tracks_of(garbage_on_odd), frames=every_other)
    assert (analysed["MOTA"], analysed["recall"], analysed["precision"]) == (1.0, 1.0, 1.0)
    assert analysed["frames"] == 10 and analysed["fragmentations"] == 0
    everything = score(gt, tracks_of(garbage_on_odd))
    assert everything["recall"] == pytest.approx(0.5)
    assert everything["false_positives"] == 10


def test_by_default_every_frame_of_the_gt_span_is_scored_even_one_with_nobody(tmp_path):
    rows = [r for r in scene_rows() if not 10 <= r[0] < 15]  # nobody in frames 10-14
    gt = read_gt(write_gt(tmp_path / "gt.txt", rows))
    tracks = tracks_of(lambda f: perfect(f) if f < 10 or f >= 15 else [("ghost", walker(0, f))])
    result = score(gt, tracks)
    assert result["frames"] == FRAMES and result["false_positives"] == 5


def test_objects_per_person_counts_the_starts_in_the_scored_span(gt):
    tracks = tracks_of(perfect, starts=(0, 0, 0, 8, 30))  # 30: past the gt's last frame
    result = score(gt, tracks)
    assert result["objects_started"] == 4
    assert result["objects_per_gt_person"] == pytest.approx(4 / 3)


def test_detection_score_counts_hits_misses_and_false_positives(gt):
    raw = {f: [walker(p, f) for p in range(PEOPLE - 1)] for f in range(FRAMES)}  # no person 3
    raw[0] = raw[0] + [(700.0, 700.0, 20.0, 20.0)]
    result = detection_score(gt, raw)
    assert (result["true_positives"], result["false_positives"], result["misses"]) == (40, 1, 20)
    assert result["recall"] == pytest.approx(40 / 60)
    assert result["precision"] == pytest.approx(40 / 41)


def test_a_box_overlapping_less_than_the_iou_is_a_miss_and_a_false_positive(gt):
    shifted = {f: [(x + 30, y, w, h) for x, y, w, h in (walker(p, f) for p in range(PEOPLE))]
               for f in range(FRAMES)}  # IoU 10/70 with the true box
    assert detection_score(gt, shifted)["recall"] == 0.0
    assert detection_score(gt, shifted, iou=0.1)["recall"] == 1.0


def event_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"type": "tra')
    return path


def test_read_tracks_keeps_track_lines_and_counts_starts(tmp_path):
    def track(frame: int, name: str, started: bool = True, camera: str = "town") -> dict:
        return {"type": "track", "camera": camera, "frame": frame, "time": 1.0 + frame,
                "track": name, "label": "person", "box": [1, 2, 3, 4], "score": 0.8,
                "started": started}

    path = event_lines(tmp_path / "events.jsonl", [
        {"type": "frame", "camera": "town", "frame": 0, "detections": []},
        track(0, "town-a-1", started=False),
        {"type": "object", "event": "start", "camera": "town", "track": "town-a-1", "frame": 1},
        track(1, "town-a-1"), track(1, "town-a-2"),
        {"type": "object", "event": "update", "camera": "town", "track": "town-a-1", "frame": 1},
        {"type": "object", "event": "start", "camera": "other", "track": "other-1", "frame": 1},
        track(1, "other-1", camera="other"),
        {"type": "object", "event": "end", "camera": "town", "track": "town-a-1", "frame": 2},
    ])
    tracks = read_tracks(path, "town")
    assert sorted(tracks.frames) == [1]
    assert [t.track for t in tracks.frames[1]] == ["town-a-1", "town-a-2"]
    assert tracks.frames[1][0].box == (1.0, 2.0, 3.0, 4.0)
    assert tracks.starts == 1 and tracks.start_frames == (1,)
    assert tracks.skipped_lines == 1  # the line cut short at the end
    everything = read_tracks(path, "town", started_only=False)
    assert sorted(everything.frames) == [0, 1] and not everything.frames[0][0].started


def test_read_tracks_refuses_a_track_twice_in_one_frame(tmp_path):
    line = {"type": "track", "camera": "c", "frame": 3, "track": "t", "box": [0, 0, 1, 1]}
    path = event_lines(tmp_path / "events.jsonl", [line, line])
    with pytest.raises(ValueError, match="twice in frame 3"):
        read_tracks(path, "c")


def test_the_module_imports_and_scores_detections_without_motrics():
    code = ("import sys; sys.modules['motrics'] = None; "
            "from fleet.bench.mot_score import detection_score, GtBox; "
            "r = detection_score({0: (GtBox(1, (0, 0, 10, 10), True),)}, {0: [(0, 0, 10, 10)]}); "
            "assert r['recall'] == 1.0, r")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
