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

What the other side runs is in :mod:`fleet.bench.children` ("touch": read the first and last
pixel and answer them); how each is timed and what its result holds is in
:mod:`fleet.bench.measure`.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing
import statistics
import struct
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import numpy as np

from fleet.bench import children
from fleet.bench.children.common import status_kb
from fleet.bench.children.per_frame import HEADER
from fleet.bench.children.pipe_worker import serve
from fleet.bench.measure import (
    CHILD_TIMEOUT_S,
    BaselineError,
    BaselineResult,
    check_inputs,
    measure,
    result,
)

HTTP_SERVER = children.argv("http_server")
"""Starts the HTTP server; it prints its port once listening."""

PER_FRAME = children.argv("per_frame")
"""Starts one per-frame child: header and pixels on stdin, JSON on stdout."""


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
    proc = subprocess.Popen(HTTP_SERVER, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
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
    proc = context.Process(target=serve, args=(child,), name="camfleet-pipe-baseline",
                           daemon=True)
    proc.start()
    child.close()
    try:
        _wait_ready(parent, proc)
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


def _wait_ready(parent: Connection, proc: BaseProcess) -> None:
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


# --- the baselines ----------------------------------------------------------------------------

def http_base64_json(frames: Sequence[np.ndarray], repeats: int = 100, *,
                     trace_frames: int = 3) -> BaselineResult:
    """base64 + JSON + HTTP POST to a local ``ThreadingHTTPServer`` process, per frame.

    >>> import zlib
    >>> frames = [np.zeros((120, 160, 3), np.uint8)]
    >>> http_base64_json(frames, repeats=3).verified_crc32 == (zlib.crc32(frames[0].data),)
    True
    """
    check_inputs(frames, repeats, trace_frames)
    with _http_server() as (pid, port):
        base_kb = status_kb("VmRSS", str(pid))
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
            loop, allocs, verified = measure("http_base64_json", frames, repeats, trace_frames,
                                             handoff)
            peak_kb = status_kb("VmHWM", str(pid))
        finally:
            conn.close()
    return result("http_base64_json", frames, loop, (base_kb, peak_kb), allocs, verified)


def _spawn_handoff(frame: np.ndarray, verify: bool) -> dict[str, int]:
    proc = subprocess.Popen(PER_FRAME, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        try:
            proc.stdin.write(struct.pack(HEADER, *frame.shape, verify))
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
    check_inputs(frames, repeats, trace_frames)
    loop, allocs, verified = measure("process_per_frame", frames, repeats, trace_frames,
                                     _spawn_handoff)
    base_kb = int(statistics.median(a["rss_kb"] for a in loop.answers))
    peak_kb = max(a["hwm_kb"] for a in loop.answers)
    return result("process_per_frame", frames, loop, (base_kb, peak_kb), allocs, verified)


def pickled_pipe(frames: Sequence[np.ndarray], repeats: int = 100, *,
                 trace_frames: int = 3) -> BaselineResult:
    """``multiprocessing`` Pipe to a persistent worker: ``send(frame)`` pickles it."""
    check_inputs(frames, repeats, trace_frames)
    with _pipe_process() as (pid, conn):
        base_kb = status_kb("VmRSS", str(pid))

        def handoff(frame: np.ndarray, verify: bool) -> dict[str, int]:
            conn.send((frame, verify))
            if not conn.poll(CHILD_TIMEOUT_S):
                raise BaselineError(f"pickled_pipe: no answer in {CHILD_TIMEOUT_S} s")
            answer: dict[str, int] = conn.recv()
            return answer

        loop, allocs, verified = measure("pickled_pipe", frames, repeats, trace_frames, handoff)
        peak_kb = status_kb("VmHWM", str(pid))
    return result("pickled_pipe", frames, loop, (base_kb, peak_kb), allocs, verified)


def run_baselines(frames: Sequence[np.ndarray], repeats: int = 100,
                  process_repeats: int = 10) -> dict[str, BaselineResult]:
    """All three on the same frames, keyed by method name."""
    return {
        "http_base64_json": http_base64_json(frames, repeats),
        "process_per_frame": process_per_frame(frames, process_repeats),
        "pickled_pipe": pickled_pipe(frames, repeats),
    }
