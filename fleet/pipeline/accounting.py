"""Per-camera frame ledger: every captured frame ends up processed, dropped (with a reason),
failed, or is still in flight. Thread-safe; imports no Ray.

A frame is in flight from the moment it is captured until it is settled, so the invariant
``captured == processed + dropped + failed + in_flight`` holds at every instant, not only
between frames. ``slots_used`` counts the in-flight frames that hold a slot (sent to detectors
and not yet answered); it is what the ``buffers`` bound limits.

The counters alone cannot prove that: each transition moves one frame from ``in_flight`` into a
bucket, so the sum holds by construction even if a frame is settled twice or never. The
:class:`FrameAudit` is kept apart from the counters, by frame index: every captured index must
settle exactly once. It reports a second settle of an index, an index settled that was never
captured, an index still open when the camera has stopped, and counters that disagree with it.
``CameraStats.accounted`` is true only when both agree.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from fleet.frames import CameraStats

_MAX_SAMPLES = 20_000
_MAX_PROBLEMS = 20


class FrameAudit:
    """Which frame indices are open (captured, not settled), and how each settled index ended.

    Counts settled frames by outcome on its own, from indices, never from the ledger's counters.
    """

    def __init__(self, base: Counter[str] | None = None, first_index: int = 0):
        self.open: dict[int, bool] = {}  # index -> holds a slot
        self.outcomes: Counter[str] = Counter(base or {})  # from a previous actor of the camera
        self.next_index = first_index
        self.problems: list[str] = []

    def _problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)

    def capture(self, index: int) -> None:
        if index != self.next_index or index in self.open:
            self._problem(f"frame {index} captured out of order (expected {self.next_index})")
        self.next_index = index + 1
        self.open[index] = False

    def admit(self, index: int) -> None:
        if index not in self.open:
            self._problem(f"frame {index} took a slot but is not in flight")
        self.open[index] = True

    def settle(self, index: int, outcome: str, slot: bool) -> None:
        held = self.open.pop(index, None)
        if held is None:
            seen = "settled twice" if index < self.next_index else "settled but never captured"
            self._problem(f"frame {index} {seen} (as {outcome})")
        elif held != slot:
            had = "with the slot it lacked" if slot else "without the slot it held"
            self._problem(f"frame {index} settled as {outcome} {had}")
        self.outcomes[outcome] += 1

    def check(self, ledger: FrameLedger, stopped: bool) -> tuple[str, ...]:
        """Problems found so far, plus any disagreement between the counters and the audit."""
        found = list(self.problems)
        counted = Counter({"processed": ledger.processed, "failed": ledger.failed,
                           **ledger.dropped})
        if +counted != +self.outcomes:
            found.append(f"counters {dict(+counted)} disagree with the frames settled "
                         f"{dict(+self.outcomes)}")
        if ledger.in_flight != len(self.open) or ledger.in_flight < 0:
            found.append(f"in_flight is {ledger.in_flight} but {len(self.open)} frame(s) are open")
        if ledger.slots_used != sum(self.open.values()):
            found.append(f"slots_used is {ledger.slots_used} but "
                         f"{sum(self.open.values())} open frame(s) hold a slot")
        if stopped and self.open:
            found.append(f"frames never settled: {sorted(self.open)[:10]}")
        return tuple(found)


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
        self.audit = FrameAudit()
        self.stopped = False
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
            base = Counter({"processed": self.processed, "failed": self.failed, **self.dropped})
            self.audit = FrameAudit(base, first_index=self.captured)

    # Each method is one transition of one frame; the caller holds no lock.
    def capture(self) -> int:
        with self.lock:
            index = self.captured
            self.captured += 1
            self.in_flight += 1
            self.audit.capture(index)
            return index

    def drop(self, index: int, reason: str) -> None:
        """A frame that holds no slot is dropped (fps limit, motion gate, no free slot, ...)."""
        with self.lock:
            self.in_flight -= 1
            self.dropped[reason] += 1
            self.audit.settle(index, reason, slot=False)

    def offer(self) -> None:
        with self.lock:
            self.offered += 1

    def admit(self, index: int) -> None:
        with self.lock:
            self.admitted += 1
            self.slots_used += 1
            self.peak_slots_used = max(self.peak_slots_used, self.slots_used)
            self.audit.admit(index)

    def settle(self, index: int, outcome: str, latency_s: float | None = None,
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
            self.audit.settle(index, outcome, slot=True)
            if latency_s is not None and len(self._latency) < _MAX_SAMPLES:
                self._latency.append(latency_s)
            if labels:
                self.frames_with_detections += 1
                self.detections.update(labels)

    def fail_unsent(self, index: int) -> None:
        """A captured frame that never reached a slot failed (it could not be decoded)."""
        with self.lock:
            self.in_flight -= 1
            self.failed += 1
            self.audit.settle(index, "failed", slot=False)

    def unsent(self, index: int) -> bool:
        """Whether this frame is in flight without a slot (captured, not yet handed on)."""
        with self.lock:
            return self.audit.open.get(index) is False

    def open_without_slot(self) -> list[int]:
        with self.lock:
            return [i for i, slot in self.audit.open.items() if not slot]

    def close(self) -> None:
        """The camera has stopped: from now on an open frame is a leak."""
        with self.lock:
            self.stopped = True

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
                audit_problems=self.audit.check(self, self.stopped),
                **extra,  # type: ignore[arg-type]
            )
