"""Event sinks: JSONL lines for frames with detections, and bounded JPEG snapshots.

Lines are batched in memory and written with one ``write`` on a file opened ``O_APPEND``, so
the camera actors of a fleet can share one file on a node without tearing each other's lines.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fleet.config import SinksConfig
from fleet.imaging import Downscaler, draw_boxes
from fleet.frames import DetectionResult, FrameMeta


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


class SnapshotWriter:
    """At most ``max_per_camera`` JPEGs, at least ``min_interval_s`` apart, boxes drawn."""

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
        quality = [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
        ok, jpeg = cv2.imencode(".jpg", canvas, quality)
        if ok:
            (self.folder / f"{self.camera}-{meta.index:08d}.jpg").write_bytes(jpeg.tobytes())
            self.count += 1
            self.last = now


class EventSink:
    """What a camera does with a finished frame's results."""

    def __init__(self, config: SinksConfig, run_dir: str, camera: str):
        root = Path(run_dir)
        self.jsonl = (
            JsonlWriter(root / config.jsonl.path, config.jsonl.flush_interval_s)
            if config.jsonl.enabled else None
        )
        self.snapshots = (
            SnapshotWriter(root / config.snapshots.dir, camera, config)
            if config.snapshots.enabled else None
        )

    def emit(self, meta: FrameMeta, results: list[DetectionResult], latency_s: float,
             frame: Callable[[], np.ndarray] | None = None) -> None:
        with_boxes = [r for r in results if r.detections]
        if self.jsonl is not None:
            for result in with_boxes:
                self.jsonl.add({
                    "camera": meta.camera, "frame": meta.index,
                    "capture_time": round(meta.capture_time, 6),
                    "detector": result.detector,
                    "boxes": [[d.x, d.y, d.w, d.h] for d in result.detections],
                    "labels": [d.label for d in result.detections],
                    "scores": [round(d.score, 4) for d in result.detections],
                    "latency_ms": round(latency_s * 1000, 3),
                    "service_ms": round(result.service_s * 1000, 3),
                })
        if self.snapshots is not None and with_boxes and frame is not None:
            self.snapshots.maybe_write(frame(), meta, with_boxes)

    def tick(self) -> None:
        jsonl = self.jsonl
        if jsonl is not None and time.monotonic() - jsonl.last_flush >= jsonl.flush_interval_s:
            jsonl.flush()

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()
