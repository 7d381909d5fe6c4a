"""One camera's pipeline: read → fps limit → motion gate → in-flight slot → hand-off → results
→ tracks → object events.

Two threads: capture (reads, limits, gates, dispatches) and collect (waits for results,
settles frames, feeds the tracker, emits events, dispatches a waiting frame when a slot frees).
The hand-off itself is a collaborator (:class:`fleet.frames.Dispatcher`) so this module needs
no Ray. The in-flight slots and the drop policy are :class:`fleet.pipeline.slots.Slots`; frames
stacked into one put (``put_frames``) are :class:`fleet.pipeline.putgroup.PutGroup`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from fleet.backoff import Backoff
from fleet.config import CameraConfig, FileSource
from fleet.errors import EndOfStreamError, FrameError, SourceError
from fleet.frames import CameraStats, Completion, Dispatcher, FrameMeta, SinkStats
from fleet.pipeline.accounting import FrameLedger
from fleet.pipeline.motion import MotionGate
from fleet.pipeline.putgroup import PutGroup, shrink
from fleet.pipeline.slots import Slots
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
                               jitter=config.reconnect.jitter)
        self._state = "starting"
        self.last_error = ""
        self.bad_frames = 0  # dropped corrupt or too_large: their warnings are thinned out
        self.shape = (0, 0)
        self.small: np.ndarray | None = None  # put_width: the reused buffer frames shrink into
        self.put_bytes = 0  # bytes of the last frame put into the object store
        self.puts = resume.puts if resume is not None else 0  # objects put (groups count once)
        self.puts_lock = threading.Lock()  # both threads put: capture, and collect (waiting
        # frames, stale groups)
        self.group = PutGroup(config, self._submit_group, self._join)  # put_frames > 1
        self.in_source_since: float | None = None  # monotonic start of a source call under way
        self.capture_stop = threading.Event()
        self.slots = Slots(config, self.ledger, self.capture_stop, self._dispatch)
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
            self.group.close()  # what capture decoded before it got stuck goes
        self.slots.drop_waiting()
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
        self.slots.resize(buffers)

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
            state=self.state, buffers=self.slots.buffers, last_error=self.last_error,
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
        self.group.send()  # end of stream or stop: the frames decoded so far go
        self.source.close()

    def _pace(self, next_read: float, fps: float) -> float:
        delay = next_read - time.monotonic()
        if delay > 0:
            self.capture_stop.wait(delay)
        elif delay < -1.0:
            next_read = time.monotonic()  # far behind (a stall): do not burst to catch up
        return next_read + 1.0 / fps

    def _source_failed(self, exc: Exception) -> bool:
        self.group.send()  # frames decoded before the failure are good: they go
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
            if self.ledger.unsent(index) and not self.slots.is_waiting(index):
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
        if self.gate is None and self.slots.full_and_dropping(index):
            # (not with a motion gate: whether a frame is offered depends on its pixels)
            self.slots.send_if_due(self.group)
            return buf  # dropped before decoding: no CPU spent on a frame nobody will analyse
        grouped = self.config.put_frames > 1 and self.slots.for_group(self.group)
        if not grouped:
            self.slots.send_if_due(self.group)
        direct = grouped and not self.config.put_width  # decode straight into the group
        frame = self._decode(index, self.group.slot() if direct else buf)
        if frame is None:
            return buf  # dropped: the next frame decodes into buf
        if self.gate is not None and not self.gate.moving(frame):
            self.ledger.drop(index, "no_motion")
            return buf if direct else frame
        meta = FrameMeta(self.config.id, index, wall, frame.shape[1], frame.shape[0],
                         self.config.detect_width, stream_time=t if self.media_time else None)
        if grouped:
            self.group.join(frame, meta, started)
            return buf if direct else frame
        if self.config.put_width and self.config.put_width < frame.shape[1]:
            small = self.small = shrink(frame, self.config.put_width, self.small)
            self.put_bytes = small.nbytes
            meta = replace(meta, put_scale=frame.shape[1] / small.shape[1])
            self.small = self.slots.offer(small, meta, started)  # the small buffer to reuse next
            return frame  # nothing holds the full frame: decode the next one into it
        return self.slots.offer(frame, meta, started)

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
        self.slots.let_go_spare()
        self.small = None

    @contextlib.contextmanager
    def _in_source(self) -> Iterator[None]:
        """Marks a call into the source (OpenCV, FFmpeg), which may block: the watchdog reads
        how long the current one has lasted (``stuck_s``) and has the camera restarted."""
        self.in_source_since = time.monotonic()
        try:
            yield
        finally:
            self.in_source_since = None

    # ---------------------------------------------------------------------------------- hand-off
    def _dispatch(self, frame: np.ndarray, meta: FrameMeta, started: float) -> None:
        """One frame takes its slot and goes (the slots call this under their lock)."""
        self.put_bytes = frame.nbytes
        self._count_put()
        self._admit(meta)
        try:
            self.dispatcher.submit(frame, meta, started)
        except Exception as exc:  # noqa: BLE001 - whatever Ray raised, the frame is settled
            log.warning("camera %s: hand-off failed: %s", self.config.id, exc)
            self._failed(meta.index)

    def _admit(self, meta: FrameMeta) -> None:
        """The frame takes a slot; the tracker expects it before its result can come back."""
        self.ledger.admit(meta.index)
        if self.tracker is not None:
            self.tracker.expect(meta)

    def _failed(self, index: int) -> None:
        """The hand-off raised: the frame is settled failed, with nothing to track."""
        self.ledger.settle(index, "failed")
        self._track(index, None)

    def _join(self, meta: FrameMeta, nbytes: int) -> None:
        """A frame joined the group (under the group's lock): it takes a slot now."""
        self.put_bytes = nbytes
        self.ledger.offer()
        self._admit(meta)

    def _submit_group(self, frames: np.ndarray, metas: list[FrameMeta],
                      started: list[float]) -> None:
        """The group's frames go as one put (the group calls this under its lock)."""
        self._count_put()
        try:
            self.dispatcher.submit_group(frames, metas, started)
        except Exception as exc:  # noqa: BLE001 - whatever Ray raised, the frames are settled
            log.warning("camera %s: hand-off of %d frames failed: %s", self.config.id,
                        len(metas), exc)
            for meta in metas:
                self._failed(meta.index)

    def _count_put(self) -> None:
        with self.puts_lock:
            self.puts += 1

    # ----------------------------------------------------------------------------------- collect
    def _collect_loop(self) -> None:
        while not self.collect_stop.is_set():
            try:
                finished = self.dispatcher.wait(0.05)
                while finished:
                    self._settle(finished.pop())  # pop: keep no reference to a settled frame
                self.slots.dispatch_waiting(self.shape)
                if self.config.put_frames > 1:
                    self.group.send_stale()
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
