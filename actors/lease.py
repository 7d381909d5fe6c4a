"""Lease: ends the actor it lives in when nobody renews it for a while.

Camera and detector actors outlive a controller that crashes (they are detached, so a
restarted controller can adopt them). A controller that never comes back would leave them
running for ever: every call from the controller renews the lease, and an actor whose lease
runs out stops itself cleanly (a camera drains and flushes first) and exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import ray

log = logging.getLogger(__name__)


class Lease:
    def __init__(self, what: str, on_expiry: Callable[[], object] = lambda: None):
        self.what = what
        self.on_expiry = on_expiry
        self.timeout_s = 0.0
        self.renewed = time.monotonic()
        self.thread: threading.Thread | None = None

    def set(self, timeout_s: float) -> None:
        """Start (or change) the lease; 0 turns it off."""
        self.timeout_s = timeout_s
        self.renew()
        if timeout_s > 0 and self.thread is None:
            self.thread = threading.Thread(target=self._watch, name="lease", daemon=True)
            self.thread.start()

    def renew(self) -> None:
        self.renewed = time.monotonic()

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, max(0.05, self.timeout_s / 10)))
            if self.timeout_s > 0 and time.monotonic() - self.renewed > self.timeout_s:
                break
        log.error("%s: no call from the controller for %g s; it is gone: stopping", self.what,
                  self.timeout_s)
        try:
            self.on_expiry()
        finally:
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
