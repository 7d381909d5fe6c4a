"""``put_frames``: a camera's frames stacked into one object-store put and sent in one detector
call per kind, and ``put_width``: the size a frame is put at.

Two threads use a group. The capture thread decodes each admitted frame straight into the next
row of a reused stack and sends the group when it is full, or when its first frame would wait
longer than ``put_wait_ms`` for the rest. The collect thread sends a group whose first frame has
already waited that long although no frame came (a stalled stream), and ``stop()`` sends what a
stuck capture thread left. So the group has its own lock, and the rows past the pending frames
are the capture thread's alone (see :meth:`PutGroup.slot`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from fleet.config import CameraConfig
from fleet.frames import FrameMeta

Send = Callable[[np.ndarray, list[FrameMeta], list[float]], None]  # stacked frames, metas, starts
Admit = Callable[[FrameMeta, int], None]  # a frame joined (it takes a slot), bytes it puts


def put_shape(shape: tuple[int, ...], put_width: int | None) -> tuple[int, ...]:
    """The shape a frame of ``shape`` is put at: ``put_width`` wide, its height in proportion;
    as it is when it is no wider (or ``put_width`` is not set)."""
    if not put_width or put_width >= shape[1]:
        return shape
    return (max(1, round(shape[0] * put_width / shape[1])), put_width, *shape[2:])


def shrink(frame: np.ndarray, put_width: int, into: np.ndarray | None) -> np.ndarray:
    """The frame resized to ``put_width``, into ``into`` when that has the shape (reused: no
    allocation per frame), else into a new buffer."""
    shape = put_shape(frame.shape, put_width)
    if into is None or into.shape != shape:
        into = np.empty(shape, frame.dtype)
    cv2.resize(frame, (shape[1], shape[0]), dst=into, interpolation=cv2.INTER_AREA)
    return into


class PutGroup:
    """The frames admitted and decoded into :attr:`stack`, not yet sent.

    ``send`` hands a group off (it must settle the frames itself if that fails); ``admit`` is
    told of each frame that joins, under the group's lock, before it can be sent.
    """

    def __init__(self, config: CameraConfig, send: Send, admit: Admit):
        self.size = config.put_frames
        self.wait_s = config.put_wait_ms / 1000
        self.put_width = config.put_width
        self._send, self._admit = send, admit
        self.lock = threading.Lock()  # guards pending, closed and stack rows 0..len(pending)-1
        self.stack: np.ndarray | None = None  # reused while the frames keep their shape
        # (meta, capture time) of the frames in stack; replaced, never emptied, when sent, so a
        # thread may read it without the lock and see a whole group
        self.pending: list[tuple[FrameMeta, float]] = []
        self.closed = False  # stop() sent the group while capture was stuck
        self.gap_s = 1.0 / config.fps  # time between admitted frames (moving average)
        self.last_admit: float | None = None

    def due(self, slots_used: int) -> bool:
        """Whether the pending group must go although it is not full: no other frame is in
        flight (none will free a slot for it to grow), or its first frame would wait longer
        than ``put_wait_ms``. ``slots_used``: the camera's frames in flight, the group's
        included."""
        group = self.pending
        if not group:
            return False
        if len(group) >= self.size or slots_used <= len(group):
            return True
        return time.monotonic() - group[0][1] + self.gap_s > self.wait_s

    def slot(self) -> np.ndarray | None:
        """Where the next frame is decoded to (None: no stack yet). Rows from len(pending) on
        are the capture thread's alone; a group sent meanwhile only copies rows before it."""
        with self.lock:
            return self.stack[len(self.pending)] if self.stack is not None else None

    def join(self, frame: np.ndarray, meta: FrameMeta, started: float) -> None:
        """Admit a decoded frame (it takes a slot now), and send the group when it is full or
        its first frame would wait longer than ``put_wait_ms``."""
        with self.lock:
            if self.closed:
                return  # capture was stuck when stop() closed the group; stop() settled it
            slot = self._row(frame)
            if slot.shape != frame.shape:  # put_width: shrink into the group
                shrink(frame, slot.shape[1], slot)
                meta = replace(meta, put_scale=frame.shape[1] / slot.shape[1])
            elif frame.ctypes.data != slot.ctypes.data:  # decoded elsewhere (first frame, a
                np.copyto(slot, frame)  # source that allocates, a group sent meanwhile)
            self._admit(meta, slot.nbytes)
            self.pending.append((meta, started))
            now = time.monotonic()
            if self.last_admit is not None:
                self.gap_s = 0.8 * self.gap_s + 0.2 * (now - self.last_admit)
            self.last_admit = now
            waited = now - self.pending[0][1]  # the next frame is due in about gap_s
            if len(self.pending) >= self.size or waited + self.gap_s > self.wait_s:
                self._send_locked()

    def _row(self, frame: np.ndarray) -> np.ndarray:
        """The stack row the frame goes to; a new stack when the frame's size changed (what
        is pending goes first, as it is)."""
        shape = put_shape(frame.shape, self.put_width)
        stack = self.stack
        if stack is None or stack.shape[1:] != shape or stack.dtype != frame.dtype:
            self._send_locked()
            stack = self.stack = np.empty((self.size, *shape), frame.dtype)
        return stack[len(self.pending)]

    def send(self) -> None:
        """Hand the pending frames off: one put, one call per detector kind."""
        with self.lock:
            self._send_locked()

    def send_stale(self) -> None:
        """From the collect loop: a group whose first frame has waited past ``put_wait_ms``
        goes, even if no frame comes to send it (a stalled stream)."""
        group = self.pending
        if group and time.monotonic() - group[0][1] > self.wait_s:
            self.send()

    def close(self) -> None:
        """Send what is pending and take no frame after (stop() with capture stuck)."""
        with self.lock:
            self.closed = True
            self._send_locked()

    def _send_locked(self) -> None:
        if not self.pending:
            return
        group, self.pending = self.pending, []
        assert self.stack is not None
        self._send(self.stack[:len(group)], [m for m, _ in group], [t for _, t in group])
