"""/metrics under hostile clients: bounded threads, a total deadline per connection, and the
series of removed cameras gone. A real server on a real socket; no Ray."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest

from fleet.control import metrics
from fleet.control.metrics import FleetMetrics
from fleet.frames import CameraStats


@pytest.fixture
def served(monkeypatch):
    monkeypatch.setattr(metrics, "REQUEST_DEADLINE_S", 1.0)
    owner = FleetMetrics("hostile")
    url = owner.serve("127.0.0.1", 0)
    yield owner, url
    owner.close()


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        return answer.read().decode()


def half_sent(url: str) -> socket.socket:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /metr")  # and never the rest
    return sock


def test_a_scrape_gets_the_fleets_metrics(served):
    _, url = served
    assert 'camfleet_fleet_info{fleet="hostile"} 1.0' in scrape(url)


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_hundred_half_sent_requests_hold_a_few_threads_for_a_few_seconds(served):
    owner, url = served
    before = threading.active_count()
    # when 100 clients open a request and never finish it
    socks = [half_sent(url) for _ in range(100)]
    time.sleep(0.3)
    # then the server runs at most MAX_CONNECTIONS handler threads: the rest are closed at once
    assert threading.active_count() - before <= metrics.MAX_CONNECTIONS
    assert owner.server.refused > 0
    # and within the deadline every one of them is closed (refused, or cut at its deadline)
    deadline = time.monotonic() + 4 * metrics.REQUEST_DEADLINE_S + 2
    open_socks = list(socks)
    while open_socks and time.monotonic() < deadline:
        open_socks = [sock for sock in open_socks if not closed_by_server(sock)]
    assert not open_socks
    # and a scrape is served again
    assert "camfleet_fleet_info" in scrape(url)
    for sock in socks:
        sock.close()


def test_a_client_that_drips_its_request_is_cut_at_the_deadline(served):
    _, url = served
    sock = half_sent(url)
    started, closed = time.monotonic(), False
    while time.monotonic() - started < 4:
        try:
            sock.sendall(b"x")  # one byte every 0.2 s: never a whole request line
            sock.settimeout(0.2)
            if sock.recv(1024) == b"":
                closed = True
                break
        except TimeoutError:
            continue
        except OSError:
            closed = True
            break
    sock.close()
    assert closed and time.monotonic() - started < metrics.REQUEST_DEADLINE_S + 1.5


def test_a_removed_cameras_latency_series_are_dropped():
    owner = FleetMetrics("f")
    for camera in ("kept", "removed"):
        owner.observe_camera(CameraStats(camera, "up", 1, 1, 1, 0, 0, {}, 0, 0, 0, 0, 0, 0, {},
                                         latency_s=(0.02,)))
    owner.forget_cameras(["kept"])
    text = metrics.generate_latest(owner.registry).decode()
    assert 'camfleet_latency_seconds_count{camera="kept"}' in text
    assert 'camera="removed"' not in text
