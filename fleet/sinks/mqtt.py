"""The MQTT push sink: each object event as JSON to ``<prefix>/<fleet>/<camera>/events`` and
the camera's state, retained, to ``.../state``, with a last will (``sinks.mqtt``).

The broker's password is never shown (the sink masks it); sending it without TLS is warned
about once per process when a sink starts.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleet.config._push import MqttSinkConfig, MqttTlsConfig
from fleet.errors import PushSettingError
from fleet.sinks.base import PUSH_LOGGER, Attempt, PushSink, warn_once

logger = logging.getLogger(PUSH_LOGGER)


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
            warn_once(f"MQTT to {self._where} sends the password of user {config.username!r} "
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
    def _attempt(self, body: bytes, timeout_s: float | None) -> Attempt:
        if not self._client.is_connected():  # a pending qos 1/2 message stays with paho
            return Attempt("retry", f"not connected to {self._where} ({self._link_error})")
        if self._mid is None:
            with self._acks:
                self._acked.clear()  # mids are reused: forget the ones seen before
            info = self._client.publish(self._events_topic, body, qos=self._config.qos)
            kept = self._config.qos > 0 and info.rc == paho.MQTT_ERR_NO_CONN  # paho resends it
            if info.rc != paho.MQTT_ERR_SUCCESS and not kept:
                return Attempt("retry", f"publish to {self._where} failed: "
                                         f"{paho.error_string(info.rc)}")
            self._mid = info.mid
        wait_s = float(self._config.keepalive_s)
        if timeout_s is not None:
            wait_s = min(wait_s, timeout_s)
        if self._wait_ack(self._mid, wait_s):
            self._mid = None
            return Attempt("sent")
        if self._config.qos == 0:  # a qos 0 message is not kept: publish it again
            self._mid = None
        return Attempt("retry", f"no acknowledgement from {self._where} within {wait_s:g} s "
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
