"""What a detector costs on one core: milliseconds per frame, frame by frame and in batches.

Each detector runs in a process of its own (spawned, never forked from a Ray driver), pinned to
one core with one ONNX Runtime and one OpenCV thread, over the same frames, after a warm-up;
each figure is the median of ``runs`` timed passes. Shared by the bench modes that put a
detector's cost next to what it finds (``bench mot``).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def _time(spec: dict[str, Any], frames: Sequence[np.ndarray], batch: int, runs: int,
          core: int | None, out: Any) -> None:
    import cv2
    from pydantic import TypeAdapter

    from fleet.config import DetectorConfig
    from fleet.detectors import build_detector, detect_batch
    from fleet.frames import FrameMeta

    if core is not None:
        os.sched_setaffinity(0, {core})
    cv2.setNumThreads(1)
    detector = build_detector(TypeAdapter(DetectorConfig).validate_python(
        {**spec, "num_cpus": 1, "batching": {"max_batch_size": batch}}))
    h, w = frames[0].shape[:2]
    metas = [FrameMeta("cost", i, 0.0, w, h, None) for i in range(len(frames))]
    groups = [(frames[i:i + batch], metas[i:i + batch]) for i in range(0, len(frames), batch)]
    for group, group_metas in groups[:2]:  # warm-up: buffers sized, caches filled
        detect_batch(detector, group, group_metas)
    passes = []
    for _ in range(runs):
        start = time.perf_counter()
        for group, group_metas in groups:
            detect_batch(detector, group, group_metas)
        passes.append((time.perf_counter() - start) * 1000 / len(frames))
    out.put(passes)


def ms_per_frame(specs: dict[str, dict[str, Any]], frames: Sequence[np.ndarray],
                 batches: Sequence[int] = (1, 8), runs: int = 3) -> dict[str, dict[str, Any]]:
    """``{name: {"batch 1": ms, "batch 8": ms, "runs": [...]}}`` for each detector config."""
    ctx = multiprocessing.get_context("spawn")
    core = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    results: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        row: dict[str, Any] = {}
        for batch in batches:
            out = ctx.Queue()
            worker = ctx.Process(target=_time, args=(spec, list(frames), batch, runs, core, out))
            worker.start()
            passes = out.get(timeout=600)
            worker.join(timeout=30)
            row[f"batch {batch}"] = round(statistics.median(passes), 2)
            row[f"batch {batch} runs"] = [round(p, 2) for p in passes]
        results[name] = row
    return results
