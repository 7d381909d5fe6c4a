"""Test-side detectors that run inside real DetectorActors and write down what they saw.

They wrap a real detector through the actor's ``factory`` argument; nothing test-only lives in
the production actor. Findings go to JSON lines in a folder the test reads afterwards.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from fleet.detectors import build_detector
from fleet.frames import Detection, FrameMeta
from fleet.imaging import plasma_mapping


def base_chain(array: np.ndarray) -> list[str]:
    chain, obj = [], array
    while obj is not None:
        chain.append(type(obj).__name__)
        obj = getattr(obj, "base", None)
    return chain


class ProbeDetector:
    """A real detector, observed: frame flags, memory mapping, allocations per call."""

    def __init__(self, config: Any, out_dir: str, delay_s: float = 0.0, pin: bool = False):
        self.inner = build_detector(config)
        self.label = self.inner.label
        self.out = Path(out_dir) / f"probe-{os.getpid()}.jsonl"
        self.delay_s = delay_s
        self.pin = pin
        self.pinned: list[np.ndarray] = []
        tracemalloc.start()

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        detections = self.inner.detect(frame, meta)
        peak = tracemalloc.get_traced_memory()[1] - before
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.pin:
            self.pinned.append(frame)  # the mistake the design warns about
        record = {
            "camera": meta.camera, "index": meta.index, "writeable": bool(frame.flags.writeable),
            "mapping": plasma_mapping(frame.ctypes.data), "chain": base_chain(frame),
            "nbytes": frame.nbytes, "peak_alloc": peak, "boxes": len(detections),
        }
        with open(self.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        return detections


def read_probes(out_dir: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(out_dir.glob("probe-*.jsonl"))
            for line in f.read_text().splitlines()]


class ProbedDetectorActor:
    """Stands in for DetectorActor in FleetController: same actor, a probing factory injected."""

    def __init__(self, actor_cls: Any, factory: Any, options: dict | None = None):
        self.actor_cls, self.factory, self.opts = actor_cls, factory, options or {}

    def options(self, **options: Any) -> ProbedDetectorActor:
        return ProbedDetectorActor(self.actor_cls, self.factory, {**self.opts, **options})

    def remote(self, name: str, spec: Any) -> Any:
        return self.actor_cls.options(**self.opts).remote(name, spec, self.factory)
