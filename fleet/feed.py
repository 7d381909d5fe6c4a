"""The object events a running fleet prints: new lines of the events file, one short line per
event an operator would act on (start, end, zone enter/leave/loiter, stationary and the update
that says a stationary object moves again; not other updates). Frame and track lines are passed
over."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

from fleet.vocab import EVENT_KINDS, EventKind

SHOWN = tuple(kind for kind in EVENT_KINDS if kind != EventKind.UPDATE)  # updates: see _line


def describe(event: dict[str, Any], what: str | None = None) -> str:
    """``14:02:11 town-square person town-square-mx4v-7 start (score 0.81)``; ``what`` names the
    event instead of its type (``moves again`` for the update of a stationary object)."""
    at = time.strftime("%H:%M:%S", time.localtime(event.get("time", 0)))
    kind = event.get("event", "?")
    head = f"{at} {event.get('camera', '?')} {event.get('label', '?')} {event.get('track', '?')}"
    if kind in ("enter", "leave", "loiter"):
        return f"{head} {kind} zone {event.get('zone')}"
    if kind == "end":
        return (f"{head} end after {event.get('duration_s', 0):.1f} s, {event.get('frames', 0)} "
                f"frames, best score {event.get('best_score', 0):.2f}"
                + (f", snapshot {event['snapshot']}" if event.get("snapshot") else ""))
    return f"{head} {what or kind} (score {event.get('score', 0):.2f})"


class EventFeed:
    """Reads what was appended to the events file since the last call. The file rotates
    (``sinks.jsonl.rotate_mb``): the feed holds the file it reads open, reads it to its end,
    and then follows the new file by that name."""

    def __init__(self, path: Path, limit: int = 20):
        self.path = path
        self.limit = limit
        self.handle: BinaryIO | None = None
        self.partial = b""
        self.stationary: set[str] = set()  # tracks whose last shown event was stationary

    def _read(self) -> bytes:
        """New bytes: the rest of the file held open, then, if the name now points at a new
        file (rotated), that one from its start."""
        data = b""
        for _ in range(2):
            if self.handle is None:
                try:
                    self.handle = open(self.path, "rb")  # noqa: SIM115 (held across calls)
                except OSError:
                    return data
            chunk = self.handle.read(4 << 20)
            data += chunk
            if len(chunk) == 4 << 20 or not self._rotated():
                return data
            self.handle.close()
            self.handle = None
        return data

    def _rotated(self) -> bool:
        assert self.handle is not None
        try:
            return os.stat(self.path).st_ino != os.fstat(self.handle.fileno()).st_ino
        except FileNotFoundError:
            return False  # between the rename and the new file: keep reading the old one

    def lines(self) -> list[str]:
        data = self._read()
        data, self.partial = self.partial + data, b""
        if data and not data.endswith(b"\n"):  # a line still being written: keep its start
            data, _, self.partial = data.rpartition(b"\n")
        shown = []
        for raw in data.splitlines():
            if b'"object"' not in raw:
                continue  # a frame or track line (many with jsonl.frames or jsonl.tracks)
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("type") == "object":
                line = self._line(event)
                if line is not None:
                    shown.append(line)
        if len(shown) > self.limit:
            shown = [*shown[:self.limit], f"... and {len(shown) - self.limit} more object "
                     f"events (all in {os.fspath(self.path)})"]
        return shown

    def _line(self, event: dict[str, Any]) -> str | None:
        """The event's line, if it gets one: those in SHOWN, and the update that says a
        stationary object is not stationary any more (it moves again)."""
        kind, track = event.get("event"), str(event.get("track"))
        if kind == "stationary":
            self.stationary.add(track)
        elif kind == "end":
            self.stationary.discard(track)
        elif kind == "update" and event.get("stationary") is False and track in self.stationary:
            self.stationary.discard(track)
            return describe(event, "moves again")
        return describe(event) if kind in SHOWN else None
