"""A finished run as time series, and the figures its panels show (rates, the worst camera);
its object events as tracks, and the figures the objects summary prints.

Rates come from :func:`fleet.control.stats.windowed_rate`, which replays the recorded counters
through the live stats' own :class:`~fleet.control.stats.CounterWindow`: one implementation for
the live table and for the report. Everything here is numpy only, so a run can be summed up
without matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleet.control.stats import windowed_rate
from fleet.vocab import EVENT_KINDS

FPS_WINDOW_S = 4.0  # an even number of 1 s snapshots cancels the 4, 6, 4, 6 of a 5 fps camera


@dataclass(frozen=True, eq=False)
class CameraSeries:
    """One camera over the run; every array is aligned with :attr:`Run.t_s`, NaN where absent."""

    camera: str
    captured: np.ndarray  # cumulative
    processed: np.ndarray  # cumulative
    input_fps: np.ndarray  # as recorded: over the one interval before each snapshot
    analysed_fps: np.ndarray
    hit_rate: np.ndarray
    p50_ms: np.ndarray
    p95_ms: np.ndarray
    buffers: np.ndarray
    dropped: dict[str, np.ndarray]  # cumulative count per reason


@dataclass(frozen=True, eq=False)
class DetectorSeries:
    """One detector kind over the run, aligned with :attr:`Run.t_s`."""

    detector: str
    running: np.ndarray
    target: np.ndarray
    pending: np.ndarray
    utilisation: np.ndarray


@dataclass(frozen=True)
class Decision:
    """One scaling action from ``decisions.jsonl``; ``t_s`` is seconds since the run's start."""

    t_s: float
    target: str  # "detector:<kind>" or "camera:<id>"
    action: str
    reason: str
    before: int
    after: int


@dataclass(frozen=True, eq=False)
class Run:
    """What a finished run recorded, as time series. Build it with ``load_run``."""

    name: str
    path: Path
    start_time: float  # wall clock (epoch s) of the first snapshot
    t_s: np.ndarray  # snapshot times, seconds since the first
    cameras: dict[str, CameraSeries]
    detectors: dict[str, DetectorSeries]
    decisions: list[Decision]
    summary: dict[str, dict[str, Any]]  # final counters per camera
    summary_source: str  # which file (or line) the final counters came from
    objects: Objects | None = None  # the object events, None if the run recorded none

    @property
    def duration_s(self) -> float:
        """Seconds from the first snapshot to the last (0 for a one-snapshot run)."""
        return float(self.t_s[-1]) if len(self.t_s) else 0.0

    def totals(self) -> dict[str, int]:
        """Fleet-wide final captured, processed, dropped, failed and in-flight frames."""
        keys = ("captured", "processed", "failed", "in_flight")
        totals = {k: sum(int(s.get(k, 0)) for s in self.summary.values()) for k in keys}
        totals["dropped"] = sum(dropped_total(s) for s in self.summary.values())
        return totals

    def drop_rates(self) -> dict[str, np.ndarray]:
        """Fleet-wide drops per second by reason, aligned with :attr:`t_s` (NaN at the start).

        Per interval, not averaged: the rates integrate back to the counters, and a burst of
        drops shows where it happened.
        """
        reasons = sorted({r for c in self.cameras.values() for r in c.dropped})
        rates = {}
        for reason in reasons:
            per_camera = [windowed_rate(self.t_s, c.dropped[reason], 0) for c in
                          self.cameras.values() if reason in c.dropped]
            rates[reason] = nan_reduce(np.nansum, np.array(per_camera))
        return rates

    def fps(self, counter: str, window_s: float = FPS_WINDOW_S) -> dict[str, np.ndarray]:
        """Per camera: ``captured`` or ``processed`` frames per second over ``window_s``."""
        return {cid: windowed_rate(self.t_s, getattr(c, counter), window_s)
                for cid, c in self.cameras.items()}

    def stack(self, field: str) -> np.ndarray:
        """One of the cameras' recorded series, a row per camera, for fleet-wide reductions."""
        return np.array([getattr(c, field) for c in self.cameras.values()])


def nan_reduce(fn: Callable[..., np.ndarray], values: np.ndarray) -> np.ndarray:
    """``fn`` over cameras (rows), NaN (no warning) where no camera reported."""
    out = np.full(values.shape[1], np.nan)
    seen = np.isfinite(values).any(axis=0)
    out[seen] = fn(values[:, seen], axis=0)
    return out


def dropped_total(counters: dict[str, Any]) -> int:
    """Frames dropped for any reason, from one camera's final counters."""
    return sum(int(v) for v in (counters.get("dropped") or {}).values())


def worst_camera(run: Run) -> str:
    """Lowest mean hit-rate, then highest mean p95: the camera a many-camera view singles out."""
    def badness(c: CameraSeries) -> tuple[float, float]:
        hit = np.nanmean(c.hit_rate) if np.isfinite(c.hit_rate).any() else 1.0
        p95 = np.nanmean(c.p95_ms) if np.isfinite(c.p95_ms).any() else 0.0
        return float(hit), -float(p95)
    return min(run.cameras.values(), key=badness).camera


# ---- object events: tracks, zone events, per-camera figures ---------------------------------

ZONE_EVENTS = frozenset({"enter", "leave", "loiter"})


@dataclass(frozen=True)
class ObjectEvent:
    """One ``"type": "object"`` line of ``events.jsonl``: only the fields the report uses.

    Times are wall clock (epoch s), as recorded; ``zone`` is set for enter, leave and loiter.
    """

    event: str  # start | update | end | enter | leave | loiter | stationary
    camera: str
    track: str  # unique per camera
    label: str
    time: float  # wall clock of the frame that caused the event
    first_seen: float
    last_seen: float
    duration_s: float  # on the media's clock (differs from last - first for fast files)
    best_score: float
    frames: int
    zone: str | None


@dataclass(frozen=True)
class Track:
    """One tracked object, from all its events; times are seconds since :attr:`Objects.start_time`.

    A run that was killed leaves tracks without an end event: ``ended`` is False, and
    ``last_s`` is when the track was last seen in any event it did leave.
    """

    camera: str
    track: str
    label: str  # from its latest event
    first_s: float
    last_s: float
    duration_s: float  # as its latest event recorded it: on the media's clock, so a file read
    # faster than real time gives the time on screen, while first_s and last_s are wall clock
    best_score: float
    frames: int  # frames the track was seen in
    started: bool  # its start event was recorded
    ended: bool  # its end event was recorded


@dataclass(frozen=True)
class ZoneMark:
    """A zone enter, leave or loiter event on the timeline, ``t_s`` since the start time."""

    t_s: float
    camera: str
    track: str
    event: str
    zone: str


@dataclass(frozen=True)
class CameraObjects:
    """One camera's line of the objects summary."""

    camera: str
    tracks: int
    by_label: dict[str, int]  # tracks per label
    mean_duration_s: float  # NaN without tracks
    max_duration_s: float
    events: dict[str, int]  # object events per type, in EVENT_KINDS order then others
    open_tracks: int  # tracks without an end event


@dataclass(frozen=True, eq=False)
class Objects:
    """A run's object events as tracks (ordered by first sighting) and zone marks."""

    start_time: float  # wall clock the times count from
    origin: str  # what start_time is: "the first stats snapshot" or "the first object event"
    tracks: list[Track]
    marks: list[ZoneMark]
    events: dict[str, dict[str, int]]  # per camera (first seen first): event type -> count
    note: str = ""  # what was skipped while reading, if anything

    @classmethod
    def from_events(cls, events: list[ObjectEvent], start_time: float, origin: str,
                    note: str = "") -> Objects:
        """Group events by (camera, track); a track spans its earliest and latest sighting."""
        grouped: dict[tuple[str, str], list[ObjectEvent]] = {}
        counts: dict[str, dict[str, int]] = {}
        marks = []
        for e in events:
            grouped.setdefault((e.camera, e.track), []).append(e)
            per_type = counts.setdefault(e.camera, {})
            per_type[e.event] = per_type.get(e.event, 0) + 1
            if e.event in ZONE_EVENTS:
                marks.append(ZoneMark(e.time - start_time, e.camera, e.track, e.event,
                                      e.zone or ""))
        tracks = sorted((_track(group, start_time) for group in grouped.values()),
                        key=lambda t: (t.first_s, t.camera, t.track))
        return cls(start_time, origin, tracks, sorted(marks, key=lambda m: m.t_s),
                   {c: _in_event_order(n) for c, n in counts.items()}, note)

    def cameras(self) -> list[str]:
        """Cameras with object events, most tracks first (ties: first seen first)."""
        tracks: dict[str, int] = dict.fromkeys(self.events, 0)
        for t in self.tracks:
            tracks[t.camera] += 1
        return sorted(tracks, key=lambda c: -tracks[c])

    def open_tracks(self) -> list[Track]:
        """Tracks without an end event (the run was killed), by first sighting."""
        return [t for t in self.tracks if not t.ended]

    def per_camera(self) -> list[CameraObjects]:
        """The summary's figures for every camera with object events, most tracks first."""
        by_camera: dict[str, list[Track]] = {}
        for t in self.tracks:
            by_camera.setdefault(t.camera, []).append(t)
        found = []
        for camera in self.cameras():
            tracks = by_camera.get(camera, [])
            labels: dict[str, int] = {}
            for t in tracks:
                labels[t.label] = labels.get(t.label, 0) + 1
            durations = np.array([t.duration_s for t in tracks])
            found.append(CameraObjects(
                camera=camera, tracks=len(tracks), by_label=dict(sorted(labels.items())),
                mean_duration_s=float(durations.mean()) if len(tracks) else math.nan,
                max_duration_s=float(durations.max()) if len(tracks) else math.nan,
                events=self.events[camera], open_tracks=sum(not t.ended for t in tracks)))
        return found

    def labels(self) -> list[str]:
        """Every label a track had, sorted: the timeline's colours follow this order."""
        return sorted({t.label for t in self.tracks})


def _track(events: list[ObjectEvent], start_time: float) -> Track:
    """One track from its events, in file order (a camera writes them in time order)."""
    latest = max(reversed(events), key=lambda e: e.last_seen)  # of equals, the last written
    kinds = {e.event for e in events}
    scores = [e.best_score for e in events if not math.isnan(e.best_score)]
    return Track(
        camera=latest.camera, track=latest.track, label=events[-1].label,
        first_s=min(e.first_seen for e in events) - start_time,
        last_s=latest.last_seen - start_time, duration_s=latest.duration_s,
        best_score=max(scores, default=math.nan), frames=max(e.frames for e in events),
        started="start" in kinds, ended="end" in kinds)


def _in_event_order(counts: dict[str, int]) -> dict[str, int]:
    """Known event types in lifecycle order, then any newer ones alphabetically."""
    order = {e: i for i, e in enumerate(EVENT_KINDS)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
