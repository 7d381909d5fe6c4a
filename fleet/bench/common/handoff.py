"""The camera -> detector hand-off through the real code path, and its parts.

A real :class:`fleet.pipeline.camera.Camera` with a real :class:`actors.handoff.RayDispatcher`
and real DetectorActors running :class:`TouchDetector` (a detector that does no work), timed per
frame from ``submit`` to result. ``bench transport`` sets it beside one memcpy and the usual
ways; ``bench fleet`` adds its ms per frame to a detector's (:func:`measure_handoff_ms`);
``bench serve`` calls the same detector and frames through Ray Serve.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fleet.bench.common.fleets import handoff_fleet
from fleet.bench.common.running import detector_actor_class
from fleet.errors import BenchError
from fleet.frames import Detection, FrameMeta

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}


class TouchDetector:
    """Reads the frame the way a detector starts to (first and last pixel) and finds nothing.

    It isolates the hand-off cost from detection cost.
    """

    label = "touch"

    def __init__(self, _config: Any = None):
        pass

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        _ = int(frame[0, 0, 0]) + int(frame[-1, -1, -1])
        if frame.flags.writeable:
            raise BenchError("the frame should be a read-only view on the object store")
        return []



def frame_pool(shape: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """Distinct frames filling more than a CPU cache (64 MB), so no copy is measured cache-hot."""
    nbytes = shape[0] * shape[1] * 3
    count = min(8, max(2, -(-64 * 2**20 // nbytes)))
    return [rng.integers(0, 255, (*shape, 3), dtype=np.uint8) for _ in range(count)]


def measure_memcpy(frames: list[np.ndarray], repeats: int) -> list[float]:
    targets = [np.empty_like(f) for f in frames]
    for src, dst in zip(frames, targets, strict=True):
        np.copyto(dst, src)  # fault the pages in: time copies, not first touches
    times = []
    for i in range(repeats):
        src, dst = frames[i % len(frames)], targets[(i + 1) % len(targets)]
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return times


class PoolSource:
    """A source serving the same pre-made frames, as fast as it is asked (no decode, no pacing).

    Its frames are returned as they are (``retrieve`` ignores the camera's buffer): the camera's
    ``ray.put`` is then the only copy of the pixels, as with a decoder writing into the buffer.
    """

    description = "bench frame pool"

    def __init__(self, frames: list[np.ndarray], native_fps: float):
        self.frames, self.native_fps, self.count = frames, native_fps, 0

    @property
    def pace_fps(self) -> float:
        return 0.0

    def open(self) -> None:
        pass

    def grab(self) -> None:
        self.count += 1

    def retrieve(self, into: np.ndarray | None) -> np.ndarray:
        return self.frames[self.count % len(self.frames)]

    def close(self) -> None:
        pass


def _timed_dispatcher(pools: dict[str, list[Any]]) -> Any:
    """actors.handoff.RayDispatcher, timing each frame from ``submit`` to its completion."""
    from actors.handoff import RayDispatcher

    class TimedDispatcher(RayDispatcher):
        def __init__(self, pools: dict[str, list[Any]]):
            super().__init__(pools)
            self.sent: dict[int, float] = {}
            self.latencies: list[float] = []
            self.done_at: list[float] = []

        def submit(self, frame: np.ndarray, meta: FrameMeta, started: float) -> None:
            self.sent[meta.index] = time.perf_counter()
            super().submit(frame, meta, started)

        def submit_group(self, frames: np.ndarray, metas: list[FrameMeta],
                         started: list[float]) -> None:
            now = time.perf_counter()
            self.sent.update((meta.index, now) for meta in metas)
            super().submit_group(frames, metas, started)

        def wait(self, timeout_s: float) -> list[Any]:
            done = super().wait(timeout_s)
            now = time.perf_counter()
            for completion in done:
                sent = self.sent.pop(completion.meta.index, None)
                if sent is not None and not completion.lost and not completion.errors:
                    self.latencies.append(now - sent)
                    self.done_at.append(now)
            return done

    return TimedDispatcher(pools)



def camera_run(detectors: list[Any], pool: list[np.ndarray], frames: int, buffers: int,
               put_width: int | None = None, warmup: int = 10,
               timeout_s: float = 120.0, put_frames: int = 1) -> dict[str, Any]:
    """A real :class:`fleet.pipeline.camera.Camera`, a real RayDispatcher, real DetectorActors.

    The camera reads ``pool`` as a file read as fast as possible (its own timeline, so the fps
    limit admits every frame), puts each frame once and waits for a buffer when all ``buffers``
    are in flight (``drop_policy: wait``). Timed per frame: submit to result (``latencies``),
    and frames completed per second after ``warmup`` (``ms_per_frame``, the steady cost).
    """
    from fleet.pipeline.camera import Camera
    from fleet.sinks.events import EventSink

    fleet = handoff_fleet(buffers, put_width, put_frames)
    config = fleet.cameras[0]
    dispatcher = _timed_dispatcher({"touch": detectors})
    with tempfile.TemporaryDirectory(prefix="camfleet-bench-") as tmp:
        camera = Camera(config, PoolSource(pool, native_fps=config.fps), dispatcher,
                        EventSink(fleet.sinks, tmp, config.id))
        camera.start()
        deadline = time.monotonic() + timeout_s
        while len(dispatcher.done_at) < warmup + frames and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = camera.stop(drain_timeout_s=10.0)
    done, latencies = dispatcher.done_at, dispatcher.latencies
    if len(done) < warmup + 2:
        raise BenchError(f"the camera finished {len(done)} frames in {timeout_s:g} s")
    steady = done[warmup:]
    return {"latencies": latencies[warmup:],
            "ms_per_frame": (steady[-1] - steady[0]) / (len(steady) - 1) * 1000,
            "put_bytes": stats.put_bytes, "frames": len(steady), "accounted": stats.accounted,
            "frames_per_put": round(stats.admitted / stats.puts, 2) if stats.puts else 0.0}


def touch_detectors(count: int = 2) -> list[Any]:
    """DetectorActors (the real actor, batching off) running :class:`TouchDetector`."""
    import ray

    from fleet.config import FaceDetectorConfig

    config = FaceDetectorConfig(num_cpus=0.5)
    detector_actor = detector_actor_class()
    detectors = [detector_actor.options(num_cpus=0.5).remote("touch", config, TouchDetector)
                 for _ in range(count)]
    ray.get([d.ready.remote() for d in detectors])
    return detectors


def measure_handoff_ms(sizes: Sequence[str], frames: int = 60, buffers: int = 4,
                       progress: Callable[[str], None] | None = None) -> dict[str, float]:
    """Hand-off ms per frame through a real camera with ``buffers`` frames in flight: the
    steady cost per frame (1 in flight: the median submit-to-result time)."""
    import ray

    detectors = touch_detectors()
    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    try:
        for name in sizes:
            if progress:
                progress(f"hand-off {name}: a real camera, {frames} frames, {buffers} in flight")
            run = camera_run(detectors, frame_pool(SIZES[name], rng), frames, buffers=buffers)
            ms = run["ms_per_frame"] if buffers > 1 else statistics.median(run["latencies"]) * 1000
            out[name] = round(ms, 3)
    finally:
        for actor in detectors:
            ray.kill(actor)
    return out
