"""A camera's in-flight slots: at most ``buffers`` frames at its detectors at once, and its
``drop_policy`` when every slot is busy.

- ``drop_newest``: the new frame is dropped (``no_buffer``), before decoding when it can be.
- ``drop_oldest``: the new frame waits for a slot in place of the one that waited before it,
  which is dropped; its buffer is decoded into next, so no frame is copied to wait.
- ``wait``: the capture thread waits for a slot (backpressure on the source).

Both threads use the slots: capture offers frames, collect frees slots as results come back and
sends the waiting frame. One lock guards the decision, the waiting frame and the spare buffer;
a frame is dispatched under it, so no two frames take the last slot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from fleet.config import CameraConfig
from fleet.frames import FrameMeta
from fleet.pipeline.accounting import FrameLedger
from fleet.pipeline.putgroup import PutGroup

Dispatch = Callable[[np.ndarray, FrameMeta, float], None]  # frame, meta, capture time


class Slots:
    """``dispatch`` sends a frame (it takes its slot there); ``stopping`` ends a wait."""

    def __init__(self, config: CameraConfig, ledger: FrameLedger, stopping: threading.Event,
                 dispatch: Dispatch):
        self.policy = config.drop_policy
        self.buffers = config.buffers
        self.ledger, self.stopping, self._dispatch = ledger, stopping, dispatch
        self.lock = threading.Lock()
        self.freed = threading.Condition(self.lock)  # drop_policy wait: capture waits here
        self.waiting: tuple[np.ndarray, FrameMeta, float] | None = None  # drop_oldest
        self.spare: np.ndarray | None = None  # a sent waiting frame's buffer, to decode into

    def _free(self) -> bool:
        return self.ledger.slots_used < self.buffers

    def resize(self, buffers: int) -> None:
        """Takes effect on the next frame; frames already in flight finish normally."""
        with self.lock:
            self.buffers = max(1, buffers)
            self.freed.notify_all()

    def is_waiting(self, index: int) -> bool:
        with self.lock:
            return self.waiting is not None and self.waiting[1].index == index

    def drop_waiting(self) -> None:
        """At stop: the waiting frame will not go."""
        with self.lock:
            if self.waiting is not None:
                self.ledger.drop(self.waiting[1].index, "shutdown")
                self.waiting = None

    def let_go_spare(self) -> None:
        """The frames changed shape: the spare buffer is of the old one."""
        with self.lock:
            self.spare = None

    def full_and_dropping(self, index: int) -> bool:
        """drop_newest with every slot busy: the frame would be dropped after decoding, so it
        is dropped now (offered and dropped ``no_buffer``)."""
        if self.policy != "drop_newest":
            return False
        with self.lock:
            if self._free():
                return False
            self.ledger.offer()
            self.ledger.drop(index, "no_buffer")
            return True

    def offer(self, frame: np.ndarray, meta: FrameMeta, started: float) -> np.ndarray | None:
        """Dispatch now, or apply the drop policy. Returns the buffer to decode the next frame
        into."""
        self.ledger.offer()
        with self.lock:
            if self.policy == "wait":  # backpressure: hold capture until a slot frees
                while not self._free() and not self.stopping.is_set():
                    self.freed.wait(0.1)
            if self._free():
                self._dispatch(frame, meta, started)
                return frame  # ray.put copied it: the buffer is free again
            if self.policy == "wait":  # stopping while waiting
                self.ledger.drop(meta.index, "shutdown")
                return frame
            if self.policy == "drop_newest":
                self.ledger.drop(meta.index, "no_buffer")
                return frame
            # drop_oldest: this frame waits for a slot; the frame it replaces is dropped.
            free: np.ndarray | None
            if self.waiting is not None:
                self.ledger.drop(self.waiting[1].index, "no_buffer")
                free = self.waiting[0]
            else:
                free, self.spare = self.spare, None
            self.waiting = (frame, meta, started)
            return free

    def dispatch_waiting(self, shape: tuple[int, int]) -> None:
        """From the collect loop, as slots free: wake a waiting capture, send the waiting
        frame; its buffer becomes the spare when it is of the current ``shape``."""
        with self.lock:
            self.freed.notify_all()
            if self.waiting is not None and self._free():
                frame, meta, started = self.waiting
                self.waiting = None
                self._dispatch(frame, meta, started)
                if frame.shape[:2] == shape:  # of an old shape: let it go
                    self.spare = frame

    # ------------------------------------------------------------------------- put_frames groups
    def for_group(self, group: PutGroup) -> bool:
        """Whether a frame can join the group (a slot is free). With ``drop_policy: wait`` it
        waits for one first (sending the group when it is due)."""
        while True:
            with self.lock:
                if self._free():
                    return True
                if self.policy != "wait" or self.stopping.is_set():
                    return False
                if not group.due(self.ledger.slots_used):
                    self.freed.wait(0.1)
                    continue
            group.send()

    def send_if_due(self, group: PutGroup) -> None:
        with self.lock:
            due = group.due(self.ledger.slots_used)
        if due:
            group.send()
