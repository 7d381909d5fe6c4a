"""FleetController: starts the fleet's actors from the config, gathers their stats, stops them.

A plain class; ``actors/controller.py`` makes it a Ray actor and injects the camera and detector
actor classes, so imports flow one way (actors -> fleet). Each step of the control loop catches
and logs its own exceptions: one bad camera never halts the loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from fleet.config import FleetConfig
from fleet.errors import FleetError
from fleet.frames import CameraStats
from fleet.stats import FleetSnapshot, FleetStats

log = logging.getLogger(__name__)
START_TIMEOUT_S = 120.0


class FleetController:
    def __init__(self, config: FleetConfig, run_dir: str, camera_actor: Any, detector_actor: Any):
        self.config = config
        self.run_dir = Path(run_dir)
        self.camera_actor = camera_actor
        self.detector_actor = detector_actor
        self.pools: dict[str, list[Any]] = {}
        self.cameras: dict[str, Any] = {}
        self.last: dict[str, CameraStats] = {}
        self.stats = FleetStats()
        self.latest = FleetSnapshot(time.time())
        self.lock = threading.Lock()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Open for the fleet's lifetime; closed by stop().
        self.stats_file = open(self.run_dir / "stats.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    # ------------------------------------------------------------------------------------ start
    def start(self) -> None:
        cameras = self.config.active_cameras
        used = {name for camera in cameras for name in camera.detect}
        for name in sorted(used):
            spec = self.config.detectors[name]
            # Detectors are stateless: a crashed one restarts; its in-flight frames count as
            # detector_lost on their camera.
            actor = self.detector_actor.options(num_cpus=spec.num_cpus, max_restarts=3)
            self.pools[name] = [actor.remote(name, spec) for _ in range(spec.actors)]
        self._wait_ready()
        for i, camera in enumerate(cameras):
            pools = {name: self.pools[name] for name in camera.detect}
            handle = self.camera_actor.options(num_cpus=camera.num_cpus).remote(
                camera, pools, self.config.sinks, str(self.run_dir), i
            )
            self.cameras[camera.id] = handle
        ray.get([h.start.remote() for h in self.cameras.values()], timeout=START_TIMEOUT_S)

    def _wait_ready(self) -> None:
        refs = {h.ready.remote(): name for name, hs in self.pools.items() for h in hs}
        ready, pending = ray.wait(list(refs), num_returns=len(refs), timeout=START_TIMEOUT_S)
        if pending:
            names = sorted({refs[r] for r in pending})
            free = ray.available_resources().get("CPU", 0)
            raise FleetError(
                f"detector pool(s) {', '.join(names)} did not start within {START_TIMEOUT_S:g} s; "
                f"the cluster has {free:g} CPU free. Lower detectors.<name>.actors or num_cpus, "
                "or add nodes"
            )
        ray.get(ready)  # raises the constructor's error, e.g. a missing cascade file

    # ---------------------------------------------------------------------------------- collect
    def collect(self) -> FleetSnapshot:
        """Gather every actor's stats once; the table, stats.jsonl and the policy read this."""
        now = time.time()
        snapshot = FleetSnapshot(now)
        refs = {cid: h.stats.remote() for cid, h in self.cameras.items()}
        ray.wait(list(refs.values()), num_returns=len(refs), timeout=self.config.stats_interval_s * 2)
        for cid, ref in refs.items():
            stats = self._get_stats(cid, ref)
            if stats is not None:
                snapshot.cameras[cid] = self.stats.update_camera(stats)
        for name, handles in self.pools.items():
            results = []
            for handle in handles:
                try:
                    results.append(ray.get(handle.stats.remote(), timeout=self.config.stats_interval_s))
                except (RayActorError, GetTimeoutError) as exc:
                    log.warning("detector %s: no stats: %s", name, type(exc).__name__)
            snapshot.detectors[name] = self.stats.update_detectors(name, results, now)
        with self.lock:
            self.latest = snapshot
            self.stats_file.write(json.dumps(snapshot.record(), separators=(",", ":")) + "\n")
            self.stats_file.flush()
        return snapshot

    def _get_stats(self, cid: str, ref: Any) -> CameraStats | None:
        try:
            stats = ray.get(ref, timeout=0)
        except GetTimeoutError:
            return None
        except RayActorError as exc:
            last = self.last.get(cid)
            log.error("camera %s: actor died: %s", cid, exc)
            stats = replace(last, state="crashed", latency_s=()) if last else None
        if stats is not None:
            self.last[cid] = stats
        return stats

    def run(self, stop: threading.Event) -> None:
        """The control loop: collect every ``stats_interval_s`` until ``stop`` is set."""
        while not stop.wait(self.config.stats_interval_s):
            try:
                self.collect()
            except Exception:
                log.exception("controller: collecting stats failed")

    def ended(self) -> bool:
        """True when every camera has finished its source (files with loop: false)."""
        views = self.latest.cameras
        return bool(views) and len(views) == len(self.cameras) and all(
            v.stats.state in ("ended", "crashed") for v in views.values()
        )

    # ------------------------------------------------------------------------------------- stop
    def stop(self) -> dict[str, CameraStats]:
        """Drain every camera (in-flight frames finish or are counted), then end all actors."""
        timeout = self.config.drain_timeout_s + 30
        refs = {cid: h.stop.remote(self.config.drain_timeout_s) for cid, h in self.cameras.items()}
        final: dict[str, CameraStats] = {}
        for cid, ref in refs.items():
            try:
                final[cid] = ray.get(ref, timeout=timeout)
            except (RayActorError, GetTimeoutError) as exc:
                log.error("camera %s: did not stop cleanly: %s", cid, type(exc).__name__)
                last = self.last.get(cid)
                if last is not None:
                    final[cid] = replace(last, state="crashed")
        for handle in [*self.cameras.values(), *(h for hs in self.pools.values() for h in hs)]:
            ray.kill(handle)
        with self.lock:
            counters = {cid: {k: v for k, v in asdict(s).items() if k != "latency_s"}
                        for cid, s in final.items()}
            record = {"time": round(time.time(), 3), "final": counters}
            self.stats_file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.stats_file.close()
        return final
