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

No message, stat or log record holds a credential: the sinks mask their configured secrets and
every URL goes through :func:`fleet.redact.redact_url`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import random
import secrets
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleet.config._push import MqttSinkConfig, PushSinkSettings, WebhookSinkConfig
from fleet.redact import redact_url

logger = logging.getLogger(__name__)

DROP_REASONS = ("queue_full", "rejected", "shutdown")
# HTTP answers worth trying again: the receiver is overloaded, restarting or timed out.
_RETRY_STATUSES = frozenset({408, 429})
# What a keep-alive connection the server has closed while idle fails with: try a fresh one.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


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
class WebhookSink(PushSink):
    """POST each event as JSON, one at a time, over one keep-alive connection.

    2xx is delivered; 5xx, 408, 429, timeouts and connection errors are retried (with the
    sink's backoff: a Retry-After header is not read); any other answer (3xx, 4xx) is dropped
    ``rejected``, since sending the same body again would get the same answer.
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
        self._connection: http.client.HTTPConnection | None = None
        self._start()

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

    def _post(self, body: bytes, timeout_s: float) -> tuple[int, str]:
        """POST ``body``: (status, reason). An idle keep-alive connection the server closed is
        replaced at once, once: it is no sign that the receiver is down."""
        headers = {**self._headers, "Content-Length": str(len(body))}
        if self._key is not None:
            # The receiver computes the same over the raw body it got, and compares the two
            # with hmac.compare_digest.
            digest = hmac.new(self._key, body, hashlib.sha256).hexdigest()
            headers[self._config.signature_header] = f"sha256={digest}"
        while True:
            reused = self._connection is not None
            connection = self._connect(timeout_s)
            try:
                connection.request("POST", self._target, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                self._disconnect()
                if reused and isinstance(error, _STALE):
                    continue
                raise
            if response.will_close:
                self._disconnect()
            return response.status, response.reason

    def _connect(self, timeout_s: float) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                self._connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout_s,
                    context=ssl.create_default_context())
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port,
                                                              timeout=timeout_s)
        elif self._connection.sock is not None:
            self._connection.sock.settimeout(timeout_s)
        return self._connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _finish(self, deadline: float) -> None:
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
        self._where = f"mqtt{'s' if config.tls else ''}://{config.host}:{config.port}"
        # paho's callbacks take these locks while paho holds its own: never call paho with
        # _acks or _wake held.
        self._acks = threading.Condition(threading.Lock())
        self._acked: set[int] = set()  # mids paho reported published since the last event
        self._drops = 0  # connections lost so far: wakes a worker waiting for an ack
        self._link_error = "not connected yet"
        self._mid: int | None = None  # the head event's message at paho (worker thread only)
        self._state: str | None = None  # the camera's state, as set_state last said
        self._state_due = False  # to publish: changed, or the broker may have forgotten it
        self._client = self._make_client(f"camfleet-{fleet}-{camera}-{secrets.token_hex(3)}")
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

    def _make_client(self, client_id: str) -> paho.Client:
        config = self._config
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=paho.MQTTv311)
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.tls:
            client.tls_set_context(ssl.create_default_context())
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


def open_push_sinks(webhook: WebhookSinkConfig, mqtt: MqttSinkConfig, fleet: str,
                    camera: str) -> list[PushSink]:
    """The enabled push sinks of one camera, each with its worker thread running."""
    sinks: list[PushSink] = []
    if webhook.enabled:
        sinks.append(WebhookSink(webhook, fleet, camera))
    if mqtt.enabled:
        sinks.append(MqttSink(mqtt, fleet, camera))
    return sinks
