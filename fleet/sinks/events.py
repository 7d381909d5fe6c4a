"""Event sinks: JSONL lines (object events, optionally one per frame and one per tracked box),
JPEG snapshots (each object's best, optionally frames), and the push sinks (webhook, MQTT:
:mod:`fleet.sinks.push`), which get object events only.

Lines are batched in memory and written with one ``write`` on a file opened ``O_APPEND``, so
the camera actors of a fleet can share one file on a node without tearing each other's lines;
the file rotates by size and the snapshot folder is pruned by age and size
(:mod:`fleet.sinks.rotation`). The sinks are independent: object events go to the push sinks before
the file, and a file or snapshot that cannot be written (a full disk) is counted as dropped
(``disk_full``) in the sink stats ``jsonl`` and ``snapshots``, never raised.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fleet.config import SinksConfig
from fleet.frames import Detection, DetectionResult, FrameMeta, SinkStats
from fleet.imaging import Downscaler, draw_boxes
from fleet.sinks.push import FILE_DROP_REASONS, PushSink, open_push_sinks
from fleet.sinks.rotation import AppendLog, SnapshotPruner, is_disk_full

log = logging.getLogger(__name__)


class FileCounts:
    """What a file sink (``jsonl``, ``snapshots``) did, as a :class:`SinkStats`:
    ``published == sent + queued + sum(dropped.values())``. A write that fails is counted, and
    logged the 1st, 2nd, 4th, 8th ... time, never raised: a full disk must not stop the push
    sinks or the camera."""

    def __init__(self, sink: str):
        self.sink = sink
        self.lock = threading.Lock()
        self.published = self.sent = self.failures = 0
        self.dropped = dict.fromkeys(FILE_DROP_REASONS, 0)
        self.last_error = ""

    def failed(self, error: OSError, what: str) -> str:
        """Note a failed write; its drop reason."""
        reason = "disk_full" if is_disk_full(error) else "io_error"
        with self.lock:
            self.failures += 1
            self.last_error = f"{what}: {error.strerror or error}"
            failures = self.failures
        if failures & (failures - 1) == 0:
            log.warning("sink %s: %s (%d failed writes so far; counted as dropped %s)",
                        self.sink, self.last_error, failures, reason)
        return reason

    def drop(self, reason: str, n: int = 1) -> None:
        with self.lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + n

    def stats(self, queued: int = 0) -> SinkStats:
        with self.lock:
            return SinkStats(self.sink, self.published, self.sent, queued, dict(self.dropped),
                             self.failures, self.last_error)


class JsonlWriter:
    """Lines batched in memory and written with one ``write`` per flush (``O_APPEND``: camera
    actors of a node share the file), rotated by size (:class:`fleet.sinks.rotation.AppendLog`).

    A failed write (a full disk) keeps the lines, retries at most every ``flush_interval_s``
    (not on every ``add``: ``add`` stays O(1)), and holds at most ``max_pending`` lines, dropping
    and counting the oldest. A write cut short keeps its unwritten bytes at the head, so the
    line is finished, not torn, when space returns."""

    def __init__(self, path: Path, flush_interval_s: float, rotate_bytes: int = 0,
                 keep_files: int = 5, max_pending: int = 10_000):
        self.file = AppendLog(path, rotate_bytes, keep_files)
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self.pending: deque[bytes] = deque()
        self.head_written = 0  # bytes of pending[0] already in the file (a write cut short)
        self.retry_at = 0.0  # after a failed write: no new attempt before this
        self.reason = "disk_full"  # why the lines now held back would be dropped
        self.last_flush = time.monotonic()
        self.lock = threading.Lock()
        self.counts = FileCounts("jsonl")

    @property
    def written(self) -> int:
        return self.counts.sent

    def add(self, record: dict) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self.lock:
            self.counts.published += 1
            self.pending.append(line)
            if len(self.pending) > self.max_pending:
                # the oldest not yet begun; one half written is finished first
                del self.pending[1 if self.head_written else 0]
                self.counts.drop(self.reason)
            due = len(self.pending) >= 256 or time.monotonic() - self.last_flush >= \
                self.flush_interval_s
        if due:
            self.flush()

    def flush(self, force: bool = False) -> None:
        """Write what is pending; after a failed write, only once ``retry_at`` has passed
        (or ``force``)."""
        with self.lock:
            now = time.monotonic()
            self.last_flush = now
            if not self.pending or (now < self.retry_at and not force):
                return
            data = memoryview(b"".join(self.pending))[self.head_written:]
            done = 0
            try:
                while done < len(data):  # rotate only between whole lines
                    rotate = self.head_written == 0 and done == 0
                    done += self.file.write(data[done:], may_rotate=rotate)
                self.retry_at = 0.0
            except OSError as error:
                self.reason = self.counts.failed(error, f"writing {self.file.path}")
                self.retry_at = now + self.flush_interval_s
            self._settle(self.head_written + done)

    def _settle(self, nbytes: int) -> None:
        """Drop the lines the file now holds whole; keep how much of the next one it has."""
        while self.pending and len(self.pending[0]) <= nbytes:
            nbytes -= len(self.pending.popleft())
            self.counts.sent += 1
        self.head_written = nbytes

    def stats(self) -> SinkStats:
        with self.lock:
            return self.counts.stats(len(self.pending))

    def close(self) -> SinkStats:
        """Flush (one last attempt, whatever ``retry_at``); lines still held are dropped."""
        self.flush(force=True)
        with self.lock:
            if self.pending:
                self.counts.drop(self.reason, len(self.pending))
                self.pending.clear()
            self.file.close()
            return self.counts.stats(0)


def _jpeg(canvas: np.ndarray, quality: int) -> bytes | None:
    ok, jpeg = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return jpeg.tobytes() if ok else None


class ObjectSnapshots:
    """Each tracked object's best sighting: the frame downscaled, its box drawn, one JPEG per
    track (``<dir>/<camera>/<track>.jpg``), replaced atomically when a better one comes."""

    def __init__(self, root: Path, camera: str, config: SinksConfig,
                 counts: FileCounts | None = None, pruner: SnapshotPruner | None = None):
        self.root = root
        self.relative = Path(config.snapshots.dir) / camera
        self.config = config.snapshots
        self.scaler = Downscaler()
        self.counts = counts or FileCounts("snapshots")
        self.pruner = pruner

    def encode(self, frame: np.ndarray, meta: FrameMeta, box: Detection) -> bytes | None:
        small, _ = self.scaler.resize(frame, self.config.width)
        canvas = small.copy() if small is frame else small  # never draw on the shared frame
        draw_boxes(canvas, [box], small.shape[1] / meta.width)
        return _jpeg(canvas, self.config.jpeg_quality)

    def save(self, track: str, jpeg: bytes) -> str | None:
        """The snapshot's path in the run folder. When it cannot be written (a full disk) the
        failure is counted and the object's previous snapshot, if still there, stands; None
        if there is none (the event goes out with ``snapshot: null``)."""
        folder = self.root / self.relative
        final = folder / f"{track}.jpg"
        partial = folder / f".{track}.jpg.partial"
        with self.counts.lock:
            self.counts.published += 1
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(jpeg)
            os.replace(partial, final)  # a reader never sees half a JPEG
        except OSError as error:
            self.counts.drop(self.counts.failed(error, f"saving {final}"))
            with contextlib.suppress(OSError):
                partial.unlink()
            if self.pruner is not None and is_disk_full(error):
                self.pruner.soon()
            return str(self.relative / f"{track}.jpg") if final.is_file() else None
        with self.counts.lock:
            self.counts.sent += 1
        return str(self.relative / f"{track}.jpg")


class SnapshotWriter:
    """Frames with detections (``snapshots.frames``): at most ``max_per_camera`` JPEGs, at
    least ``min_interval_s`` apart, boxes drawn."""

    def __init__(self, folder: Path, camera: str, config: SinksConfig,
                 counts: FileCounts | None = None):
        self.folder = folder
        self.camera = camera
        self.config = config.snapshots
        self.count = 0
        self.last = -1e18
        self.scaler = Downscaler()
        self.counts = counts or FileCounts("snapshots")

    def maybe_write(self, frame: np.ndarray, meta: FrameMeta,
                    results: list[DetectionResult]) -> None:
        now = time.monotonic()
        if self.count >= self.config.max_per_camera or now - self.last < self.config.min_interval_s:
            return
        small, _ = self.scaler.resize(frame, self.config.width)
        canvas = small.copy() if small is frame else small  # never draw on the shared frame
        scale = small.shape[1] / meta.width  # boxes are in original pixels (put_width or not)
        for result in results:
            draw_boxes(canvas, result.detections, scale)
        jpeg = _jpeg(canvas, self.config.jpeg_quality)
        if jpeg is None:
            return
        path = self.folder / f"{self.camera}-{meta.index:08d}.jpg"
        with self.counts.lock:
            self.counts.published += 1
        self.last = now
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jpeg)
        except OSError as error:
            self.counts.drop(self.counts.failed(error, f"saving {path}"))
            with contextlib.suppress(OSError):
                path.unlink()  # no half a JPEG
            return
        with self.counts.lock:
            self.counts.sent += 1
        self.count += 1


class EventSink:
    """What a camera does with its results: frame lines and snapshots as frames finish, object
    events (from :mod:`fleet.pipeline.tracking`) to the push sinks and the JSONL file, track
    lines to the JSONL file only. Each sink fails on its own: a full disk stops no push sink, and a
    failed write is counted (``stats()``: sinks ``jsonl`` and ``snapshots``), never raised."""

    def __init__(self, config: SinksConfig, run_dir: str, camera: str, fleet: str = ""):
        root = Path(run_dir)
        self.config = config
        self.fleet = fleet
        jsonl = config.jsonl
        self.jsonl = (
            JsonlWriter(root / jsonl.path, jsonl.flush_interval_s, int(jsonl.rotate_mb * 1e6),
                        jsonl.keep_files, jsonl.max_pending_lines)
            if jsonl.enabled else None
        )
        snapshots = config.snapshots
        self.snapshot_counts = FileCounts("snapshots")
        self.pruner = (
            SnapshotPruner(root / snapshots.dir, snapshots.max_age_days, snapshots.max_mb,
                           snapshots.prune_interval_s)
            if snapshots.enabled else None
        )
        self.frame_snapshots = (
            SnapshotWriter(root / snapshots.dir, camera, config, self.snapshot_counts)
            if snapshots.enabled and snapshots.frames else None
        )
        self.object_snapshots = (
            ObjectSnapshots(root, camera, config, self.snapshot_counts, self.pruner)
            if snapshots.enabled else None
        )
        # whether the tracker should build track lines at all: off, they cost nothing
        self.track_lines = self.jsonl is not None and jsonl.tracks
        self.push: list[PushSink] = open_push_sinks(config.webhook, config.mqtt, fleet, camera)

    def emit(self, meta: FrameMeta, results: list[DetectionResult], latency_s: float,
             frame: Callable[[], np.ndarray] | None = None) -> None:
        """A finished frame: its line (``jsonl.frames``) and snapshot (``snapshots.frames``)."""
        with_boxes = [r for r in results if r.detections]
        if self.jsonl is not None and self.config.jsonl.frames:
            for result in with_boxes:
                self.jsonl.add({
                    "type": "frame", "camera": meta.camera, "frame": meta.index,
                    "capture_time": round(meta.capture_time, 6),
                    "detector": result.detector,
                    "boxes": [[d.x, d.y, d.w, d.h] for d in result.detections],
                    "labels": [d.label for d in result.detections],
                    "scores": [round(d.score, 4) for d in result.detections],
                    "latency_ms": round(latency_s * 1000, 3),
                    "service_ms": round(result.service_s * 1000, 3),
                })
        if self.frame_snapshots is not None and with_boxes and frame is not None:
            self.frame_snapshots.maybe_write(frame(), meta, with_boxes)

    def objects(self, events: Sequence[dict[str, Any]]) -> None:
        """Object events: to every push sink first (which never blocks), then a line each."""
        for event in events:
            for sink in self.push:
                sink.publish(event)
            if self.jsonl is not None and self.config.jsonl.objects:
                self.jsonl.add(event)

    def tracks(self, lines: Sequence[dict[str, Any]]) -> None:
        """Track lines (``jsonl.tracks``), in capture order: to the file, never pushed."""
        if self.jsonl is not None and self.track_lines:
            for line in lines:
                self.jsonl.add(line)

    def set_state(self, state: str) -> None:
        """The camera's state (up, down, ...), for sinks that publish it (MQTT)."""
        for sink in self.push:
            sink.set_state(state)

    def push_stats(self) -> list[SinkStats]:
        """Every sink's counters: the push sinks, then ``jsonl`` and ``snapshots`` (when on)."""
        return [*(_sink_stats(sink.stats()) for sink in self.push), *self._file_stats()]

    def _file_stats(self, jsonl: SinkStats | None = None) -> list[SinkStats]:
        files = []
        if self.jsonl is not None:
            files.append(jsonl or self.jsonl.stats())
        if self.object_snapshots is not None:
            files.append(self.snapshot_counts.stats())
        return files

    def tick(self) -> None:
        jsonl = self.jsonl
        if jsonl is not None and time.monotonic() - jsonl.last_flush >= jsonl.flush_interval_s:
            jsonl.flush()
        if self.pruner is not None:
            self.pruner.maybe_prune()

    def close(self, timeout_s: float = 5.0) -> list[SinkStats]:
        """Flush the file; give the push sinks up to ``timeout_s`` in all to deliver."""
        jsonl = self.jsonl.close() if self.jsonl is not None else None
        deadline = time.monotonic() + timeout_s
        pushed = [_sink_stats(sink.close(max(0.0, deadline - time.monotonic())))
                  for sink in self.push]
        return [*pushed, *self._file_stats(jsonl)]


def _sink_stats(stats: Any) -> SinkStats:
    return SinkStats(stats.sink, stats.published, stats.sent, stats.queued, dict(stats.dropped),
                     stats.retries, stats.last_error)
