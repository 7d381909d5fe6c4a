"""Push object events to other systems as they happen: a webhook (HTTP POST) and MQTT.

Each sink of each camera has one bounded queue and one worker thread. ``publish`` only appends
to the queue, dropping the oldest waiting event when it is full, so a receiver that is down, slow
or refusing never holds the camera back. The worker delivers one event at a time, in order; a
failed delivery keeps the event at the head and is retried after a capped, jittered exponential
backoff. Every event handed to ``publish`` is in exactly one place at any moment::

    published == sent + queued + sum(dropped.values())

and :meth:`PushSink.stats` reads the counters under the lock that moves events between them.
Delivery is at least once: an event whose acknowledgement was lost is sent again, so receivers
should tell duplicates apart (by ``camera``, ``track`` and ``event``, say).

Drop reasons: ``queue_full`` (the oldest waiting event, to make room), ``rejected`` (the receiver
refused it for good, e.g. HTTP 400, or it could not be encoded as JSON) and ``shutdown`` (still
queued when ``close`` ran out of time; it may yet have reached the receiver).

A webhook request has ``timeout_s`` in all, from connect to the end of the answer (every socket
operation gets only the time left), and at most :data:`RESPONSE_CAP_BYTES` of an answer's body
is read: a receiver that drips its answer or streams an endless one costs a failed attempt, not
a stuck worker or the process's memory. Signed requests carry :data:`TIMESTAMP_HEADER` inside the
signed material, so a receiver can refuse replays. Settings that send a credential in clear are
warned about once per process when a sink starts.

No message, stat or log record holds a credential: the sinks mask their configured secrets and
every URL goes through :func:`fleet.redact.redact_url`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import http.client
import io
import ipaddress
import json
import logging
import os
import random
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleet.config._push import (
    MqttSinkConfig,
    MqttTlsConfig,
    PushSinkSettings,
    WebhookSinkConfig,
)
from fleet.errors import FleetError
from fleet.redact import redact_url

logger = logging.getLogger(__name__)

DROP_REASONS = ("queue_full", "rejected", "shutdown")  # why a push sink dropped an event
FILE_DROP_REASONS = ("disk_full", "io_error")  # why a file sink (jsonl, snapshots) lost a write
SINK_DROP_REASONS = DROP_REASONS + FILE_DROP_REASONS  # camfleet_sink_dropped_total's reasons
# HTTP answers worth trying again: the receiver is overloaded, restarting or timed out.
_RETRY_STATUSES = frozenset({408, 429})
# What a keep-alive connection the server has closed while idle fails with: try a fresh one.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
# The most of a webhook's answer read: enough for any error message, never a flood.
RESPONSE_CAP_BYTES = 64 * 1024
# The unix time (whole seconds) of a signed request; the signature covers "<it>." + body.
TIMESTAMP_HEADER = "X-Camfleet-Timestamp"

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(message: str) -> None:
    """Log a warning about a setting once per process, not once per camera."""
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    logger.warning("%s", message)


class PushSettingError(FleetError, ValueError):
    """A push sink's setting cannot be used on this node (a TLS file missing, say)."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class PushStats:
    """One sink of one camera. ``published == sent + queued + sum(dropped.values())``."""

    sink: str  # webhook | mqtt
    published: int  # events handed to publish() that pass the sink's event filter
    sent: int  # delivered: HTTP 2xx; MQTT acknowledged (qos 1, 2) or written (qos 0)
    queued: int  # waiting now, the one being delivered included
    dropped: dict[str, int]  # DROP_REASONS -> count
    retries: int  # failed delivery attempts (each retried)
    last_error: str  # the latest failure, credentials masked

    @property
    def accounted(self) -> bool:
        """Every published event is sent, queued or dropped with a reason."""
        return self.published == self.sent + self.queued + sum(self.dropped.values())


@dataclass(frozen=True)
class _Attempt:
    """How one delivery went: sent, retry (the event stays at the head) or rejected (drop it)."""

    outcome: Literal["sent", "retry", "rejected"]
    error: str = ""


class RetryBackoff:
    """Capped exponential backoff with jitter: each delay is drawn from [base/2, base], so
    cameras that lost one receiver together do not retry in step, and no delay exceeds the cap."""

    def __init__(self, initial_s: float, max_s: float):
        self.initial_s, self.max_s = initial_s, max_s
        self.attempt = 0
        self.rng = random.Random()

    def next_delay(self) -> float:
        base = min(self.max_s, self.initial_s * 2 ** min(self.attempt, 60))
        self.attempt += 1
        return base * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class PushSink:
    """A bounded queue and the worker thread that delivers it; subclasses say how to deliver.

    A subclass sets up its transport, then calls :meth:`_start`. Its hooks run on the worker
    thread only: :meth:`_attempt` (deliver one event), :meth:`_tend` (housekeeping whenever the
    worker wakes) and, from :meth:`close`, :meth:`_finish`.
    """

    name = "push"

    def __init__(self, settings: PushSinkSettings, camera: str, secret_values: Iterable[str]):
        self.camera = camera
        self._events = frozenset(settings.events)
        self._queue_size = settings.queue_size
        self._backoff = RetryBackoff(settings.initial_backoff_s, settings.max_backoff_s)
        self._secrets = sorted({s for s in secret_values if s}, key=len, reverse=True)
        self._wake = threading.Condition(threading.Lock())  # guards everything below
        self._queue: deque[bytes] = deque()
        self._head: bytes | None = None  # being delivered, or waiting to be retried; queued
        self._retry_at = 0.0  # time.monotonic() before which the head is not tried again
        self._published = self._sent = self._retries = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
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
    def _attempt(self, body: bytes, timeout_s: float | None) -> _Attempt:
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
                attempt = _Attempt("retry", f"unexpected {type(error).__name__}: {error}")
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

    def _settle(self, attempt: _Attempt) -> None:
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


# --------------------------------------------------------------------------------------- webhook
class _DeadlineReader(io.RawIOBase):
    """The response side of a socket: each read may take only the time left until the
    request's deadline, so an answer that drips in a byte at a time still ends in time."""

    def __init__(self, sock: socket.socket, left: Callable[[], float]):
        super().__init__()
        # A makefile() reader holds the socket open after HTTPConnection lets go of it (it
        # does, for an answer that ends with the connection).
        self._sock, self._raw, self._left = sock, sock.makefile("rb", buffering=0), left

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._left())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, debuglevel: int = 0, method: str | None = None,
                 url: str | None = None, *, left: Callable[[], float]):
        super().__init__(sock, debuglevel, method, url)
        self.fp.close()  # the plain makefile() reader: its reads would each get a fresh timeout
        self.fp = io.BufferedReader(_DeadlineReader(sock, left))


class _DeadlineConnection(http.client.HTTPConnection):
    """An HTTP(S) connection held to one deadline per request, not one timeout per socket
    operation: connect, the TLS handshake, the send and every read get only the time left
    until :attr:`deadline` (``time.monotonic()``), and none starts once it has passed."""

    def __init__(self, host: str, port: int | None, context: ssl.SSLContext | None):
        super().__init__(host, port or (443 if context else 80))
        self._context = context
        self.deadline = 0.0
        self.timeout_s = 0.0  # what the deadline was set from, for the message
        self.response_class = functools.partial(  # type: ignore[assignment]
            _DeadlineResponse, left=self.left)

    def left(self) -> float:
        """Seconds to the deadline; TimeoutError once there are none."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete answer within {self.timeout_s:g} s")
        return left

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.left())
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock.settimeout(self.left())  # CPython holds a handshake to one timeout in all
                sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()
        self.sock.settimeout(self.left())  # sendall: one timeout for all of it
        super().send(data)


def _loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WebhookSink(PushSink):
    """POST each event as JSON, one at a time, over one keep-alive connection.

    2xx is delivered; 5xx, 408, 429, timeouts and connection errors are retried (with the
    sink's backoff: a Retry-After header is not read); any other answer (3xx, 4xx) is dropped
    ``rejected``, since sending the same body again would get the same answer.

    Each request has ``timeout_s`` in all, from connect to the end of the answer, and reads at
    most :data:`RESPONSE_CAP_BYTES` of the answer's body: a receiver that answers slowly or
    endlessly costs a retry, not a stuck worker or the process's memory.
    """

    name = "webhook"

    def __init__(self, config: WebhookSinkConfig, fleet: str, camera: str):
        parts = urlsplit(config.url)
        headers = list(config.headers.values())
        tokens = [value.split()[-1] for value in headers if value.split()]  # Bearer <token>
        password = parts.password or ""
        super().__init__(config, camera, [config.secret or "", password, unquote(password),
                                          *headers, *tokens])
        self._config = config
        self._https = parts.scheme.lower() == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._safe_url = redact_url(config.url)
        self._key = config.secret.encode() if config.secret else None
        self._headers = {"Content-Type": "application/json", "User-Agent": "camfleet"}
        if parts.username is not None:
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
        self._headers.update(config.headers)  # the user's own Authorization wins
        self._connection: _DeadlineConnection | None = None
        self._warn_at_start(parts.username is not None)
        self._start()

    def _warn_at_start(self, basic_auth: bool) -> None:
        """Settings that weaken what the receiver can trust, logged once per process."""
        config, where = self._config, self._safe_url
        if not self._https and not _loopback(self._host):
            if basic_auth or config.headers:
                what = "basic-auth credentials" if basic_auth else "the headers' values"
                _warn_once(f"webhook {where} sends {what} in clear over http:// to a host that "
                           "is not this machine; anyone on the path can read them: use https://")
            if config.secret:
                _warn_once(f"webhook {where}: events signed with secret go in clear over "
                           "http://; anyone on the path can read them and replay them within "
                           "the receiver's tolerance window: use https://")
        if config.secret and config.signature_scheme == "body":
            _warn_once(f"webhook {where}: signature_scheme 'body' signs the body only, so a "
                       "captured request can be replayed at any time; use 'timestamped' (the "
                       "default) and check X-Camfleet-Timestamp at the receiver")

    def _attempt(self, body: bytes, timeout_s: float | None) -> _Attempt:
        timeout = self._config.timeout_s if timeout_s is None else min(timeout_s,
                                                                      self._config.timeout_s)
        if timeout <= 0:
            return _Attempt("retry", "no time left to send")
        try:
            status, reason = self._post(body, timeout)
        except (OSError, http.client.HTTPException) as error:
            return _Attempt("retry", f"POST {self._safe_url} failed: "
                                     f"{type(error).__name__}: {error}")
        if 200 <= status < 300:
            return _Attempt("sent")
        answer = f"{self._safe_url} answered {status} {reason[:100]}"
        if status >= 500 or status in _RETRY_STATUSES:
            return _Attempt("retry", answer)
        return _Attempt("rejected", f"{answer}; not retried (fix the receiver, or what it "
                                    "is sent: url, headers, secret)")

    def _signed(self, body: bytes) -> dict[str, str]:
        """The request's headers, with a fresh timestamp and signature when there is a key.

        Signed afresh on every attempt, so a retry after a long outage still falls within the
        receiver's tolerance window."""
        headers = {**self._headers, "Content-Length": str(len(body))}
        if self._key is not None:
            timestamp = str(int(time.time()))
            signed = body if self._config.signature_scheme == "body" \
                else f"{timestamp}.".encode() + body
            digest = hmac.new(self._key, signed, hashlib.sha256).hexdigest()
            headers[TIMESTAMP_HEADER] = timestamp
            headers[self._config.signature_header] = f"sha256={digest}"
        return headers

    def _post(self, body: bytes, timeout_s: float) -> tuple[int, str]:
        """POST ``body``: (status, reason), within ``timeout_s`` in all. An idle keep-alive
        connection the server closed is replaced at once, once, within the same time: it is no
        sign that the receiver is down."""
        headers = self._signed(body)
        deadline = time.monotonic() + timeout_s
        while True:
            reused = self._connection is not None
            connection = self._connect(deadline, timeout_s)
            try:
                connection.request("POST", self._target, body=body, headers=headers)
                response = connection.getresponse()
                # Read little of the answer: its status is what counts. An answer longer than
                # that is cut off with its connection, which is not used again.
                response.read(RESPONSE_CAP_BYTES)
            except (OSError, http.client.HTTPException) as error:
                self._disconnect()
                if reused and isinstance(error, _STALE):
                    continue
                raise
            if response.will_close or not response.isclosed():
                response.close()  # an answer that ends with its connection holds the socket
                self._disconnect()
            return response.status, response.reason

    def _connect(self, deadline: float, timeout_s: float) -> _DeadlineConnection:
        if self._connection is None:
            context = ssl.create_default_context() if self._https else None
            self._connection = _DeadlineConnection(self._host, self._port, context)
        self._connection.deadline, self._connection.timeout_s = deadline, timeout_s
        return self._connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _reserve_s(self, timeout_s: float) -> float:
        return min(0.2, 0.1 * timeout_s)  # for the worker to unwind a request cut short

    def _finish(self, deadline: float) -> None:
        """Wait for the worker (its request ends by close's deadline less the reserve); one
        still in a request begun before close is cut off by shutting its socket."""
        self._worker.join(max(0.0, deadline - time.monotonic()))
        if self._worker.is_alive():
            connection = self._connection
            sock = connection.sock if connection is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._worker.join(0.05)
        if not self._worker.is_alive():  # else the worker may still be using it
            self._disconnect()


# ------------------------------------------------------------------------------------------ MQTT
class MqttSink(PushSink):
    """Publish each event as JSON to ``<prefix>/<fleet>/<camera>/events``, and the camera's
    state, retained, to ``.../state``; the broker's last will sets it ``down`` if the camera's
    process dies.

    Our queue is the source of truth, not paho's: the worker hands paho one event, waits for
    the broker's acknowledgement (qos 1, 2; for qos 0, for the write) and only then counts it
    sent. paho keeps an unacknowledged qos 1/2 message and sends it again after a reconnect, so
    the worker waits for that same message rather than publishing a copy; a qos 0 message lost
    with a connection is published again.
    """

    name = "mqtt"

    def __init__(self, config: MqttSinkConfig, fleet: str, camera: str):
        super().__init__(config, camera, [config.password or ""])
        self._config = config
        topic = f"{config.topic_prefix}/{fleet}/{camera}"
        self._events_topic, self._state_topic = f"{topic}/events", f"{topic}/state"
        self._where = f"mqtt{'s' if config.tls.enabled else ''}://{config.host}:{config.port}"
        tls = _tls_context(config.tls) if config.tls.enabled else None  # before any thread
        if config.password and tls is None:
            _warn_once(f"MQTT to {self._where} sends the password of user {config.username!r} "
                       "in clear (tls.enabled is false): anyone on the path can read it; "
                       "enable tls")
        # paho's callbacks take these locks while paho holds its own: never call paho with
        # _acks or _wake held.
        self._acks = threading.Condition(threading.Lock())
        self._acked: set[int] = set()  # mids paho reported published since the last event
        self._drops = 0  # connections lost so far: wakes a worker waiting for an ack
        self._link_error = "not connected yet"
        self._mid: int | None = None  # the head event's message at paho (worker thread only)
        self._state: str | None = None  # the camera's state, as set_state last said
        self._state_due = False  # to publish: changed, or the broker may have forgotten it
        self._client = self._make_client(f"camfleet-{fleet}-{camera}-{secrets.token_hex(3)}",
                                         tls)
        self._client.connect_async(config.host, config.port, config.keepalive_s)
        self._client.loop_start()  # connects in paho's thread: a dead broker never blocks here
        self._start()

    def set_state(self, state: str) -> None:
        """Publish ``state`` retained (from the worker thread) if it changed."""
        with self._wake:
            if state == self._state or self._deadline is not None:
                return
            self._state, self._state_due = state, True
            self._wake.notify()

    def _make_client(self, client_id: str, tls: ssl.SSLContext | None) -> paho.Client:
        config = self._config
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=paho.MQTTv311)
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if tls is not None:
            client.tls_set_context(tls)  # paho takes check_hostname from the context
        client.will_set(self._state_topic, "down", qos=1, retain=True)
        # paho's own reconnect backoff (no jitter); it sleeps fractions of a second fine.
        client.reconnect_delay_set(config.initial_backoff_s,  # type: ignore[arg-type]
                                   config.max_backoff_s)  # type: ignore[arg-type]
        # Unbounded: our queue is the bound, and paho holds at most the head event and a
        # few state messages. A bounded paho queue would refuse messages instead.
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # ----------------------------------------------------------------- worker hooks
    def _attempt(self, body: bytes, timeout_s: float | None) -> _Attempt:
        if not self._client.is_connected():  # a pending qos 1/2 message stays with paho
            return _Attempt("retry", f"not connected to {self._where} ({self._link_error})")
        if self._mid is None:
            with self._acks:
                self._acked.clear()  # mids are reused: forget the ones seen before
            info = self._client.publish(self._events_topic, body, qos=self._config.qos)
            kept = self._config.qos > 0 and info.rc == paho.MQTT_ERR_NO_CONN  # paho resends it
            if info.rc != paho.MQTT_ERR_SUCCESS and not kept:
                return _Attempt("retry", f"publish to {self._where} failed: "
                                         f"{paho.error_string(info.rc)}")
            self._mid = info.mid
        wait_s = float(self._config.keepalive_s)
        if timeout_s is not None:
            wait_s = min(wait_s, timeout_s)
        if self._wait_ack(self._mid, wait_s):
            self._mid = None
            return _Attempt("sent")
        if self._config.qos == 0:  # a qos 0 message is not kept: publish it again
            self._mid = None
        return _Attempt("retry", f"no acknowledgement from {self._where} within {wait_s:g} s "
                                 f"({self._link_error})")

    def _wait_ack(self, mid: int, timeout_s: float) -> bool:
        """Wait for ``mid`` to be acknowledged; give up early if the connection drops."""
        with self._acks:
            drops = self._drops
            self._acks.wait_for(lambda: mid in self._acked or self._drops != drops, timeout_s)
            return mid in self._acked

    def _tend(self) -> None:
        with self._wake:
            state = self._state if self._state_due else None
        if state is None or not self._client.is_connected():
            return  # on_connect wakes the worker
        info = self._client.publish(self._state_topic, state, qos=1, retain=True)
        if info.rc == paho.MQTT_ERR_SUCCESS:
            with self._wake:
                self._state_due = self._state != state

    def _reserve_s(self, timeout_s: float) -> float:
        return min(1.0, 0.2 * timeout_s)  # for "stopped" and the DISCONNECT

    def _finish(self, deadline: float) -> None:
        """Publish ``stopped`` and disconnect cleanly, so the broker drops the last will. If
        ``stopped`` cannot be confirmed in time, the connection is closed without a DISCONNECT
        instead: the broker then publishes the will, ``down``, not a stale ``up``."""
        with self._acks:  # a worker still waiting for an ack: stop waiting
            self._drops += 1
            self._acks.notify_all()
        confirmed, connected = False, self._client.is_connected()
        if connected:
            info = self._client.publish(self._state_topic, "stopped", qos=1, retain=True)
            confirmed = self._wait_ack(info.mid, max(0.0, deadline - time.monotonic()))
        if confirmed:
            self._client.disconnect()
        stopper = threading.Thread(target=self._client.loop_stop, daemon=True,
                                   name=f"push-mqtt-stop-{self.camera}")
        stopper.start()  # loop_stop joins paho's thread with no timeout
        stopper.join(max(0.0, deadline - time.monotonic()))
        if not confirmed and not stopper.is_alive():
            sock = self._client.socket()
            if sock is not None:
                sock.close()
        if connected and not confirmed:
            logger.warning("camera %s: MQTT got no acknowledgement of state 'stopped' from %s "
                           "in time; closed without DISCONNECT, so the broker publishes the "
                           "last will, 'down'", self.camera, self._where)
        elif not connected:
            logger.warning("camera %s: MQTT not connected to %s at close (%s); state 'stopped' "
                           "not published", self.camera, self._where, self._link_error)

    # ----------------------------------------------------------------- paho callbacks
    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:  # bad credentials, say: logged once, not on every retry
            error, self._link_error = self._link_error, f"the broker refused us: {reason}"
            if error != self._link_error:
                logger.warning("camera %s: MQTT broker %s refused the connection (%s); check "
                               "username and password; retrying with backoff", self.camera,
                               self._where, reason)
            return
        self._link_error = ""
        logger.info("camera %s: MQTT connected to %s", self.camera, self._where)
        with self._wake:
            # A restarted broker without persistence forgot the retained state, and one that
            # lost us published the will: say the state again.
            self._state_due = self._state is not None
        self._retry_now()

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        first = self._link_error == "not connected yet"
        self._link_error = "cannot connect"
        if first:
            logger.warning("camera %s: MQTT cannot connect to %s; retrying with backoff up to "
                           "%g s", self.camera, self._where, self._config.max_backoff_s)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: paho.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        with self._acks:
            self._drops += 1
            self._acks.notify_all()
        with self._wake:
            closing = self._deadline is not None
        if not closing:
            self._link_error = f"connection lost: {reason}"
            logger.warning("camera %s: MQTT connection to %s lost (%s); reconnecting",
                           self.camera, self._where, reason)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        with self._acks:
            self._acked.add(mid)
            self._acks.notify_all()


def _tls_context(tls: MqttTlsConfig) -> ssl.SSLContext:
    """The TLS context ``tls`` asks for; PushSettingError naming the field of a file that is
    missing here or not what it should be."""
    field = "sinks.mqtt.tls."
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(tls, name)
        if path is not None and not os.path.isfile(path):
            raise PushSettingError(field + name, f"{path} is not a file on this node "
                                   f"({socket.gethostname()}); put the PEM file there on every "
                                   "node that runs cameras, or fix the path")
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
    except ssl.SSLError as error:
        raise PushSettingError(field + "ca_file", f"{tls.ca_file} holds no usable CA "
                               f"certificate ({error}); give a PEM file") from error
    if tls.cert_file is not None:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except ssl.SSLError as error:
            raise PushSettingError(field + "cert_file", f"{tls.cert_file} and its key "
                                   f"({tls.key_file or 'in the same file'}) cannot be loaded "
                                   f"({error}); give a PEM certificate and its unencrypted "
                                   "private key") from error
    context.check_hostname = tls.check_hostname
    return context


def open_push_sinks(webhook: WebhookSinkConfig, mqtt: MqttSinkConfig, fleet: str,
                    camera: str) -> list[PushSink]:
    """The enabled push sinks of one camera, each with its worker thread running."""
    sinks: list[PushSink] = []
    if webhook.enabled:
        sinks.append(WebhookSink(webhook, fleet, camera))
    if mqtt.enabled:
        sinks.append(MqttSink(mqtt, fleet, camera))
    return sinks
