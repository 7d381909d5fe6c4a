"""What every sink shares: the push-sink base (a bounded queue and its worker thread) with its
counts, and the file sinks' counts.

Each push sink of each camera has one bounded queue and one worker thread. ``publish`` only
appends to the queue, dropping the oldest waiting event when it is full, so a receiver that is
down, slow or refusing never holds the camera back. The worker delivers one event at a time, in
order; a failed delivery keeps the event at the head and is retried after a capped, jittered
exponential backoff (:class:`fleet.backoff.Backoff`). Every event handed to ``publish`` is in
exactly one place at any moment::

    published == sent + queued + sum(dropped.values())

and :meth:`PushSink.stats` reads the counters under the lock that moves events between them.
Delivery is at least once: an event whose acknowledgement was lost is sent again, so receivers
should tell duplicates apart (by ``camera``, ``track`` and ``event``, say).

Drop reasons (:data:`fleet.vocab.PUSH_DROPS`): ``queue_full`` (the oldest waiting event, to make
room), ``rejected`` (the receiver refused it for good, e.g. HTTP 400, or it could not be encoded
as JSON) and ``shutdown`` (still queued when ``close`` ran out of time; it may yet have reached
the receiver). A file sink's (:data:`fleet.vocab.FILE_DROPS`): ``disk_full`` and ``io_error``.

No message, stat or log record holds a credential: a push sink masks its configured secrets and
every URL goes through :func:`fleet.redact.redact_url`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from fleet.backoff import Backoff
from fleet.config._push import PushSinkSettings
from fleet.frames import SinkStats
from fleet.redact import redact_url
from fleet.sinks.rotation import is_disk_full
from fleet.vocab import FILE_DROPS, PUSH_DROPS

# The loggers keep the names they had before the sinks were split into modules: the log format
# shows them, and operators' log filters know them.
PUSH_LOGGER = "fleet.sinks.push"
FILE_LOGGER = "fleet.sinks.events"
logger = logging.getLogger(PUSH_LOGGER)

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(message: str) -> None:
    """Log a warning about a setting once per process, not once per camera."""
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    logger.warning("%s", message)


@dataclass(frozen=True)
class PushStats:
    """One sink of one camera. ``published == sent + queued + sum(dropped.values())``."""

    sink: str  # its name in fleet.sinks.push.PUSH_SINKS: webhook | mqtt
    published: int  # events handed to publish() that pass the sink's event filter
    sent: int  # delivered: HTTP 2xx; MQTT acknowledged (qos 1, 2) or written (qos 0)
    queued: int  # waiting now, the one being delivered included
    dropped: dict[str, int]  # PUSH_DROPS -> count
    retries: int  # failed delivery attempts (each retried)
    last_error: str  # the latest failure, credentials masked

    @property
    def accounted(self) -> bool:
        """Every published event is sent, queued or dropped with a reason."""
        return self.published == self.sent + self.queued + sum(self.dropped.values())


@dataclass(frozen=True)
class Attempt:
    """How one delivery went: sent, retry (the event stays at the head) or rejected (drop it)."""

    outcome: Literal["sent", "retry", "rejected"]
    error: str = ""


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class PushSink:
    """A bounded queue and the worker thread that delivers it; subclasses say how to deliver.

    A subclass sets up its transport, then calls :meth:`_start`. Its hooks run on the worker
    thread only: :meth:`_attempt` (deliver one event), :meth:`_tend` (housekeeping whenever the
    worker wakes) and, from :meth:`close`, :meth:`_finish`. A kind is opened by the cameras
    once it is in :data:`fleet.sinks.push.PUSH_SINKS`.
    """

    name = "push"

    def __init__(self, settings: PushSinkSettings, camera: str, secret_values: Iterable[str]):
        self.camera = camera
        self._events = frozenset(settings.events)
        self._queue_size = settings.queue_size
        # jitter 0.5: each delay drawn from [base/2, base], so sinks that lost one receiver
        # together do not retry in step
        self._backoff = Backoff(settings.initial_backoff_s, settings.max_backoff_s, jitter=0.5)
        self._secrets = sorted({s for s in secret_values if s}, key=len, reverse=True)
        self._wake = threading.Condition(threading.Lock())  # guards everything below
        self._queue: deque[bytes] = deque()
        self._head: bytes | None = None  # being delivered, or waiting to be retried; queued
        self._retry_at = 0.0  # time.monotonic() before which the head is not tried again
        self._published = self._sent = self._retries = 0
        self._dropped = dict.fromkeys(PUSH_DROPS, 0)
        self._last_error = ""
        self._failing = False  # in a run of failed attempts: its first one is logged
        self._deadline: float | None = None  # set by close(): deliver until then
        self._abandoned = False  # close() counted what was left: the worker touches nothing
        self._worker = threading.Thread(target=self._run, name=f"push-{self.name}-{camera}",
                                        daemon=True)

    # ------------------------------------------------------------------------------ public
    def publish(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for delivery. Never blocks on the receiver and never raises.

        Events whose ``event`` type the sink is not configured for are ignored, not counted.
        The event is encoded now, so later changes to the dict do not change what is sent; a
        value JSON has no form for (a datetime, a numpy number) is sent as its ``str()``.
        """
        kind = event.get("event")
        if not isinstance(kind, str) or kind not in self._events:
            return
        try:
            body = json.dumps(event, separators=(",", ":"), default=str).encode()
        except (TypeError, ValueError) as error:  # a circular reference: a bug upstream
            self._count_rejected_now(f"event is not JSON-serialisable: {error}")
            return
        with self._wake:
            self._published += 1
            reason = self._enqueue(body)
            count = self._dropped[reason] if reason else 0
            self._wake.notify()
        if reason and _is_power_of_two(count):
            why = (f"the receiver is down or slower than the events come (queue_size "
                   f"{self._queue_size})" if reason == "queue_full" else "published after close")
            logger.warning("camera %s: %s sink has dropped %d events (%s): %s", self.camera,
                           self.name, count, reason, why)

    def set_state(self, state: str) -> None:
        """The camera's state (up, down, ...). Only MQTT publishes it."""

    def stats(self) -> PushStats:
        with self._wake:
            return self._stats_locked()

    def close(self, timeout_s: float) -> PushStats:
        """Deliver what is queued within ``timeout_s``; count what is left dropped ``shutdown``.

        Returns within ``timeout_s`` (plus scheduling) whatever the receiver does. Events
        published after this are counted dropped ``shutdown`` too. A second call only
        returns the stats.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._wake:
            if self._deadline is not None:
                return self._stats_locked()
            self._deadline = deadline - self._reserve_s(timeout_s)
            self._wake.notify_all()
        self._worker.join(max(0.0, self._deadline - time.monotonic()))
        with self._wake:
            left = self._queued()
            self._dropped["shutdown"] += left
            self._queue.clear()
            self._head = None
            self._abandoned = True
            self._wake.notify_all()
        if left:
            logger.warning("camera %s: %s sink closed with %d events undelivered (last error: "
                           "%s)", self.camera, self.name, left, self._last_error or "none")
        self._finish(deadline)
        return self.stats()

    # ------------------------------------------------------------------------------ hooks
    def _attempt(self, body: bytes, timeout_s: float | None) -> Attempt:
        """Deliver one event, taking at most about ``timeout_s`` (None: the sink's own)."""
        raise NotImplementedError

    def _tend(self) -> None:
        """Work to do whenever the worker wakes (MQTT: publish a changed state)."""

    def _reserve_s(self, timeout_s: float) -> float:
        """Time of ``close``'s timeout kept back from delivering events, for :meth:`_finish`."""
        return 0.0

    def _finish(self, deadline: float) -> None:
        """Close the transport by ``deadline``, after the queue is delivered or abandoned."""

    # ------------------------------------------------------------------------------ worker
    def _start(self) -> None:
        self._worker.start()

    def _run(self) -> None:
        while (body := self._next()) is not None:
            try:
                attempt = self._attempt(body, self._time_left())
            except Exception as error:  # a bug must not kill the worker and strand the queue
                logger.warning("camera %s: %s sink failed unexpectedly: %s", self.camera,
                               self.name, self._mask(repr(error)))
                attempt = Attempt("retry", f"unexpected {type(error).__name__}: {error}")
            self._settle(attempt)

    def _next(self) -> bytes | None:
        """The head event once it is due, or None when the worker should stop."""
        while True:
            self._tend()
            with self._wake:
                if self._head is None and self._queue:
                    self._head = self._queue.popleft()
                now = time.monotonic()
                deadline = self._deadline
                if self._abandoned or (deadline is not None
                                       and (self._head is None or now >= deadline)):
                    return None
                if self._head is not None and now >= self._retry_at:
                    return self._head
                waits = [self._retry_at - now] if self._head is not None else []
                waits += [deadline - now] if deadline is not None else []
                self._wake.wait(min(waits) if waits else None)

    def _settle(self, attempt: Attempt) -> None:
        with self._wake:
            if self._abandoned:
                return
            was_failing, self._failing = self._failing, attempt.outcome == "retry"
            if attempt.outcome == "retry":
                self._retries += 1
                self._last_error = self._mask(attempt.error)
                self._retry_at = time.monotonic() + self._backoff.next_delay()
            else:
                self._head = None
                self._backoff.reset()
                if attempt.outcome == "sent":
                    self._sent += 1
                else:
                    self._dropped["rejected"] += 1
                    self._last_error = self._mask(attempt.error)
            queued, retries, rejected = self._queued(), self._retries, self._dropped["rejected"]
        if attempt.outcome == "retry" and not was_failing:
            logger.warning("camera %s: %s delivery failed (%s); retrying with backoff up to "
                           "%g s, %d events queued", self.camera, self.name, self._last_error,
                           self._backoff.max_s, queued)
        elif attempt.outcome == "rejected" and _is_power_of_two(rejected):
            logger.warning("camera %s: %s sink has dropped %d events refused by the receiver "
                           "(%s)", self.camera, self.name, rejected, self._last_error)
        elif attempt.outcome == "sent" and was_failing:
            logger.info("camera %s: %s delivering again after %d failed attempts in all",
                        self.camera, self.name, retries)

    # ------------------------------------------------------------------------------ helpers
    def _enqueue(self, body: bytes) -> str | None:
        """Put ``body`` in the queue (lock held); the drop reason it cost, if any."""
        if self._deadline is not None:
            self._dropped["shutdown"] += 1
            return "shutdown"
        if self._queued() < self._queue_size:
            self._queue.append(body)
            return None
        self._dropped["queue_full"] += 1
        if self._queue:  # the head may be at the receiver already: never drop it
            self._queue.popleft()
            self._queue.append(body)
        return "queue_full"

    def _count_rejected_now(self, error: str) -> None:
        with self._wake:
            self._published += 1
            self._dropped["rejected"] += 1
            self._last_error = self._mask(error)
        logger.warning("camera %s: %s sink dropped an event: %s", self.camera, self.name,
                       self._last_error)

    def _queued(self) -> int:
        return len(self._queue) + (self._head is not None)

    def _stats_locked(self) -> PushStats:
        return PushStats(self.name, self._published, self._sent, self._queued(),
                         dict(self._dropped), self._retries, self._last_error)

    def _time_left(self) -> float | None:
        """Seconds until close()'s deadline, or None when not closing."""
        with self._wake:
            deadline = self._deadline
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def _retry_now(self) -> None:
        """Try the head again at once (MQTT: the broker is back)."""
        with self._wake:
            self._retry_at = 0.0
            self._wake.notify()

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_url(text)


# ---------------------------------------------------------------------------------------- files
file_logger = logging.getLogger(FILE_LOGGER)


class FileCounts:
    """What a file sink (``jsonl``, ``snapshots``) did, as a :class:`SinkStats`:
    ``published == sent + queued + sum(dropped.values())``. A write that fails is counted, and
    logged the 1st, 2nd, 4th, 8th ... time, never raised: a full disk must not stop the push
    sinks or the camera."""

    def __init__(self, sink: str):
        self.sink = sink
        self.lock = threading.Lock()
        self.published = self.sent = self.failures = 0
        self.dropped = dict.fromkeys(FILE_DROPS, 0)
        self.last_error = ""

    def failed(self, error: OSError, what: str) -> str:
        """Note a failed write; its drop reason."""
        reason = "disk_full" if is_disk_full(error) else "io_error"
        with self.lock:
            self.failures += 1
            self.last_error = f"{what}: {error.strerror or error}"
            failures = self.failures
        if failures & (failures - 1) == 0:
            file_logger.warning("sink %s: %s (%d failed writes so far; counted as dropped %s)",
                        self.sink, self.last_error, failures, reason)
        return reason

    def drop(self, reason: str, n: int = 1) -> None:
        with self.lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + n

    def stats(self, queued: int = 0) -> SinkStats:
        with self.lock:
            return SinkStats(self.sink, self.published, self.sent, queued, dict(self.dropped),
                             self.failures, self.last_error)
