"""Helpers shared by every kind of test: a free port, one way to wait, the CLI, run folders.

Fixtures and the footage paths are in ``tests/conftest.py``; the camera servers in
``tests/servers``.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just released by the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout_s: float,
               what: str | Callable[[], str] = "the condition", interval_s: float = 0.05) -> T:
    """Call ``predicate`` every ``interval_s`` until it returns something truthy, and return that.

    If ``timeout_s`` passes first the test fails, naming ``what`` (a callable is called then, so
    the message can hold the state at the time: a log tail, the last value seen). The predicate
    is always called once more at the deadline. Exceptions from the predicate propagate, so it
    can fail early by asserting (a server that has exited, say). The timeout is only a "does not
    hang" guard, never a measurement.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for "
                        f"{what() if callable(what) else what}")
        time.sleep(interval_s)


def camfleet(*args: str) -> list[str]:
    """The command line running ``camfleet ARGS`` with this venv's python."""
    return [sys.executable, "-m", "fleet", *args]


def check_run_folder(run_dir: Path, secret: str | None = None) -> dict:
    """A finished run's summary.json, checked: every frame accounted for, nothing in flight, one
    frame line per frame with detections (when the fleet writes them), every object that
    started ended, once, track lines (when the fleet writes them) in capture order per camera
    actor and marked started only for objects with a start event, and ``secret`` (when given)
    in none of the files."""
    summary = json.loads((run_dir / "summary.json").read_text())
    for cid, s in summary.items():
        dropped = sum(s["dropped"].values())
        assert s["captured"] == s["processed"] + dropped + s["failed"] + s["in_flight"], cid
        assert s["in_flight"] == 0, cid
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    frames = Counter(e["camera"] for e in events if e["type"] == "frame")
    if frames:
        for cid, s in summary.items():
            assert frames.get(cid, 0) == s["frames_with_detections"], cid
    lifecycle: dict[str, list[str]] = {}
    for event in events:
        if event["type"] == "object":
            lifecycle.setdefault(event["track"], []).append(event["event"])
    for track, kinds in lifecycle.items():
        assert kinds[0] == "start" and kinds[-1] == "end", (track, kinds)
        assert kinds.count("start") == 1 and kinds.count("end") == 1, (track, kinds)
    check_track_lines([e for e in events if e["type"] == "track"], lifecycle)
    for cid, s in summary.items():
        started = s.get("object_events", {}).get("start", 0)
        assert started == s.get("object_events", {}).get("end", 0), cid
        assert started == len({t for t in lifecycle if t.startswith(f"{cid}-")}), cid
    if secret is not None:
        for name in ("events.jsonl", "stats.jsonl", "summary.json"):
            assert secret not in (run_dir / name).read_text(), name
    return summary


def check_track_lines(lines: list[dict], lifecycle: dict[str, list[str]]) -> None:
    """``"type": "track"`` lines (``sinks.jsonl.tracks``): each camera actor (the session in the
    track id) writes them in capture order; a track once started stays started, and only an
    object with a start event is marked started."""
    last_frame: dict[str, int] = {}
    started: set[str] = set()
    for line in lines:
        actor = line["track"].rsplit("-", 1)[0]  # <camera>-<session>
        assert line["frame"] >= last_frame.get(actor, -1), ("out of capture order", line)
        last_frame[actor] = line["frame"]
        if line["started"]:
            started.add(line["track"])
        else:
            assert line["track"] not in started, ("started, then not", line)
    unknown = sorted(t for t in started if "start" not in lifecycle.get(t, []))
    assert not unknown, f"track lines marked started without a start event: {unknown}"
