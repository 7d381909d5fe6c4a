"""Per-camera object tracking: a camera's detections become objects with a lifecycle.

Each analysed frame's boxes go, in capture order (:mod:`fleet.pipeline.reorder`), through the
camera's masks, then to one ByteTrack tracker per label (Roboflow's ``trackers`` package: Kalman
prediction and two-stage IoU association). What this module adds is the part an operator acts on:

- **Ids.** ``trackers`` numbers its tracks with a counter shared by every tracker in the
  process (and ``reset()`` rewinds it for all of them), so its ids are only association keys
  here. A camfleet track id is ``<camera>-<session>-<n>``: the session is the actor's start time
  in milliseconds (base 36), so a restarted camera never reuses an id. A track gets its id on
  the frame ByteTrack confirms it (its ``min_frames``-th match), before it may start, so its
  track lines (``jsonl.tracks``) carry the same id before and after its start.
- **Lifecycle.** A track becomes an object (``start``) once it was matched in ``min_frames``
  frames and the median of its recent scores reaches ``threshold``; ``update`` follows a zone
  change, a better snapshot (at most every few seconds) or ``update_interval_s``; ``end`` when
  it is unseen for ``max_disappeared_s`` and at shutdown. Zones give ``enter``, ``leave`` and
  ``loiter`` (once per visit, after ``loitering_s``). An object that stays put for
  ``stationary_s`` sends one ``stationary`` and no periodic or snapshot updates until it moves;
  then an ``update`` with ``"stationary": false``.
- **Snapshots.** The best sighting of a track by score and size (a box touching the frame's
  edge counts half) is encoded while its frame is still in the object store; a snapshot from
  before the start is kept in memory and written at the start, so an object that never starts
  leaves no file.
- **Track lines.** With ``track_lines`` on, every box matched to a track on a fed frame becomes
  a ``"type": "track"`` line (after the masks, in capture order), taken by the camera with
  :meth:`ObjectTracker.take_lines`; off, no line is built.

Times: ``first_seen``/``last_seen`` are wall clock; durations, disappearance, loitering and
stillness run on the stream's clock (media time for a file read faster than real time). Imports
no Ray.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from trackers import ByteTrackTracker

from fleet.config import CameraConfig
from fleet.frames import Completion, Detection, FrameMeta
from fleet.pipeline.reorder import Reorder, Sighting
from fleet.pipeline.stillness import Stillness
from fleet.pipeline.zones import Regions
from fleet.vocab import EVENT_KINDS

SNAPSHOT_EVERY_S = 1.0  # a track's snapshot file is rewritten at most this often
SNAPSHOT_UPDATE_GAP_S = 3.0  # a better snapshot alone sends an update at most this often
EDGE_PX = 2  # a box this close to the frame's border is probably cut off


class Snapshots(Protocol):
    """Where a track's best sighting goes (``fleet.sinks.events.ObjectSnapshots``)."""

    def encode(self, frame: np.ndarray, meta: FrameMeta, box: Detection) -> bytes | None: ...

    def save(self, track: str, jpeg: bytes) -> str | None: ...  # None: not written


@dataclass
class Track:
    id: str
    label: str
    detector: str
    box: Detection
    first_seen: float  # wall clock
    first_stream: float
    first_frame: int
    last_seen: float = 0.0
    last_stream: float = 0.0
    last_frame: int = 0
    frames: int = 0
    scores: deque[float] = field(default_factory=deque)
    best_score: float = 0.0
    started: bool = False
    zones: dict[str, float] = field(default_factory=dict)  # zone -> stream time it was entered
    loitered: set[str] = field(default_factory=set)
    quality: float = -1.0  # of the best sighting so far
    pending_jpeg: bytes | None = None  # the best sighting before the start (not yet written)
    snapshot: str | None = None
    snapshot_stream: float = float("-inf")
    better_since_update: bool = False
    last_update: float = 0.0  # stream time of the last start/update/stationary event
    still: Stillness | None = None  # its stationary clock (None: stationary_s is off)

    @property
    def stationary(self) -> bool:
        """Its stationary event was sent and it has not moved since."""
        return self.still is not None and self.still.stationary


def quality(box: Detection, width: int, height: int) -> float:
    """How good a sighting is for a snapshot: score times linear size; cut-off boxes count half."""
    value = box.score * float(np.sqrt(max(1, box.w * box.h)))
    touches = (box.x <= EDGE_PX or box.y <= EDGE_PX or box.x + box.w >= width - EDGE_PX
               or box.y + box.h >= height - EDGE_PX)
    return value * 0.5 if touches else value


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


class ObjectTracker:
    """A camera's tracks and the object events they make (dicts, ready to write or push)."""

    def __init__(self, camera: CameraConfig, fleet: str, snapshots: Snapshots | None = None,
                 session: str | None = None, track_lines: bool = False):
        self.camera = camera.id
        self.fleet = fleet
        self.config = camera.tracking
        self.fps = camera.fps
        self.snapshots = snapshots
        self.regions = Regions(camera.id, camera.zones, camera.masks)
        self.session = session or _base36(int(time.time() * 1000))
        self.numbers = itertools.count(1)
        # a held result keeps its frame (for a snapshot) only while no more than the camera's
        # buffers do: the object store holds at most 2 x buffers frames of a camera
        self.reorder = Reorder(self.config.reorder_window, camera.buffers)
        self.byte: dict[str, ByteTrackTracker] = {}
        self.live: dict[tuple[str, int], Track] = {}  # (label, trackers' id) -> track
        self.events: Counter[str] = Counter({kind: 0 for kind in EVENT_KINDS})
        self.size = (0, 0)  # of the last frame fed (snapshot edges, zones)
        self.track_lines = track_lines  # build a "track" line per tracked box (jsonl.tracks)
        self.lines: list[dict[str, Any]] = []  # built, not yet taken (take_lines)
        # settle runs on the collect thread and, when a hand-off fails, on the capture thread:
        # feeding under one lock keeps ByteTrack, and the track lines, in capture order
        self.lock = threading.Lock()

    # ------------------------------------------------------------------------------ the camera
    def expect(self, meta: FrameMeta) -> None:
        self.reorder.expect(meta.index, meta.capture_time)

    def settle(self, index: int, done: Completion | None) -> list[dict[str, Any]]:
        """A frame settled (``done`` None: nothing to track). Returns the events it caused."""
        events: list[dict[str, Any]] = []
        sighting = Sighting.of(done) if done is not None else None
        with self.lock:
            for ready in self.reorder.arrive(index, sighting):
                events += self._feed(ready)
        return events

    def tick(self, now: float) -> list[dict[str, Any]]:
        """Ends tracks unseen for ``max_disappeared_s`` by wall clock (a live camera that went
        quiet or down); never before a frame still at a detector, which may show them."""
        oldest = self.reorder.oldest_out()
        with self.lock:
            return self._expire(min(now, oldest) if oldest is not None else now)

    def close(self) -> list[dict[str, Any]]:
        """Feeds what was held back, then ends every live object."""
        events: list[dict[str, Any]] = []
        with self.lock:
            for ready in self.reorder.drain():
                events += self._feed(ready)
            for key in list(self.live):
                events += self._end(key, "shutdown")
        return events

    def take_lines(self) -> list[dict[str, Any]]:
        """The track lines built since the last call, in capture order (``track_lines`` on)."""
        with self.lock:
            lines, self.lines = self.lines, []
        return lines

    def live_objects(self) -> tuple[dict[str, Any], ...]:
        """Each live object's end event as it would be now (kept in the camera's stats): if the
        camera actor dies, its successor sends them (:meth:`lost`), so every object ends."""
        return tuple(self._record("end", track, self._last_meta(track), None, "camera_lost")
                     for track in self.live.values() if track.started)

    def lost(self, objects: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
        """The end events of a previous camera actor's objects (it died with them live)."""
        events = [dict(event) for event in objects]
        self.events["end"] += len(events)
        return events

    @property
    def late(self) -> int:
        return self.reorder.late

    def active(self) -> dict[str, int]:
        """Live objects (started, not ended) per label: 0 for labels seen before and for the
        labels ``tracking.labels`` names, so their series exist from the start."""
        counts = Counter(t.label for t in self.live.values() if t.started)
        labels = set(self.byte) | set(self.config.labels or ())
        return {label: counts.get(label, 0) for label in sorted(labels)}

    # ------------------------------------------------------------------------------ tracking
    def _tracker(self, label: str) -> ByteTrackTracker:
        if label not in self.byte:
            # imported on the first box, not with the module: trackers brings supervision and
            # scipy, about 80 MB of a camera actor's memory, which a camera that never sees
            # anything (or runs with tracking off) does not pay
            from trackers import ByteTrackTracker

            frames = max(1, int(np.ceil(self.config.max_disappeared_s * self.fps)) + 1)
            self.byte[label] = ByteTrackTracker(
                lost_track_buffer=frames, frame_rate=30.0,  # 30: the buffer is in frames
                track_activation_threshold=self.config.threshold,
                minimum_consecutive_frames=self.config.min_frames,
                minimum_iou_threshold=self.config.match_iou,
                high_conf_det_threshold=self.config.threshold,
            )
        return self.byte[label]

    def _feed(self, sighting: Sighting) -> list[dict[str, Any]]:
        meta = sighting.meta
        self.size = (meta.width, meta.height)
        wanted = self.config.labels
        boxes = [(name, box) for name, box in sighting.boxes
                 if box.score >= self.config.min_score and (wanted is None or box.label in wanted)]
        kept = set(map(id, self.regions.unmasked([b for _, b in boxes], meta.width, meta.height)))
        boxes = [(name, box) for name, box in boxes if id(box) in kept]
        by_label: dict[str, list[tuple[str, Detection]]] = {}
        for name, box in boxes:
            by_label.setdefault(box.label, []).append((name, box))
        events: list[dict[str, Any]] = []
        for label in sorted(set(self.byte) | set(by_label)):
            events += self._associate(label, by_label.get(label, []), sighting)
        return events + self._expire(sighting.stream_time)

    def _associate(self, label: str, boxes: list[tuple[str, Detection]],
                   sighting: Sighting) -> list[dict[str, Any]]:
        import supervision as sv

        xyxy = np.array([[b.x, b.y, b.x + b.w, b.y + b.h] for _, b in boxes], dtype=float)
        detections = sv.Detections(
            xyxy=xyxy.reshape(-1, 4),
            confidence=np.array([b.score for _, b in boxes], dtype=float),
            class_id=np.zeros(len(boxes), dtype=int),
            data={"row": np.arange(len(boxes))},
        )
        tracked = self._tracker(label).update(detections)
        events: list[dict[str, Any]] = []
        rows = tracked.data.get("row", np.array([], dtype=int)) if len(tracked) else []
        for row, tracker_id in zip(rows, tracked.tracker_id if len(tracked) else [], strict=True):
            if int(tracker_id) < 0:
                continue  # not (yet) a confirmed track
            name, box = boxes[int(row)]
            key = (label, int(tracker_id))
            events += self._observe(key, name, box, sighting)
            if self.track_lines:
                self.lines.append(self._line(self.live[key], box, sighting.meta))
        return events

    def _observe(self, key: tuple[str, int], detector: str, box: Detection,
                 sighting: Sighting) -> list[dict[str, Any]]:
        meta, now = sighting.meta, sighting.stream_time
        track = self.live.get(key)
        if track is None:  # ByteTrack confirmed it: it gets its id now, before it may start
            track = Track(f"{self.camera}-{self.session}-{next(self.numbers)}", box.label,
                          detector, box, meta.capture_time, now, meta.index)
            if self.config.stationary_s is not None:
                track.still = Stillness(self.config.stationary_s,
                                        self.config.stationary_tolerance)
            self.live[key] = track
        track.box, track.frames = box, track.frames + 1
        track.last_seen, track.last_stream, track.last_frame = meta.capture_time, now, meta.index
        track.scores.append(box.score)
        while len(track.scores) > self.config.score_window:
            track.scores.popleft()
        track.best_score = max(track.best_score, box.score)
        self._consider_snapshot(track, box, sighting)
        # the stationary clock runs from the first sighting; only an object becomes stationary
        still = track.still.observe(box, now, track.started) if track.still else None
        events: list[dict[str, Any]] = []
        if not track.started:
            if not self._starts(track, now):
                return events
            events.append(self._event("start", track, meta))
            self._zones(track, box, meta, now, events)
            return events
        changed = self._zones(track, box, meta, now, events)
        if still == "stationary":
            track.last_update = now
            events.append(self._event("stationary", track, meta))
        # a stationary object sends no periodic or snapshot updates: parked cars stay quiet
        due = now - track.last_update >= self.config.update_interval_s
        better = track.better_since_update and now - track.last_update >= SNAPSHOT_UPDATE_GAP_S
        if changed or still == "moved" or (not track.stationary and (due or better)):
            track.last_update, track.better_since_update = now, False
            events.append(self._event("update", track, meta))
        return events

    def _starts(self, track: Track, now: float) -> bool:
        """Whether the track becomes an object now (then its pending snapshot is written)."""
        if (track.frames < self.config.min_frames
                or statistics.median(track.scores) < self.config.threshold):
            return False
        track.started, track.last_update = True, now
        if track.pending_jpeg is not None and self.snapshots is not None:
            track.snapshot = self.snapshots.save(track.id, track.pending_jpeg)
            track.pending_jpeg = None
        track.better_since_update = False
        return True

    def _zones(self, track: Track, box: Detection, meta: FrameMeta, now: float,
               events: list[dict[str, Any]]) -> bool:
        inside = set(self.regions.zones_of(box, meta.width, meta.height))
        changed = False
        for zone in sorted(inside - set(track.zones)):
            track.zones[zone] = now
            events.append(self._event("enter", track, meta, zone))
            changed = True
        for zone in sorted(set(track.zones) - inside):
            del track.zones[zone]
            track.loitered.discard(zone)  # a new visit may loiter again
            events.append(self._event("leave", track, meta, zone))
            changed = True
        for zone, entered in sorted(track.zones.items()):
            limit = self.regions.loitering_s(zone)
            if limit is not None and zone not in track.loitered and now - entered >= limit:
                track.loitered.add(zone)
                events.append(self._event("loiter", track, meta, zone))
        return changed

    def _consider_snapshot(self, track: Track, box: Detection, sighting: Sighting) -> None:
        if self.snapshots is None or sighting.view is None:
            return
        meta, now = sighting.meta, sighting.stream_time
        value = quality(box, meta.width, meta.height)
        if value <= track.quality or now - track.snapshot_stream < SNAPSHOT_EVERY_S:
            return
        jpeg = self.snapshots.encode(sighting.view(), meta, box)
        if jpeg is None:
            return
        track.quality, track.snapshot_stream = value, now
        if track.started:
            track.snapshot = self.snapshots.save(track.id, jpeg)
            track.better_since_update = True
        else:
            track.pending_jpeg = jpeg

    def _expire(self, now: float) -> list[dict[str, Any]]:
        gone = [key for key, track in self.live.items()
                if now - track.last_stream >= self.config.max_disappeared_s]
        events: list[dict[str, Any]] = []
        for key in gone:
            events += self._end(key, "unseen")
        return events

    def _last_meta(self, track: Track) -> FrameMeta:
        return FrameMeta(self.camera, track.last_frame, track.last_seen, *self.size, None)

    def _end(self, key: tuple[str, int], reason: str) -> list[dict[str, Any]]:
        track = self.live.pop(key)
        if not track.started:
            return []  # never an object: no events, no snapshot
        meta = self._last_meta(track)
        events = [self._event("leave", track, meta, zone) for zone in sorted(track.zones)]
        track.zones.clear()
        return events + [self._event("end", track, meta, reason=reason)]

    def _event(self, kind: str, track: Track, meta: FrameMeta, zone: str | None = None,
               reason: str | None = None) -> dict[str, Any]:
        self.events[kind] += 1
        return self._record(kind, track, meta, zone, reason)

    def _record(self, kind: str, track: Track, meta: FrameMeta, zone: str | None,
                reason: str | None) -> dict[str, Any]:
        box = track.box
        record = {
            "type": "object", "event": kind, "fleet": self.fleet, "camera": self.camera,
            "track": track.id, "label": track.label, "detector": track.detector,
            "time": round(meta.capture_time, 6), "frame": meta.index,
            "first_seen": round(track.first_seen, 6), "last_seen": round(track.last_seen, 6),
            "duration_s": round(track.last_stream - track.first_stream, 3),
            "score": round(track.scores[-1], 4) if track.scores else 0.0,
            "best_score": round(track.best_score, 4), "box": [box.x, box.y, box.w, box.h],
            "zones": sorted(track.zones), "zone": zone, "snapshot": track.snapshot,
            "frames": track.frames, "stationary": track.stationary,
        }
        if reason is not None:  # end: unseen | shutdown | camera_lost
            record["reason"] = reason
        return record

    def _line(self, track: Track, box: Detection, meta: FrameMeta) -> dict[str, Any]:
        """A track line: where one track's box is on one fed frame (``jsonl.tracks``)."""
        return {
            "type": "track", "camera": self.camera, "frame": meta.index,
            "time": round(meta.capture_time, 6), "track": track.id, "label": track.label,
            "box": [box.x, box.y, box.w, box.h], "score": round(box.score, 4),
            "started": track.started,
        }
