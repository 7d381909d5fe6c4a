"""DetectorPool: the actors of one detector kind, as they start, run, die and drain.

A state manager with small steps the controller calls each loop (as Ray Serve's deployment
state does): ``promote`` ready actors, ``resize`` to a target, ``replace`` dead or hung ones,
``reap`` drained ones. Scaling in never loses a frame: a removed actor first leaves every
camera's routing, and is killed only once no camera has a frame outstanding at it.

Actors are not restarted by Ray (``max_restarts=0``): a dead actor is replaced by a new one
here, so a pool never runs out of restarts, and a replacement is an ordinary pending actor that
joins the routing when ready. Imports no Ray: actors are reached through :class:`Actors`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace as with_fields

from fleet.config import DetectorConfig
from fleet.control.actorsys import ActorRef, Actors, Placement
from fleet.errors import DetectorError, FleetError

log = logging.getLogger(__name__)
UNHEALTHY_AFTER = 3  # missed health checks (stats calls) in a row before an actor is replaced
START_RETRIES = 3  # actors that fail to start in a row are started again, anywhere, this often


class DetectorPool:
    def __init__(self, name: str, spec: DetectorConfig, actors: Actors, lease_s: float = 0.0):
        self.name = name
        self.lease_s = lease_s  # a running actor ends itself if health checks stop this long
        self.spec = spec
        self.actors = actors
        self.placement = Placement(num_cpus=spec.num_cpus, num_gpus=spec.num_gpus,
                                   resources=dict(spec.resources), max_restarts=0)
        self.batch_size = spec.batching.max_batch_size  # what its actors run now
        self.batch_wait_ms = spec.batching.batch_wait_timeout_ms
        self.running: list[ActorRef] = []
        self.pending: list[ActorRef] = []
        self.draining: list[ActorRef] = []
        self.missed: dict[str, int] = {}  # actor id -> health checks missed in a row
        self.replaced = 0  # actors replaced because they died or hung
        self.start_failures = 0
        self.failed_in_row = 0
        self.last_error = ""  # why the last actor failed to start, for the start-up message
        self.nodes: dict[str, str | None] = {}  # actor id -> node (asked for, then where it runs)
        self.demand: dict[str, float] = {}  # node -> cameras of this kind there (the controller)

    @property
    def target(self) -> int:
        return len(self.running) + len(self.pending)

    def start(self, count: int) -> None:
        """Start ``count`` actors, each on the node whose cameras have fewest of this kind's
        actors per camera (Ray's soft node affinity: elsewhere if that node is full)."""
        for _ in range(count):
            self._start_one(self._emptiest())

    def _start_one(self, node: str | None) -> None:
        actor = self.actors.start_detector(self.name, (self.name, self.spec),
                                           with_fields(self.placement, node=node))
        self.nodes[actor.id] = node
        self.pending.append(actor)

    def _per_node(self) -> dict[str | None, int]:
        counts: dict[str | None, int] = {}
        for actor in [*self.running, *self.pending]:
            node = self.nodes.get(actor.id)
            counts[node] = counts.get(node, 0) + 1
        return counts

    def _emptiest(self) -> str | None:
        """The node with the most cameras per actor of this kind (None: no camera known)."""
        if not self.demand:
            return None
        have = self._per_node()
        return max(sorted(self.demand), key=lambda n: self.demand[n] / (have.get(n, 0) + 1))

    def _retiree(self) -> ActorRef:
        """The running actor on the node with the fewest cameras per actor."""
        have = self._per_node()

        def spare(actor: ActorRef) -> float:
            node = self.nodes.get(actor.id)
            return self.demand.get(node, 0.0) / have.get(node, 1) if node else 0.0

        return min(reversed(self.running), key=spare)

    def node_of(self, actor: ActorRef) -> str | None:
        return self.nodes.get(actor.id)

    def promote(self, timeout_s: float = 0) -> bool:
        """Move actors that became ready to ``running``. True if the routing must change."""
        if not self.pending:
            return False
        outcomes = self.actors.ready(self.pending, timeout_s)
        changed = False
        for actor in list(self.pending):
            if actor.id not in outcomes:
                continue
            self.pending.remove(actor)
            outcome = outcomes[actor.id]
            if isinstance(outcome, BaseException):
                self.start_failures += 1
                self.failed_in_row += 1
                self.last_error = _cause(outcome)
                log.error("detector %s: an actor failed to start: %s", self.name, self.last_error)
                self.actors.kill(actor)
                self.nodes.pop(actor.id, None)
                if self.failed_in_row <= START_RETRIES and not _raised(outcome):
                    self._start_one(None)  # it died, not its constructor: its node may be gone
            else:
                self.failed_in_row = 0
                self.running.append(actor)
                self._locate(actor)
                if self.lease_s > 0:
                    self.actors.send(actor, "set_lease", self.lease_s)
                self.actors.send(actor, "set_batching", self.batch_size, self.batch_wait_ms)
                changed = True
        return changed

    def _locate(self, actor: ActorRef) -> None:
        """Where the actor really runs (soft affinity may have put it elsewhere)."""
        try:
            info = self.actors.call(actor, "info", timeout_s=5.0)
        except FleetError as exc:
            log.warning("detector %s: actor %s: no node info (%s)", self.name, actor.id[:8], exc)
            return
        if isinstance(info, dict) and info.get("node"):
            self.nodes[actor.id] = str(info["node"])

    def resize(self, target: int) -> bool:
        """Start or retire actors to reach ``target``. True if the routing must change."""
        if target > self.target:
            self.start(target - self.target)
            return False
        changed = False
        while self.target > target and self.pending:  # not routed yet: no frame can be lost
            self.actors.kill(self.pending.pop())
        while self.target > target and self.running:
            retiree = self._retiree()
            self.running.remove(retiree)
            self.draining.append(retiree)
            changed = True
        return changed

    def health(self, answered: Iterable[str], lost: Iterable[str], silent: Iterable[str]) -> bool:
        """Take one round of health checks (the stats calls): ``lost`` actors are dead, and
        ``silent`` ones missed a check. Dead actors, and actors that missed ``UNHEALTHY_AFTER``
        checks in a row, are killed and replaced. True if the routing must change."""
        for actor_id in answered:
            self.missed.pop(actor_id, None)
        dead = set(lost)
        for actor_id in silent:
            self.missed[actor_id] = self.missed.get(actor_id, 0) + 1
            if self.missed[actor_id] >= UNHEALTHY_AFTER:
                log.error("detector %s: actor %s missed %d health checks; replacing it",
                          self.name, actor_id[:8], UNHEALTHY_AFTER)
                dead.add(actor_id)
        return self.replace(dead)

    def replace(self, dead: set[str]) -> bool:
        """Kill the given actors and start one new actor for each that was running."""
        gone_running = [a for a in self.running if a.id in dead]
        gone = gone_running + [a for a in self.draining if a.id in dead]
        for actor in gone:
            log.error("detector %s: actor %s is gone; %s", self.name, actor.id[:8],
                      "starting a replacement" if actor in gone_running else "it was draining")
            self.actors.kill(actor)
            self.missed.pop(actor.id, None)
        self.running = [a for a in self.running if a.id not in dead]
        self.draining = [a for a in self.draining if a.id not in dead]
        self.replaced += len(gone_running)
        self.start(len(gone_running))
        return bool(gone_running)

    def set_batch_size(self, size: int) -> bool:
        """Tell every live actor the new batch size. True if it changed."""
        if size == self.batch_size:
            return False
        self.batch_size = size
        for actor in self.live():
            self.actors.send(actor, "set_batching", size, self.batch_wait_ms)
        return True

    def reap(self, outstanding: dict[str, int]) -> int:
        """Kill draining actors no camera has a frame at any more. Returns how many."""
        done = [a for a in self.draining if outstanding.get(a.id, 0) == 0]
        for actor in done:
            self.draining.remove(actor)
            self.nodes.pop(actor.id, None)
            self.actors.kill(actor)
        return len(done)

    def stop(self) -> None:
        for actor in [*self.running, *self.pending, *self.draining]:
            self.actors.kill(actor)
        self.running, self.pending, self.draining = [], [], []

    def live(self) -> list[ActorRef]:
        """Every actor whose stats count: running and draining."""
        return [*self.running, *self.draining]

    def handles(self) -> list[object]:
        """The running actors' handles, for the cameras' routing."""
        return [a.handle for a in self.running]

    def handle_nodes(self) -> list[str | None]:
        """Where each of :meth:`handles` runs, in the same order."""
        return [self.nodes.get(a.id) for a in self.running]


def _raised(exc: BaseException) -> bool:
    """Whether the actor's constructor raised (a bad setting: starting it again fails again),
    as opposed to the actor dying while it started (its node lost, the OOM killer)."""
    return "creation task" in str(exc) or isinstance(exc, DetectorError)


def _cause(exc: BaseException) -> str:
    """The innermost line of an actor's start-up failure (Ray wraps it in several layers)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = [line for line in lines if "Error:" in line or "error:" in line]
    return (detail or lines or [type(exc).__name__])[-1][:500]
