"""ControllerActor: the named Ray actor that runs a
:class:`fleet.control.controller.FleetController`.

Detached and restartable: it outlives a driver that ``ray job stop`` kills mid-drain (so the
drain finishes and ``summary.json`` is written), and when its process dies Ray restarts it and
it adopts the cameras and detectors that kept running meanwhile. The CLI renews its lease; a
controller whose CLI is gone for ``orphan_timeout_s`` stops the fleet itself.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import ray

from actors.camera import CameraActor
from actors.detector import DetectorActor
from actors.lease import Lease
from actors.rayactors import RayActors
from fleet.config import FleetConfig
from fleet.control.controller import FleetController
from fleet.control.stats import FleetSnapshot
from fleet.frames import CameraStats
from fleet.logsafe import install_log_redaction

END_AFTER_STOP_S = 10.0  # a stopped controller lingers this long for the CLI's last calls


def build_controller(config: FleetConfig, run_dir: str) -> FleetController:
    """A controller whose cameras and detectors are these Ray actor classes, owned by it."""
    return FleetController(config, run_dir, RayActors(CameraActor, DetectorActor))


class ControllerWorker:
    def __init__(self, config: FleetConfig, run_dir: str):
        install_log_redaction(config)
        actors = RayActors(CameraActor, DetectorActor, fleet=config.name)
        self.controller = FleetController(config, run_dir, actors, config.orphan_timeout_s)
        self.halt = threading.Event()
        self.loop = threading.Thread(target=self.controller.run, args=(self.halt,), daemon=True)
        self.started = time.time()
        self.lease = Lease(f"controller {config.name}", self._stop_and_end)
        if ray.get_runtime_context().was_current_actor_reconstructed:
            self.controller.adopt()  # a crash: take over the running actors, and go on
            self.loop.start()
            self.lease.set(config.orphan_timeout_s)

    def start(self) -> None:
        self.controller.start()
        self.loop.start()
        self.lease.set(self.controller.config.orphan_timeout_s)

    def keepalive(self) -> None:
        self.lease.renew()

    def info(self) -> dict[str, Any]:
        """Where the controller runs, for the CLI and `camfleet status`."""
        context = ray.get_runtime_context()
        return {"fleet": self.controller.config.name, "pid": os.getpid(),
                "node": context.get_node_id(), "run_dir": str(self.controller.run_dir),
                "started": self.started, "metrics_url": self.controller.metrics_url}

    def metrics_url(self) -> str | None:
        return self.controller.metrics_url

    def snapshot(self) -> FleetSnapshot:
        self.lease.renew()
        return self.controller.latest

    def view(self) -> FleetSnapshot:
        """The latest snapshot for an onlooker (`camfleet status`): it renews no lease, so a
        watcher never keeps a fleet whose own CLI is gone alive."""
        return self.controller.latest

    def ended(self) -> bool:
        return self.controller.ended()

    def apply(self, config: FleetConfig) -> list[str]:
        """A live change (``camfleet apply``): what changed, or FleetError changing nothing."""
        install_log_redaction(config)  # its new secrets are masked in this process too
        return self.controller.apply(config)

    def stop(self) -> dict[str, CameraStats]:
        self.halt.set()
        if self.loop.is_alive():
            self.loop.join(timeout=self.controller.config.stats_interval_s * 4 + 10)
        final = self.controller.stop()
        # Detached: nothing else ends it. Linger briefly for the CLI, then go.
        threading.Timer(END_AFTER_STOP_S, self._end).start()
        return final

    def _stop_and_end(self) -> None:
        self.stop()

    @staticmethod
    def _end() -> None:
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


# Several calls at once: the CLI may ask for a snapshot while a stop is draining.
ControllerActor = ray.remote(num_cpus=0, max_concurrency=8)(ControllerWorker)  # type: ignore[call-overload]
