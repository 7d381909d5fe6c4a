"""The push sinks by name: the registry :func:`open_push_sinks` opens a camera's push sinks from.

A push sink gets object events as they happen and delivers them to another system (webhook:
HTTP POST; MQTT). Each one is a :class:`fleet.sinks.base.PushSink`: ``publish`` only queues, and
a worker thread of its own delivers, so no receiver ever holds the camera back. A kind is keyed
by the name of its settings under ``sinks:`` in the fleet file (an attribute of
:class:`fleet.config.SinksConfig`), which is also the ``sink`` of its stats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleet.config import SinksConfig
from fleet.config._push import MqttSinkConfig, PushSinkSettings, WebhookSinkConfig
from fleet.sinks.base import PushSink
from fleet.sinks.mqtt import MqttSink
from fleet.sinks.webhook import WebhookSink

# The sink classes are here as the registry's members; tests/integration imports them from here.
__all__ = ["PUSH_SINKS", "MqttSink", "PushSink", "PushSinkKind", "WebhookSink", "open_push_sinks"]


@dataclass(frozen=True)
class PushSinkKind:
    """What the core needs to know of one kind of push sink."""

    name: str  # its settings' attribute of SinksConfig (sinks.<name>), and its stats' sink
    config: type[PushSinkSettings]  # the model of those settings; they have `enabled`
    # (its settings, the fleet's name, the camera's id) -> the sink, its worker running. A
    # PushSink queues: publish never blocks on the receiver, whatever the kind.
    open: Callable[[Any, str, str], PushSink]


# In the order the sinks get each event and their stats are listed.
PUSH_SINKS: dict[str, PushSinkKind] = {kind.name: kind for kind in (
    PushSinkKind("webhook", WebhookSinkConfig, WebhookSink),
    PushSinkKind("mqtt", MqttSinkConfig, MqttSink),
)}


def open_push_sinks(sinks: SinksConfig, fleet: str, camera: str) -> list[PushSink]:
    """The enabled push sinks of one camera, each with its worker thread running."""
    opened: list[PushSink] = []
    for kind in PUSH_SINKS.values():
        config = getattr(sinks, kind.name)
        if config.enabled:
            opened.append(kind.open(config, fleet, camera))
    return opened
