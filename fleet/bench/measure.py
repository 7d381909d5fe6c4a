"""How a baseline's hand-off is measured: timed loop, parent and child memory, frame-sized
allocations, GC runs; and :class:`BaselineResult`, what a baseline reports.

Before timing, every distinct frame goes once with ``verify``: the other side answers the CRC-32
of the whole frame, compared with the parent's (a mismatch raises :class:`BaselineError`).

What each result holds, and how it is measured:

- ``samples_s``: seconds per frame, from just before the parent starts encoding or sending to
  just after it holds the answer. ``loop_s`` is the whole timed loop (``fps`` = repeats / loop_s).
- Parent memory: ``VmRSS`` from ``/proc/self/status`` just before the loop; the peak is
  ``VmHWM``, reset to the current RSS by writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0)
  just before the loop, so it catches a transient peak inside one hand-off. Where that write is
  refused, the peak is the largest ``VmRSS`` sampled after each frame, which can miss a transient
  peak inside one hand-off; ``parent_peak_method`` says which was used. Before the loop, glibc's
  ``malloc_trim`` hands what the warm-up freed back to the OS, so the peak counts the memory the
  loop touches, not free memory the warm-up left in malloc's lists. The delta after the loop
  still includes what malloc keeps, as any RSS figure does.
- Child memory: the server's or worker's ``VmRSS`` once it is ready (before any frame) and its
  ``VmHWM`` after the last frame, both read from ``/proc/<pid>/status`` by the parent. A child per
  frame exits too soon for that, so each reads its own ``/proc/self/status``: RSS before reading
  stdin, high-water mark after answering; the result has the median base and the largest peak.
- Frame-sized allocations in the parent: a separate pass over ``trace_frames`` frames (tracing
  would slow the Python-heavy paths, HTTP most, and distort the very times compared). With
  ``tracemalloc`` on (it sees Python objects and NumPy's data buffers) and a ``sys.setprofile``
  hook on every Python and C call and return, each interval between two such events in which the
  traced peak rose at least half a frame above the memory at the interval's start counts one
  allocation. Intervals are one C call or a few bytecodes, so this counts each encode, copy and
  join of the frame separately. It is a lower bound: two such allocations within one C call count
  once, and one that reuses memory freed in the same interval is not seen.
- ``gc_collections``: ``gc.get_stats()`` collections per generation, after minus before the loop.
"""

from __future__ import annotations

import ctypes
import gc
import statistics
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np

from fleet.bench.children.common import status_kb
from fleet.errors import BaselineError  # defined with every other exception; imported from here too

CHILD_TIMEOUT_S = 60.0
"""Longest wait for a server, worker or per-frame process before it is deemed stuck."""

MB = 1e6  # as the benchmark tables: 1080p is 6.22 MB

HandOff = Callable[[np.ndarray, bool], dict[str, int]]
"""Hands one frame over (``verify``: ask for its CRC-32) and returns the other side's answer."""


# --- results ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BaselineResult:
    """One baseline's figures over one timed loop; memory in MB (1e6 bytes)."""

    method: str
    frame_shape: tuple[int, ...]
    frame_bytes: int
    samples_s: tuple[float, ...]
    loop_s: float
    parent_peak_rss_increase_mb: float
    parent_rss_delta_mb: float
    parent_peak_method: str  # "VmHWM" or "sampled VmRSS"
    child_base_rss_mb: float
    child_peak_rss_mb: float
    frame_allocs_per_frame: float  # parent side, allocations >= half a frame (lower bound)
    frame_allocs_traced_frames: int
    gc_collections: tuple[int, ...]  # per generation, during the loop
    verified_crc32: tuple[int, ...]  # each distinct frame's CRC-32 as the other side computed it

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def p99_s(self) -> float:
        return float(np.percentile(self.samples_s, 99))

    @property
    def fps(self) -> float:
        return len(self.samples_s) / self.loop_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "frame_shape": list(self.frame_shape),
            "frame_mb": round(self.frame_bytes / MB, 2),
            "repeats": len(self.samples_s),
            "median_ms": round(self.median_s * 1000, 3),
            "p99_ms": round(self.p99_s * 1000, 3),
            "fps": round(self.fps, 2),
            "parent_peak_rss_increase_mb": round(self.parent_peak_rss_increase_mb, 2),
            "parent_rss_delta_mb": round(self.parent_rss_delta_mb, 2),
            "parent_peak_method": self.parent_peak_method,
            "child_base_rss_mb": round(self.child_base_rss_mb, 2),
            "child_peak_rss_mb": round(self.child_peak_rss_mb, 2),
            "frame_allocs_per_frame": round(self.frame_allocs_per_frame, 2),
            "frame_allocs_traced_frames": self.frame_allocs_traced_frames,
            "gc_collections": list(self.gc_collections),
            "gc_collections_total": sum(self.gc_collections),
            "verified_crc32": list(self.verified_crc32),
            "samples_ms": [round(s * 1000, 4) for s in self.samples_s],
        }


@dataclass(frozen=True)
class Loop:
    """What one timed loop measured, before it is joined with the child's figures."""

    samples_s: tuple[float, ...]
    loop_s: float
    peak_increase_mb: float
    delta_mb: float
    peak_method: str
    gc_collections: tuple[int, ...]
    answers: tuple[dict[str, int], ...]


def result(method: str, frames: Sequence[np.ndarray], loop: Loop, child_kb: tuple[int, int],
           allocs: tuple[float, int], verified: tuple[int, ...]) -> BaselineResult:
    """Join the loop's figures, the child's (base, peak) kB and the allocation count."""
    return BaselineResult(
        method=method, frame_shape=tuple(frames[0].shape), frame_bytes=frames[0].nbytes,
        samples_s=loop.samples_s, loop_s=loop.loop_s,
        parent_peak_rss_increase_mb=loop.peak_increase_mb, parent_rss_delta_mb=loop.delta_mb,
        parent_peak_method=loop.peak_method, child_base_rss_mb=kb_to_mb(child_kb[0]),
        child_peak_rss_mb=kb_to_mb(child_kb[1]), frame_allocs_per_frame=allocs[0],
        frame_allocs_traced_frames=allocs[1], gc_collections=loop.gc_collections,
        verified_crc32=verified,
    )


# --- memory -----------------------------------------------------------------------------------

def kb_to_mb(kb: float) -> float:
    return kb * 1024 / MB


class RssWatch:
    """The parent's RSS over a stretch of work: peak increase and delta, in MB."""

    def __init__(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # VmHWM := VmRSS
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.before_kb = status_kb("VmRSS")
        self.max_sampled_kb = self.before_kb

    @property
    def method(self) -> str:
        return "VmHWM" if self.hwm_reset else "sampled VmRSS"

    def sample(self) -> None:
        if not self.hwm_reset:
            self.max_sampled_kb = max(self.max_sampled_kb, status_kb("VmRSS"))

    def finish(self) -> tuple[float, float]:
        after_kb = status_kb("VmRSS")
        peak_kb = status_kb("VmHWM") if self.hwm_reset else max(self.max_sampled_kb, after_kb)
        return kb_to_mb(peak_kb - self.before_kb), kb_to_mb(after_kb - self.before_kb)


def trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc), so an RSS figure starts from what is in use
    rather than from what an earlier run left in malloc's free lists."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the RSS figures then include reused free memory


def _gc_collections() -> list[int]:
    return [generation["collections"] for generation in gc.get_stats()]


# --- checking the other side's answers -------------------------------------------------------

def check_inputs(frames: Sequence[np.ndarray], repeats: int, trace_frames: int) -> None:
    """Refuse what one run cannot measure, before any process starts."""
    if not frames:
        raise ValueError("no frames given; pass at least one HxWx3 uint8 array")
    shape = frames[0].shape
    for index, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or not frame.flags.c_contiguous:
            raise ValueError(f"frame {index}: {frame.dtype} array of shape {frame.shape}; "
                             "expected a C-contiguous HxWxC uint8 array (np.ascontiguousarray it)")
        if frame.shape != shape:
            raise ValueError(f"frame {index} has shape {frame.shape}, frame 0 {shape}; "
                             "one run measures one frame size")
    if repeats < 1 or trace_frames < 0:
        raise ValueError(f"repeats={repeats}, trace_frames={trace_frames}; expected repeats >= 1 "
                         "and trace_frames >= 0")


def _check(frame: np.ndarray, answer: dict[str, int], method: str) -> None:
    if (answer.get("first"), answer.get("last")) != (int(frame[0, 0, 0]), int(frame[-1, -1, -1])):
        raise BaselineError(f"{method}: the other side read first/last pixel "
                            f"{answer.get('first')}/{answer.get('last')}, the frame has "
                            f"{frame[0, 0, 0]}/{frame[-1, -1, -1]}; "
                            "the frame was garbled in transit")


def _verify(frames: Sequence[np.ndarray], handoff: HandOff, method: str) -> tuple[int, ...]:
    """Each distinct frame once, untimed (also the warm-up): the other side's CRC-32 must match."""
    checksums = []
    for index, frame in enumerate(frames):
        answer = handoff(frame, True)
        _check(frame, answer, method)
        if answer.get("crc32") != zlib.crc32(frame.data):
            raise BaselineError(f"{method}: frame {index}: CRC-32 {answer.get('crc32')} on the "
                                f"other side, {zlib.crc32(frame.data)} here; the frame was not "
                                "rebuilt byte for byte")
        checksums.append(answer["crc32"])
    return tuple(checksums)


# --- timing and counting ---------------------------------------------------------------------

def time_loop(frames: Sequence[np.ndarray], repeats: int, handoff: HandOff, method: str) -> Loop:
    """``repeats`` timed hand-offs, cycling over ``frames``, with the parent's RSS and GC runs."""
    samples, answers = [], []
    trim_heap()
    watch = RssWatch()
    gc_before = _gc_collections()
    loop_start = time.perf_counter()
    for i in range(repeats):
        frame = frames[i % len(frames)]
        start = time.perf_counter()
        answer = handoff(frame, False)
        samples.append(time.perf_counter() - start)
        _check(frame, answer, method)
        answers.append(answer)
        watch.sample()
    loop_s = time.perf_counter() - loop_start
    gc_after = _gc_collections()
    gc_delta = tuple(after - before for after, before in zip(gc_after, gc_before, strict=True))
    peak_mb, delta_mb = watch.finish()
    return Loop(tuple(samples), loop_s, peak_mb, delta_mb, watch.method, gc_delta,
                tuple(answers))


class _FrameAllocCounter:
    """A profile hook: counts intervals between call events in which the traced peak rose by
    ``threshold`` bytes or more (see the module docstring)."""

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.count = 0
        self.start = 0

    def arm(self) -> None:
        tracemalloc.reset_peak()
        self.start = tracemalloc.get_traced_memory()[0]

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        current, peak = tracemalloc.get_traced_memory()
        if peak - self.start >= self.threshold:
            self.count += 1
        tracemalloc.reset_peak()
        self.start = current


def _count_frame_allocs(frames: Sequence[np.ndarray], count: int, handoff: HandOff) -> float:
    """Parent-side allocations of at least half a frame, per hand-off, over ``count`` frames."""
    counter = _FrameAllocCounter(frames[0].nbytes // 2)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    previous = sys.getprofile()
    try:
        for i in range(count):
            counter.arm()
            sys.setprofile(counter)
            try:
                handoff(frames[i % len(frames)], False)
            finally:
                sys.setprofile(previous)
            counter(sys._getframe(), "end", None)  # the interval the last event left open
    finally:
        if started:
            tracemalloc.stop()
    return counter.count / count if count else 0.0


def measure(method: str, frames: Sequence[np.ndarray], repeats: int, trace_frames: int,
            handoff: HandOff) -> tuple[Loop, tuple[float, int], tuple[int, ...]]:
    """Verify every frame, time the loop, then count allocations in a separate, traced pass."""
    verified = _verify(frames, handoff, method)
    loop = time_loop(frames, repeats, handoff, method)
    traced = min(trace_frames, repeats)
    return loop, (_count_frame_allocs(frames, traced, handoff), traced), verified
