"""The push sinks against real receivers that fail as real ones do (no Ray): an HTTP receiver
that goes away and comes back, a mosquitto broker SIGKILLed and restarted, and a camera process
SIGKILLed under a broker that then shows its last will."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as paho

from fleet.config._push import MqttSinkConfig, WebhookSinkConfig
from fleet.sinks.push import MqttSink, WebhookSink
from tests.conftest import REPO
from tests.helpers import wait_until
from tests.servers import push as servers
from tests.servers.push import serving_mosquitto

http_receiver, mosquitto = servers.http_receiver, servers.mosquitto

PREFIX = "camfleet/yard/gate"
EVENTS, STATE = f"{PREFIX}/events", f"{PREFIX}/state"


def event(seq: int) -> dict[str, Any]:
    return {"event": "update", "camera": "gate", "track": seq % 5, "seq": seq}


# ------------------------------------------------------------------------------------------ HTTP
def test_a_webhook_receiver_that_goes_away_and_comes_back_gets_every_event_once_in_order(
        http_receiver):
    config = WebhookSinkConfig(enabled=True, url=http_receiver.url, queue_size=500, timeout_s=2,
                               initial_backoff_s=0.05, max_backoff_s=0.3)
    sink = WebhookSink(config, "yard", "gate")
    during_outage = None
    for seq in range(300):
        if seq == 50:
            http_receiver.fail_next(5)  # 500s: retried
        if seq == 100:
            http_receiver.stop()  # keep-alive connection and all
        if seq == 200:
            during_outage = sink.stats()
            http_receiver.start()  # the same port
        sink.publish(event(seq))
        time.sleep(0.01)
    final = sink.close(timeout_s=10)

    got = [json.loads(body)["seq"] for body in http_receiver.bodies]
    missing = sorted(set(range(300)) - set(got))
    assert got == list(range(300)), f"missing {missing[:10]}, {len(got) - len(set(got))} dupes"
    assert http_receiver.refused == [500] * 5
    assert during_outage is not None and during_outage.queued >= 90  # held, not lost
    assert "Connection refused" in during_outage.last_error
    assert (final.published, final.sent, final.queued) == (300, 300, 0)
    assert final.retries > 5 and final.accounted


# ------------------------------------------------------------------------------------------ MQTT
class Subscriber:
    """A paho client with a persistent session that subscribes in on_connect, so again after
    every reconnect; it records (topic, payload, retain) of each message."""

    def __init__(self, host: str, port: int, topics: Iterable[str], clean: bool = False):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self._topics = [(topic, 1) for topic in topics]
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311,
                                  client_id=f"test-subscriber-{uuid.uuid4().hex[:8]}",
                                  clean_session=clean)
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.messages.append(
            (m.topic, m.payload, bool(m.retain)))
        self.client.connect_async(host, port, keepalive=5)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe(self._topics)

    def seqs(self) -> set[int]:
        return {json.loads(payload)["seq"] for topic, payload, _ in list(self.messages)
                if topic == EVENTS}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(host: str, port: int, topic: str, timeout_s: float = 2.0) -> tuple[str, bool] | None:
    """The retained message of ``topic`` as a new subscriber gets it: (payload, retain flag)."""
    reader = Subscriber(host, port, [topic], clean=True)
    try:
        wait_until(reader.subscribed.is_set, timeout_s, f"a subscription to {topic}")
        deadline = time.monotonic() + 0.5  # a retained message comes right after the SUBACK
        while not reader.messages and time.monotonic() < deadline:
            time.sleep(0.01)
        return (reader.messages[0][1].decode(), reader.messages[0][2]) if reader.messages else None
    finally:
        reader.close()


def mqtt_config(port: int, **fields: Any) -> MqttSinkConfig:
    return MqttSinkConfig(**{"enabled": True, "host": "127.0.0.1", "port": port, "qos": 1,
                             "keepalive_s": 5, "initial_backoff_s": 0.1, "max_backoff_s": 0.5,
                             **fields})


def test_mqtt_events_survive_a_broker_killed_and_restarted_and_the_state_is_retained(tmp_path):
    db = tmp_path / "db"
    with serving_mosquitto(persistence_dir=db, folder=tmp_path) as broker:
        port = broker.port
        subscriber = Subscriber(broker.host, port, [EVENTS])
        wait_until(subscriber.subscribed.is_set, 5, "the subscriber's SUBACK")
        # The subscriber's session survives the SIGKILL: the restarted broker queues events
        # for it until it is back, however the two reconnects race.
        broker.save()
        sink = MqttSink(mqtt_config(port), "yard", "gate")
        sink.set_state("up")
        for seq in range(20):
            sink.publish(event(seq))
        wait_until(lambda: subscriber.seqs() == set(range(20)), 10, "the first events")
        assert json.loads(subscriber.messages[0][1]) == event(0)  # JSON, on the events topic
        assert retained(broker.host, port, STATE) == ("up", True)
        wait_until(lambda: sink.stats().sent == 20, 5, "the broker's acknowledgements")
        # Frozen first, so that events are written to a broker that never acknowledges them
        # and then dies with them unread: only the sink's retry can bring them through.
        broker.pause()
        for seq in range(20, 60):
            sink.publish(event(seq))
            time.sleep(0.01)
        broker.kill()
        outage = sink.stats()
        assert outage.queued == 40 and outage.sent == 20, outage

    with serving_mosquitto(port=port, persistence_dir=db, folder=tmp_path) as broker:
        for seq in range(60, 80):
            sink.publish(event(seq))
        wait_until(lambda: sink.stats().sent == 80, 15, lambda: f"all sent: {sink.stats()}")
        wait_until(lambda: subscriber.seqs() == set(range(80)), 10,
                   lambda: f"every event; missing {sorted(set(range(80)) - subscriber.seqs())}")
        # The saved session held no retained state: "up" is there because the sink said it
        # again on reconnecting.
        assert retained(broker.host, port, STATE) == ("up", True)
        final = sink.close(timeout_s=5)
        assert (final.published, final.sent, final.queued) == (80, 80, 0) and final.accounted
        assert final.retries > 0
        assert retained(broker.host, port, STATE) == ("stopped", True)
        subscriber.close()


def test_mqtt_over_tls_with_a_private_ca_and_a_client_certificate(tmp_path):
    files = servers.make_tls_files(tmp_path)
    with serving_mosquitto(folder=tmp_path, tls=files) as broker:
        tls = {"enabled": True, "ca_file": str(files.ca), "cert_file": str(files.client_cert),
               "key_file": str(files.client_key)}
        sink = MqttSink(mqtt_config(broker.port, tls=tls), "yard", "gate")
        sink.publish(event(0))
        wait_until(lambda: sink.stats().sent == 1, 10, lambda: f"{sink.stats()} {broker.log()}")
        assert sink.close(timeout_s=2).accounted
        # The same broker refuses a client that shows no certificate, and one that does not
        # know its CA: what the sink sent above is what let it in.
        for refused in ({"enabled": True, "ca_file": str(files.ca)}, {"enabled": True}):
            sink = MqttSink(mqtt_config(broker.port, tls=refused), "yard", "gate")
            sink.publish(event(1))
            time.sleep(1.0)
            final = sink.close(timeout_s=0.5)
            assert final.sent == 0 and "not connected" in final.last_error, (refused, final)


CHILD = """
import sys, time
from fleet.config._push import MqttSinkConfig
from fleet.sinks.push import MqttSink
config = MqttSinkConfig(enabled=True, host=sys.argv[1], port=int(sys.argv[2]), keepalive_s=5)
sink = MqttSink(config, "yard", "gate")
sink.set_state("up")
sink.publish({"event": "start", "seq": 0})
while sink.stats().sent < 1:  # the state went first, on the same connection
    time.sleep(0.02)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_camera_process_killed_with_sigkill_shows_down_through_its_last_will(mosquitto):
    host, port = mosquitto
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), host, str(port)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=15), "the child never connected"
            assert child.stdout.readline().strip() == "ready"
        assert retained(host, port, STATE) == ("up", True)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        wait_until(lambda: retained(host, port, STATE) == ("down", True), 10,
                   "the broker to publish the last will")
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
