"""Capture order for the tracker: results come back out of order, the tracker wants them in order.

With several frames at the detectors, a camera's results finish in whatever order the detectors
answer. :class:`Reorder` holds a result back until every earlier frame has settled (or
``reorder_window`` results wait), then hands the frames on in capture order, each as a
:class:`Sighting`. A result that comes later than that is counted (``late``) instead of fed.
Imports no Ray.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fleet.frames import Completion, Detection, FrameMeta


@dataclass
class Sighting:
    """One settled frame as the tracker sees it: its boxes, and its pixels while they last."""

    meta: FrameMeta
    boxes: list[tuple[str, Detection]]  # (detector name, box)
    view: Callable[[], np.ndarray] | None = None

    @property
    def stream_time(self) -> float:
        meta = self.meta
        return meta.stream_time if meta.stream_time is not None else meta.capture_time

    @classmethod
    def of(cls, done: Completion) -> Sighting:
        boxes = [(r.detector, d) for r in done.results for d in r.detections]
        return cls(done.meta, boxes, done.view if boxes else None)


class Reorder:
    """Hands frames on in capture order: a result waits while an earlier frame is still out.

    ``expect`` is called when a frame is sent to the detectors, ``arrive`` when it settles
    (with ``None`` when it has nothing to track: lost, failed, dropped at shutdown). Thread-safe:
    the capture thread expects, the collect thread arrives.
    """

    def __init__(self, window: int, max_views: int = 4):
        self.window = window
        self.max_views = max_views  # held results that may keep their frame for a snapshot
        self.expected: dict[int, float] = {}  # index -> capture time
        self.ready: dict[int, Sighting | None] = {}
        self.last_fed = -1
        self.late = 0
        self.lock = threading.Lock()

    def expect(self, index: int, capture_time: float) -> None:
        with self.lock:
            self.expected[index] = capture_time

    def arrive(self, index: int, sighting: Sighting | None) -> list[Sighting]:
        with self.lock:
            self.expected.pop(index, None)
            if index <= self.last_fed:
                if sighting is not None:
                    self.late += 1
                return []
            self.ready[index] = sighting
            out = self._release(force=False)
            if index in self.ready and sighting is not None and sighting.view is not None:
                held = sum(1 for s in self.ready.values() if s is not None and s.view is not None)
                if held > self.max_views:  # bound the frames pinned in the object store
                    sighting.view = None
            return out

    def drain(self) -> list[Sighting]:
        """Everything held back, in order (shutdown: nothing earlier is coming)."""
        with self.lock:
            self.expected.clear()
            return self._release(force=True)

    def oldest_out(self) -> float | None:
        """The capture time of the oldest frame still at a detector."""
        with self.lock:
            return min(self.expected.values()) if self.expected else None

    def _release(self, force: bool) -> list[Sighting]:
        out: list[Sighting] = []
        while self.ready:
            first = min(self.ready)
            blocked = bool(self.expected) and min(self.expected) < first
            if blocked and not force and len(self.ready) <= self.window:
                break
            item = self.ready.pop(first)
            self.last_fed = first
            if item is not None:
                out.append(item)
        return out
