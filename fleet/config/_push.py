"""Configuration of the sinks that push object events to other systems: a webhook and MQTT.

Both are off by default. Each camera gets its own bounded queue per sink, so a receiver that is
down or slow costs memory up to ``queue_size`` events and never holds the camera back. Secrets
(the webhook's URL, signing key and headers; the broker's password) are left out of ``repr``;
put them in ``${ENV}`` or ``${file:...}`` so they stay out of the fleet file as well.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from fleet.config._base import StrictModel
from fleet.redact import redact_url
from fleet.vocab import EVENT_KINDS

# The events a push sink can send: every EventKind of fleet/vocab.py, in its order. Spelt out
# as plain strings because the schema and mypy need a Literal, and a Literal of EventKind members
# would put their reprs (<EventKind.START: 'start'>) in the loader's messages; checked here.
PushEvent = Literal["start", "update", "end", "enter", "leave", "loiter", "stationary"]
PUSH_EVENTS: tuple[PushEvent, ...] = get_args(PushEvent)
assert PUSH_EVENTS == EVENT_KINDS, "PushEvent must list fleet.vocab.EventKind, in its order"
# An HTTP header name is an RFC 9110 token; a value must not break its line (header injection).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LINE_BREAK = re.compile(r"[\r\n\x00]")


class PushSinkSettings(StrictModel):
    """What every push sink has: which events it sends, its queue and its retry backoff."""

    events: list[PushEvent] = Field(
        default_factory=lambda: list(PUSH_EVENTS), min_length=1,
        description="Event types to send: start, update, stationary, end (an object's "
        "track), enter, leave, loiter (zones). Others are not sent and not counted.",
    )
    queue_size: int = Field(
        default=1000, ge=1, le=1_000_000,
        description="Events waiting per camera; when full the oldest is dropped (queue_full).",
    )
    initial_backoff_s: float = Field(
        default=0.5, gt=0, le=60, description="First wait before retrying a failed delivery."
    )
    max_backoff_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait between retries."
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> PushSinkSettings:
        if self.initial_backoff_s > self.max_backoff_s:
            raise ValueError(
                f"initial_backoff_s: {self.initial_backoff_s:g} s exceeds max_backoff_s "
                f"({self.max_backoff_s:g} s); lower it or raise max_backoff_s"
            )
        return self


class WebhookSinkConfig(PushSinkSettings):
    """POST each object event as JSON to an HTTP(S) endpoint, optionally signed."""

    enabled: bool = Field(default=False, description="POST object events to url.")
    url: str = Field(
        default="", repr=False,
        description="http(s):// endpoint; put tokens and passwords in ${ENV}. A user:password@ "
        "in it is sent as HTTP basic auth.",
    )
    secret: str | None = Field(
        default=None, min_length=1, repr=False,
        description="HMAC-SHA256 key: each request carries X-Camfleet-Timestamp: <unix "
        "seconds> and, in signature_header, sha256=<hex HMAC of '<timestamp>.' + body>, so the "
        "receiver can check it came from this fleet, recently (see signature_scheme).",
    )
    signature_header: str = Field(
        default="X-Camfleet-Signature", pattern=_HEADER_NAME.pattern,
        description="Header that carries the signature (when secret is set).",
    )
    signature_scheme: Literal["timestamped", "body"] = Field(
        default="timestamped",
        description="timestamped: the HMAC covers '<X-Camfleet-Timestamp>.' + body, so a "
        "receiver that refuses old timestamps refuses replays. body: the HMAC covers the body "
        "only (what camfleet signed before; GitHub-style receivers); replayable, warned at "
        "start.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, repr=False,
        description="Extra request headers, e.g. Authorization: Bearer ${TOKEN}.",
    )
    timeout_s: float = Field(
        default=5.0, gt=0, le=120,
        description="Give up on one request after this long in all (connect, send and the "
        "whole answer, however slowly it comes); then retry.",
    )

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not an HTTP header name; use letters, digits "
                                 "and '-' (e.g. Authorization, X-Api-Key)")
            if _LINE_BREAK.search(value):
                raise ValueError(f"the value of {name} holds a line break or NUL; give it on "
                                 "one line")
        return headers

    @model_validator(mode="after")
    def _url_when_enabled(self) -> WebhookSinkConfig:
        if not self.enabled and not self.url:
            return self
        problem = _url_problem(self.url)
        if problem:
            raise ValueError(f"url: {problem}")
        return self


def _url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, or None."""
    parts = urlsplit(url)
    shown = repr(redact_url(url)) if url else "none"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return (f"expected an http:// or https:// URL with a host, found {shown}; set url "
                "(e.g. https://hooks.example/camfleet) or enabled: false")
    try:
        port = parts.port  # urlsplit checks the port only when it is read
    except ValueError:
        port = 0
    if port == 0:
        return f"{shown} has a port that is not a number from 1 to 65535; fix the port"
    return None


class MqttTlsConfig(StrictModel):
    """TLS to the MQTT broker. Files are PEM, read when each camera's sink starts, on the node
    it runs on: a path missing there stops the camera with an error that names the field."""

    enabled: bool = Field(default=False, description="Connect with TLS (port: often 8883).")
    ca_file: str | None = Field(
        default=None, min_length=1,
        description="CA certificate(s) that signed the broker's certificate (a private CA); "
        "none: the system's CAs.",
    )
    cert_file: str | None = Field(
        default=None, min_length=1,
        description="Client certificate, for a broker that wants one (require_certificate).",
    )
    key_file: str | None = Field(
        default=None, min_length=1,
        description="The client certificate's private key; none: it is in cert_file.",
    )
    check_hostname: bool = Field(
        default=True,
        description="Check that the broker's certificate names host. false only for a broker "
        "reached by an address its certificate does not name; the chain is still checked.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MqttTlsConfig:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file: a key without cert_file; set cert_file (the client "
                             "certificate) too")
        if not self.enabled:
            given = [name for name in ("ca_file", "cert_file", "key_file")
                     if getattr(self, name) is not None]
            given += [] if self.check_hostname else ["check_hostname"]
            if given:
                raise ValueError(f"{given[0]}: set while enabled is false; set enabled: true "
                                 "(or drop it)")
        return self


class MqttSinkConfig(PushSinkSettings):
    """Publish each object event as JSON to an MQTT broker, and the camera's state, retained."""

    enabled: bool = Field(
        default=False,
        description="Publish events to <topic_prefix>/<fleet>/<camera>/events and the camera "
        "state (up, down, stopped) retained to <topic_prefix>/<fleet>/<camera>/state.",
    )
    host: str = Field(default="localhost", min_length=1, description="Broker host name or IP.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port (TLS: often 8883).")
    username: str | None = Field(
        default=None, min_length=1, repr=False, description="User name, if the broker wants one."
    )
    password: str | None = Field(
        default=None, repr=False, description="Password; put it in ${ENV} or ${file:...}."
    )
    tls: MqttTlsConfig = Field(
        default_factory=MqttTlsConfig,
        description="TLS to the broker (true: on, checked against the system's CAs). Without "
        "it the password goes in clear, which is warned at start.",
    )
    topic_prefix: str = Field(
        default="camfleet", min_length=1, max_length=200,
        description="First levels of every topic (no wildcards, no leading or trailing '/').",
    )
    qos: Literal[0, 1, 2] = Field(
        default=1,
        description="Delivery of events: 0 at most once (counted sent when written), 1 at least "
        "once (sent when the broker acknowledges; may duplicate), 2 exactly once.",
    )
    keepalive_s: int = Field(
        default=30, ge=5, le=3600,
        description="Ping period; the broker publishes the state 'down' (the last will) after "
        "1.5 x this without a word from a camera.",
    )

    @field_validator("tls", mode="before")
    @classmethod
    def _tls_shorthand(cls, value: Any) -> Any:
        """``tls: true`` (the form before ca_file and client certificates): TLS on."""
        return {"enabled": value} if isinstance(value, bool) else value

    @field_validator("topic_prefix")
    @classmethod
    def _plain_topic(cls, prefix: str) -> str:
        if re.search(r"[#+\x00]", prefix) or prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"{prefix!r} is not a topic prefix; drop wildcards (#, +) and "
                             "leading or trailing '/' (e.g. camfleet or site-1/camfleet)")
        return prefix

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttSinkConfig:
        if self.password is not None and self.username is None:
            raise ValueError("username: a password is set without a username; set username too")
        return self
