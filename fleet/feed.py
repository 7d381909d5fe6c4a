"""The object events a running fleet prints: new lines of the events file, one short line per
event an operator would act on (start, end, zone enter/leave/loiter; not updates)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

SHOWN = ("start", "end", "enter", "leave", "loiter")


def describe(event: dict[str, Any]) -> str:
    """``14:02:11 town-square person town-square-mx4v-7 start (score 0.81, snapshot ...)``."""
    at = time.strftime("%H:%M:%S", time.localtime(event.get("time", 0)))
    kind = event.get("event", "?")
    head = f"{at} {event.get('camera', '?')} {event.get('label', '?')} {event.get('track', '?')}"
    if kind in ("enter", "leave", "loiter"):
        return f"{head} {kind} zone {event.get('zone')}"
    if kind == "end":
        return (f"{head} end after {event.get('duration_s', 0):.1f} s, {event.get('frames', 0)} "
                f"frames, best score {event.get('best_score', 0):.2f}"
                + (f", snapshot {event['snapshot']}" if event.get("snapshot") else ""))
    return f"{head} {kind} (score {event.get('score', 0):.2f})"


class EventFeed:
    """Reads what was appended to the events file since the last call."""

    def __init__(self, path: Path, limit: int = 20):
        self.path = path
        self.limit = limit
        self.offset = 0
        self.partial = b""

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
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if event.get("type") == "object" and event.get("event") in SHOWN:
                shown.append(describe(event))
        if len(shown) > self.limit:
            shown = [*shown[:self.limit], f"... and {len(shown) - self.limit} more object "
                     f"events (all in {os.fspath(self.path)})"]
        return shown
