"""ControllerActor: the named Ray actor that runs a :class:`fleet.controller.FleetController`."""

from __future__ import annotations

import threading

import ray

from actors.camera import CameraActor
from actors.detector import DetectorActor
from fleet.config import FleetConfig
from fleet.controller import FleetController
from fleet.frames import CameraStats
from fleet.rayactors import RayActors
from fleet.stats import FleetSnapshot


def build_controller(config: FleetConfig, run_dir: str) -> FleetController:
    """A controller whose cameras and detectors are these Ray actor classes."""
    return FleetController(config, run_dir, RayActors(CameraActor, DetectorActor))


class ControllerWorker:
    def __init__(self, config: FleetConfig, run_dir: str):
        self.controller = build_controller(config, run_dir)
        self.halt = threading.Event()
        self.loop = threading.Thread(target=self.controller.run, args=(self.halt,), daemon=True)
        # The control loop runs in its own thread; calls below answer from the actor's threads.

    def start(self) -> None:
        self.controller.start()
        self.loop.start()

    def metrics_url(self) -> str | None:
        return self.controller.metrics_url

    def snapshot(self) -> FleetSnapshot:
        return self.controller.latest

    def ended(self) -> bool:
        return self.controller.ended()

    def stop(self) -> dict[str, CameraStats]:
        self.halt.set()
        if self.loop.is_alive():
            self.loop.join(timeout=self.controller.config.stats_interval_s * 4 + 10)
        return self.controller.stop()


# Several calls at once: the CLI may ask for a snapshot while a stop is draining.
ControllerActor = ray.remote(num_cpus=0, max_concurrency=4)(ControllerWorker)  # type: ignore[call-overload]
