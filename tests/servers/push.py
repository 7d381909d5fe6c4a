"""Real receivers for the push sinks: an HTTP webhook receiver and a mosquitto broker.

A test module opts in by naming the fixtures (an assignment, which ruff does not take for an
unused import that the test's argument then redefines)::

    from tests.servers import push as servers

    http_receiver, mosquitto = servers.http_receiver, servers.mosquitto

``http_receiver`` yields a started :class:`HttpReceiver` (in-process, on 127.0.0.1); given a
``secret`` it checks each request's signature as a receiver should (:func:`signature_problem`).
:class:`BadReceiver` is one that misbehaves on the wire: it drips its answer a byte at a time,
or streams an endless body. ``make_tls_files`` writes a CA, a server and a client certificate
(with ``openssl``) for ``start_mosquitto(..., tls=...)``.
``mosquitto`` yields ``(host, port)`` of a broker started for the test; ``serving_mosquitto``
is the same as a context manager yielding a :class:`Broker`, which a test can SIGKILL and start
again on the same port. The broker is Debian's ``mosquitto`` (scripts/apt-packages.txt); the
fixtures skip, naming the package, when it is not installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
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


def signature_problem(secret: str, headers: HTTPMessage, body: bytes, now: float | None = None,
                      tolerance_s: float = 300.0) -> str | None:
    """What is wrong with a signed webhook request, or None: the check a receiver makes.

    The signature is ``sha256=`` + hex HMAC-SHA256 of ``"<X-Camfleet-Timestamp>."`` + the raw
    body, under the shared secret; a timestamp more than ``tolerance_s`` from now is refused, so
    a captured request cannot be replayed later.
    """
    timestamp = headers.get("X-Camfleet-Timestamp", "")
    if not timestamp.isdigit():
        return f"no X-Camfleet-Timestamp (got {timestamp!r})"
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance_s:
        return f"timestamp {timestamp} is more than {tolerance_s:g} s from now ({now:.0f})"
    signed = f"{timestamp}.".encode() + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(headers.get("X-Camfleet-Signature", ""), expected):
        return "the signature does not match"
    return None


class HttpReceiver:
    """A webhook receiver on 127.0.0.1 that records every request it accepts.

    ``received`` holds ``(headers, body)`` of each request answered 2xx, in arrival order.
    ``answer_next`` scripts the status of the next requests (``fail_next(3)``: three 500s);
    those are counted in ``refused``, not recorded. ``stop`` takes it down (open connections
    too) and ``start`` brings it back on the same port. A request is recorded and answered
    under one lock that ``stop`` takes as well, so a request is either recorded and answered
    or neither: the client's retry is then never a duplicate the receiver caused.

    With a ``secret`` it answers 401 to a request whose signature or timestamp fails
    :func:`signature_problem`, and keeps the reason in ``forged``.
    """

    def __init__(self, port: int | None = None, path: str = "/hook",
                 secret: str | None = None):
        self.secret = secret
        self.forged: list[str] = []
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
            problem = signature_problem(self.secret, headers, body) if self.secret else None
            if problem:
                self.forged.append(problem)
                self.refused.append(401)
                return 401
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


class BadReceiver:
    """A webhook receiver on 127.0.0.1 that reads each request whole, then misbehaves.

    ``drip``: sends a valid 200 answer one byte every ``interval_s``, so that no single read
    waits long, the whole answer very long. ``flood``: sends a 200 whose body says it is
    ``flood_bytes`` long and streams it as fast as the client takes it. ``requests`` counts
    the requests read, ``sent`` the bytes each connection got out before the client let go.
    """

    DRIP_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: " + b"x" * 40 + b"\r\n\r\n"

    def __init__(self, mode: str, interval_s: float = 0.5, flood_bytes: int = 300_000_000):
        self.mode, self.interval_s, self.flood_bytes = mode, interval_s, flood_bytes
        self.requests = 0
        self.sent: list[int] = []  # per connection
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="bad-receiver").start()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
                self.sent.append(0)
                index = len(self.sent) - 1
            threading.Thread(target=self._serve, args=(connection, index), daemon=True).start()

    def _serve(self, connection: socket.socket, index: int) -> None:
        with contextlib.suppress(OSError):
            while not self._stop.is_set() and self._read_request(connection):
                with self._lock:
                    self.requests += 1
                if self.mode == "drip":
                    for offset in range(len(self.DRIP_ANSWER)):
                        connection.sendall(self.DRIP_ANSWER[offset:offset + 1])
                        self._count(index, 1)
                        if self._stop.wait(self.interval_s):
                            return
                else:
                    self._flood(connection, index)
                    return

    def _flood(self, connection: socket.socket, index: int) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {self.flood_bytes}\r\n\r\n".encode()
        connection.sendall(head)
        chunk = memoryview(bytes(1 << 20))
        left = self.flood_bytes
        while left > 0 and not self._stop.is_set():
            sent = connection.send(chunk[:min(left, len(chunk))])  # OSError once the client goes
            left -= sent
            self._count(index, sent)

    def _count(self, index: int, sent: int) -> None:
        with self._lock:
            self.sent[index] += sent

    @staticmethod
    def _read_request(connection: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            more = connection.recv(65536)
            if not more:
                return False
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            more = connection.recv(65536)
            if not more:
                return False
            body += more
        return True


@contextlib.contextmanager
def serving_bad_receiver(mode: str, interval_s: float = 0.5,
                         flood_bytes: int = 300_000_000) -> Iterator[BadReceiver]:
    """A :class:`BadReceiver` for the block; closed after, its connections too."""
    receiver = BadReceiver(mode, interval_s, flood_bytes)
    try:
        yield receiver
    finally:
        receiver.close()


# ------------------------------------------------------------------------------------------- TLS
@dataclass(frozen=True)
class TlsFiles:
    """PEM files: a CA, a server certificate for 127.0.0.1 and localhost, a client one."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(folder: Path) -> TlsFiles:
    """A throwaway CA and two certificates it signed, made with the ``openssl`` command."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                            ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=test-{name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")
        (folder / f"{name}.ext").write_text(extension + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key",
                    folder / "client.pem", folder / "client.key")


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
                    persistence_dir: Path | None = None, ready_timeout_s: float = 10.0,
                    tls: TlsFiles | None = None) -> Broker:
    """Start ``mosquitto -c`` a config of our own on 127.0.0.1 and wait until it listens.

    ``persistence_dir``: keep sessions and retained messages there (written on ``save`` and at
    a clean stop, read at start), so a restarted broker knows the subscribers it had.
    ``tls``: listen with TLS only, and require a client certificate signed by its CA.
    """
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip(f"no MQTT broker at {MOSQUITTO}: install Debian's package mosquitto "
                    "(scripts/apt-packages.txt)")
    port = port or free_port()
    # Started by root, mosquitto would switch to the user "mosquitto", who cannot enter pytest's
    # private temporary folders: it stays the test's user instead.
    user = pwd.getpwuid(os.geteuid()).pw_name
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", f"user {user}"]
    if tls is not None:
        lines += [f"cafile {tls.ca}", f"certfile {tls.server_cert}",
                  f"keyfile {tls.server_key}", "require_certificate true"]
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
                      folder: Path | None = None, tls: TlsFiles | None = None
                      ) -> Iterator[Broker]:
    """A mosquitto broker on 127.0.0.1 (``port``: a free one) for the block; killed after.

    ``folder`` holds its config and log (a temporary folder when none is given).
    """
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mosquitto-")))
        broker = start_mosquitto(folder, port, persistence_dir, tls=tls)
        try:
            yield broker
        finally:
            broker.stop()


@pytest.fixture
def mosquitto() -> Iterator[tuple[str, int]]:
    """``(host, port)`` of a mosquitto broker started for the test, without persistence."""
    with serving_mosquitto() as broker:
        yield broker.host, broker.port


__all__ = ["MOSQUITTO", "BadReceiver", "Broker", "HttpReceiver", "TlsFiles", "http_receiver",
           "make_tls_files", "mosquitto", "serving_bad_receiver", "serving_mosquitto",
           "signature_problem", "start_mosquitto"]
