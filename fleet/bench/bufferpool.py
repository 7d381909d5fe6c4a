"""The case study's memory table: a 1080p stream through the naive path (a new array per frame,
then a base64 + JSON body) and through a fixed :class:`BufferPool` whose buffers are reused and
handed off as binary (no copy). Plain Python, no Ray, no child process.
"""

from __future__ import annotations

import base64
import gc
import json
import tracemalloc
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fleet.bench.measure import MB, BaselineError, RssWatch, trim_heap


class BufferPool:
    """A fixed number of equally shaped frame buffers, created on demand and then reused."""

    def __init__(self, shape: tuple[int, ...], size: int):
        if size < 1:
            raise ValueError(f"pool size {size}; expected at least 1 buffer")
        self.shape = shape
        self.size = size
        self.free: list[np.ndarray] = []
        self.created = 0
        self.requests = 0

    @property
    def reuses(self) -> int:
        return self.requests - self.created

    @property
    def hit_rate(self) -> float:
        return self.reuses / self.requests if self.requests else 0.0

    def acquire(self) -> np.ndarray:
        self.requests += 1
        if self.free:
            return self.free.pop()
        if self.created == self.size:
            self.requests -= 1
            raise BaselineError(f"buffer pool: all {self.size} buffers are in use; release one "
                                "first, or make the pool larger")
        self.created += 1
        return np.empty(self.shape, np.uint8)

    def release(self, buffer: np.ndarray) -> None:
        self.free.append(buffer)


@dataclass(frozen=True)
class MemoryRow:
    """One variant of the stream; memory in MB above the start of the stream.

    ``peak_mb`` and ``delta_mb`` are ``tracemalloc``'s (bytes in live Python objects and NumPy
    buffers: exact, allocator-independent); the ``rss_`` pair is the process's resident memory,
    which also counts what malloc keeps in its free lists after a run (``rss_delta_mb`` of the
    naive path is mostly that). The delta is taken after the last frame was handed off, with the
    pool still alive: its buffers are the pool's standing cost.
    """

    variant: str  # "naive" or "pool"
    frames: int
    peak_mb: float
    delta_mb: float
    rss_peak_mb: float
    rss_delta_mb: float
    rss_peak_method: str  # "VmHWM" or "sampled VmRSS"
    buffers_created: int  # naive: one new array per frame
    reuses: int  # requests served by a buffer already created

    @property
    def hit_rate(self) -> float:
        return self.reuses / self.frames

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "frames": self.frames,
                "peak_mb": round(self.peak_mb, 2), "delta_mb": round(self.delta_mb, 2),
                "rss_peak_mb": round(self.rss_peak_mb, 2),
                "rss_delta_mb": round(self.rss_delta_mb, 2),
                "rss_peak_method": self.rss_peak_method,
                "buffers_created": self.buffers_created, "reuses": self.reuses,
                "hit_rate": round(self.hit_rate, 4)}


def _reduction_pct(naive: float, pool: float) -> float:
    return 100 * (1 - pool / naive) if naive > 0 else 0.0


@dataclass(frozen=True)
class MemoryTable:
    """Both variants of the stream, and how much lower the pool's peak is, in percent."""

    frame_shape: tuple[int, ...]
    in_flight: int
    naive: MemoryRow
    pool: MemoryRow

    @property
    def peak_reduction_pct(self) -> float:
        return _reduction_pct(self.naive.peak_mb, self.pool.peak_mb)

    @property
    def rss_peak_reduction_pct(self) -> float:
        return _reduction_pct(self.naive.rss_peak_mb, self.pool.rss_peak_mb)

    def to_dict(self) -> dict[str, Any]:
        return {"frame_shape": list(self.frame_shape), "in_flight": self.in_flight,
                "naive": self.naive.to_dict(), "pool": self.pool.to_dict(),
                "peak_reduction_pct": round(self.peak_reduction_pct, 2),
                "rss_peak_reduction_pct": round(self.rss_peak_reduction_pct, 2)}

    def to_markdown(self) -> str:
        lines = [("| variant | frames | peak MB | delta MB | RSS peak MB | RSS delta MB | "
                  "buffers created | hit rate |"), "|---|---|---|---|---|---|---|---|"]
        for row in (self.naive, self.pool):
            lines.append(f"| {row.variant} | {row.frames} | {row.peak_mb:.2f} | "
                         f"{row.delta_mb:.2f} | {row.rss_peak_mb:.2f} | {row.rss_delta_mb:.2f} | "
                         f"{row.buffers_created} | {row.hit_rate:.2%} |")
        return "\n".join(lines)


def _json_body(frame: np.ndarray) -> bytes:
    return json.dumps({"shape": list(frame.shape), "dtype": str(frame.dtype),
                       "image": base64.b64encode(frame.data).decode("ascii")}).encode()


def _stream(variant: str, sources: Sequence[np.ndarray], frames: int, in_flight: int) -> MemoryRow:
    """Push ``frames`` frames, holding ``in_flight`` of them as a pipeline would; memory used."""
    pool = BufferPool(sources[0].shape, in_flight) if variant == "pool" else None
    held: deque[Any] = deque()
    gc.collect()
    trim_heap()
    traced_before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    watch = RssWatch()

    def done() -> None:  # the oldest frame in flight has been handed off
        oldest = held.popleft()
        if pool is not None:
            pool.release(oldest)

    for i in range(frames):
        if len(held) == in_flight:
            done()
        if pool is not None:
            held.append(pool.acquire())
            np.copyto(held[-1], sources[i % len(sources)])  # decoded into a reused buffer
            # handed off as binary: memoryview(buffer), no copy
        else:
            # a decoder handing out a new array, then the base64 + JSON body sent on
            held.append(_json_body(sources[i % len(sources)].copy()))
        watch.sample()
    while held:
        done()
    current, peak = tracemalloc.get_traced_memory()
    rss_peak_mb, rss_delta_mb = watch.finish()
    return MemoryRow(variant, frames, (peak - traced_before) / MB,
                     (current - traced_before) / MB, rss_peak_mb, rss_delta_mb, watch.method,
                     pool.created if pool else frames, pool.reuses if pool else 0)


def memory_table_1080p(frames: int = 50, pool_size: int = 4,
                       shape: tuple[int, int] = (1080, 1920)) -> MemoryTable:
    """The case study's memory table: a 1080p stream, naive vs a reused buffer pool.

    Both variants hold ``pool_size`` frames in flight (camfleet's default ``buffers: 4``): the
    naive one as base64 + JSON bodies, each made from a new array; the pool one as its buffers.
    """
    if frames < 1:
        raise ValueError(f"frames={frames}; expected at least 1")
    rng = np.random.default_rng(0)
    sources = [rng.integers(0, 255, (*shape, 3), dtype=np.uint8) for _ in range(2)]
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        naive = _stream("naive", sources, frames, pool_size)
        pool = _stream("pool", sources, frames, pool_size)
    finally:
        if started:
            tracemalloc.stop()
    return MemoryTable((*shape, 3), pool_size, naive, pool)
