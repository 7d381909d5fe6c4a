"""A fleet run by a benchmark: its controller in this process, wired to real actors.

``camfleet run`` runs the controller inside a named actor (:func:`actors.runtime.start_fleet`);
a benchmark keeps it in this process instead, so it can call ``collect()`` and read the
controller's state between steps. The actor modules are imported here on use, never at import:
importing a bench mode imports no Ray (:mod:`fleet.bench.main` starts it once a mode runs).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from fleet.bench import cpu
from fleet.config import FleetConfig
from fleet.frames import CameraStats


def in_process_controller(config: FleetConfig, run_dir: Path | str) -> Any:
    """A :class:`fleet.control.controller.FleetController` here, wired as ``camfleet run``
    wires the one in its actor (the same :func:`actors.controller.build_controller`)."""
    from actors.controller import build_controller

    return build_controller(config, str(run_dir))


def detector_actor_class() -> Any:
    """The real :class:`actors.detector.DetectorActor`, for a bench that makes its own."""
    from actors.detector import DetectorActor

    return DetectorActor


def wait_for_free_cpus(timeout_s: float = 60.0) -> None:
    """Until every CPU of the cluster is free again (killed actors release theirs late)."""
    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        total = ray.cluster_resources().get("CPU", 0.0)
        if ray.available_resources().get("CPU", 0.0) >= total - 0.01:
            return
        time.sleep(0.2)


class ControlLoop:
    """A fleet started here with its control loop (scaling, restarts, stats) in a thread, as
    the controller actor runs it; ``with`` gives the controller, and once the block ends the
    loop is halted, the fleet stopped and ``final`` holds each camera's last stats."""

    def __init__(self, config: FleetConfig, run_dir: Path | str):
        self.controller = in_process_controller(config, run_dir)
        self.final: dict[str, CameraStats] = {}
        self._halt = threading.Event()
        self._loop = threading.Thread(target=self.controller.run, args=(self._halt,),
                                      daemon=True)

    def __enter__(self) -> Any:
        self.controller.start()
        self._loop.start()
        return self.controller

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._halt.set()
        self._loop.join()
        self.final = self.controller.stop()


def _cpu_busy() -> tuple[float, float]:
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [float(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_point(config: FleetConfig, seconds: float, warmup_s: float, folder: Path,
              split: bool = False) -> dict[str, Any]:
    """One fleet on real Ray: warm up, then sample its counters for ``seconds``. ``split``:
    the detector actors get the last core to themselves and everything else (cameras, Ray's
    raylet and GCS, the controller) the others, as a camera node and a detector node."""
    wait_for_free_cpus()  # the last point's actors may still be ending

    controller = in_process_controller(config, folder)
    controller.start()
    every = set(range(os.cpu_count() or 1))
    try:
        if split:
            detector_core = {max(every)}
            cpu.pin(cpu.snapshot(), {"detectors": detector_core}, every - detector_core)
        time.sleep(warmup_s)
        first = controller.collect()
        busy0, total0 = _cpu_busy()
        procs0, t0 = cpu.snapshot(), time.monotonic()
        deadline = time.monotonic() + seconds
        last = first
        while time.monotonic() < deadline:
            time.sleep(0.5)
            last = controller.collect()
        busy1, total1 = _cpu_busy()
        cores = cpu.cores_by_role(procs0, cpu.snapshot(), time.monotonic() - t0)
    finally:
        final = controller.stop()
        if split:
            cpu.pin(cpu.snapshot(), {}, every)  # Ray's processes serve the next point too
    elapsed = last.time - first.time
    totals = {k: sum(getattr(v.stats, k) - getattr(first.cameras[c].stats, k)
                     for c, v in last.cameras.items())
              for k in ("captured", "offered", "processed")}
    # latencies of the last look-back window (10 s) of the measurement
    samples = [s for c in last.cameras for _, s in controller.stats.latency[c]]
    offered = totals["offered"]
    return {
        "offered_fps": round(offered / elapsed, 2),
        "analysed_fps": round(totals["processed"] / elapsed, 2),
        "drop_rate": round(max(0.0, 1 - totals["processed"] / offered), 4) if offered else 0.0,
        "p50_ms": round(float(np.percentile(samples, 50)) * 1000, 1) if samples else None,
        "p95_ms": round(float(np.percentile(samples, 95)) * 1000, 1) if samples else None,
        "p99_ms": round(float(np.percentile(samples, 99)) * 1000, 1) if samples else None,
        "cpu_busy": round((busy1 - busy0) / (total1 - total0), 3),
        "cores": cores,  # cores each role used (this run's processes only)
        "accounted": all(s.accounted for s in final.values()),
    }
