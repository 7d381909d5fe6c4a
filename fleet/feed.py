"""The object events a running fleet prints: new lines of the events file, one short line per
event an operator would act on (start, end, zone enter/leave/loiter, stationary and the update
that says a stationary object moves again; not other updates). Frame and track lines are passed
over."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

SHOWN = ("start", "end", "enter", "leave", "loiter", "stationary")


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
    """Reads what was appended to the events file since the last call."""

    def __init__(self, path: Path, limit: int = 20):
        self.path = path
        self.limit = limit
        self.offset = 0
        self.partial = b""
        self.stationary: set[str] = set()  # tracks whose last shown event was stationary

    def lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(4 << 20)
        except OSError:
            return []
        self.offset += len(data)
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
