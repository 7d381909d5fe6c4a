"""The push-sink registry and the config agree: every push sink's settings under ``sinks:`` have
an entry in ``PUSH_SINKS`` and every entry has its settings, and ``open_push_sinks`` opens
exactly the enabled ones, in the registry's order. No broker, no receiver: the factories are
replaced by recorders, but for one real webhook sink aimed at a port nothing listens on."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from fleet.config import SinksConfig
from fleet.config._push import PushSinkSettings
from fleet.sinks.base import PushSink
from fleet.sinks.push import PUSH_SINKS, open_push_sinks
from tests.helpers import free_port

# Settings that enable each kind and pass validation; a new kind needs a line here.
ENABLED: dict[str, dict[str, Any]] = {
    "webhook": {"enabled": True, "url": "http://127.0.0.1:9/hook"},
    "mqtt": {"enabled": True, "host": "127.0.0.1"},
}


def push_fields() -> dict[str, type]:
    """SinksConfig's fields whose settings are a push sink's."""
    return {name: field.annotation for name, field in SinksConfig.model_fields.items()
            if isinstance(field.annotation, type)
            and issubclass(field.annotation, PushSinkSettings)}


def test_every_push_sink_setting_has_a_registry_entry_and_every_entry_a_setting():
    fields = push_fields()
    assert set(fields) == set(PUSH_SINKS)
    for name, kind in PUSH_SINKS.items():
        assert kind.name == name
        assert fields[name] is kind.config
        assert kind.config.model_fields["enabled"].default is False  # off unless asked for
    assert set(ENABLED) == set(PUSH_SINKS)


class Opened:
    """Stands for a sink: what the factory was given."""

    def __init__(self, name: str, config: Any, fleet: str, camera: str):
        self.name, self.config, self.fleet, self.camera = name, config, fleet, camera


def recorder(name: str) -> Callable[[Any, str, str], Any]:
    return lambda config, fleet, camera: Opened(name, config, fleet, camera)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every factory replaced by one that records its call and starts nothing."""
    for name, kind in PUSH_SINKS.items():
        monkeypatch.setitem(PUSH_SINKS, name, dataclasses.replace(kind, open=recorder(name)))


@pytest.mark.usefixtures("recorded")
@pytest.mark.parametrize("enabled", [set(c) for n in range(len(ENABLED) + 1)
                                     for c in itertools.combinations(ENABLED, n)])
def test_open_push_sinks_opens_exactly_the_enabled_ones(enabled: set[str]):
    sinks = SinksConfig.model_validate({name: ENABLED[name] for name in enabled})
    opened: list[Any] = open_push_sinks(sinks, "fleet", "gate")
    assert [o.name for o in opened] == [name for name in PUSH_SINKS if name in enabled]
    for sink in opened:
        assert sink.config is getattr(sinks, sink.name)
        assert (sink.fleet, sink.camera) == ("fleet", "gate")


def test_a_real_webhook_sink_opens_without_a_receiver_and_closes_at_once():
    url = f"http://127.0.0.1:{free_port()}/hook"
    [sink] = open_push_sinks(SinksConfig.model_validate({"webhook": {"enabled": True,
                                                                     "url": url}}),
                             "fleet", "gate")
    assert isinstance(sink, PushSink) and sink.name == "webhook"
    stats = sink.close(timeout_s=0)
    assert stats.sink == "webhook" and stats.accounted and stats.published == 0
