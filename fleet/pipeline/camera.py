"""One camera's pipeline: read → fps limit → motion gate → in-flight slot → hand-off → results
→ tracks → object events.

Two threads: capture (reads, limits, gates, dispatches) and collect (waits for results,
settles frames, feeds the tracker, emits events, dispatches a waiting frame when a slot frees).
The hand-off itself is a collaborator (:class:`fleet.frames.Dispatcher`) so this module needs
no Ray.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import cv2
import numpy as np

from fleet.config import CameraConfig, FileSource
from fleet.errors import EndOfStreamError, FrameError, SourceError
from fleet.frames import CameraStats, Completion, Dispatcher, FrameMeta, SinkStats
from fleet.pipeline.accounting import FrameLedger
from fleet.pipeline.motion import MotionGate
from fleet.pipeline.tracking import ObjectTracker
from fleet.redact import redact_url
from fleet.sinks.events import EventSink
from fleet.sources import FrameSource

log = logging.getLogger(__name__)
STOP_JOIN_S = 5.0  # longest stop() waits for the capture thread to leave the source
SINK_FLUSH_S = 2.0  # push sinks get what is left of the drain time, and at least this
# so stop() returns within drain_timeout_s + SINK_FLUSH_S + 2 * STOP_JOIN_S (STOP_BOUND_S)
STOP_BOUND_S = SINK_FLUSH_S + 2 * STOP_JOIN_S


class FpsLimiter:
    """Admits frames at ``fps`` on average; skips the rest."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self.next_due: float | None = None

    def admit(self, t: float) -> bool:
        if self.next_due is None or t - self.next_due >= self.period:
            self.next_due = t + self.period  # first frame, or fell behind: restart the grid
            return True
        if t + 1e-9 < self.next_due:
            return False
        self.next_due += self.period
        return True


class Backoff:
    """Capped exponential backoff with jitter."""

    def __init__(self, initial_s: float, max_s: float, jitter: float,
                 rng: random.Random | None = None):
        self.initial_s, self.max_s, self.jitter = initial_s, max_s, jitter
        self.attempt = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        base = min(self.max_s, self.initial_s * 2 ** self.attempt)
        self.attempt += 1
        return max(0.0, base * (1 + self.rng.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        self.attempt = 0


class Camera:
    """The per-camera pipeline. ``start()`` runs it in two threads; ``stop()`` drains it."""

    def __init__(self, config: CameraConfig, source: FrameSource, dispatcher: Dispatcher,
                 sink: EventSink, resume: CameraStats | None = None):
        self.config = config
        self.source = source
        self.dispatcher = dispatcher
        self.sink = sink
        self.ledger = FrameLedger(config.id)
        self.resume = resume
        self.node = ""  # set by the actor: where it runs
        if resume is not None:  # a restarted camera actor: counters go on, never reset
            self.ledger.restore(resume)
        self.limiter = FpsLimiter(config.fps)
        self.gate = MotionGate(config.motion) if config.motion.enabled else None
        self.backoff = Backoff(config.reconnect.initial_backoff_s, config.reconnect.max_backoff_s,
                               config.reconnect.jitter)
        self.buffers = config.buffers
        self._state = "starting"
        self.last_error = ""
        self.bad_frames = 0  # dropped corrupt or too_large: their warnings are thinned out
        self.lock = threading.Lock()  # guards slots, the waiting frame and the spare buffer
        self.slot_freed = threading.Condition(self.lock)  # drop_policy wait: capture waits here
        self.waiting: tuple[np.ndarray, FrameMeta, float] | None = None
        self.spare: np.ndarray | None = None
        self.shape = (0, 0)
        self.small: np.ndarray | None = None  # put_width: the reused buffer frames shrink into
        self.put_bytes = 0  # bytes of the last frame put into the object store
        self.puts = resume.puts if resume is not None else 0  # objects put (groups count once)
        self.puts_lock = threading.Lock()  # both threads put: capture, and collect (waiting
        # frames, stale groups)
        # put_frames > 1: frames admitted and decoded into ``stack`` (reused), not yet sent
        self.stack: np.ndarray | None = None
        self.group: list[tuple[FrameMeta, float]] = []
        self.group_closed = False  # stop() sent the group while capture was stuck
        # guards group and stack rows 0..len(group)-1: the collect thread sends a group whose
        # first frame has waited past put_wait_ms while capture waits for the next frame
        self.group_lock = threading.Lock()
        self.gap_s = 1.0 / config.fps  # time between admitted frames (moving average)
        self.last_admit: float | None = None
        self.in_source_since: float | None = None  # monotonic start of a source call under way
        self.capture_stop = threading.Event()
        self.collect_stop = threading.Event()
        self.threads: list[threading.Thread] = []
        media_time = isinstance(config.source, FileSource) and not config.source.realtime
        self.media_time = media_time  # as-fast-as-possible files are limited on their own timeline
        self.tracker = (
            ObjectTracker(config, sink.fleet, sink.object_snapshots, track_lines=sink.track_lines)
            if config.tracking.enabled else None
        )
        self.lost_objects: list[dict] = []  # a dead predecessor's live objects: their end events
        if self.tracker is not None and resume is not None:  # event counters go on too
            self.tracker.events.update(resume.object_events)
            self.tracker.reorder.late = resume.frames_late
            self.lost_objects = self.tracker.lost(resume.live_objects)
        self.final_sinks: list[SinkStats] | None = None
        sink.set_state(self._state)

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        if value != self._state:
            self._state = value
            self.sink.set_state(value)  # MQTT's retained state topic

    # --------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._objects(self.lost_objects)  # every object ends, even one whose camera died
        for target, name in ((self._capture_loop, "capture"), (self._collect_loop, "collect")):
            thread = threading.Thread(target=target, name=f"{self.config.id}-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, drain_timeout_s: float) -> CameraStats:
        """Stop capturing, let in-flight frames finish (or count them dropped), flush sinks."""
        self.capture_stop.set()
        self.threads[0].join(timeout=STOP_JOIN_S)
        if self.threads[0].is_alive():  # stuck inside the source: the actor ends anyway
            log.error("camera %s: capture did not stop within %g s (stuck in the source for "
                      "%g s); stopping without it", self.config.id, STOP_JOIN_S, self.stuck_s())
            self.group_closed = True
            self._send_group()  # what capture decoded before it got stuck
        with self.lock:
            if self.waiting is not None:
                self.ledger.drop(self.waiting[1].index, "shutdown")
                self.waiting = None
        deadline = time.monotonic() + drain_timeout_s
        while self.ledger.slots_used > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.collect_stop.set()
        self.threads[1].join(timeout=STOP_JOIN_S)
        for done in self.dispatcher.abandon():
            self.ledger.settle(done.meta.index, "shutdown")
            self._track(done.meta.index, None)
        if self.threads[0].is_alive():  # the frame a stuck capture thread holds is not coming
            for index in self.ledger.open_without_slot():  # back; any other open frame is a leak
                self.ledger.drop(index, "shutdown")
        self.ledger.close()
        if self.tracker is not None:  # every live object gets its end event
            self._objects(self.tracker.close())
        if self.state not in ("ended",):
            self.state = "stopped"
        self.final_sinks = self.sink.close(max(SINK_FLUSH_S, deadline - time.monotonic()))
        return self.stats()

    @property
    def ended(self) -> bool:
        return not self.threads[0].is_alive() if self.threads else False

    def set_buffers(self, buffers: int) -> None:
        """Takes effect on the next frame; frames already in flight finish normally."""
        with self.lock:
            self.buffers = max(1, buffers)
            self.slot_freed.notify_all()

    def stats(self) -> CameraStats:
        tracker = self.tracker
        objects: dict[str, object] = {}
        if tracker is not None:
            objects = {"tracks_active": tracker.active(), "object_events": dict(tracker.events),
                       "frames_late": tracker.late, "live_objects": tracker.live_objects()}
        sinks = self.final_sinks if self.final_sinks is not None else self.sink.push_stats()
        local, remote, crossed = self.dispatcher.locality()
        base = self.resume
        if base is not None:  # a restarted actor: the counters go on
            local, remote = local + base.handoffs_local, remote + base.handoffs_remote
            crossed += base.remote_bytes
        return self.ledger.snapshot(
            state=self.state, buffers=self.buffers, last_error=self.last_error,
            source_fps=self.source.native_fps, width=self.shape[1], height=self.shape[0],
            outstanding=self.dispatcher.outstanding(), stuck_s=self.stuck_s(),
            put_bytes=self.put_bytes, puts=self.puts, sinks=tuple(sinks), handoffs_local=local,
            handoffs_remote=remote, remote_bytes=crossed, node=self.node, **objects,
        )

    def stuck_s(self) -> float:
        """How long the source call under way has lasted (0 when capture is not in one)."""
        since = self.in_source_since
        return round(time.monotonic() - since, 3) if since is not None else 0.0

    # ----------------------------------------------------------------------------------- capture
    def _capture_loop(self) -> None:
        buf: np.ndarray | None = None
        opened = False
        next_read = 0.0
        while not self.capture_stop.is_set():
            try:
                if not opened:
                    with self._in_source():
                        self.source.open()
                    opened, next_read = True, time.monotonic()
                    self.state, self.last_error = "up", ""
                    self.backoff.reset()
                if self.source.pace_fps:
                    next_read = self._pace(next_read, self.source.pace_fps)
                buf = self._one_frame(buf)
            except EndOfStreamError as exc:
                log.info("%s", exc)
                self.state = "ended"
                break
            except SourceError as exc:
                opened = self._source_failed(exc)
            except Exception as exc:  # a bug or an OpenCV error must not kill the camera silently
                log.exception("camera %s: unexpected error", self.config.id)
                opened = self._source_failed(exc)
        self._send_group()  # end of stream or stop: the frames decoded so far go
        self.source.close()

    def _pace(self, next_read: float, fps: float) -> float:
        delay = next_read - time.monotonic()
        if delay > 0:
            self.capture_stop.wait(delay)
        elif delay < -1.0:
            next_read = time.monotonic()  # far behind (a stall): do not burst to catch up
        return next_read + 1.0 / fps

    def _source_failed(self, exc: Exception) -> bool:
        self._send_group()  # frames decoded before the failure are good: they go
        self.state = "down"
        self.last_error = redact_url(str(exc))
        log.warning("%s", self.last_error)
        self.source.close()
        with self.ledger.lock:
            self.ledger.reconnects += 1
        self.capture_stop.wait(self.backoff.next_delay())
        return False

    def _one_frame(self, buf: np.ndarray | None) -> np.ndarray | None:
        try:
            with self._in_source():
                self.source.grab()
        except FrameError as exc:  # frames the stream sent but nobody can decode: no reconnect
            for _ in range(exc.count):
                self._bad_frame(self.ledger.capture(), exc)
            return buf
        started, wall = time.monotonic(), time.time()
        index = self.ledger.capture()
        try:
            return self._decide(index, started, wall, buf)
        except BaseException:
            # Whatever went wrong between capture and hand-off (a decode error, an OpenCV
            # exception in the motion gate, a bug), the frame is settled, never left in flight.
            if self.ledger.unsent(index) and not self._is_waiting(index):
                self.ledger.fail_unsent(index)
            raise

    def _decide(self, index: int, started: float, wall: float,
                buf: np.ndarray | None) -> np.ndarray | None:
        """The captured frame's fate: skipped, gated, dropped, or offered for a slot. Each
        return settles the frame or hands it on; an exception leaves that to the caller."""
        t = index / (self.source.native_fps or 25.0) if self.media_time else started
        if not self.limiter.admit(t):
            self.ledger.drop(index, "fps")
            return buf
        if self._full_and_dropping(index):
            self._send_group_if_due()
            return buf  # dropped before decoding: no CPU spent on a frame nobody will analyse
        grouped = self.config.put_frames > 1 and self._slot_for_group()
        if not grouped:
            self._send_group_if_due()
        direct = grouped and not self.config.put_width  # decode straight into the group
        frame = self._decode(index, self._group_slot() if direct else buf)
        if frame is None:
            return buf  # dropped: the next frame decodes into buf
        if self.gate is not None and not self.gate.moving(frame):
            self.ledger.drop(index, "no_motion")
            return buf if direct else frame
        meta = FrameMeta(self.config.id, index, wall, frame.shape[1], frame.shape[0],
                         self.config.detect_width, stream_time=t if self.media_time else None)
        if grouped:
            self._join_group(frame, meta, started)
            return buf if direct else frame
        if self.config.put_width and self.config.put_width < frame.shape[1]:
            small = self._shrink(frame)
            meta = replace(meta, put_scale=frame.shape[1] / small.shape[1])
            self.small = self._offer(small, meta, started)  # the small buffer to reuse next
            return frame  # nothing holds the full frame: decode the next one into it
        return self._offer(frame, meta, started)

    # -------------------------------------------------------------------- frames of any shape
    def _decode(self, index: int, into: np.ndarray | None) -> np.ndarray | None:
        """The grabbed frame, decoded (into ``into`` when its shape fits); None when it was
        dropped instead: too large, or undecodable."""
        if self._too_large(index, self._frame_size()):  # known before decoding: not decoded
            return None
        try:
            with self._in_source():
                frame = self.source.retrieve(into)
        except FrameError as exc:
            self._bad_frame(index, exc)
            return None
        if self._too_large(index, (frame.shape[0], frame.shape[1])):
            return None  # decoded but not kept
        if (frame.shape[0], frame.shape[1]) != self.shape:
            self._reshaped(frame)
        return frame

    def _frame_size(self) -> tuple[int, int] | None:
        """The grabbed frame's (height, width) when the source knows it before decoding (not
        every source can: see FrameSource)."""
        frame_size = getattr(self.source, "frame_size", None)
        return frame_size() if frame_size is not None else None

    def _too_large(self, index: int, size: tuple[int, int] | None) -> bool:
        """A frame over max_frame_pixels is dropped (``too_large``): it never enters the
        pipeline, whose buffers, object-store puts and detectors are all sized by the frame."""
        if size is None or size[0] * size[1] <= self.config.max_frame_pixels:
            return False
        self._bad_frame(index, FrameError(
            f"camera '{self.config.id}': a {size[1]}x{size[0]} frame from "
            f"{self.source.description} has {size[0] * size[1]:,} pixels, more than "
            f"max_frame_pixels ({self.config.max_frame_pixels:,}); dropped it. Lower the "
            "camera's resolution, or raise max_frame_pixels", reason="too_large"))
        return True

    def _bad_frame(self, index: int, exc: FrameError) -> None:
        """Drop one captured frame the source could not give (``corrupt``) or that is too large;
        the connection is fine, so the camera stays up and reads on."""
        self.ledger.drop(index, exc.reason)
        self.last_error = redact_url(str(exc))
        self.bad_frames += 1
        if self.bad_frames & (self.bad_frames - 1) == 0:  # the 1st, 2nd, 4th, 8th, ...
            log.warning("%s (%d frame(s) dropped so far)", self.last_error, self.bad_frames)

    def _reshaped(self, frame: np.ndarray) -> None:
        """The stream changed resolution: the buffers of the old shape go. (The decode buffer
        and the group's stack are remade where they are used; the waiting frame is a real
        frame and goes out as it is.)"""
        if self.shape != (0, 0):
            log.info("camera %s: frames are now %dx%d (were %dx%d)", self.config.id,
                     frame.shape[1], frame.shape[0], self.shape[1], self.shape[0])
        self.shape = (frame.shape[0], frame.shape[1])
        with self.lock:
            self.spare = None
        self.small = None

    # ------------------------------------------------------------------------- put_frames groups
    def _slot_for_group(self) -> bool:
        """Whether the frame can join the group (a slot is free). With ``drop_policy: wait``
        it waits for one first (sending the group when it is due)."""
        while True:
            with self.lock:
                if self.ledger.slots_used < self.buffers:
                    return True
                if self.config.drop_policy != "wait" or self.capture_stop.is_set():
                    return False
                if not self._group_due():
                    self.slot_freed.wait(0.1)
                    continue
            self._send_group()

    def _group_due(self) -> bool:
        """Whether the pending group must go although it is not full: no other frame is in
        flight (none will free a slot for it to grow), or its first frame would wait longer
        than ``put_wait_ms``."""
        group = self.group  # replaced, never emptied, when sent: this stays readable
        if not group:
            return False
        if len(group) >= self.config.put_frames:
            return True
        if self.ledger.slots_used <= len(group):
            return True
        waited = time.monotonic() - group[0][1]
        return waited + self.gap_s > self.config.put_wait_ms / 1000

    def _send_group_if_due(self) -> None:
        with self.lock:
            due = self._group_due()
        if due:
            self._send_group()

    def _put_shape(self, frame: np.ndarray) -> tuple[int, ...]:
        width = self.config.put_width
        if not width or width >= frame.shape[1]:
            return frame.shape
        return (max(1, round(frame.shape[0] * width / frame.shape[1])), width, *frame.shape[2:])

    def _group_slot(self) -> np.ndarray | None:
        """Where the next frame of the group is decoded to (None: no stack yet). Rows from
        len(group) on are the capture thread's alone; a group sent meanwhile (by the collect
        thread) only copies rows before it."""
        with self.group_lock:
            return self.stack[len(self.group)] if self.stack is not None else None

    def _join_group(self, frame: np.ndarray, meta: FrameMeta, started: float) -> None:
        """Admit a decoded frame into the pending group (it takes a slot now) and send the
        group when it is full or its first frame would wait longer than ``put_wait_ms``."""
        with self.group_lock:
            if self.group_closed:
                return  # capture was stuck when stop() ended the groups; stop() settled it
            shape = self._put_shape(frame)
            stack = self.stack
            if stack is None or stack.shape[1:] != shape or stack.dtype != frame.dtype:
                self._send_locked()  # the frame size changed: what is pending goes as it is
                stack = self.stack = np.empty((self.config.put_frames, *shape), frame.dtype)
            slot = stack[len(self.group)]
            if shape != frame.shape:  # put_width: shrink into the group
                cv2.resize(frame, (shape[1], shape[0]), dst=slot, interpolation=cv2.INTER_AREA)
                meta = replace(meta, put_scale=frame.shape[1] / shape[1])
            elif frame.ctypes.data != slot.ctypes.data:  # decoded elsewhere (first frame, a
                np.copyto(slot, frame)  # source that allocates, a group sent meanwhile)
            self.put_bytes = slot.nbytes
            self.ledger.offer()
            self.ledger.admit(meta.index)
            self.group.append((meta, started))
            if self.tracker is not None:
                self.tracker.expect(meta)
            now = time.monotonic()
            if self.last_admit is not None:
                self.gap_s = 0.8 * self.gap_s + 0.2 * (now - self.last_admit)
            self.last_admit = now
            waited = now - self.group[0][1]  # the next frame is due in about gap_s
            if (len(self.group) >= self.config.put_frames
                    or waited + self.gap_s > self.config.put_wait_ms / 1000):
                self._send_locked()

    def _send_group(self) -> None:
        """Hand the pending group off: one put, one call per detector kind."""
        with self.group_lock:
            self._send_locked()

    def _send_stale_group(self) -> None:
        """From the collect loop: a group whose first frame has waited past ``put_wait_ms``
        goes, even if no frame comes to send it (a stalled stream)."""
        group = self.group
        if group and time.monotonic() - group[0][1] > self.config.put_wait_ms / 1000:
            self._send_group()

    def _send_locked(self) -> None:
        if not self.group:
            return
        group, self.group = self.group, []
        assert self.stack is not None
        metas, started = [m for m, _ in group], [t for _, t in group]
        self._count_put()
        try:
            self.dispatcher.submit_group(self.stack[:len(group)], metas, started)
        except Exception as exc:  # noqa: BLE001 - whatever Ray raised, the frames are settled
            log.warning("camera %s: hand-off of %d frames failed: %s", self.config.id,
                        len(group), exc)
            for meta in metas:
                self.ledger.settle(meta.index, "failed")
                self._track(meta.index, None)

    def _count_put(self) -> None:
        with self.puts_lock:
            self.puts += 1

    def _shrink(self, frame: np.ndarray) -> np.ndarray:
        """The frame at ``put_width``, resized into a buffer of the camera's, reused."""
        width = self.config.put_width or frame.shape[1]
        shape = (max(1, round(frame.shape[0] * width / frame.shape[1])), width, *frame.shape[2:])
        if self.small is None or self.small.shape != shape:
            self.small = np.empty(shape, frame.dtype)
        cv2.resize(frame, (shape[1], shape[0]), dst=self.small, interpolation=cv2.INTER_AREA)
        self.put_bytes = self.small.nbytes
        return self.small

    @contextlib.contextmanager
    def _in_source(self) -> Iterator[None]:
        """Marks a call into the source (OpenCV, FFmpeg), which may block: the watchdog reads
        how long the current one has lasted (``stuck_s``) and has the camera restarted."""
        self.in_source_since = time.monotonic()
        try:
            yield
        finally:
            self.in_source_since = None

    def _is_waiting(self, index: int) -> bool:
        with self.lock:
            return self.waiting is not None and self.waiting[1].index == index

    def _full_and_dropping(self, index: int) -> bool:
        """drop_newest with every buffer busy: the frame would be dropped after decoding, so
        drop it before. (Not with a motion gate: whether it was offered depends on its pixels.)"""
        if self.config.drop_policy != "drop_newest" or self.gate is not None:
            return False
        with self.lock:
            if self.ledger.slots_used < self.buffers:
                return False
            self.ledger.offer()
            self.ledger.drop(index, "no_buffer")
            return True

    def _offer(self, frame: np.ndarray, meta: FrameMeta, started: float) -> np.ndarray | None:
        """Dispatch now, or apply the drop policy. Returns the buffer to decode the next frame
        into."""
        self.ledger.offer()
        with self.lock:
            if self.config.drop_policy == "wait":  # backpressure: hold capture until a slot frees
                while self.ledger.slots_used >= self.buffers and not self.capture_stop.is_set():
                    self.slot_freed.wait(0.1)
            if self.ledger.slots_used < self.buffers:
                self._dispatch(frame, meta, started)
                return frame  # ray.put copied it: the buffer is free again
            if self.config.drop_policy == "wait":  # stopping while waiting
                self.ledger.drop(meta.index, "shutdown")
                return frame
            if self.config.drop_policy == "drop_newest":
                self.ledger.drop(meta.index, "no_buffer")
                return frame
            # drop_oldest: this frame waits for a slot; the frame it replaces is dropped.
            free: np.ndarray | None
            if self.waiting is not None:
                self.ledger.drop(self.waiting[1].index, "no_buffer")
                free = self.waiting[0]
            else:
                free, self.spare = self.spare, None
            self.waiting = (frame, meta, started)
            return free

    def _dispatch(self, frame: np.ndarray, meta: FrameMeta, started: float) -> None:
        self.put_bytes = frame.nbytes
        self._count_put()
        self.ledger.admit(meta.index)
        if self.tracker is not None:
            self.tracker.expect(meta)  # before its result can come back
        try:
            self.dispatcher.submit(frame, meta, started)
        except Exception as exc:  # noqa: BLE001 - whatever Ray raised, the frame is settled
            log.warning("camera %s: hand-off failed: %s", self.config.id, exc)
            self.ledger.settle(meta.index, "failed")
            self._track(meta.index, None)

    # ----------------------------------------------------------------------------------- collect
    def _collect_loop(self) -> None:
        while not self.collect_stop.is_set():
            try:
                finished = self.dispatcher.wait(0.05)
                while finished:
                    self._settle(finished.pop())  # pop: keep no reference to a settled frame
                self._dispatch_waiting()
                if self.config.put_frames > 1:
                    self._send_stale_group()
                if self.tracker is not None and not self.media_time:
                    self._objects(self.tracker.tick(time.time()))  # a quiet or down camera
                self.sink.tick()
            except Exception:
                log.exception("camera %s: collecting results failed", self.config.id)
                time.sleep(0.1)

    def _settle(self, done: Completion) -> None:
        latency = time.monotonic() - done.started
        if done.lost:
            self.ledger.settle(done.meta.index, "detector_lost")
            self._track(done.meta.index, None)
            return
        if done.errors:
            log.warning("camera %s frame %d: %s", self.config.id, done.meta.index, done.errors[0])
        labels = Counter(d.label for r in done.results for d in r.detections)
        try:
            self.sink.emit(done.meta, done.results, latency, done.view)
        except Exception:
            log.exception("camera %s: sink failed", self.config.id)
        outcome = "failed" if done.errors else "processed"
        self.ledger.settle(done.meta.index, outcome, latency, labels)
        self._track(done.meta.index, done)

    def _track(self, index: int, done: Completion | None) -> None:
        """The tracker learns the frame settled (``None``: with nothing to track)."""
        if self.tracker is None:
            return
        try:
            self._objects(self.tracker.settle(index, done))
        except Exception:  # a tracking bug must not stop the frames: they are accounted anyway
            log.exception("camera %s: tracking frame %d failed", self.config.id, index)

    def _objects(self, events: list[dict]) -> None:
        """The tracker's output to the sinks: the track lines of the frames it fed (in capture
        order, before the events those frames caused), then the object events."""
        tracker = self.tracker
        if tracker is not None and tracker.lines:  # only with jsonl.tracks
            try:
                self.sink.tracks(tracker.take_lines())
            except Exception:
                log.exception("camera %s: track lines failed", self.config.id)
        if events:
            try:
                self.sink.objects(events)
            except Exception:
                log.exception("camera %s: object sink failed", self.config.id)

    def _dispatch_waiting(self) -> None:
        with self.lock:
            self.slot_freed.notify_all()
            if self.waiting is not None and self.ledger.slots_used < self.buffers:
                frame, meta, started = self.waiting
                self.waiting = None
                self._dispatch(frame, meta, started)
                if frame.shape[:2] == self.shape:  # of an old shape: let it go
                    self.spare = frame
