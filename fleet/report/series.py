"""A finished run as time series, and the figures its panels show (rates, the worst camera).

Rates come from :func:`fleet.stats.windowed_rate`, which replays the recorded counters through
the live stats' own :class:`~fleet.stats.CounterWindow`: one implementation for the live table and
for the report. Everything here is numpy only, so a run can be summed up without matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleet.stats import windowed_rate

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
