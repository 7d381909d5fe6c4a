"""The JSONL sink (``sinks.jsonl``): object events, and optionally one line per frame with
detections and one per tracked box, to ``events.jsonl``.

Lines are batched in memory and written with one ``write`` on a file opened ``O_APPEND``, so
the camera actors of a fleet can share one file on a node without tearing each other's lines;
the file rotates by size (:mod:`fleet.sinks.rotation`). A write that fails (a full disk) is
counted as dropped in the sink stats ``jsonl``, never raised.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path

from fleet.frames import SinkStats
from fleet.sinks.base import FileCounts
from fleet.sinks.rotation import AppendLog


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
