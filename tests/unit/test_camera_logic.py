"""The camera pipeline's pure logic, with a fake hand-off: fps limit, slots, drop policies,
accounting, backoff. Real Ray is in tests/integration."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import asdict

import numpy as np
import pytest

from fleet.config import parse_fleet
from fleet.detectors import Detection
from fleet.errors import EndOfStreamError
from fleet.frames import Completion, DetectionResult, FrameMeta
from fleet.backoff import Backoff
from fleet.pipeline.camera import Camera, FpsLimiter
from fleet.sinks.events import EventSink
from tests.helpers import check_run_folder, free_port, wait_until

pytestmark = pytest.mark.timeout(60)


class ListSource:
    """Frames from a list; ``grab`` fails with end of stream after the last."""

    description, pace_fps, native_fps = "list", 0.0, 30.0

    def __init__(self, count: int, shape=(48, 64, 3)):
        self.count, self.shape, self.i = count, shape, -1
        self.decoded = 0

    def open(self) -> None:
        self.i = -1

    def grab(self) -> None:
        self.i += 1
        if self.i >= self.count:
            raise EndOfStreamError("done")

    def retrieve(self, into):
        self.decoded += 1
        frame = into if into is not None else np.empty(self.shape, np.uint8)
        frame.fill(self.i % 255)
        return frame

    def close(self) -> None:
        pass


class HeldDispatcher:
    """Holds submitted frames until the test releases them, like a detector that is busy."""

    def __init__(self, label: str = "face"):
        self.lock = threading.Lock()
        self.held: list[Completion] = []
        self.released: list[Completion] = []
        self.seen_values: list[int] = []
        self.label = label

    def submit(self, frame, meta: FrameMeta, started: float) -> None:
        self.seen_values.append(int(frame[0, 0, 0]))  # what ray.put would have copied
        result = DetectionResult("face", meta.camera, meta.index,
                                 (Detection(self.label, 1, 2, 3, 4, 0.9),), 0.001)
        with self.lock:
            self.held.append(Completion(meta, started, results=[result]))

    def release_all(self) -> None:
        with self.lock:
            self.released.extend(self.held)
            self.held = []

    def wait(self, timeout_s: float):
        time.sleep(min(timeout_s, 0.005))
        with self.lock:
            done, self.released = self.released, []
        return done

    def outstanding(self):
        with self.lock:
            return {"actor-1": len(self.held)} if self.held else {}

    def locality(self):
        return (0, 0, 0)

    def abandon(self):
        with self.lock:
            left, self.held = self.held, []
        return left


class NullSink:
    """Counts frames; keeps object events (the EventSink interface, no files)."""

    fleet = "test"
    object_snapshots = None
    track_lines = False

    def __init__(self):
        self.events = 0
        self.object_events: list[dict] = []
        self.states: list[str] = []

    def emit(self, meta, results, latency_s, frame=None):
        self.events += 1

    def objects(self, events):
        self.object_events += events

    def set_state(self, state):
        self.states.append(state)

    def push_stats(self):
        return []

    def tick(self):
        pass

    def close(self, timeout_s=5.0):
        return []


def camera(policy: str, buffers: int, frames: int, fps: float = 240.0):
    config = parse_fleet(f"""
cameras: [{{id: cam, source: synthetic, fps: {fps}, buffers: {buffers}, drop_policy: {policy}}}]
""", env={}).cameras[0]
    dispatcher = HeldDispatcher()
    cam = Camera(config, ListSource(frames), dispatcher, NullSink())
    cam.media_time = True  # limit on the list's 30 fps timeline, not on the wall clock
    return cam, dispatcher


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
def test_busy_detectors_drop_frames_with_a_reason_and_every_frame_is_accounted(policy):
    # given a camera with 2 slots whose detector never answers while 20 frames arrive
    cam, dispatcher = camera(policy, buffers=2, frames=20)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    stats = cam.stats()
    # then only 2 frames went out, the rest waited or were dropped for want of a slot
    waiting = 1 if policy == "drop_oldest" else 0
    assert stats.slots_used == 2 and stats.peak_slots_used == 2
    assert stats.in_flight == 2 + waiting  # a waiting frame is in flight too
    assert stats.dropped == {"no_buffer": 20 - 2 - waiting}
    assert stats.accounted
    # when the detector answers, the waiting frame (drop_oldest: the newest one) goes out
    dispatcher.release_all()
    wait_until(lambda: cam.stats().processed == 2, 10, "2 frames processed")
    if policy == "drop_oldest":
        wait_until(lambda: len(dispatcher.seen_values) == 3, 10, "the waiting frame to go out")
        assert dispatcher.seen_values[-1] == 19  # the newest frame, not frame 2
    dispatcher.release_all()
    final = cam.stop(drain_timeout_s=2)
    assert final.accounted and final.in_flight == 0
    assert final.processed == 2 + waiting
    assert final.hit_rate == pytest.approx((2 + waiting) / 20)


def test_frames_in_flight_at_shutdown_are_counted_as_dropped():
    cam, _ = camera("drop_newest", buffers=3, frames=3)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    final = cam.stop(drain_timeout_s=0.1)  # the detector never answers
    assert final.dropped == {"shutdown": 3} and final.in_flight == 0 and final.accounted


def test_fps_limit_skips_frames_and_counts_them():
    cam, dispatcher = camera("drop_newest", buffers=64, frames=150, fps=10)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    dispatcher.release_all()
    final = cam.stop(drain_timeout_s=2)
    assert final.processed == 50 and final.dropped == {"fps": 100}
    assert final.accounted


@pytest.mark.parametrize("source_fps, target_fps, expected", [
    (30, 10, 10), (25, 10, 10), (30, 30, 30), (10, 30, 10), (24, 5, 5), (30, 7, 7),
])
def test_fps_limiter_admits_the_target_rate_on_average(source_fps, target_fps, expected):
    limiter = FpsLimiter(target_fps)
    admitted = sum(limiter.admit(i / source_fps) for i in range(source_fps * 10))
    assert abs(admitted - expected * 10) <= 1


def test_fps_limiter_restarts_after_a_stall_instead_of_bursting():
    limiter = FpsLimiter(5)
    assert limiter.admit(0.0)
    assert limiter.admit(10.0)  # a 10 s gap: one frame, not fifty
    assert not limiter.admit(10.05)


def test_backoff_grows_to_its_cap_with_bounded_jitter():
    backoff = Backoff(0.5, 8.0, jitter=0.2, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    for delay, base in zip(delays, [0.5, 1, 2, 4, 8, 8, 8, 8], strict=True):
        assert base * 0.8 <= delay <= base  # jitter downwards only: never past the cap
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_buffers_change_on_the_next_frame():
    cam, _ = camera("drop_newest", buffers=1, frames=1)
    cam.set_buffers(5)
    assert cam.stats().buffers == 5
    cam.set_buffers(0)
    assert cam.stats().buffers == 1


def test_drop_newest_drops_before_decoding_when_every_buffer_is_busy():
    # given a camera with 2 buffers whose detector never answers, under drop_newest
    cam, _ = camera("drop_newest", buffers=2, frames=20)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    stats = cam.stats()
    # then the 18 frames without a buffer were offered, dropped and never decoded
    assert stats.offered == 20 and stats.admitted == 2 and stats.dropped == {"no_buffer": 18}
    assert cam.source.decoded == 2
    assert stats.accounted
    cam.stop(drain_timeout_s=0.1)


def test_wait_policy_holds_capture_and_loses_no_frame():
    # given a file-like camera with 2 buffers under `wait`, whose detector answers only when told
    cam, dispatcher = camera("wait", buffers=2, frames=20)
    cam.start()
    wait_until(lambda: len(dispatcher.held) == 2, 10, "two frames at the detector")
    time.sleep(0.2)
    stats = cam.stats()
    # then capture waits (backpressure) instead of dropping, and is not counted as stuck
    assert stats.captured == 3 and stats.dropped == {} and stats.stuck_s == 0.0
    # when the detector keeps answering, every frame is processed, none dropped
    deadline = time.monotonic() + 20
    while not cam.ended and time.monotonic() < deadline:
        dispatcher.release_all()
        time.sleep(0.01)
    dispatcher.release_all()
    wait_until(lambda: cam.stats().processed == 20, 10, "all 20 frames processed")
    final = cam.stop(drain_timeout_s=2)
    assert final.processed == 20 and final.dropped == {} and final.accounted


def test_wait_policy_gives_up_waiting_at_stop():
    cam, _ = camera("wait", buffers=1, frames=5)
    cam.start()
    wait_until(lambda: cam.stats().captured == 2, 10, "a second frame waiting for a buffer")
    final = cam.stop(drain_timeout_s=0.1)
    assert final.dropped == {"shutdown": 2} and final.in_flight == 0 and final.accounted


class MalformedFrameSource(ListSource):
    """Decodes a frame with no width (1-D): building its metadata raises IndexError, a bug-like
    error between capture and hand-off rather than a SourceError."""

    def retrieve(self, into):
        return np.zeros((8,), np.uint8)


def test_an_error_between_capture_and_hand_off_fails_the_frame_instead_of_leaking_it():
    config = parse_fleet("""
cameras: [{id: cam, source: synthetic, fps: 240}]
""", env={}).cameras[0]
    cam = Camera(config, MalformedFrameSource(3), HeldDispatcher(), NullSink())
    cam.media_time = True
    cam.start()
    wait_until(lambda: cam.stats().failed >= 1, 10, "the frame the gate raised on, failed")
    stats = cam.stats()
    assert stats.in_flight == 0 and stats.accounted
    cam.stop(drain_timeout_s=0.1)


class BlockingSource(ListSource):
    """grab() blocks, as a capture stuck inside FFmpeg does, until released."""

    def __init__(self):
        super().__init__(100)
        self.release = threading.Event()

    def grab(self) -> None:
        self.release.wait(30)
        super().grab()


def test_a_capture_stuck_in_the_source_shows_in_stuck_s():
    config = parse_fleet("cameras: [{id: cam, source: synthetic}]", env={}).cameras[0]
    source = BlockingSource()
    cam = Camera(config, source, HeldDispatcher(), NullSink())
    cam.start()
    time.sleep(0.5)
    assert cam.stats().stuck_s >= 0.4  # the controller restarts it past watchdog_s
    source.release.set()
    cam.stop(drain_timeout_s=0.1)


# ---------------------------------------------------------------- an accounting check that can fail
class DoubleSettlingCamera(Camera):
    """Planted fault: every finished frame is settled twice."""

    def _settle(self, done):
        super()._settle(done)
        self.ledger.settle(done.meta.index, "processed")


class LeakingCamera(Camera):
    """Planted fault: frames skipped by the fps limit are never settled."""

    def _decide(self, index, started, wall, buf):
        if index % 2:
            return buf  # forgot self.ledger.drop(index, "fps")
        return super()._decide(index, started, wall, buf)


def planted(cls, frames: int = 10):
    config = parse_fleet("cameras: [{id: cam, source: synthetic, fps: 240, buffers: 64}]",
                         env={}).cameras[0]
    dispatcher = HeldDispatcher()
    cam = cls(config, ListSource(frames), dispatcher, NullSink())
    cam.media_time = True
    return cam, dispatcher


@pytest.mark.parametrize("cls, problem", [
    (Camera, None),
    (DoubleSettlingCamera, "settled twice"),
    (LeakingCamera, "never settled"),
])
def test_the_accounting_check_fails_on_a_planted_double_settle_or_leak(cls, problem):
    cam, dispatcher = planted(cls)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    dispatcher.release_all()
    wait_until(lambda: not dispatcher.outstanding() and cam.stats().slots_used <= 0, 10,
               "the detector's answers to be settled")
    final = cam.stop(drain_timeout_s=1)
    if problem is None:
        assert final.accounted and final.audit_problems == ()
    else:
        assert not final.accounted
        assert any(problem in p for p in final.audit_problems), final.audit_problems


def test_the_audit_sees_what_the_counters_cannot():
    from fleet.pipeline.accounting import FrameLedger

    ledger = FrameLedger("cam")
    index = ledger.capture()
    ledger.admit(index)
    ledger.settle(index, "processed")
    ledger.settle(index, "processed")  # the counters now say -1 in flight
    stats = ledger.snapshot(state="up", buffers=1)
    assert stats.captured == stats.processed + stats.in_flight  # 1 == 2 - 1: the sum still holds
    assert not stats.accounted
    assert any("settled twice" in p for p in stats.audit_problems)


def test_put_width_puts_a_smaller_frame_into_reused_buffers():
    config = parse_fleet("""
cameras: [{id: cam, source: synthetic, fps: 240, buffers: 2, put_width: 32, detect_width: 32,
           drop_policy: drop_oldest}]
""", env={}).cameras[0]
    dispatcher = HeldDispatcher()
    seen = []
    original = dispatcher.submit

    def submit(frame, meta, started):
        seen.append((frame.shape, id(frame), meta.put_scale, meta.width))
        original(frame, meta, started)

    dispatcher.submit = submit
    cam = Camera(config, ListSource(12, shape=(48, 64, 3)), dispatcher, NullSink())
    cam.media_time = True
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    dispatcher.release_all()
    wait_until(lambda: len(seen) == 3, 10, "the waiting frame to go out")
    dispatcher.release_all()
    final = cam.stop(drain_timeout_s=1)
    assert all(shape == (24, 32, 3) and scale == 2.0 and width == 64
               for shape, _, scale, width in seen)
    assert len({buf for _, buf, _, _ in seen}) <= 3  # reused buffers, not one per frame
    assert final.put_bytes == 24 * 32 * 3 and final.accounted


def test_boxes_from_a_smaller_put_frame_come_back_in_original_pixels():
    from fleet.detectors import DetectorService
    from fleet.frames import Detection

    class Fixed:
        label = "face"

        def detect(self, frame, meta):
            return [Detection("face", 10, 20, 30, 40, 0.9)]

    meta = FrameMeta("cam", 0, 0.0, 1920, 1080, 640, put_scale=3.0)
    result = DetectorService("face", Fixed()).detect(np.zeros((360, 640, 3), np.uint8), meta)
    box = result.detections[0]
    assert (box.x, box.y, box.w, box.h) == (30, 60, 90, 120)


# ------------------------------------------------------------------------------ put_frames
class GroupDispatcher(HeldDispatcher):
    """Records each hand-off's size and what every frame of it held when it was put; answers
    at once (``answer``) or holds the frames like a busy detector."""

    def __init__(self, answer: bool = True):
        super().__init__()
        self.answer = answer
        self.groups: list[int] = []
        self.pixels: list[tuple[int, int]] = []  # (frame index, its first pixel when put)

    def submit(self, frame, meta: FrameMeta, started: float) -> None:
        self.groups.append(1)
        self._take(frame, meta, started)

    def submit_group(self, frames, metas, started) -> None:
        assert len(frames) == len(metas) == len(started) and frames.base is not None
        self.groups.append(len(metas))
        for frame, meta, t in zip(frames, metas, started, strict=True):
            self._take(frame, meta, t)

    def _take(self, frame, meta, started) -> None:
        self.pixels.append((meta.index, int(frame[0, 0, 0])))  # ray.put copies it now
        HeldDispatcher.submit(self, frame, meta, started)
        if self.answer:
            self.release_all()


def group_camera(policy: str, buffers: int, frames: int, put_frames: int,
                 answer: bool = True, wait_ms: float = 5000, fps: float = 240.0):
    config = parse_fleet(f"""
cameras: [{{id: cam, source: synthetic, fps: {fps}, buffers: {buffers}, drop_policy: {policy},
            put_frames: {put_frames}, put_wait_ms: {wait_ms}}}]
""", env={}).cameras[0]
    dispatcher = GroupDispatcher(answer)
    cam = Camera(config, ListSource(frames), dispatcher, NullSink())
    cam.media_time = True
    return cam, dispatcher


def test_put_frames_hands_off_groups_and_loses_no_frame_of_a_file():
    # given a file-like camera (wait) putting 4 frames at a time with 8 buffers, 30 frames
    cam, dispatcher = group_camera("wait", buffers=8, frames=30, put_frames=4)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    final = cam.stop(drain_timeout_s=2)
    # then every frame went once, in order, in groups of 4 (the last one what was left)
    assert [i for i, _ in dispatcher.pixels] == list(range(30))
    assert sum(dispatcher.groups) == 30 and max(dispatcher.groups) == 4
    assert dispatcher.groups.count(4) >= 6
    # each frame held its own pixels when put: no frame of a group overwrote another
    assert all(value == index % 255 for index, value in dispatcher.pixels)
    assert final.processed == 30 and final.accounted and final.puts == len(dispatcher.groups)


def test_put_frames_with_fewer_buffers_than_frames_sends_partial_groups_and_never_stalls():
    cam, dispatcher = group_camera("wait", buffers=2, frames=20, put_frames=4)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    final = cam.stop(drain_timeout_s=2)
    assert final.processed == 20 and final.accounted
    assert max(dispatcher.groups) == 2  # a group can only be as large as the free buffers


def test_put_frames_under_drop_newest_holds_the_group_while_others_are_in_flight():
    # given busy detectors: 8 buffers, groups of 4, the detector answers nothing
    cam, dispatcher = group_camera("drop_newest", buffers=8, frames=40, put_frames=4,
                                   answer=False)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    # then two full groups went out and the rest were dropped before decoding
    assert dispatcher.groups == [4, 4]
    stats = cam.stats()
    assert stats.dropped == {"no_buffer": 32} and stats.accounted
    dispatcher.release_all()
    final = cam.stop(drain_timeout_s=2)
    assert final.processed == 8 and final.accounted


def test_put_frames_sends_a_group_that_would_wait_longer_than_put_wait_ms():
    # given frames arriving every ~20 ms and put_wait_ms 10: a group would wait too long
    cam, dispatcher = group_camera("wait", buffers=8, frames=10, put_frames=4, wait_ms=10)
    cam.source.retrieve = _slow(cam.source.retrieve, 0.02)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    final = cam.stop(drain_timeout_s=2)
    assert dispatcher.groups == [1] * 10 and final.processed == 10


def test_put_frames_end_of_stream_sends_what_is_pending():
    cam, dispatcher = group_camera("wait", buffers=16, frames=6, put_frames=8)
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    final = cam.stop(drain_timeout_s=2)
    assert dispatcher.groups == [6] and final.processed == 6 and final.accounted


def _slow(retrieve, delay_s):
    def slow(into):
        time.sleep(delay_s)
        return retrieve(into)
    return slow


def test_put_frames_sends_a_pending_group_when_the_stream_stalls():
    # given a camera grouping 4 frames, put_wait_ms 50, whose stream stalls after 2 frames
    cam, dispatcher = group_camera("wait", buffers=8, frames=10, put_frames=4, wait_ms=50)
    stalled, resume = threading.Event(), threading.Event()
    grab = cam.source.grab

    def stalling_grab():
        if cam.source.i == 1:  # the third grab blocks, as a frozen RTSP stream does
            stalled.set()
            resume.wait(10)
        grab()

    cam.source.grab = stalling_grab
    cam.start()
    assert stalled.wait(5)
    # then the 2 frames already decoded go within about put_wait_ms, not when the stream resumes
    wait_until(lambda: dispatcher.groups == [2], 2, lambda: f"groups {dispatcher.groups}")
    assert all(value == index % 255 for index, value in dispatcher.pixels)
    resume.set()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    final = cam.stop(drain_timeout_s=2)
    assert final.processed == 10 and final.accounted
    assert [i for i, _ in dispatcher.pixels] == list(range(10))
    assert all(value == index % 255 for index, value in dispatcher.pixels)


def test_put_frames_groups_sent_by_either_thread_keep_every_frame_intact():
    # given frames that take 0-4 ms to decode and put_wait_ms 3: the collect thread sends
    # stale groups while capture is decoding into the next row
    cam, dispatcher = group_camera("wait", buffers=8, frames=300, put_frames=4, wait_ms=3)
    rng = random.Random(7)
    retrieve = cam.source.retrieve

    def jittery(into):
        time.sleep(rng.uniform(0, 0.004))
        return retrieve(into)

    cam.source.retrieve = jittery
    cam.start()
    wait_until(lambda: cam.ended, 30, "the camera to reach the end of its frames")
    final = cam.stop(drain_timeout_s=2)
    # then every frame went once, in order, holding its own pixels
    assert [i for i, _ in dispatcher.pixels] == list(range(300))
    assert all(value == index % 255 for index, value in dispatcher.pixels)
    assert final.processed == 300 and final.accounted and len(set(dispatcher.groups)) > 1


# ------------------------------------------------------------------------------ track lines
def test_track_lines_reach_the_file_through_the_camera_in_capture_order_and_are_never_pushed(
        tmp_path):
    # given a camera writing track lines, with a webhook (nobody listens) for its object events;
    # results come back in bursts that the collect loop settles newest first (out of order)
    fleet = parse_fleet(f"""
cameras: [{{id: cam, source: synthetic, fps: 240, buffers: 4, drop_policy: wait}}]
sinks:
  jsonl: {{tracks: true}}
  snapshots: {{enabled: false}}
  webhook: {{enabled: true, url: "http://127.0.0.1:{free_port()}/hook"}}
""", env={})
    config = fleet.cameras[0]
    sink = EventSink(fleet.sinks, str(tmp_path), config.id, fleet="test")
    cam = Camera(config, ListSource(40), GroupDispatcher(), sink)
    cam.media_time = True
    cam.start()
    wait_until(lambda: cam.ended, 10, "the camera to reach the end of its frames")
    final = cam.stop(drain_timeout_s=2)
    summary = {"cam": {k: v for k, v in asdict(final).items() if k != "latency_s"}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    # then the run folder holds up (track lines in capture order, started only after a start)
    check_run_folder(tmp_path)
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    lines = [r for r in records if r["type"] == "track"]
    confirmed = config.tracking.min_frames - 1  # ByteTrack confirms a track on its min_frames-th
    assert [line["frame"] for line in lines] == list(range(confirmed, 40))
    # the object starts once its track has min_frames matches: the line of that frame says so
    assert [line["started"] for line in lines[:2]] == [False, True]
    # and the webhook was handed the object events only
    webhook, jsonl = final.sinks  # the push sink, then the file (snapshots are off)
    assert webhook.published == sum(r["type"] == "object" for r in records) >= 2
    assert (jsonl.sink, jsonl.sent, jsonl.published) == ("jsonl", len(records), len(records))

