"""Tracking, object events and track lines on ground truth: boxes from the synthetic scene's
known paths (``fleet.sources.path_box``) fed through the real ByteTrack of ``trackers``, in order
and out of order. No Ray: the camera actor runs this same code on the frames its detectors
return."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any, get_args

import pytest

from fleet.config import CameraConfig, ScenePath
from fleet.config._push import PUSH_EVENTS, PushEvent
from fleet.feed import SHOWN
from fleet.frames import Completion, Detection, DetectionResult, FrameMeta
from fleet.pipeline.reorder import Reorder, Sighting
from fleet.pipeline.tracking import ObjectTracker, quality
from fleet.sources import path_box
from fleet.vocab import EVENT_KINDS

W, H, FPS = 640, 480, 10.0


def camera(**fields: Any) -> CameraConfig:
    return CameraConfig.model_validate({
        "id": "cam", "source": {"type": "synthetic", "width": W, "height": H, "fps": FPS},
        "fps": FPS, **fields,
    })


def completion(index: int, boxes: list[Detection], t0: float = 1000.0) -> Completion:
    meta = FrameMeta("cam", index, t0 + index / FPS, W, H, None)
    result = DetectionResult("blobs", "cam", index, tuple(boxes), 0.001)
    return Completion(meta, 0.0, [result])


def scene(paths: list[ScenePath], frames: int, score: float = 0.9) -> list[list[Detection]]:
    """Each frame's ground-truth boxes (the blobs detector finds exactly these)."""
    out = []
    for index in range(frames):
        t = index / FPS
        boxes = []
        for path in paths:
            if path.start_s <= t < path.end_s:
                x0, y0, x1, y1 = path_box(path, t, W, H)
                boxes.append(Detection("person", x0, y0, x1 - x0 + 1, y1 - y0 + 1, score))
        out.append(boxes)
    return out


def run(tracker: ObjectTracker, frames: list[list[Detection]],
        order: list[int] | None = None) -> list[dict]:
    events: list[dict] = []
    for index in range(len(frames)):
        tracker.expect(completion(index, []).meta)
    for index in order if order is not None else range(len(frames)):
        events += tracker.settle(index, completion(index, frames[index]))
    return events + tracker.close()


def run_with_lines(tracker: ObjectTracker, frames: list[list[Detection]],
                   order: list[int] | None = None) -> tuple[list[dict], list[dict]]:
    """Like :func:`run`, taking the track lines after each settled frame as the camera does."""
    events: list[dict] = []
    lines: list[dict] = []
    for index in range(len(frames)):
        tracker.expect(completion(index, []).meta)
    for index in order if order is not None else range(len(frames)):
        events += tracker.settle(index, completion(index, frames[index]))
        lines += tracker.take_lines()
    events += tracker.close()
    return events, lines + tracker.take_lines()


def shuffled(frames: int, within: int, seed: int) -> list[int]:
    """Frame indices as results come back with ``within`` frames in flight: shuffled in blocks."""
    rng = random.Random(seed)
    order: list[int] = []
    for start in range(0, frames, within):
        chunk = list(range(start, min(frames, start + within)))
        rng.shuffle(chunk)
        order += chunk
    return order


LEFT_TO_RIGHT = ScenePath(start=(0.1, 0.3), end=(0.9, 0.3), start_s=0.5, end_s=6.0)
RIGHT_TO_LEFT = ScenePath(start=(0.9, 0.75), end=(0.1, 0.75), start_s=1.0, end_s=7.0)


def by_track(events: list[dict]) -> dict[str, list[dict]]:
    tracks: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        tracks[event["track"]].append(event)
    return tracks


def test_each_object_is_one_track_with_one_start_and_one_end():
    # given two people on paths that do not cross
    frames = scene([LEFT_TO_RIGHT, RIGHT_TO_LEFT], 80)
    # when the frames are tracked in order
    events = run(ObjectTracker(camera(), "f"), frames)
    # then there are exactly two tracks, each started once and ended once, start first
    tracks = by_track(events)
    assert len(tracks) == 2, tracks.keys()
    for track_events in tracks.values():
        kinds = [e["event"] for e in track_events]
        assert kinds[0] == "start" and kinds[-1] == "end"
        assert kinds.count("start") == 1 and kinds.count("end") == 1
    # and no id switch: every event of a track is on one path (its box stays in its half)
    for track_events in tracks.values():
        halves = {e["box"][1] + e["box"][3] / 2 > H / 2 for e in track_events}
        assert len(halves) == 1


def test_an_object_ends_after_max_disappeared_s_and_a_return_is_a_new_track():
    # given one person who is out of sight for 4 s (max_disappeared_s 3) and comes back
    first = ScenePath(start=(0.1, 0.5), end=(0.5, 0.5), start_s=0.0, end_s=2.0)
    again = ScenePath(start=(0.5, 0.5), end=(0.9, 0.5), start_s=6.0, end_s=8.0)
    frames = scene([first, again], 90)
    events = run(ObjectTracker(camera(tracking={"max_disappeared_s": 3}), "f"), frames)
    tracks = by_track(events)
    # then two tracks; the first ended while the person was away, about 3 s after last seen
    assert len(tracks) == 2
    ends = sorted((e for e in events if e["event"] == "end"), key=lambda e: e["frame"])
    assert ends[0]["last_seen"] < 1000 + 2.0
    end_order = [e["event"] for e in events]
    assert end_order.index("end") < [i for i, e in enumerate(events)
                                     if e["event"] == "start"][1]
    assert 1.5 <= ends[0]["duration_s"] <= 2.0


def test_results_out_of_order_give_the_same_tracks_as_in_order():
    frames = scene([LEFT_TO_RIGHT, RIGHT_TO_LEFT], 80)
    in_order = run(ObjectTracker(camera(), "f", session="s"), frames)
    # results come back shuffled within 4 frames (4 buffers in flight)
    tracker = ObjectTracker(camera(), "f", session="s")
    out_of_order = run(tracker, frames, shuffled(80, 4, seed=7))
    assert tracker.late == 0
    strip = [(e["event"], e["track"], e["frame"]) for e in in_order]
    assert [(e["event"], e["track"], e["frame"]) for e in out_of_order] == strip


def test_a_result_later_than_the_reorder_window_is_counted_not_fed():
    reorder = Reorder(window=2)
    for index in range(5):
        reorder.expect(index, float(index))
    fed = []
    for index in (1, 2, 3, 0, 4):  # 0 is held up behind a slow detector
        fed += [s.meta.index for s in reorder.arrive(index, Sighting.of(completion(index, [])))]
    assert fed == [1, 2, 3, 4]  # the window (2) overflowed at 3: 1 went on without 0
    assert reorder.late == 1


def test_reorder_waits_only_for_frames_still_out():
    reorder = Reorder(window=8)
    reorder.expect(0, 0.0)
    reorder.expect(1, 0.1)
    assert reorder.arrive(1, Sighting.of(completion(1, []))) == []  # 0 is still out
    assert reorder.oldest_out() == 0.0
    fed = reorder.arrive(0, None)  # 0 was lost: nothing to track, but 1 may go on
    assert [s.meta.index for s in fed] == [1]


def test_one_detection_is_not_an_object_and_low_scores_are_not_tracked():
    # a single box, then a track whose scores stay under the threshold, then boxes under min_score
    frames: list[list[Detection]] = [[] for _ in range(60)]
    frames[3] = [Detection("person", 100, 100, 50, 120, 0.95)]
    for index in range(10, 30):
        frames[index] = [Detection("person", 300 + index, 100, 50, 120, 0.4)]
    for index in range(35, 55):
        frames[index] = [Detection("person", 100 + index, 300, 50, 120, 0.2)]
    events = run(ObjectTracker(camera(tracking={"threshold": 0.5, "min_score": 0.3}), "f"),
                 frames)
    assert events == []


def test_track_ids_are_unique_across_restarts_and_independent_per_camera():
    frames = scene([LEFT_TO_RIGHT], 70)
    first = {e["track"] for e in run(ObjectTracker(camera(), "f"), frames)}
    other = ObjectTracker(camera(), "f")  # a restarted camera actor: a new session
    second = {e["track"] for e in run(other, frames)}
    assert len(first) == len(second) == 1 and first.isdisjoint(second)
    # the trackers library's id counter is shared by the process; ours are per camera
    assert next(iter(second)).endswith("-1")


def test_zone_enter_and_leave_at_the_frames_the_anchor_crosses():
    # given a zone over the middle third of the frame and a person walking left to right
    zone = {"name": "middle", "polygon": [[0.33, 0], [0.66, 0], [0.66, 1], [0.33, 1]]}
    path = ScenePath(start=(0.05, 0.5), end=(0.95, 0.5), start_s=0.0, end_s=9.0)
    frames = scene([path], 100)
    events = run(ObjectTracker(camera(zones=[zone]), "f"), frames)
    entered = [e for e in events if e["event"] == "enter"]
    left = [e for e in events if e["event"] == "leave"]
    assert len(entered) == 1 and len(left) == 1 and entered[0]["zone"] == "middle"

    def centre_x(index: int) -> float:
        x0, _, x1, _ = path_box(path, index / FPS, W, H)
        return (x0 + x1) / 2  # the bottom-centre anchor's x

    # then enter is the first frame whose anchor is inside, leave the first one past it
    first_in = min(i for i in range(100) if frames[i] and 0.33 * W <= centre_x(i) <= 0.66 * W)
    first_out = min(i for i in range(first_in, 100) if frames[i] and centre_x(i) > 0.66 * W)
    assert abs(entered[0]["frame"] - first_in) <= 1
    assert abs(left[0]["frame"] - first_out) <= 1
    # and an update carries the zone change
    assert any(e["event"] == "update" and e["zones"] == ["middle"] for e in events)


def test_loitering_after_loitering_s_once_per_visit():
    zone = {"name": "door", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "loitering_s": 2.0}
    still = ScenePath(start=(0.5, 0.5), end=(0.52, 0.5), start_s=0.0, end_s=5.0)
    events = run(ObjectTracker(camera(zones=[zone]), "f"), scene([still], 60))
    loiter = [e for e in events if e["event"] == "loiter"]
    enter = [e for e in events if e["event"] == "enter"]
    assert len(loiter) == 1
    waited = (loiter[0]["frame"] - enter[0]["frame"]) / FPS
    assert 2.0 <= waited <= 2.0 + 2 / FPS


def test_a_zone_ignores_labels_it_does_not_list():
    zone = {"name": "cars", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "objects": ["car"]}
    events = run(ObjectTracker(camera(zones=[zone]), "f"), scene([LEFT_TO_RIGHT], 70))
    assert not [e for e in events if e["event"] in ("enter", "leave", "loiter")]


def test_a_masked_region_is_never_tracked():
    mask = {"polygon": [[0, 0], [1, 0], [1, 0.5], [0, 0.5]]}  # the top half
    events = run(ObjectTracker(camera(masks=[mask]), "f"),
                 scene([LEFT_TO_RIGHT, RIGHT_TO_LEFT], 80))
    tracks = by_track(events)
    assert len(tracks) == 1  # only the person in the bottom half
    assert all(e["box"][1] > H / 2 for e in events)


def test_updates_are_throttled_to_the_interval():
    still = ScenePath(start=(0.5, 0.5), end=(0.5, 0.5), start_s=0.0, end_s=20.0)
    tracker = ObjectTracker(camera(tracking={"update_interval_s": 5}), "f")
    events = run(tracker, scene([still], 200))
    kinds = Counter(e["event"] for e in events)
    assert kinds["start"] == 1 and kinds["end"] == 1
    assert 3 <= kinds["update"] <= 4  # every 5 s over ~20 s, not every frame


class FakeSnapshots:
    """Records what the tracker would write (pure logic: the real writer has its own test)."""

    def __init__(self) -> None:
        self.saved: dict[str, list[int]] = defaultdict(list)

    def encode(self, frame, meta: FrameMeta, box: Detection) -> bytes:
        return f"{meta.index}".encode()

    def save(self, track: str, jpeg: bytes) -> str:
        self.saved[track].append(int(jpeg))
        return f"snapshots/cam/{track}.jpg"


def test_the_best_snapshot_is_big_and_sure_and_not_cut_off_and_never_for_a_non_object():
    def frame(index: int) -> Completion:
        done = completion(index, boxes[index])
        done.view = lambda: None
        return done

    boxes: list[list[Detection]] = [[] for _ in range(60)]
    for index in range(5, 40):  # a person growing as they come closer; the last frames cut off
        size = 40 + index * 4
        y = 0 if index >= 35 else 30  # from frame 35 on the head is cut off by the top edge
        boxes[index] = [Detection("person", 200, y, size // 2, size, 0.9)]
    boxes[50] = [Detection("person", 500, 50, 40, 80, 0.9)]  # one lucky box: never an object
    snaps = FakeSnapshots()
    tracker = ObjectTracker(camera(), "f", snaps)
    for index in range(60):
        tracker.expect(frame(index).meta)
    events = []
    for index in range(60):
        events += tracker.settle(index, frame(index))
    events += tracker.close()
    assert len(snaps.saved) == 1  # the single box wrote nothing
    (track, written), = snaps.saved.items()
    assert max(written) < 35  # the cut-off boxes (touching the edge) lost to the biggest whole one
    end = [e for e in events if e["event"] == "end"][0]
    assert end["snapshot"] == f"snapshots/cam/{track}.jpg"
    start = [e for e in events if e["event"] == "start"][0]
    assert start["snapshot"] is not None  # written at the start from the best so far


def test_quality_halves_for_boxes_on_the_edge():
    inside = Detection("p", 10, 10, 50, 50, 0.8)
    edge = Detection("p", 0, 10, 50, 50, 0.8)
    assert quality(edge, W, H) == pytest.approx(quality(inside, W, H) / 2)


def test_held_results_keep_at_most_max_views_frames():
    # given results held back behind a slow frame 0, each with its frame's view
    reorder = Reorder(window=32, max_views=2)
    for index in range(6):
        reorder.expect(index, float(index))
    held = []
    for index in range(1, 6):
        done = completion(index, [Detection("p", 1, 1, 5, 5, 0.9)])
        done.view = lambda: None
        sighting = Sighting.of(done)
        held.append(sighting)
        assert reorder.arrive(index, sighting) == []
    # then only the first two still pin their frames in the object store
    assert [s.view is not None for s in held] == [True, True, False, False, False]
    assert len(reorder.arrive(0, None)) == 5  # and all are tracked once frame 0 settles


def test_a_camera_that_tracks_nothing_never_loads_the_tracker_library():
    # trackers brings supervision and scipy (about 80 MB per camera actor): only on a first box
    import subprocess
    import sys

    code = ("import sys; from tests.unit.test_tracking import camera; "
            "from fleet.pipeline.tracking import ObjectTracker; t = ObjectTracker(camera(), 'f'); "
            "t.close(); print(sorted(m for m in ('supervision', 'trackers', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_every_list_of_event_types_names_every_event():
    # the tracker's counters and the report's order (both EVENT_KINDS), what push sinks may
    # select, the live feed
    assert set(EVENT_KINDS) == set(PUSH_EVENTS) == set(get_args(PushEvent))
    assert set(SHOWN) <= set(EVENT_KINDS)


# ------------------------------------------------------------------------------ track lines
def test_track_lines_come_in_capture_order_with_the_fed_boxes_when_results_come_out_of_order():
    frames = scene([LEFT_TO_RIGHT, RIGHT_TO_LEFT], 80)
    _, in_order = run_with_lines(ObjectTracker(camera(), "f", session="s", track_lines=True),
                                 frames)
    # when results come back shuffled within 4 frames (4 buffers in flight)
    tracker = ObjectTracker(camera(), "f", session="s", track_lines=True)
    _, lines = run_with_lines(tracker, frames, shuffled(80, 4, seed=7))
    # then the lines are in capture order, the same lines as when results come in order
    assert tracker.late == 0
    assert [line["frame"] for line in lines] == sorted(line["frame"] for line in lines)
    assert lines == in_order
    # and each line is a box fed on its frame, in its pixels, with its score and capture time
    for line in lines:
        fed = {(b.x, b.y, b.w, b.h): b.score for b in frames[line["frame"]]}
        assert tuple(line["box"]) in fed and line["score"] == fed[tuple(line["box"])]
        assert line["time"] == round(1000 + line["frame"] / FPS, 6)
        assert (line["type"], line["camera"], line["label"]) == ("track", "cam", "person")
    # and each person is one track with a line on every frame of their path from the one
    # ByteTrack confirmed it on (the min_frames-th), boxes never swapped between them
    confirmed = camera().tracking.min_frames - 1
    tracks = by_track(lines)
    assert len(tracks) == 2
    for path in (LEFT_TO_RIGHT, RIGHT_TO_LEFT):
        on_path = [i for i in range(80) if path.start_s <= i / FPS < path.end_s]
        lower = path.start[1] > 0.5
        mine = [t for t in tracks.values() if (t[0]["box"][1] > H / 2) == lower]
        assert len(mine) == 1 and [line["frame"] for line in mine[0]] == on_path[confirmed:]
        assert all((line["box"][1] > H / 2) == lower for line in mine[0])


def test_a_track_has_lines_before_its_start_with_the_id_it_keeps_and_a_lone_box_has_none():
    # given a person found surely once, then unsurely for 10 frames (a track, not yet an
    # object), then surely; and an unsure box elsewhere that never becomes a track
    frames: list[list[Detection]] = [[] for _ in range(40)]
    settings = camera().tracking
    unsure = (settings.min_score + settings.threshold) / 2  # continues a track, never starts one
    for index in range(5, 35):
        score = 0.9 if index == 5 or index >= 15 else unsure
        frames[index].append(Detection("person", 100 + 2 * index, 200, 50, 120, score))
        frames[index].append(Detection("person", 500, 40, 40, 80, unsure))
    events, lines = run_with_lines(ObjectTracker(camera(), "f", track_lines=True), frames)
    (start,) = [e for e in events if e["event"] == "start"]
    # then every line is the person's track, under the id its start event carries, from the
    # frame ByteTrack confirmed it on (its min_frames-th)
    confirmed = 5 + camera().tracking.min_frames - 1
    assert {line["track"] for line in lines} == {start["track"]}
    assert [line["frame"] for line in lines] == list(range(confirmed, 35))
    # and the lines before the start say so; from the start's frame on they say started
    assert [line["frame"] for line in lines if not line["started"]] == list(
        range(confirmed, start["frame"]))
    assert start["frame"] > 15  # the median score reached the threshold only then


def test_masked_boxes_have_no_track_lines():
    mask = {"polygon": [[0, 0], [1, 0], [1, 0.5], [0, 0.5]]}  # the top half
    _, lines = run_with_lines(ObjectTracker(camera(masks=[mask]), "f", track_lines=True),
                              scene([LEFT_TO_RIGHT, RIGHT_TO_LEFT], 80))
    assert lines and all(line["box"][1] > H / 2 for line in lines)
    assert len({line["track"] for line in lines}) == 1


def test_no_track_line_is_built_when_track_lines_are_off(monkeypatch):
    def built(*args: Any) -> dict:
        raise AssertionError("a track line was built with track_lines off")

    monkeypatch.setattr(ObjectTracker, "_line", built)
    events, lines = run_with_lines(ObjectTracker(camera(), "f"), scene([LEFT_TO_RIGHT], 70))
    assert events and lines == []


# ------------------------------------------------------------------------------ stationary
WALK_IN = ScenePath(start=(0.1, 0.5), end=(0.5, 0.5), start_s=0.0, end_s=3.0)
PARKED = ScenePath(start=(0.5, 0.5), end=(0.5, 0.5), start_s=3.0, end_s=123.0)
CREEP_OUT = ScenePath(start=(0.5, 0.5), end=(0.9, 0.5), start_s=123.0, end_s=135.0)  # 2 px/frame
BAY = {"name": "bay", "polygon": [[0.4, 0.3], [0.6, 0.3], [0.6, 0.7], [0.4, 0.7]],
       "loitering_s": 30}


def seconds(event: dict) -> float:
    return event["frame"] / FPS


def test_an_object_that_stops_sends_one_stationary_event_and_no_updates_until_it_moves():
    # given a person who walks into a bay, stands there for 2 minutes and creeps out
    tracker = ObjectTracker(camera(zones=[BAY], tracking={"stationary_s": 10,
                                                          "update_interval_s": 5}), "f")
    events = run(tracker, scene([WALK_IN, PARKED, CREEP_OUT], 1350))
    assert len(by_track(events)) == 1
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    # then one stationary event, 10 s after they stopped (and the median caught up)
    (still,) = [e for e in events if e["event"] == "stationary"]
    assert 13.0 <= seconds(still) <= 13.5 and still["stationary"] is True
    # and no update at all while they stand, though update_interval_s is 5 s
    after = events[events.index(still) + 1:]
    moved = next(e for e in after if e["event"] == "update")
    assert 123.0 < seconds(moved) <= 124.0 and moved["stationary"] is False
    # but zone events still come: they loiter in the bay while stationary
    between = [e["event"] for e in after[:after.index(moved)]]
    assert between == ["loiter"]
    # and once they move, periodic updates come again (every 5 s) until they leave the bay
    later = [seconds(e) for e in after[after.index(moved):] if e["event"] == "update"]
    gaps = [b - a for a, b in zip(later, later[1:], strict=False)]
    assert len(later) >= 3 and max(gaps) <= 5.0 + 1e-9
    assert "leave" in [e["event"] for e in after]


def test_detector_jitter_and_a_one_frame_glitch_do_not_break_stationarity():
    # given a parked box that jitters by up to 3 px (position and size) every frame, and
    # every 10 s jumps 25 px for one frame (a passer-by merged with it)
    rng = random.Random(3)
    frames = scene([PARKED.model_copy(update={"start_s": 0.0, "end_s": 60.0})], 600)
    for index, boxes in enumerate(frames):
        (box,) = boxes
        jump = 25 if index % 100 == 50 else 0
        boxes[0] = Detection(box.label, box.x + rng.randint(-3, 3) + jump,
                             box.y + rng.randint(-3, 3), box.w + rng.randint(-3, 3),
                             box.h + rng.randint(-3, 3), box.score)
    tracker = ObjectTracker(camera(tracking={"stationary_s": 10, "update_interval_s": 5}), "f")
    events = run(tracker, frames)
    kinds = Counter(e["event"] for e in events)
    # then it is stationary once, about 10 s in, and never sends an update after that
    assert kinds["stationary"] == 1 and kinds["end"] == 1
    still = next(e for e in events if e["event"] == "stationary")
    assert 10.0 <= seconds(still) <= 10.5
    assert not [e for e in events[events.index(still):] if e["event"] == "update"]


def test_an_object_creeping_along_is_never_stationary():
    # 6 px a second: within the tolerance (10% of a 109 px diagonal) from frame to frame, but
    # it adds up from where the clock started
    creep = ScenePath(start=(0.2, 0.5), end=(0.8, 0.5), start_s=0.0, end_s=60.0)
    tracker = ObjectTracker(camera(tracking={"stationary_s": 5, "update_interval_s": 5}), "f")
    kinds = Counter(e["event"] for e in run(tracker, scene([creep], 600)))
    assert kinds["stationary"] == 0 and kinds["update"] >= 10


def test_with_stationary_s_none_a_parked_object_keeps_sending_periodic_updates():
    parked = PARKED.model_copy(update={"start_s": 0.0, "end_s": 40.0})
    tracker = ObjectTracker(camera(tracking={"stationary_s": None, "update_interval_s": 5}), "f")
    kinds = Counter(e["event"] for e in run(tracker, scene([parked], 400)))
    assert kinds["stationary"] == 0 and kinds["update"] >= 7

