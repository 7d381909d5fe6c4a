"""The snapshot sink (``sinks.snapshots``): JPEGs of each tracked object's best sighting and,
optionally, of frames with detections, in a folder pruned by age and size
(:class:`fleet.sinks.rotation.SnapshotPruner`).

A JPEG is drawn on a downscaled copy, never on the shared frame. One that cannot be written (a
full disk) is counted as dropped in the sink stats ``snapshots``, never raised, and asks the
pruner to make room soon.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fleet.config import SinksConfig
from fleet.frames import Detection, DetectionResult, FrameMeta
from fleet.imaging import Downscaler, draw_boxes
from fleet.sinks.base import FileCounts
from fleet.sinks.rotation import SnapshotPruner, is_disk_full


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


@dataclass
class Snapshots:
    """A camera's snapshot sink: its parts share one count and one pruner (None when off)."""

    counts: FileCounts
    pruner: SnapshotPruner | None = None
    frames: SnapshotWriter | None = None  # with snapshots.frames
    objects: ObjectSnapshots | None = None

    @classmethod
    def open(cls, root: Path, camera: str, config: SinksConfig) -> Snapshots:
        """The parts ``config.snapshots`` turns on, writing under the run folder ``root``."""
        snapshots, counts = config.snapshots, FileCounts("snapshots")
        if not snapshots.enabled:
            return cls(counts)
        folder = root / snapshots.dir
        pruner = SnapshotPruner(folder, snapshots.max_age_days, snapshots.max_mb,
                                snapshots.prune_interval_s)
        frames = SnapshotWriter(folder, camera, config, counts) if snapshots.frames else None
        return cls(counts, pruner, frames, ObjectSnapshots(root, camera, config, counts, pruner))
