"""Per-camera frame ledger: every captured frame ends up processed, dropped (with a reason),
failed, or is still in flight. Thread-safe; imports no Ray.

A frame is in flight from the moment it is captured until it is settled, so the invariant
``captured == processed + dropped + failed + in_flight`` holds at every instant, not only
between frames. ``slots_used`` counts the in-flight frames that hold a slot (sent to detectors
and not yet answered); it is what the ``buffers`` bound limits.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from fleet.frames import CameraStats

# camera_lost: in flight in a camera actor that died (Ray frees the objects a dead worker owned)
DROP_REASONS = ("fps", "no_motion", "no_buffer", "detector_lost", "camera_lost", "shutdown")
_MAX_SAMPLES = 20_000


class FrameLedger:
    def __init__(self, camera: str):
        self.camera = camera
        self.lock = threading.Lock()
        self.captured = 0
        self.processed = 0
        self.failed = 0
        self.in_flight = 0
        self.slots_used = 0
        self.offered = 0
        self.admitted = 0
        self.peak_slots_used = 0
        self.reconnects = 0
        self.frames_with_detections = 0
        self.dropped: Counter[str] = Counter()
        self.detections: Counter[str] = Counter()
        self._latency: list[float] = []

    def restore(self, last: CameraStats) -> None:
        """Go on from the counters a previous actor of this camera last reported.

        Frames it had in flight died with it: they are counted as dropped, ``camera_lost``.
        Frames it captured after that report are not known to anyone, so they are not counted.
        """
        with self.lock:
            self.captured, self.processed, self.failed = last.captured, last.processed, last.failed
            self.offered, self.admitted = last.offered, last.admitted
            self.reconnects = last.reconnects
            self.frames_with_detections = last.frames_with_detections
            self.dropped = Counter(last.dropped)
            self.detections = Counter(last.detections)
            if last.in_flight > 0:
                self.dropped["camera_lost"] += last.in_flight
            self.in_flight = self.slots_used = 0

    # Each method is one transition of one frame; the caller holds no lock.
    def capture(self) -> int:
        with self.lock:
            self.captured += 1
            self.in_flight += 1
            return self.captured - 1

    def drop(self, reason: str) -> None:
        """A frame that holds no slot is dropped (fps limit, motion gate, no free slot, ...)."""
        with self.lock:
            self.in_flight -= 1
            self.dropped[reason] += 1

    def offer(self) -> None:
        with self.lock:
            self.offered += 1

    def admit(self) -> None:
        with self.lock:
            self.admitted += 1
            self.slots_used += 1
            self.peak_slots_used = max(self.peak_slots_used, self.slots_used)

    def settle(self, outcome: str, latency_s: float | None = None,
               labels: Counter[str] | None = None) -> None:
        """A frame that holds a slot is done: ``processed``, ``failed`` or a drop reason."""
        with self.lock:
            self.in_flight -= 1
            self.slots_used -= 1
            if outcome == "processed":
                self.processed += 1
            elif outcome == "failed":
                self.failed += 1
            else:
                self.dropped[outcome] += 1
            if latency_s is not None and len(self._latency) < _MAX_SAMPLES:
                self._latency.append(latency_s)
            if labels:
                self.frames_with_detections += 1
                self.detections.update(labels)

    def fail_unsent(self) -> None:
        """A captured frame that never reached a slot failed (it could not be decoded)."""
        with self.lock:
            self.in_flight -= 1
            self.failed += 1

    def snapshot(self, **extra: object) -> CameraStats:
        """Counters now, with the latencies recorded since the previous snapshot."""
        with self.lock:
            latency, self._latency = tuple(self._latency), []
            return CameraStats(
                camera=self.camera, captured=self.captured, processed=self.processed,
                failed=self.failed, in_flight=self.in_flight, slots_used=self.slots_used,
                dropped=dict(self.dropped), offered=self.offered, admitted=self.admitted,
                peak_slots_used=self.peak_slots_used,
                reconnects=self.reconnects, frames_with_detections=self.frames_with_detections,
                detections=dict(self.detections), latency_s=latency, time=time.time(),
                **extra,  # type: ignore[arg-type]
            )
