"""What a camera does with its results (:class:`EventSink`): it combines the sinks, each in a
module of its own. JSONL lines (object events, optionally one per frame and one per tracked box:
:mod:`fleet.sinks.jsonl`), JPEG snapshots (each object's best, optionally frames:
:mod:`fleet.sinks.snapshots`), and the push sinks (:mod:`fleet.sinks.push`: webhook, MQTT),
which get object events only.

The sinks are independent: object events go to the push sinks before the file, and a file or
snapshot that cannot be written (a full disk) is counted as dropped (``disk_full``) in the sink
stats ``jsonl`` and ``snapshots``, never raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fleet.config import SinksConfig
from fleet.frames import DetectionResult, FrameMeta, SinkStats
from fleet.sinks.base import PushSink
from fleet.sinks.jsonl import JsonlWriter
from fleet.sinks.push import open_push_sinks
from fleet.sinks.snapshots import Snapshots


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
        snapshots = Snapshots.open(root, camera, config)
        self.snapshot_counts = snapshots.counts
        self.pruner = snapshots.pruner
        self.frame_snapshots = snapshots.frames
        self.object_snapshots = snapshots.objects
        # whether the tracker should build track lines at all: off, they cost nothing
        self.track_lines = self.jsonl is not None and jsonl.tracks
        self.push: list[PushSink] = open_push_sinks(config, fleet, camera)

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
