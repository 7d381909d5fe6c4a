"""The push sinks' logic against a real local HTTP receiver (no Ray, no broker): every event is
accounted for, the queue is bounded and never blocks, requests are signed, secrets never leak,
and close() keeps to its timeout."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from fleet.backoff import Backoff as RetryBackoff
from fleet.config import SinksConfig
from fleet.config._push import MqttSinkConfig, MqttTlsConfig, WebhookSinkConfig
from fleet.errors import PushSettingError
from fleet.sinks.base import PushStats
from fleet.sinks.mqtt import MqttSink
from fleet.sinks.push import open_push_sinks
from fleet.sinks.webhook import WebhookSink
from tests.helpers import free_port, wait_until
from tests.servers import push as servers
from tests.servers.push import HttpReceiver

http_receiver = servers.http_receiver


def event(seq: int, kind: str = "start") -> dict[str, Any]:
    return {"event": kind, "camera": "gate", "track": seq % 7, "seq": seq}


def webhook(url: str, **fields: Any) -> WebhookSinkConfig:
    return WebhookSinkConfig(**{"enabled": True, "url": url, "initial_backoff_s": 0.01,
                                "max_backoff_s": 0.05, **fields})


def seqs(receiver: HttpReceiver) -> list[int]:
    return [json.loads(body)["seq"] for body in receiver.bodies]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


# -------------------------------------------------------------------------------- accounting
def test_every_event_is_accounted_for_at_every_moment_under_a_flaky_receiver(http_receiver):
    rng = random.Random(7)
    http_receiver.answer_next(rng.choice([200, 200, 500, 503, 429, 408]) for _ in range(150))
    sink = WebhookSink(webhook(http_receiver.url, max_backoff_s=0.02), "fleet", "gate")
    seen: list[PushStats] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(sink.stats())
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for seq in range(100):
            sink.publish(event(seq))
            if seq % 10 == 0:
                time.sleep(0.01)
        final = sink.close(timeout_s=20)
    finally:
        done.set()
        watcher.join()
    unbalanced = [s for s in seen if not s.accounted]
    assert len(seen) > 100 and not unbalanced, unbalanced[:3]
    assert (final.published, final.sent, final.queued) == (100, 100, 0), final
    assert sum(final.dropped.values()) == 0
    assert final.retries == len(http_receiver.refused) > 10  # one retry per refused request
    assert seqs(http_receiver) == list(range(100))  # in order, each once


def test_a_full_queue_drops_the_oldest_waiting_event_and_keeps_the_one_in_flight():
    receiver = HttpReceiver()  # not started: nothing listens on its port yet
    sink = WebhookSink(webhook(receiver.url, queue_size=5), "fleet", "gate")
    sink.publish(event(0))
    wait_until(lambda: sink.stats().retries >= 1, 5, "a first failed delivery")
    for seq in range(1, 12):
        sink.publish(event(seq))
    waiting = sink.stats()
    assert (waiting.published, waiting.queued, waiting.dropped["queue_full"]) == (12, 5, 7)
    assert waiting.accounted
    receiver.start()
    try:
        final = sink.close(timeout_s=10)
    finally:
        receiver.stop()
    assert seqs(receiver) == [0, 8, 9, 10, 11]
    assert (final.sent, final.queued, final.dropped["queue_full"]) == (5, 0, 7)
    assert final.accounted


def test_only_the_configured_event_types_are_sent_and_counted(http_receiver):
    sink = WebhookSink(webhook(http_receiver.url, events=["enter", "leave"]), "fleet", "gate")
    for seq, kind in enumerate(["start", "enter", "update", "leave", "loiter", "end"]):
        sink.publish(event(seq, kind))
    sink.publish({"camera": "gate", "seq": 99})  # no type at all
    final = sink.close(timeout_s=5)
    assert [json.loads(body)["event"] for body in http_receiver.bodies] == ["enter", "leave"]
    assert (final.published, final.sent) == (2, 2)


@pytest.mark.parametrize(
    ("status", "retried"),
    [(500, True), (502, True), (503, True), (408, True), (429, True),
     (400, False), (401, False), (404, False), (413, False), (301, False)],
)
def test_server_errors_are_retried_and_client_errors_dropped_as_rejected(
        http_receiver, status, retried):
    http_receiver.fail_next(1, status)
    sink = WebhookSink(webhook(http_receiver.url), "fleet", "gate")
    sink.publish(event(0))
    sink.publish(event(1))
    final = sink.close(timeout_s=5)
    if retried:
        assert seqs(http_receiver) == [0, 1]
        assert (final.sent, final.retries, final.dropped["rejected"]) == (2, 1, 0)
    else:
        assert seqs(http_receiver) == [1]
        assert (final.sent, final.retries, final.dropped["rejected"]) == (1, 0, 1)
        assert str(status) in final.last_error
    assert final.accounted


def test_an_event_that_is_not_json_is_rejected_without_raising(http_receiver):
    sink = WebhookSink(webhook(http_receiver.url), "fleet", "gate")
    looped = event(0)
    looped["self"] = looped
    sink.publish(looped)
    sink.publish(event(1) | {"when": object()})  # not JSON either, but has a str(): sent as one
    final = sink.close(timeout_s=5)
    assert (final.published, final.sent, final.dropped["rejected"]) == (2, 1, 1)
    assert "JSON" in final.last_error


# ------------------------------------------------------------------------------ what is sent
def signature(key: str, signed: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("header", [None, "X-Hub-Signature-256"])
def test_each_request_is_signed_with_hmac_sha256_over_its_timestamp_and_the_exact_body(
        http_receiver, header):
    key = "hmac-key-for-the-test"
    fields: dict[str, Any] = {"secret": key, "headers": {"X-Api-Key": "api-key-123"}}
    if header:
        fields["signature_header"] = header
    sink = WebhookSink(webhook(http_receiver.url, **fields), "fleet", "gate")
    sent = event(0) | {"zone": "Entrée nord"}
    before = int(time.time())
    sink.publish(sent)
    sink.close(timeout_s=5)
    [(headers, body)] = http_receiver.received
    timestamp = headers["X-Camfleet-Timestamp"]
    assert before <= int(timestamp) <= time.time()
    given = headers[header or "X-Camfleet-Signature"]
    assert hmac.compare_digest(given, signature(key, f"{timestamp}.".encode() + body))
    assert headers["Content-Type"] == "application/json" and headers["X-Api-Key"] == "api-key-123"
    assert json.loads(body) == sent
    assert given != signature(key, f"{timestamp}.".encode() + body.replace(b"nord", b"sud"))
    assert given != signature(key, f"{int(timestamp) + 1}.".encode() + body)  # time is signed


def test_a_verifying_receiver_takes_signed_events_and_refuses_a_replay_after_the_window():
    receiver = HttpReceiver(secret="shared-key").start()
    try:
        sink = WebhookSink(webhook(receiver.url, secret="shared-key"), "fleet", "gate")
        sink.publish(event(0))
        final = sink.close(timeout_s=5)
        assert (final.sent, receiver.forged) == (1, [])
        [(headers, body)] = receiver.received
        assert servers.signature_problem("shared-key", headers, body) is None
        captured = int(headers["X-Camfleet-Timestamp"])
        replayed = servers.signature_problem("shared-key", headers, body, now=captured + 301)
        assert replayed is not None and "300 s" in replayed
        assert servers.signature_problem("other-key", headers, body) == \
            "the signature does not match"
    finally:
        receiver.stop()


def test_the_body_only_scheme_is_kept_for_older_receivers_and_warned_about(
        http_receiver, caplog):
    config = webhook(http_receiver.url, secret="old-key", signature_scheme="body")
    sink = WebhookSink(config, "fleet", "gate")
    sink.publish(event(0))
    sink.close(timeout_s=5)
    [(headers, body)] = http_receiver.received
    assert hmac.compare_digest(headers["X-Camfleet-Signature"], signature("old-key", body))
    assert any("replayed" in record.getMessage() for record in caplog.records)


def test_without_a_secret_no_signature_is_sent(http_receiver):
    sink = WebhookSink(webhook(http_receiver.url), "fleet", "gate")
    sink.publish(event(0))
    sink.close(timeout_s=5)
    [(headers, _)] = http_receiver.received
    assert "X-Camfleet-Signature" not in headers


def test_a_password_in_the_url_is_sent_as_basic_auth(http_receiver):
    url = http_receiver.url.replace("http://", "http://hook-user:p%40ss@")
    sink = WebhookSink(webhook(url), "fleet", "gate")
    sink.publish(event(0))
    sink.close(timeout_s=5)
    [(headers, _)] = http_receiver.received
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"hook-user:p@ss").decode()


# ---------------------------------------------------------------------------------- secrets
def test_credentials_never_appear_in_stats_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    port = free_port()
    secrets = ["url-pass-1234", "query-tok-5678", "hmac-key-9012", "bearer-3456", "mqtt-pw-7890"]
    config = webhook(f"http://hook-user:url-pass-1234@127.0.0.1:{port}/hook?token=query-tok-5678",
                     secret="hmac-key-9012", headers={"Authorization": "Bearer bearer-3456"})
    mqtt_config = MqttSinkConfig(enabled=True, host="127.0.0.1", port=free_port(), username="u",
                                 password="mqtt-pw-7890", initial_backoff_s=0.05,
                                 max_backoff_s=0.1)
    sink = WebhookSink(config, "fleet", "gate")
    mqtt = MqttSink(mqtt_config, "fleet", "gate")
    for one in (sink, mqtt):
        one.publish(event(0))
    wait_until(lambda: sink.stats().retries >= 2 and mqtt.stats().retries >= 1, 10,
               "failed deliveries to nothing")
    refused = sink.stats()
    receiver = HttpReceiver(port=port).start()  # now it answers: 401, not retried
    receiver.fail_next(1, 401)
    try:
        wait_until(lambda: sink.stats().dropped["rejected"] == 1, 5, "the 401")
    finally:
        receiver.stop()
    shown = [repr(config), str(config), repr(mqtt_config), repr(refused), repr(sink.stats()),
             repr(mqtt.close(timeout_s=0.5)), repr(sink.close(timeout_s=0.5)),
             *(record.getMessage() for record in caplog.records)]
    assert "127.0.0.1" in refused.last_error and "401" in sink.stats().last_error
    leaks = [(secret, text) for secret in secrets for text in shown if secret in text]
    assert not leaks
    assert any("fleet.sinks.push" == record.name for record in caplog.records)


# ---------------------------------------------------------------------------- bad receivers
def worker_threads(camera: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"push-webhook-{camera}" and t.is_alive()]


def test_a_receiver_that_drips_its_answer_fails_the_attempt_within_timeout_s_and_close_ends_it():
    with servers.serving_bad_receiver("drip", interval_s=0.5) as receiver:
        sink = WebhookSink(webhook(receiver.url, timeout_s=1.0, initial_backoff_s=0.05,
                                   max_backoff_s=0.1), "fleet", "dripped")
        started = time.monotonic()
        sink.publish(event(0))
        wait_until(lambda: sink.stats().retries >= 1, 3,
                   lambda: f"a failed attempt; {receiver.sent} bytes dripped so far")
        assert time.monotonic() - started < 1.6  # timeout_s in all, not per byte
        assert "TimeoutError" in sink.stats().last_error
        wait_until(lambda: sink.stats().retries >= 2 and receiver.requests >= 3, 5,
                   "the retry, with backoff, on a fresh connection")
        started = time.monotonic()
        final = sink.close(timeout_s=0.5)  # a request is under way: cut short
        assert time.monotonic() - started < 0.8  # as close() without a request under way
        assert not worker_threads("dripped")
    assert (final.sent, final.queued, final.dropped["shutdown"]) == (0, 0, 1) and final.accounted


def vm_rss_bytes() -> int:
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_an_endless_answer_is_read_only_to_a_cap_and_its_connection_dropped():
    peak = [vm_rss_bytes()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak.append(max(peak[-1], vm_rss_bytes()))

    with servers.serving_bad_receiver("flood", flood_bytes=300_000_000) as receiver:
        sink = WebhookSink(webhook(receiver.url, timeout_s=10), "fleet", "flooded")
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            baseline = vm_rss_bytes()
            sink.publish(event(0))
            sink.publish(event(1))
            final = sink.close(timeout_s=10)
        finally:
            done.set()
            sampler.join()
    assert max(peak) - baseline < 20 * 2**20, f"RSS grew {(max(peak) - baseline) / 2**20:.0f} MiB"
    assert max(receiver.sent) < 30_000_000, receiver.sent  # the cap plus socket buffers
    assert (final.sent, final.retries) == (2, 0)  # a 200 is a 200, however long its body
    assert receiver.requests == 2 and len(receiver.sent) == 2  # a fresh connection each


# -------------------------------------------------------------------------------- warnings
def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and text in r.getMessage()]


def test_credentials_or_signed_events_over_plain_http_to_another_host_are_warned_once(caplog):
    caplog.set_level(logging.WARNING)
    host = f"192.0.2.{random.randint(1, 254)}"  # TEST-NET: not this machine
    basic = webhook(f"http://hook-user:pw-in-url-77@{host}:9/a", timeout_s=0.1)
    signed = webhook(f"http://{host}:9/b", secret="key-in-clear-88", timeout_s=0.1)
    local = webhook("http://u:pw-local-99@127.0.0.1:9/c", secret="k", timeout_s=0.1)
    sinks = [WebhookSink(config, "fleet", camera) for config, camera in
             [(basic, "a1"), (basic, "a2"), (signed, "b"), (local, "c")]]
    for sink in sinks:
        sink.close(timeout_s=0)
    [credentials] = warnings_about(caplog, "basic-auth credentials in clear")  # once, not twice
    [replayable] = warnings_about(caplog, "signed with secret go in clear")
    assert host in credentials and "https://" in credentials and host in replayable
    assert not warnings_about(caplog, "127.0.0.1")
    shown = " ".join(r.getMessage() for r in caplog.records)
    assert not [s for s in ("pw-in-url-77", "key-in-clear-88", "pw-local-99") if s in shown]


def test_an_mqtt_password_without_tls_is_warned_and_not_shown(caplog, tmp_path):
    caplog.set_level(logging.WARNING)
    port = free_port()
    clear = MqttSinkConfig(enabled=True, host="127.0.0.1", port=port, username="cam",
                           password="mqtt-pw-4242")
    MqttSink(clear, "fleet", "gate").close(timeout_s=0)
    [warning] = warnings_about(caplog, "in clear")
    assert f"mqtt://127.0.0.1:{port}" in warning and "mqtt-pw-4242" not in warning
    caplog.clear()
    MqttSink(clear.model_copy(update={"port": free_port(), "tls": MqttTlsConfig(enabled=True)}),
             "fleet", "gate").close(timeout_s=0)
    assert not warnings_about(caplog, "in clear")


# ---------------------------------------------------------------------------------- MQTT TLS
def test_mqtt_tls_files_missing_on_the_node_stop_the_sink_with_the_field_named(tmp_path):
    tls = MqttTlsConfig(enabled=True, ca_file=str(tmp_path / "nowhere-ca.pem"))
    config = MqttSinkConfig(enabled=True, port=free_port(), tls=tls)
    with pytest.raises(PushSettingError) as caught:
        MqttSink(config, "fleet", "gate")
    assert caught.value.field == "sinks.mqtt.tls.ca_file"
    assert "nowhere-ca.pem is not a file" in str(caught.value)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    junk = MqttTlsConfig(enabled=True, cert_file=str(tmp_path / "junk.pem"))
    with pytest.raises(PushSettingError, match="sinks.mqtt.tls.cert_file: .*junk.pem"):
        MqttSink(config.model_copy(update={"tls": junk}), "fleet", "gate")


def test_mqtt_tls_accepts_the_old_boolean_and_refuses_settings_that_cannot_apply():
    assert MqttSinkConfig(tls=True).tls == MqttTlsConfig(enabled=True)
    assert MqttSinkConfig(tls=False).tls.enabled is False
    with pytest.raises(ValidationError, match="key_file: a key without cert_file"):
        MqttTlsConfig(enabled=True, key_file="k.pem")
    with pytest.raises(ValidationError, match="ca_file: set while enabled is false"):
        MqttSinkConfig(tls={"ca_file": "ca.pem"})


# ---------------------------------------------------------------------------------- shutdown
@pytest.mark.parametrize("receiver", ["refused", "silent"])
def test_close_keeps_to_its_timeout_and_counts_what_is_left(receiver, silent_port):
    port = free_port() if receiver == "refused" else silent_port
    sink = WebhookSink(webhook(f"http://127.0.0.1:{port}/hook", timeout_s=5, queue_size=100),
                       "fleet", "gate")
    started = time.monotonic()
    for seq in range(50):
        sink.publish(event(seq))
    assert time.monotonic() - started < 0.2  # publish never waits for the receiver
    started = time.monotonic()
    final = sink.close(timeout_s=0.5)
    assert time.monotonic() - started < 0.8
    assert (final.published, final.sent, final.queued, final.dropped["shutdown"]) == (50, 0, 0, 50)
    sink.publish(event(50))  # after close: counted, not queued
    after = sink.stats()
    assert (after.published, after.dropped["shutdown"]) == (51, 51) and after.accounted
    assert sink.close(timeout_s=0.5) == after  # a second close only reports


@pytest.mark.parametrize("broker", ["refused", "silent"])
def test_an_mqtt_sink_without_a_broker_neither_blocks_nor_raises_and_closes_in_time(
        broker, silent_port):
    port = free_port() if broker == "refused" else silent_port
    config = MqttSinkConfig(enabled=True, host="127.0.0.1", port=port, queue_size=3)
    started = time.monotonic()
    sink = MqttSink(config, "fleet", "gate")
    sink.set_state("up")
    for seq in range(5):
        sink.publish(event(seq))
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    final = sink.close(timeout_s=1.0)
    assert time.monotonic() - started < 1.3
    assert (final.published, final.sent, final.dropped["queue_full"], final.dropped["shutdown"]) \
        == (5, 0, 2, 3)
    assert "not connected" in final.last_error


def test_only_enabled_sinks_are_opened():
    assert open_push_sinks(SinksConfig(), "fleet", "gate") == []
    [only] = open_push_sinks(SinksConfig(webhook=webhook("http://127.0.0.1:9/x")), "fleet", "gate")
    assert only.name == "webhook"
    only.close(timeout_s=0)


# ------------------------------------------------------------------------------------ pieces
def test_backoff_doubles_to_its_cap_with_jitter_that_never_exceeds_it():
    backoff = RetryBackoff(0.5, 4.0)
    delays = [backoff.next_delay() for _ in range(8)]
    for delay, base in zip(delays, [0.5, 1, 2, 4, 4, 4, 4, 4], strict=True):
        assert base / 2 <= delay <= base
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 0.5


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        (WebhookSinkConfig, {"enabled": True}, "url: expected an http:// or https://"),
        (WebhookSinkConfig, {"enabled": True, "url": "ftp://u:pw-1234@h/x"}, "ftp://u:***@h/x"),
        (WebhookSinkConfig, {"url": "https:///no-host"}, "with a host"),
        (WebhookSinkConfig, {"headers": {"Bad Name": "x"}}, "not an HTTP header name"),
        (WebhookSinkConfig, {"headers": {"X-A": "a\r\nX-Injected: 1"}}, "line break"),
        (WebhookSinkConfig, {"events": []}, "at least 1"),
        (WebhookSinkConfig, {"events": ["exit"]}, "'start'"),
        (WebhookSinkConfig, {"queue_size": 0}, "greater than or equal to 1"),
        (WebhookSinkConfig, {"initial_backoff_s": 5, "max_backoff_s": 1}, "exceeds max_backoff_s"),
        (MqttSinkConfig, {"topic_prefix": "site/#"}, "wildcards"),
        (MqttSinkConfig, {"topic_prefix": "/camfleet"}, "leading or trailing"),
        (MqttSinkConfig, {"password": "pw"}, "without a username"),
        (MqttSinkConfig, {"qos": 3}, "Input should be 0, 1 or 2"),
        (MqttSinkConfig, {"port": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_push_settings_are_refused_with_a_message_that_says_what_to_do(model, fields,
                                                                           message):
    with pytest.raises(ValidationError) as caught:
        model(**fields)
    assert message in str(caught.value)
    assert "pw-1234" not in "; ".join(e["msg"] for e in caught.value.errors())


def test_secrets_are_left_out_of_the_configs_repr():
    webhook_config = webhook("https://u:pw-1@h/x", secret="key-2", headers={"A": "tok-3"})
    mqtt_config = MqttSinkConfig(username="user-4", password="pw-5")
    shown = repr(webhook_config) + repr(mqtt_config)
    assert not [s for s in ("pw-1", "key-2", "tok-3", "user-4", "pw-5") if s in shown]
