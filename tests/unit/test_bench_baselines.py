"""The baselines camfleet's hand-off is compared against: HTTP + base64 + JSON, a process per
frame, a pickled pipe; and the case study's memory table. Real servers, workers and child
processes, small frames, no Ray.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from fleet.bench import baselines, measure
from fleet.bench.baselines import http_base64_json, pickled_pipe, process_per_frame
from fleet.bench.bufferpool import BufferPool, memory_table_1080p
from fleet.bench.measure import BaselineError, BaselineResult

SHAPE = (120, 160, 3)
REPEATS = 4
METHODS = {"http_base64_json": http_base64_json, "process_per_frame": process_per_frame,
           "pickled_pipe": pickled_pipe}


def leftover_children() -> list[str]:
    """This process's children, but multiprocessing's resource tracker: the 'spawn' start method
    starts that once and it stays for the life of the process, by design."""
    found = subprocess.run(["pgrep", "-a", "-P", str(os.getpid())], capture_output=True,
                           text=True, check=False).stdout.splitlines()
    return [line for line in found if "resource_tracker" not in line]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, SHAPE, dtype=np.uint8) for _ in range(3)]


@pytest.fixture(scope="module")
def results(frames: list[np.ndarray]) -> dict[str, BaselineResult]:
    return {name: method(frames, REPEATS) for name, method in METHODS.items()}


# --- the three baselines -----------------------------------------------------------------------

@pytest.mark.parametrize("name", list(METHODS))
def test_one_positive_sample_per_repeat(results: dict[str, BaselineResult], name: str) -> None:
    result = results[name]
    assert result.method == name
    assert len(result.samples_s) == REPEATS
    assert all(s > 0 for s in result.samples_s)
    assert 0 < result.median_s <= result.p99_s
    assert result.loop_s >= sum(result.samples_s)
    assert result.fps > 0


@pytest.mark.parametrize("name", list(METHODS))
def test_the_other_side_rebuilt_every_frame_byte_for_byte(
        results: dict[str, BaselineResult], frames: list[np.ndarray], name: str) -> None:
    # the CRC-32 is computed on the other side from the array it rebuilt
    assert results[name].verified_crc32 == tuple(zlib.crc32(f.data) for f in frames)


@pytest.mark.parametrize("name", list(METHODS))
def test_memory_and_gc_figures_are_plausible(results: dict[str, BaselineResult],
                                             name: str) -> None:
    result = results[name]
    assert result.parent_peak_method in ("VmHWM", "sampled VmRSS")
    assert result.parent_peak_rss_increase_mb >= result.parent_rss_delta_mb
    # a Python child with NumPy imported is tens of MB, and its peak is at least where it began
    assert 10 < result.child_base_rss_mb <= result.child_peak_rss_mb < 500
    assert len(result.gc_collections) == 3 and min(result.gc_collections) >= 0
    assert result.frame_allocs_traced_frames == min(3 if name != "process_per_frame" else 2,
                                                    REPEATS)


def test_frame_sized_allocations_in_the_parent_follow_each_path(
        results: dict[str, BaselineResult]) -> None:
    # base64 bytes, their str, the JSON str, its bytes; pickle's tobytes() and its buffer
    assert results["http_base64_json"].frame_allocs_per_frame == 4
    assert results["pickled_pipe"].frame_allocs_per_frame == 2


def test_process_per_frame_writes_the_pixels_without_copying_them() -> None:
    # at a frame size above what starting a child allocates on its own (small frames are noisy)
    frame = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    result = process_per_frame([frame], 1, trace_frames=1)
    assert result.frame_allocs_per_frame == 0
    assert leftover_children() == []


@pytest.mark.parametrize("name", list(METHODS))
def test_to_dict_is_json_with_milliseconds(results: dict[str, BaselineResult], name: str) -> None:
    record = json.loads(json.dumps(results[name].to_dict()))
    assert record["method"] == name
    assert record["frame_shape"] == list(SHAPE)
    assert record["repeats"] == REPEATS == len(record["samples_ms"])
    assert record["median_ms"] == pytest.approx(results[name].median_s * 1000, abs=1e-3)
    assert record["gc_collections_total"] == sum(record["gc_collections"])


def test_no_server_worker_or_child_is_left_behind(results: dict[str, BaselineResult]) -> None:
    assert len(results) == 3  # all ran
    assert leftover_children() == []


# --- failures: a clear error, and still nothing left behind --------------------------------------

@pytest.mark.parametrize("name", list(METHODS))
def test_a_fault_mid_run_stops_the_server_and_worker(
        monkeypatch: pytest.MonkeyPatch, frames: list[np.ndarray], name: str) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(measure, "time_loop", fail)
    with pytest.raises(RuntimeError, match="injected"):
        METHODS[name](frames, 2)
    assert leftover_children() == []


def test_a_server_that_cannot_start_is_reported(monkeypatch: pytest.MonkeyPatch,
                                                frames: list[np.ndarray]) -> None:
    monkeypatch.setattr(baselines, "HTTP_SERVER",
                        [sys.executable, "-c", "raise SystemExit('port taken')"])
    with pytest.raises(BaselineError, match="exited before listening: port taken"):
        http_base64_json(frames, 2)
    assert leftover_children() == []


def test_a_per_frame_child_that_fails_is_reported(monkeypatch: pytest.MonkeyPatch,
                                                  frames: list[np.ndarray]) -> None:
    monkeypatch.setattr(baselines, "PER_FRAME",
                        [sys.executable, "-c", "import sys; sys.exit('no numpy here')"])
    with pytest.raises(BaselineError, match="exited with 1: no numpy here"):
        process_per_frame(frames, 2)
    assert leftover_children() == []


@pytest.mark.parametrize(("frames", "repeats", "message"), [
    ([], 3, "no frames"),
    ([np.zeros((4, 4, 3), np.float32)], 3, "uint8"),
    ([np.zeros((4, 4), np.uint8)], 3, "HxWxC"),
    ([np.zeros((4, 8, 3), np.uint8)[:, ::2]], 3, "C-contiguous"),
    ([np.zeros((4, 4, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)], 3, "one frame size"),
    ([np.zeros((4, 4, 3), np.uint8)], 0, "repeats >= 1"),
])
@pytest.mark.parametrize("name", list(METHODS))
def test_bad_input_is_refused_before_any_process_starts(frames: list[np.ndarray], repeats: int,
                                                        message: str, name: str) -> None:
    with pytest.raises(ValueError, match=message):
        METHODS[name](frames, repeats)


# --- the child programs, run on their own ------------------------------------------------------

def test_the_per_frame_child_runs_as_a_module_of_the_package(frames: list[np.ndarray]) -> None:
    from fleet.bench import children
    from fleet.bench.children.per_frame import HEADER

    frame = frames[0]
    stdin = struct.pack(HEADER, *frame.shape, 1) + frame.tobytes()
    proc = subprocess.run(children.argv("per_frame"), input=stdin, capture_output=True,
                          check=True, timeout=60)
    answer = json.loads(proc.stdout)
    assert answer["crc32"] == zlib.crc32(frame.data)
    assert (answer["first"], answer["last"]) == (frame[0, 0, 0], frame[-1, -1, -1])
    assert 0 < answer["rss_kb"] <= answer["hwm_kb"]


def test_importing_the_bench_command_starts_no_ray_and_the_package_imports_nothing() -> None:
    probe = ("import sys, fleet.bench; light = {'numpy', 'ray'} & set(sys.modules); "
             "import fleet.bench.main; print(sorted(light), 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["[]", "False"]


# --- the memory table and its buffer pool -----------------------------------------------------

def test_memory_table_pool_creates_only_its_buffers_and_reuses_them() -> None:
    frames, pool_size = 10, 3
    table = memory_table_1080p(frames, pool_size, shape=SHAPE[:2])
    frame_mb = np.prod(SHAPE) / 1e6
    assert (table.pool.buffers_created, table.pool.reuses) == (pool_size, frames - pool_size)
    assert table.pool.hit_rate == pytest.approx(0.7)
    assert (table.naive.buffers_created, table.naive.hit_rate) == (frames, 0)
    # the pool's peak and what it keeps are its buffers; the naive path's bodies are 4/3 a frame
    assert table.pool.peak_mb == pytest.approx(pool_size * frame_mb, rel=0.05)
    assert table.pool.delta_mb == pytest.approx(pool_size * frame_mb, rel=0.05)
    assert table.naive.peak_mb > pool_size * frame_mb * 4 / 3
    assert abs(table.naive.delta_mb) < 0.1 * frame_mb
    assert 0 < table.peak_reduction_pct < 100
    record = json.loads(json.dumps(table.to_dict()))
    assert record["pool"]["buffers_created"] == pool_size
    assert "| pool | 10 |" in table.to_markdown()


def test_memory_table_with_fewer_frames_than_buffers() -> None:
    table = memory_table_1080p(2, 4, shape=SHAPE[:2])
    assert (table.pool.buffers_created, table.pool.hit_rate) == (2, 0)


def test_buffer_pool_reuses_a_released_buffer_and_refuses_beyond_its_size() -> None:
    pool = BufferPool(SHAPE, 2)
    first, second = pool.acquire(), pool.acquire()
    with pytest.raises(BaselineError, match="all 2 buffers are in use"):
        pool.acquire()
    pool.release(first)
    assert pool.acquire() is first
    assert (pool.created, pool.requests, pool.reuses) == (2, 3, 1)
    assert second.shape == SHAPE
