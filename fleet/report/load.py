"""Reading a run folder written by ``camfleet run`` into a :class:`~fleet.report.series.Run`.

Reads only what the run left (``stats.jsonl``, ``decisions.jsonl``, ``summary.json``, and the
object events in ``events.jsonl``), so it needs no Ray and works on a copied folder. Every problem
is a :class:`ReportError` naming the file and line and saying what to do, since a run cut off
mid-write is the usual way a folder goes bad. The one exception is the last line of
``events.jsonl`` cut off mid-write, which a killed run leaves: it is skipped and noted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleet.errors import ReportError  # defined with every other exception; imported from here too
from fleet.report.series import CameraSeries, Decision, DetectorSeries, ObjectEvent, Objects, Run
from fleet.sinks.rotation import rotated_paths


CAMERA_FIELDS = ("captured", "processed", "input_fps", "analysed_fps", "hit_rate", "p50_ms",
                 "p95_ms", "buffers")
DETECTOR_FIELDS = ("running", "target", "pending", "utilisation")
EVENTS_FILE = "events.jsonl"  # sinks.jsonl.path's default; the run folder does not record it
OBJECT_EVENT_KEYS = ('{"type": "object", "event", "camera", "track", "label", "time", '
                     '"first_seen", "last_seen", ...}')


class _NotANumber(ValueError):
    """A field that must be a number is not; the caller adds the file and line."""


def _num(value: Any, name: str) -> float:
    """A recorded number; None (no value yet, e.g. no latency sample) is NaN: a gap drawn."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _NotANumber(f"{name}: expected a number, got {value!r}")
    return float(value)


@dataclass
class _Snapshot:
    """One stats.jsonl line: per camera and per detector kind, field -> number."""

    time: float
    cameras: dict[str, dict[str, float]]
    dropped: dict[str, dict[str, float]]
    detectors: dict[str, dict[str, float]]


def _parse_snapshot(record: dict[str, Any]) -> _Snapshot:
    """Only the fields the panels draw, so a newer run with more fields still reports."""
    cameras, dropped, detectors = {}, {}, {}
    for row in record["cameras"]:
        cid = str(row["camera"])
        cameras[cid] = {k: _num(row.get(k), f"camera {cid!r} {k}") for k in CAMERA_FIELDS}
        dropped[cid] = {str(r): _num(n, f"camera {cid!r} dropped[{r!r}]")
                        for r, n in (row.get("dropped") or {}).items()}
    for row in record.get("detectors") or []:
        kind = str(row["detector"])
        detectors[kind] = {k: _num(row.get(k), f"detector {kind!r} {k}") for k in DETECTOR_FIELDS}
    return _Snapshot(_num(record["time"], "time"), cameras, dropped, detectors)


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of the file and of its rotated parts
    (``<name>.N`` ... ``<name>.1`` first); a bad line is a ReportError at file:line."""
    for part in rotated_paths(path):
        yield from _json_lines_of(part)


def _json_lines_of(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReportError(
                    f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno}); the run "
                    "was probably cut off while writing it: delete that line and report again"
                ) from None
            if not isinstance(record, dict):
                raise ReportError(f"{path}:{number}: expected a JSON object, got "
                                  f"{type(record).__name__}")
            yield number, record


def _read_stats(path: Path) -> tuple[list[_Snapshot], dict[str, dict[str, Any]] | None]:
    """The snapshots, and the final counters if the run stopped cleanly (its last line)."""
    snapshots, final = [], None
    for number, record in _json_lines(path):
        if "final" in record:
            final = record["final"]  # a folder reused by two runs has one per run: keep the last
            continue
        try:
            snapshots.append(_parse_snapshot(record))
        except _NotANumber as exc:
            raise ReportError(f"{path}:{number}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ReportError(f"{path}:{number}: not a stats snapshot ({detail}); expected "
                              '{"time": ..., "cameras": [...], "detectors": [...]}') from None
    if not snapshots:
        raise ReportError(f"{path}: no stats snapshots; the run stopped before its first stats "
                          "interval (stats_interval_s), so there is nothing to draw")
    return snapshots, final


def _read_decisions(path: Path, start_time: float) -> list[Decision]:
    """Scaling decisions, timed like the snapshots: seconds since the first one."""
    if not path.is_file():
        return []  # runs from before autoscaling have no decisions.jsonl
    decisions = []
    for number, r in _json_lines(path):
        try:
            decisions.append(Decision(_num(r["time"], "time") - start_time, str(r["target"]),
                                      str(r["action"]), str(r.get("reason", "")),
                                      int(r["before"]), int(r["after"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"{path}:{number}: not a scaling decision ({exc}); expected "
                              '{"time", "target", "action", "reason", "before", "after"}') from None
    return decisions


def _read_summary(run_dir: Path, final: dict[str, Any] | None,
                  last: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], str]:
    """The final counters and where they came from: summary.json, else the final stats line,
    else the last snapshot (a killed run); the summary says which, as they may differ."""
    path = run_dir / "summary.json"
    if path.is_file():
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ReportError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); delete the file "
                              "to fall back to the final counters in stats.jsonl") from None
        if not isinstance(summary, dict):
            raise ReportError(f"{path}: expected an object of per-camera counters")
        return summary, "summary.json"
    if final:
        return final, "the final line of stats.jsonl"
    return last, "the last stats snapshot (the run did not stop cleanly)"


def _last_rows(stats_path: Path) -> dict[str, dict[str, Any]]:
    """Each camera's last recorded row, as raw JSON: the counters of a run that was killed."""
    last: dict[str, dict[str, Any]] = {}
    for _, record in _json_lines(stats_path):
        for row in record.get("cameras") or []:
            last[str(row["camera"])] = row
    return last


def load_run(path: str | Path) -> Run:
    """Read a run folder written by ``camfleet run``; raises :class:`ReportError` naming the file.

    >>> run = load_run("tests/unit/fixtures/runs/demo-4cams")
    >>> sorted(run.cameras), round(run.duration_s)
    (['lobby-1080p', 'megamind', 'town-square', 'yard-720p'], 39)
    """
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run folder; expected a folder written by "
                          "`camfleet run`, such as runs/<name>-<time>/")
    stats_path = run_dir / "stats.jsonl"
    if not stats_path.is_file():
        raise ReportError(f"{stats_path}: missing; is {run_dir} a run folder? `camfleet run` "
                          "writes stats.jsonl there from its first stats interval on")
    snapshots, final = _read_stats(stats_path)
    start = snapshots[0].time
    last = _last_rows(stats_path) if not final else {}
    summary, source = _read_summary(run_dir, final, last)
    return Run(
        name=run_dir.resolve().name, path=run_dir, start_time=start,
        t_s=np.array([s.time - start for s in snapshots]),
        cameras=_camera_series(snapshots), detectors=_detector_series(snapshots),
        decisions=_read_decisions(run_dir / "decisions.jsonl", start),
        summary=summary, summary_source=source, objects=load_objects(run_dir, start),
    )


def _column(snapshots: list[_Snapshot], attr: str, key: str, field: str) -> np.ndarray:
    """One field of one camera or detector across the snapshots, NaN where it is absent."""
    return np.array([getattr(s, attr).get(key, {}).get(field, math.nan) for s in snapshots])


def _camera_series(snapshots: list[_Snapshot]) -> dict[str, CameraSeries]:
    """Every camera that ever reported, in order of first appearance (the fleet file's)."""
    ids = list(dict.fromkeys(cid for s in snapshots for cid in s.cameras))
    series = {}
    for cid in ids:
        present = np.array([cid in s.cameras for s in snapshots])
        reasons = sorted({r for s in snapshots for r in s.dropped.get(cid, {})})
        # A reason absent from a row has not happened yet: zero, where the camera reported.
        dropped = {r: np.where(present, np.nan_to_num(_column(snapshots, "dropped", cid, r)),
                               np.nan) for r in reasons}
        columns = {f: _column(snapshots, "cameras", cid, f) for f in CAMERA_FIELDS}
        series[cid] = CameraSeries(camera=cid, dropped=dropped, **columns)
    return series


def _detector_series(snapshots: list[_Snapshot]) -> dict[str, DetectorSeries]:
    """Every detector kind that ever reported, in order of first appearance."""
    kinds = list(dict.fromkeys(k for s in snapshots for k in s.detectors))
    return {k: DetectorSeries(detector=k, **{f: _column(snapshots, "detectors", k, f)
                                             for f in DETECTOR_FIELDS}) for k in kinds}


# ---- object events ---------------------------------------------------------------------------

def load_objects(path: str | Path, start_time: float | None = None) -> Objects | None:
    """The object events of a run folder's ``events.jsonl`` as tracks; None if it has none.

    Times count from ``start_time`` (:func:`load_run` passes the first stats snapshot's, so the
    timeline lines up with the other panels), else from the earliest event. Frame and track
    lines are passed over; a run from before tracking, or with tracking off, has only those.

    >>> load_objects("tests/unit/fixtures/runs/demo-4cams") is None  # the demo predates tracking
    True
    """
    events_path = Path(path) / EVENTS_FILE
    if not events_path.is_file():
        return None
    skipped: list[str] = []
    events = []
    for number, record in _object_records(events_path, skipped):
        try:
            events.append(_parse_object_event(record))
        except _NotANumber as exc:
            raise ReportError(f"{events_path}:{number}: object event {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ReportError(f"{events_path}:{number}: not an object event ({detail}); "
                              f"expected {OBJECT_EVENT_KEYS}") from None
    if not events:
        return None
    if start_time is None:
        start, origin = min(min(e.time, e.first_seen) for e in events), "the first object event"
    else:
        start, origin = start_time, "the first stats snapshot"
    return Objects.from_events(events, start, origin, "; ".join(skipped))


def _object_records(path: Path, skipped: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of each object event, from the rotated parts (``<name>.N`` ...
    ``<name>.1``) on. A bad line is a ReportError at file:line, except a last line cut off
    mid-write (no newline: a killed run, a full disk), which goes to ``skipped``."""
    for part in rotated_paths(path):
        yield from _object_records_of(part, skipped)


def _object_records_of(path: Path, skipped: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if '"object"' not in line:
                continue  # a frame or track line: many, and the report does not read them
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if line.endswith("\n"):
                    raise ReportError(
                        f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno}); "
                        "delete that line and report again") from None
                skipped.append(f"{path.name}:{number} was cut off mid-write (the run was "
                               "killed) and is skipped")
                return
            if isinstance(record, dict) and record.get("type") == "object":
                yield number, record


def _parse_object_event(r: dict[str, Any]) -> ObjectEvent:
    """The fields the report uses; times must be numbers, the others have fallbacks."""
    def when(key: str) -> float:
        value = _num(r[key], key)
        if not math.isfinite(value):
            raise _NotANumber(f"{key}: expected a time, got {r[key]!r}")
        return value

    first, last = when("first_seen"), when("last_seen")
    duration, zone = _num(r.get("duration_s"), "duration_s"), r.get("zone")
    return ObjectEvent(
        event=str(r["event"]), camera=str(r["camera"]), track=str(r["track"]),
        label=str(r["label"]), time=when("time"), first_seen=first, last_seen=last,
        duration_s=last - first if math.isnan(duration) else duration,
        best_score=_num(r.get("best_score", r.get("score")), "best_score"),
        frames=int(r.get("frames") or 0), zone=None if zone is None else str(zone))
