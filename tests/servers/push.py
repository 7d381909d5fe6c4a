"""Real receivers for the push sinks: an HTTP webhook receiver and a mosquitto broker.

A test module opts in by naming the fixtures (an assignment, which ruff does not take for an
unused import that the test's argument then redefines)::

    from tests.servers import push as servers

    http_receiver, mosquitto = servers.http_receiver, servers.mosquitto

``http_receiver`` yields a started :class:`HttpReceiver` (in-process, on 127.0.0.1).
``mosquitto`` yields ``(host, port)`` of a broker started for the test; ``serving_mosquitto``
is the same as a context manager yielding a :class:`Broker`, which a test can SIGKILL and start
again on the same port. The broker is Debian's ``mosquitto`` (scripts/apt-packages.txt); the
fixtures skip, naming the package, when it is not installed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until

MOSQUITTO = Path("/usr/sbin/mosquitto")


# ------------------------------------------------------------------------------------------ HTTP
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver offers
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner.opened(self.connection)

    def finish(self) -> None:
        self.server.owner.closed(self.connection)
        super().finish()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status = self.server.owner.answer(self.headers, body)
        if status is None:  # stopped while this request was read: no answer, like a crash
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    owner: HttpReceiver


class HttpReceiver:
    """A webhook receiver on 127.0.0.1 that records every request it accepts.

    ``received`` holds ``(headers, body)`` of each request answered 2xx, in arrival order.
    ``answer_next`` scripts the status of the next requests (``fail_next(3)``: three 500s);
    those are counted in ``refused``, not recorded. ``stop`` takes it down (open connections
    too) and ``start`` brings it back on the same port. A request is recorded and answered
    under one lock that ``stop`` takes as well, so a request is either recorded and answered
    or neither: the client's retry is then never a duplicate the receiver caused.
    """

    def __init__(self, port: int | None = None, path: str = "/hook"):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.received: list[tuple[HTTPMessage, bytes]] = []
        self.refused: list[int] = []
        self._script: list[int] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None

    def start(self) -> HttpReceiver:
        server = _Server(("127.0.0.1", self.port), _Handler)  # SO_REUSEADDR: same port again
        server.owner = self
        with self._lock:
            self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"http-receiver-{self.port}", daemon=True).start()
        return self

    def stop(self) -> None:
        """Go away: stop listening and close every open connection."""
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            server.shutdown()
            server.server_close()
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def answer_next(self, statuses: Iterable[int]) -> None:
        with self._lock:
            self._script.extend(statuses)

    def fail_next(self, count: int, status: int = 500) -> None:
        self.answer_next([status] * count)

    @property
    def bodies(self) -> list[bytes]:
        with self._lock:
            return [body for _, body in self.received]

    # called by the handler threads
    def answer(self, headers: HTTPMessage, body: bytes) -> int | None:
        with self._lock:
            if self._server is None:
                return None
            status = self._script.pop(0) if self._script else 200
            if 200 <= status < 300:
                self.received.append((headers, body))
            else:
                self.refused.append(status)
            return status

    def opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A started :class:`HttpReceiver` on a free port; stopped after the test."""
    receiver = HttpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


# ------------------------------------------------------------------------------------- mosquitto
@dataclass
class Broker:
    """A mosquitto process started by a test, controlled by its PID."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    persistence_dir: Path | None = None
    _db_mtime: float = field(default=0.0, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def save(self, timeout_s: float = 5.0) -> None:
        """Write the persistence database now (SIGUSR1), as a broker does on its autosave."""
        assert self.persistence_dir is not None, "started without persistence_dir"
        db = self.persistence_dir / "mosquitto.db"
        before = db.stat().st_mtime_ns if db.exists() else 0
        os.kill(self.pid, signal.SIGUSR1)
        wait_until(lambda: db.exists() and db.stat().st_mtime_ns != before, timeout_s,
                   "mosquitto to write its persistence database")

    def pause(self) -> None:
        """Freeze: connections stay open, nothing is read or answered (SIGSTOP)."""
        os.kill(self.pid, signal.SIGSTOP)

    def kill(self) -> None:
        """Die at once, as a broker whose host loses power (no will sent, nothing saved)."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def start_mosquitto(folder: Path, port: int | None = None,
                    persistence_dir: Path | None = None, ready_timeout_s: float = 10.0) -> Broker:
    """Start ``mosquitto -c`` a config of our own on 127.0.0.1 and wait until it listens.

    ``persistence_dir``: keep sessions and retained messages there (written on ``save`` and at
    a clean stop, read at start), so a restarted broker knows the subscribers it had.
    """
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip(f"no MQTT broker at {MOSQUITTO}: install Debian's package mosquitto "
                    "(scripts/apt-packages.txt)")
    port = port or free_port()
    # Started by root, mosquitto would switch to the user "mosquitto", who cannot enter pytest's
    # private temporary folders: it stays the test's user instead.
    user = pwd.getpwuid(os.geteuid()).pw_name
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", f"user {user}"]
    if persistence_dir is None:
        lines.append("persistence false")
    else:
        persistence_dir.mkdir(parents=True, exist_ok=True)
        lines += ["persistence true", f"persistence_location {persistence_dir}/",
                  "autosave_interval 0"]
    config = folder / f"mosquitto-{port}.conf"
    config.write_text("\n".join(lines) + "\n")
    log_path = folder / f"mosquitto-{port}.log"
    with log_path.open("ab") as log:  # a file, not a pipe: the broker can never block on it
        process = subprocess.Popen([str(MOSQUITTO), "-c", str(config)], stdout=log, stderr=log)
    broker = Broker("127.0.0.1", port, process, log_path, persistence_dir)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if _listening(broker.host, port):
            return broker
        time.sleep(0.02)
    broker.kill()
    raise RuntimeError(f"mosquitto did not listen on {port} within {ready_timeout_s:g} s "
                       f"(exit code {process.returncode}): {broker.log()}")


@contextlib.contextmanager
def serving_mosquitto(port: int | None = None, persistence_dir: Path | None = None,
                      folder: Path | None = None) -> Iterator[Broker]:
    """A mosquitto broker on 127.0.0.1 (``port``: a free one) for the block; killed after.

    ``folder`` holds its config and log (a temporary folder when none is given).
    """
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mosquitto-")))
        broker = start_mosquitto(folder, port, persistence_dir)
        try:
            yield broker
        finally:
            broker.stop()


@pytest.fixture
def mosquitto() -> Iterator[tuple[str, int]]:
    """``(host, port)`` of a mosquitto broker started for the test, without persistence."""
    with serving_mosquitto() as broker:
        yield broker.host, broker.port


__all__ = ["MOSQUITTO", "Broker", "HttpReceiver", "http_receiver", "mosquitto",
           "serving_mosquitto", "start_mosquitto"]
