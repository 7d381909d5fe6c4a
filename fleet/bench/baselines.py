"""The hand-offs camfleet is compared against, as plain Python (no Ray), on the caller's frames.

- :func:`http_base64_json`: the traditional path. The client base64-encodes the frame, wraps it
  in JSON with its shape and dtype, and POSTs it (``http.client``, one keep-alive connection) to a
  ``ThreadingHTTPServer`` in another process, which parses the JSON, decodes the base64, rebuilds
  the array, touches it and answers a small JSON.
- :func:`process_per_frame`: one new Python process per frame, fed the raw pixels (after a
  13-byte header) on stdin; it rebuilds the array, touches it and prints JSON. The spawn is timed:
  it is the point.
- :func:`pickled_pipe`: a persistent ``multiprocessing`` worker fed ``Connection.send(frame)``,
  i.e. pickled frames over a pipe. It uses the 'spawn' start method (forking a process that runs
  Ray's threads is unsafe), so the calling script needs an ``if __name__ == "__main__"`` guard,
  and multiprocessing starts its resource tracker once, which lives as long as the caller.

"Touch" is what camfleet's transport bench does on the detector side: read the first and last
pixel, and answer them, so the parent checks every timed frame arrived. Before timing, every
distinct frame goes once with ``verify``: the other side answers the CRC-32 of the whole frame,
compared with the parent's (a mismatch raises :class:`BaselineError`).

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

:func:`memory_table_1080p` reproduces the case study's memory table: a 1080p stream through the
naive path (a new array per frame, then a base64 + JSON body) and through a fixed
:class:`BufferPool` whose buffers are reused and handed off as binary (no copy).
"""

from __future__ import annotations

import base64
import ctypes
import gc
import http.client
import inspect
import json
import multiprocessing
import statistics
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

import numpy as np

from fleet.errors import FleetError

CHILD_TIMEOUT_S = 60.0
"""Longest wait for a server, worker or per-frame process before it is deemed stuck."""

_HEADER = "<IIIB"  # height, width, channels, verify: the per-frame process's stdin header
_MB = 1e6  # as the benchmark tables: 1080p is 6.22 MB

HandOff = Callable[[np.ndarray, bool], dict[str, int]]
"""Hands one frame over (``verify``: ask for its CRC-32) and returns the other side's answer."""


class BaselineError(FleetError):
    """A baseline's server, worker or child process failed, or answered for the wrong pixels."""


# --- what the other side runs (also the source of the child scripts) -------------------------

def _status_kb(field: str, pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _answer(frame: np.ndarray, verify: bool) -> dict[str, int]:
    answer = {"first": int(frame[0, 0, 0]), "last": int(frame[-1, -1, -1])}
    if verify:
        answer["crc32"] = zlib.crc32(frame.data)
    return answer


_CHILD_COMMON = ("import json, struct, sys, zlib\nimport numpy as np\n\n"
                 + inspect.getsource(_status_kb) + "\n" + inspect.getsource(_answer))

_HTTP_SERVER = _CHILD_COMMON + '''
import base64
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        pixels = base64.b64decode(request["image"])
        frame = np.frombuffer(pixels, dtype=request["dtype"]).reshape(request["shape"])
        body = json.dumps(_answer(frame, request["verify"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
'''

_PER_FRAME = _CHILD_COMMON + f'''
rss_kb = _status_kb("VmRSS")
data = sys.stdin.buffer.read()
height, width, channels, verify = struct.unpack_from("{_HEADER}", data)
offset = struct.calcsize("{_HEADER}")
frame = np.frombuffer(data, np.uint8, offset=offset).reshape(height, width, channels)
answer = _answer(frame, bool(verify))
answer.update(rss_kb=rss_kb, hwm_kb=_status_kb("VmHWM"))
print(json.dumps(answer), flush=True)
'''


def _pipe_worker(conn: Connection) -> None:
    """The pickled-pipe worker: unpickle, touch, answer, until ``None`` or the pipe closes."""
    conn.send({"ready": 1})
    try:
        while (message := conn.recv()) is not None:
            frame, verify = message
            conn.send(_answer(frame, verify))
    except EOFError:
        pass


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
            "frame_mb": round(self.frame_bytes / _MB, 2),
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
class _Loop:
    samples_s: tuple[float, ...]
    loop_s: float
    peak_increase_mb: float
    delta_mb: float
    peak_method: str
    gc_collections: tuple[int, ...]
    answers: tuple[dict[str, int], ...]


# --- measuring --------------------------------------------------------------------------------

def _kb_to_mb(kb: float) -> float:
    return kb * 1024 / _MB


class _RssWatch:
    """The parent's RSS over a stretch of work: peak increase and delta, in MB."""

    def __init__(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # VmHWM := VmRSS
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.before_kb = _status_kb("VmRSS")
        self.max_sampled_kb = self.before_kb

    @property
    def method(self) -> str:
        return "VmHWM" if self.hwm_reset else "sampled VmRSS"

    def sample(self) -> None:
        if not self.hwm_reset:
            self.max_sampled_kb = max(self.max_sampled_kb, _status_kb("VmRSS"))

    def finish(self) -> tuple[float, float]:
        after_kb = _status_kb("VmRSS")
        peak_kb = _status_kb("VmHWM") if self.hwm_reset else max(self.max_sampled_kb, after_kb)
        return _kb_to_mb(peak_kb - self.before_kb), _kb_to_mb(after_kb - self.before_kb)


def _gc_collections() -> list[int]:
    return [generation["collections"] for generation in gc.get_stats()]


def _check(frame: np.ndarray, answer: dict[str, int], method: str) -> None:
    if (answer.get("first"), answer.get("last")) != (int(frame[0, 0, 0]), int(frame[-1, -1, -1])):
        raise BaselineError(f"{method}: the other side read first/last pixel "
                            f"{answer.get('first')}/{answer.get('last')}, the frame has "
                            f"{frame[0, 0, 0]}/{frame[-1, -1, -1]}; the frame was garbled in transit")


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


def _time_loop(frames: Sequence[np.ndarray], repeats: int, handoff: HandOff,
               method: str) -> _Loop:
    samples, answers = [], []
    _trim_heap()
    watch = _RssWatch()
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
    gc_delta = tuple(after - before for after, before in zip(_gc_collections(), gc_before))
    peak_mb, delta_mb = watch.finish()
    return _Loop(tuple(samples), loop_s, peak_mb, delta_mb, watch.method, gc_delta,
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


def _result(method: str, frames: Sequence[np.ndarray], loop: _Loop, child_kb: tuple[int, int],
            allocs: tuple[float, int], verified: tuple[int, ...]) -> BaselineResult:
    return BaselineResult(
        method=method, frame_shape=tuple(frames[0].shape), frame_bytes=frames[0].nbytes,
        samples_s=loop.samples_s, loop_s=loop.loop_s,
        parent_peak_rss_increase_mb=loop.peak_increase_mb, parent_rss_delta_mb=loop.delta_mb,
        parent_peak_method=loop.peak_method, child_base_rss_mb=_kb_to_mb(child_kb[0]),
        child_peak_rss_mb=_kb_to_mb(child_kb[1]), frame_allocs_per_frame=allocs[0],
        frame_allocs_traced_frames=allocs[1], gc_collections=loop.gc_collections,
        verified_crc32=verified,
    )


def _check_inputs(frames: Sequence[np.ndarray], repeats: int, trace_frames: int) -> None:
    if not frames:
        raise ValueError("no frames given; pass at least one HxWx3 uint8 array")
    shape = frames[0].shape
    for index, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or not frame.flags.c_contiguous:
            raise ValueError(f"frame {index}: {frame.dtype} array of shape {frame.shape}; expected "
                             "a C-contiguous HxWxC uint8 array (np.ascontiguousarray it)")
        if frame.shape != shape:
            raise ValueError(f"frame {index} has shape {frame.shape}, frame 0 {shape}; "
                             "one run measures one frame size")
    if repeats < 1 or trace_frames < 0:
        raise ValueError(f"repeats={repeats}, trace_frames={trace_frames}; expected repeats >= 1 "
                         "and trace_frames >= 0")


def _measure(method: str, frames: Sequence[np.ndarray], repeats: int, trace_frames: int,
             handoff: HandOff) -> tuple[_Loop, tuple[float, int], tuple[int, ...]]:
    verified = _verify(frames, handoff, method)
    loop = _time_loop(frames, repeats, handoff, method)
    traced = min(trace_frames, repeats)
    return loop, (_count_frame_allocs(frames, traced, handoff), traced), verified


# --- child processes, always stopped ---------------------------------------------------------

def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def _http_server() -> Iterator[tuple[int, int]]:
    """A ThreadingHTTPServer in its own process on 127.0.0.1; yields (pid, port)."""
    proc = subprocess.Popen([sys.executable, "-c", _HTTP_SERVER], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()  # the port, once listening; empty if it died
        if not line.strip().isdigit():
            proc.wait(timeout=CHILD_TIMEOUT_S)
            raise BaselineError("http_base64_json: the HTTP server exited before listening: "
                                f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
        yield proc.pid, int(line)
    finally:
        _stop(proc)


@contextmanager
def _pipe_process() -> Iterator[tuple[int, Connection]]:
    """The pickled-pipe worker, started with 'spawn' (fork is unsafe in a threaded parent)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    proc = context.Process(target=_pipe_worker, args=(child,), name="camfleet-pipe-baseline",
                           daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(CHILD_TIMEOUT_S):
            raise BaselineError(f"pickled_pipe: the worker did not start in {CHILD_TIMEOUT_S} s "
                                f"(exit code {proc.exitcode})")
        try:
            parent.recv()
        except EOFError:
            proc.join(timeout=5)
            raise BaselineError(
                f"pickled_pipe: the worker exited before it was ready (exit code {proc.exitcode}); "
                "with the 'spawn' start method the main script must guard its entry point with "
                "if __name__ == '__main__'") from None
        assert proc.pid is not None
        yield proc.pid, parent
    finally:
        try:
            parent.send(None)
        except OSError:
            pass  # already gone
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()
        proc.close()


# --- the baselines ----------------------------------------------------------------------------

def http_base64_json(frames: Sequence[np.ndarray], repeats: int = 100, *,
                     trace_frames: int = 3) -> BaselineResult:
    """base64 + JSON + HTTP POST to a local ``ThreadingHTTPServer`` process, per frame.

    >>> frames = [np.zeros((120, 160, 3), np.uint8)]
    >>> http_base64_json(frames, repeats=3).verified_crc32 == (zlib.crc32(frames[0].data),)
    True
    """
    _check_inputs(frames, repeats, trace_frames)
    with _http_server() as (pid, port):
        base_kb = _status_kb("VmRSS", str(pid))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CHILD_TIMEOUT_S)

        def handoff(frame: np.ndarray, verify: bool) -> dict[str, int]:
            body = json.dumps({"shape": list(frame.shape), "dtype": str(frame.dtype),
                               "verify": verify,
                               "image": base64.b64encode(frame.data).decode("ascii")}).encode()
            conn.request("POST", "/frame", body=body,
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise BaselineError(f"http_base64_json: the server answered {response.status}: "
                                    f"{data[:200]!r}")
            answer: dict[str, int] = json.loads(data)
            return answer

        try:
            loop, allocs, verified = _measure("http_base64_json", frames, repeats, trace_frames,
                                              handoff)
            peak_kb = _status_kb("VmHWM", str(pid))
        finally:
            conn.close()
    return _result("http_base64_json", frames, loop, (base_kb, peak_kb), allocs, verified)


def _spawn_handoff(frame: np.ndarray, verify: bool) -> dict[str, int]:
    proc = subprocess.Popen([sys.executable, "-c", _PER_FRAME], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        try:
            proc.stdin.write(struct.pack(_HEADER, *frame.shape, verify))
            proc.stdin.write(frame.data.cast("B"))  # the pixels, not a copy of them
        except BrokenPipeError:
            pass  # it died early: its stderr says why, below
        out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
        if proc.returncode != 0:
            raise BaselineError(f"process_per_frame: the child exited with {proc.returncode}: "
                                f"{err.decode(errors='replace')[-2000:]}")
        answer: dict[str, int] = json.loads(out)
        return answer
    finally:
        _stop(proc)


def process_per_frame(frames: Sequence[np.ndarray], repeats: int = 10, *,
                      trace_frames: int = 2) -> BaselineResult:
    """A new Python process per frame, the pixels on its stdin, JSON back on its stdout.

    Slow by design (each frame pays an interpreter start and ``import numpy``), hence the
    small default ``repeats``.
    """
    _check_inputs(frames, repeats, trace_frames)
    loop, allocs, verified = _measure("process_per_frame", frames, repeats, trace_frames,
                                      _spawn_handoff)
    base_kb = int(statistics.median(a["rss_kb"] for a in loop.answers))
    peak_kb = max(a["hwm_kb"] for a in loop.answers)
    return _result("process_per_frame", frames, loop, (base_kb, peak_kb), allocs, verified)


def pickled_pipe(frames: Sequence[np.ndarray], repeats: int = 100, *,
                 trace_frames: int = 3) -> BaselineResult:
    """``multiprocessing`` Pipe to a persistent worker: ``send(frame)`` pickles it."""
    _check_inputs(frames, repeats, trace_frames)
    with _pipe_process() as (pid, conn):
        base_kb = _status_kb("VmRSS", str(pid))

        def handoff(frame: np.ndarray, verify: bool) -> dict[str, int]:
            conn.send((frame, verify))
            if not conn.poll(CHILD_TIMEOUT_S):
                raise BaselineError(f"pickled_pipe: no answer in {CHILD_TIMEOUT_S} s")
            answer: dict[str, int] = conn.recv()
            return answer

        loop, allocs, verified = _measure("pickled_pipe", frames, repeats, trace_frames, handoff)
        peak_kb = _status_kb("VmHWM", str(pid))
    return _result("pickled_pipe", frames, loop, (base_kb, peak_kb), allocs, verified)


def run_baselines(frames: Sequence[np.ndarray], repeats: int = 100,
                  process_repeats: int = 10) -> dict[str, BaselineResult]:
    """All three on the same frames, keyed by method name."""
    return {
        "http_base64_json": http_base64_json(frames, repeats),
        "process_per_frame": process_per_frame(frames, process_repeats),
        "pickled_pipe": pickled_pipe(frames, repeats),
    }


# --- the case study's memory table -----------------------------------------------------------

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


def _trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc), so an RSS figure starts from what is in use
    rather than from what an earlier run left in malloc's free lists."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the RSS figures then include reused free memory


def _stream(variant: str, sources: Sequence[np.ndarray], frames: int, in_flight: int) -> MemoryRow:
    """Push ``frames`` frames, holding ``in_flight`` of them as a pipeline would; memory used."""
    pool = BufferPool(sources[0].shape, in_flight) if variant == "pool" else None
    held: deque[Any] = deque()
    gc.collect()
    _trim_heap()
    traced_before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    watch = _RssWatch()

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
    return MemoryRow(variant, frames, (peak - traced_before) / _MB,
                     (current - traced_before) / _MB, rss_peak_mb, rss_delta_mb, watch.method,
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
