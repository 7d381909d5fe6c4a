"""The webhook push sink: POST each object event as JSON to an HTTP(S) endpoint, optionally
signed (``sinks.webhook``).

A webhook request has ``timeout_s`` in all, from connect to the end of the answer (every socket
operation gets only the time left), and at most :data:`RESPONSE_CAP_BYTES` of an answer's body
is read: a receiver that drips its answer or streams an endless one costs a failed attempt, not
a stuck worker or the process's memory. Signed requests carry :data:`TIMESTAMP_HEADER` inside the
signed material, so a receiver can refuse replays. Settings that send a credential in clear are
warned about once per process when a sink starts.
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
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from fleet.config._push import WebhookSinkConfig
from fleet.redact import redact_url
from fleet.sinks.base import Attempt, PushSink, warn_once

# HTTP answers worth trying again: the receiver is overloaded, restarting or timed out.
_RETRY_STATUSES = frozenset({408, 429})
# What a keep-alive connection the server has closed while idle fails with: try a fresh one.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
# The most of a webhook's answer read: enough for any error message, never a flood.
RESPONSE_CAP_BYTES = 64 * 1024
# The unix time (whole seconds) of a signed request; the signature covers "<it>." + body.
TIMESTAMP_HEADER = "X-Camfleet-Timestamp"


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
                warn_once(f"webhook {where} sends {what} in clear over http:// to a host that "
                           "is not this machine; anyone on the path can read them: use https://")
            if config.secret:
                warn_once(f"webhook {where}: events signed with secret go in clear over "
                           "http://; anyone on the path can read them and replay them within "
                           "the receiver's tolerance window: use https://")
        if config.secret and config.signature_scheme == "body":
            warn_once(f"webhook {where}: signature_scheme 'body' signs the body only, so a "
                       "captured request can be replayed at any time; use 'timestamped' (the "
                       "default) and check X-Camfleet-Timestamp at the receiver")

    def _attempt(self, body: bytes, timeout_s: float | None) -> Attempt:
        timeout = self._config.timeout_s if timeout_s is None else min(timeout_s,
                                                                      self._config.timeout_s)
        if timeout <= 0:
            return Attempt("retry", "no time left to send")
        try:
            status, reason = self._post(body, timeout)
        except (OSError, http.client.HTTPException) as error:
            return Attempt("retry", f"POST {self._safe_url} failed: "
                                     f"{type(error).__name__}: {error}")
        if 200 <= status < 300:
            return Attempt("sent")
        answer = f"{self._safe_url} answered {status} {reason[:100]}"
        if status >= 500 or status in _RETRY_STATUSES:
            return Attempt("retry", answer)
        return Attempt("rejected", f"{answer}; not retried (fix the receiver, or what it "
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
