"""Event sinks: JSONL lines (object events, optionally one per frame and one per tracked box),
JPEG snapshots (each object's best, optionally frames), and the push sinks (webhook, MQTT:
:mod:`fleet.push`), which get object events only.

Lines are batched in memory and written with one ``write`` on a file opened ``O_APPEND``, so
the camera actors of a fleet can share one file on a node without tearing each other's lines.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fleet.config import SinksConfig
from fleet.frames import Detection, DetectionResult, FrameMeta, SinkStats
from fleet.imaging import Downscaler, draw_boxes
from fleet.push import PushSink, open_push_sinks


class JsonlWriter:
    def __init__(self, path: Path, flush_interval_s: float):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.flush_interval_s = flush_interval_s
        self.lines: list[str] = []
        self.last_flush = time.monotonic()
        self.lock = threading.Lock()
        self.written = 0

    def add(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self.lock:
            self.lines.append(line)
        if len(self.lines) >= 256 or time.monotonic() - self.last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            if self.lines:
                data = "".join(self.lines).encode()
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view):]
                self.written += len(self.lines)
                self.lines = []
            self.last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        os.close(self.fd)


def _jpeg(canvas: np.ndarray, quality: int) -> bytes | None:
    ok, jpeg = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return jpeg.tobytes() if ok else None


class ObjectSnapshots:
    """Each tracked object's best sighting: the frame downscaled, its box drawn, one JPEG per
    track (``<dir>/<camera>/<track>.jpg``), replaced atomically when a better one comes."""

    def __init__(self, root: Path, camera: str, config: SinksConfig):
        self.root = root
        self.relative = Path(config.snapshots.dir) / camera
        self.config = config.snapshots
        self.scaler = Downscaler()

    def encode(self, frame: np.ndarray, meta: FrameMeta, box: Detection) -> bytes | None:
        small, _ = self.scaler.resize(frame, self.config.width)
        canvas = small.copy() if small is frame else small  # never draw on the shared frame
        draw_boxes(canvas, [box], small.shape[1] / meta.width)
        return _jpeg(canvas, self.config.jpeg_quality)

    def save(self, track: str, jpeg: bytes) -> str:
        folder = self.root / self.relative
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{track}.jpg.partial"
        partial.write_bytes(jpeg)
        os.replace(partial, folder / f"{track}.jpg")  # a reader never sees half a JPEG
        return str(self.relative / f"{track}.jpg")


class SnapshotWriter:
    """Frames with detections (``snapshots.frames``): at most ``max_per_camera`` JPEGs, at
    least ``min_interval_s`` apart, boxes drawn."""

    def __init__(self, folder: Path, camera: str, config: SinksConfig):
        self.folder = folder
        self.camera = camera
        self.config = config.snapshots
        self.count = 0
        self.last = -1e18
        self.scaler = Downscaler()

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
        self.folder.mkdir(parents=True, exist_ok=True)
        jpeg = _jpeg(canvas, self.config.jpeg_quality)
        if jpeg is not None:
            (self.folder / f"{self.camera}-{meta.index:08d}.jpg").write_bytes(jpeg)
            self.count += 1
            self.last = now


class EventSink:
    """What a camera does with its results: frame lines and snapshots as frames finish, object
    events (from :mod:`fleet.tracking`) to the JSONL file and the push sinks, track lines to
    the JSONL file only."""

    def __init__(self, config: SinksConfig, run_dir: str, camera: str, fleet: str = ""):
        root = Path(run_dir)
        self.config = config
        self.fleet = fleet
        self.jsonl = (
            JsonlWriter(root / config.jsonl.path, config.jsonl.flush_interval_s)
            if config.jsonl.enabled else None
        )
        self.frame_snapshots = (
            SnapshotWriter(root / config.snapshots.dir, camera, config)
            if config.snapshots.enabled and config.snapshots.frames else None
        )
        self.object_snapshots = (
            ObjectSnapshots(root, camera, config) if config.snapshots.enabled else None
        )
        # whether the tracker should build track lines at all: off, they cost nothing
        self.track_lines = self.jsonl is not None and config.jsonl.tracks
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
        """Object events: a line each, and to every push sink (which never blocks)."""
        for event in events:
            if self.jsonl is not None and self.config.jsonl.objects:
                self.jsonl.add(event)
            for sink in self.push:
                sink.publish(event)

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
        return [_sink_stats(sink.stats()) for sink in self.push]

    def tick(self) -> None:
        jsonl = self.jsonl
        if jsonl is not None and time.monotonic() - jsonl.last_flush >= jsonl.flush_interval_s:
            jsonl.flush()

    def close(self, timeout_s: float = 5.0) -> list[SinkStats]:
        """Flush the file; give the push sinks up to ``timeout_s`` in all to deliver."""
        if self.jsonl is not None:
            self.jsonl.close()
        deadline = time.monotonic() + timeout_s
        return [_sink_stats(sink.close(max(0.0, deadline - time.monotonic())))
                for sink in self.push]


def _sink_stats(stats: Any) -> SinkStats:
    return SinkStats(stats.sink, stats.published, stats.sent, stats.queued, dict(stats.dropped),
                     stats.retries, stats.last_error)
