"""A whole ``camfleet run`` pushing its object events to a real MQTT broker (Debian's mosquitto)
and a real HTTP webhook receiver: the same events arrive at both as are in events.jsonl, signed,
with the camera's state retained on MQTT, and the secrets nowhere."""

from __future__ import annotations

import json
import os
import subprocess
import threading

import paho.mqtt.client as paho
import pytest

from tests.helpers import camfleet, check_run_folder, wait_until
from tests.servers import push as servers

http_receiver = servers.http_receiver  # fixtures
mosquitto = servers.mosquitto

pytestmark = pytest.mark.timeout(240)
SECRET, PASSWORD = "hook-s3cret-value", "mqtt-pw-value"

FLEET = """
name: pushed
metrics: {{enabled: false}}
cameras:
  - id: yard
    source:
      type: synthetic
      width: 640
      height: 480
      fps: 10
      frames: 80
      objects: 0
      paths:
        - {{start: [0.1, 0.3], end: [0.9, 0.3], start_s: 0.5, end_s: 6}}
        - {{start: [0.1, 0.7], end: [0.9, 0.7], start_s: 1, end_s: 7}}
    fps: 10
    detect_width: null
    detect: [people]
    zones: [{{name: left, polygon: [[0, 0], [0.3, 0], [0.3, 1], [0, 1]]}}]
detectors:
  people: {{type: blobs, label: person, actors: 1, num_cpus: 0.25}}
sinks:
  webhook: {{enabled: true, url: "{url}", secret: "${{HOOK_SECRET}}"}}
  mqtt: {{enabled: true, host: "{host}", port: {port}, qos: 1, username: cam,
          password: "${{MQTT_PASSWORD}}"}}
"""


class Subscriber:
    """Everything published under camfleet/pushed/#, in order."""

    def __init__(self, host: str, port: int):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="test-sub")
        self.client.on_connect = lambda c, *_: c.subscribe("camfleet/pushed/#", qos=1)
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._message
        self.client.connect(host, port)
        self.client.loop_start()

    def _message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload, message.retain))

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/events")]

    def states(self) -> list[str]:
        with self.lock:
            return [p.decode() for t, p, _ in self.messages if t.endswith("/state")]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_run_pushes_every_object_event_to_mqtt_and_the_webhook(
        tmp_path, http_receiver, mosquitto):
    host, port = mosquitto
    subscriber = Subscriber(host, port)
    assert subscriber.ready.wait(10)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET.format(url=http_receiver.url, host=host, port=port))
    env = {**os.environ, "HOOK_SECRET": SECRET, "MQTT_PASSWORD": PASSWORD}
    run = subprocess.run(camfleet("run", str(fleet), "--run-dir", str(tmp_path / "run"),
                                  "--num-cpus", "2", "--object-store-mb", "200"),
                         capture_output=True, text=True, env=env, timeout=180, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    check_run_folder(tmp_path / "run", secret=SECRET)
    written = [json.loads(line) for line in
               (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert {e["event"] for e in written} >= {"start", "enter", "leave", "end"}
    key = [(e["track"], e["event"], e["frame"], e["zone"]) for e in written]
    # then the webhook got every event, in order, each signed with the secret and a timestamp
    assert [(e["track"], e["event"], e["frame"], e["zone"])
            for e in map(json.loads, http_receiver.bodies)] == key
    for headers, body in http_receiver.received:
        assert servers.signature_problem(SECRET, headers, body) is None
    # and MQTT got every event (qos 1: at least once, in order) and the camera's states
    wait_until(lambda: len(subscriber.events()) >= len(written), 10, "the MQTT events")
    subscriber.close()
    got = [(e["track"], e["event"], e["frame"], e["zone"]) for e in subscriber.events()]
    assert list(dict.fromkeys(got)) == key
    states = subscriber.states()
    assert "up" in states and states[-1] in ("ended", "stopped")
    # and neither secret is in what the run printed
    for secret in (SECRET, PASSWORD):
        assert secret not in run.stdout + run.stderr
