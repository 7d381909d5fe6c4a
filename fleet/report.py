"""``camfleet report RUN``: the main panels of a finished run as one PNG, from its recorded stats.

For people who ran the CLI without Grafana. Reads only what ``camfleet run`` left in the run
folder (``stats.jsonl``, ``decisions.jsonl``, ``summary.json``), so it needs no Ray and works on a
copied folder. Panels share one time axis, seconds since the first snapshot:

1. input and analysed fps per camera;
2. drops per second by reason, fleet-wide (rates from the cumulative counters);
3. hit-rate per camera, against the target;
4. p50 and p95 latency per camera, capture to result;
5. detector actors running against the target per kind, with every scaling decision marked.

Beyond :data:`MAX_CAMERA_LINES` cameras a panel shows the fleet (total, worst at each instant,
or the spread) plus the single worst camera, so twenty cameras stay readable.

>>> run = load_run("runs/demo-20261126-170512")          # doctest: +SKIP
>>> render(run, "/tmp/demo.png")                          # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleet.errors import FleetError

DEFAULT_TARGET_HIT_RATE = 0.99  # the fleet file's default; the run folder does not record it
MAX_CAMERA_LINES = 8  # more cameras than this: fleet aggregate plus the worst camera
FPS_WINDOW_S = 4.0  # an even number of 1 s snapshots cancels the 4, 6, 4, 6 of a 5 fps camera
MAX_DECISION_LABELS = 16  # more decisions than this are marked, but only these are labelled
DECISION_LABEL_ROWS = 3  # labels of close decisions are staggered over this many rows
ACTION_COLOURS = {"scale_up": "tab:green", "scale_down": "tab:orange",
                  "capacity_limited": "tab:red"}


class ReportError(FleetError):
    """A run folder is missing, incomplete or has a corrupt file; or it cannot be drawn."""


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
    """What a finished run recorded, as time series. Build it with :func:`load_run`."""

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
        return float(self.t_s[-1]) if len(self.t_s) else 0.0

    def totals(self) -> dict[str, int]:
        """Fleet-wide final captured, processed, dropped, failed and in-flight frames."""
        keys = ("captured", "processed", "failed", "in_flight")
        totals = {k: sum(int(s.get(k, 0)) for s in self.summary.values()) for k in keys}
        totals["dropped"] = sum(_dropped(s) for s in self.summary.values())
        return totals

    def drop_rates(self) -> dict[str, np.ndarray]:
        """Fleet-wide drops per second by reason, aligned with :attr:`t_s` (NaN at the start)."""
        reasons = sorted({r for c in self.cameras.values() for r in c.dropped})
        rates = {}
        for reason in reasons:
            per_camera = [windowed_rate(self.t_s, c.dropped[reason], 0) for c in
                          self.cameras.values() if reason in c.dropped]
            rates[reason] = _nan_reduce(np.nansum, np.array(per_camera))
        return rates

    def fps(self, counter: str, window_s: float = FPS_WINDOW_S) -> dict[str, np.ndarray]:
        """Per camera: ``captured`` or ``processed`` frames per second over ``window_s``."""
        return {cid: windowed_rate(self.t_s, getattr(c, counter), window_s)
                for cid, c in self.cameras.items()}


def windowed_rate(t_s: np.ndarray, cumulative: np.ndarray, window_s: float) -> np.ndarray:
    """Per-second rate of a cumulative counter over the last ``window_s`` (NaN at the start).

    Per-interval rates alias (a 5 fps camera reads 4, 6, 4, 6 at one snapshot a second); a
    window of a few snapshots shows the trend. A counter going down (two runs appended to one
    folder) gives no rate.
    """
    rate = np.full(len(t_s), np.nan)
    if len(t_s) < 2:
        return rate
    steps = max(1, round(window_s / float(np.median(np.diff(t_s)))))
    now = np.arange(1, len(t_s))
    before = np.maximum(now - steps, 0)
    dt = t_s[now] - t_s[before]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_s = (cumulative[now] - cumulative[before]) / np.where(dt > 0, dt, np.nan)
    rate[1:] = np.clip(per_s, 0, None)
    return rate


def _nan_reduce(fn: Callable[..., np.ndarray], values: np.ndarray) -> np.ndarray:
    """``fn`` over cameras, NaN (no warning) where no camera reported."""
    out = np.full(values.shape[1], np.nan)
    seen = np.isfinite(values).any(axis=0)
    out[seen] = fn(values[:, seen], axis=0)
    return out


def _dropped(counters: dict[str, Any]) -> int:
    return sum(int(v) for v in (counters.get("dropped") or {}).values())


# --- loading -----------------------------------------------------------------------------------

CAMERA_FIELDS = ("captured", "processed", "input_fps", "analysed_fps", "hit_rate", "p50_ms",
                 "p95_ms", "buffers")
DETECTOR_FIELDS = ("running", "target", "pending", "utilisation")


class _NotANumber(ValueError):
    pass


def _num(value: Any, name: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _NotANumber(f"{name}: expected a number, got {value!r}")
    return float(value)


@dataclass
class _Snapshot:
    time: float
    cameras: dict[str, dict[str, float]]
    dropped: dict[str, dict[str, float]]
    detectors: dict[str, dict[str, float]]


def _parse_snapshot(record: dict[str, Any]) -> _Snapshot:
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
    """(line number, object) for each non-blank line; a bad line is a ReportError at file:line."""
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
        summary=summary, summary_source=source,
    )


def _column(snapshots: list[_Snapshot], attr: str, key: str, field: str) -> np.ndarray:
    return np.array([getattr(s, attr).get(key, {}).get(field, math.nan) for s in snapshots])


def _camera_series(snapshots: list[_Snapshot]) -> dict[str, CameraSeries]:
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
    kinds = list(dict.fromkeys(k for s in snapshots for k in s.detectors))
    return {k: DetectorSeries(detector=k, **{f: _column(snapshots, "detectors", k, f)
                                             for f in DETECTOR_FIELDS}) for k in kinds}


# --- rendering ---------------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("matplotlib is not installed; pip install 'camfleet[bench]' "
                          "to render reports") from None
    return plt


def worst_camera(run: Run) -> str:
    """Lowest mean hit-rate, then highest mean p95: the camera a many-camera view singles out."""
    def badness(c: CameraSeries) -> tuple[float, float]:
        hit = np.nanmean(c.hit_rate) if np.isfinite(c.hit_rate).any() else 1.0
        p95 = np.nanmean(c.p95_ms) if np.isfinite(c.p95_ms).any() else 0.0
        return float(hit), -float(p95)
    return min(run.cameras.values(), key=badness).camera


def _stack(run: Run, field: str) -> np.ndarray:
    return np.array([getattr(c, field) for c in run.cameras.values()])


@dataclass(frozen=True)
class _View:
    """Which cameras get their own line, and in which colour."""

    cameras: list[str]
    colours: dict[str, Any]
    aggregate: bool  # too many cameras: draw the fleet, plus `cameras` (the worst one)

    def label(self, camera: str) -> str:
        return f"worst: {camera}" if self.aggregate else camera


def _view(run: Run, plt: Any) -> _View:
    if len(run.cameras) <= MAX_CAMERA_LINES:
        palette = plt.get_cmap("tab10")
        return _View(list(run.cameras), {c: palette(i) for i, c in enumerate(run.cameras)}, False)
    worst = worst_camera(run)
    return _View([worst], {worst: "tab:red"}, True)


def _legend(ax: Any) -> None:
    """Outside, right of the panel: a legend never hides a line, however many cameras."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8,
              frameon=False)


def _style_keys(ax: Any, dashed: str, solid: str) -> None:
    ax.plot([], [], "--" if dashed != "p50" else ":", color="0.4", label=dashed)
    ax.plot([], [], color="0.4", label=solid)


def _plot_fps(ax: Any, run: Run, view: _View) -> None:
    captured, processed = run.fps("captured"), run.fps("processed")
    if view.aggregate:
        fleet_in = _nan_reduce(np.nansum, np.array(list(captured.values())))
        fleet_out = _nan_reduce(np.nansum, np.array(list(processed.values())))
        ax.plot(run.t_s, fleet_in, "--", color="0.25", lw=1.2)
        ax.plot(run.t_s, fleet_out, color="0.25", lw=1.8, label="fleet total")
    for cid in view.cameras:
        ax.plot(run.t_s, captured[cid], "--", color=view.colours[cid], lw=1.2)
        ax.plot(run.t_s, processed[cid], color=view.colours[cid], lw=1.8, label=view.label(cid))
    _style_keys(ax, "input", "analysed")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("frames/s")
    ax.set_title(f"input (dashed) and analysed (solid) fps per camera, {FPS_WINDOW_S:g} s average",
                 loc="left", fontsize=10)
    _legend(ax)


def _plot_drops(ax: Any, run: Run) -> None:
    rates = run.drop_rates()
    fixed = {"fps": "0.55", "no_motion": "tab:cyan", "shutdown": "tab:purple"}
    others = iter(["tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:blue", "tab:orange"])
    for reason, rate in rates.items():
        ax.step(run.t_s, rate, where="pre", lw=1.5, label=reason,
                color=fixed.get(reason) or next(others, None))
    drawn = any(np.isfinite(rate).any() for rate in rates.values())
    if drawn:
        ax.set_yscale("symlog", linthresh=1)  # ~100/s of fps skips next to one rare drop
        _legend(ax)
    else:
        empty = "no drops" if not rates else "no rates: fewer than two snapshots"
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", color="0.4")
    ax.set_ylim(bottom=0, top=None if drawn else 1)
    ax.set_ylabel("drops/s, fleet")
    note = " ('fps' = skipped by the fps limit, by design)" if "fps" in rates else ""
    ax.set_title(f"drops per second by reason{note}", loc="left", fontsize=10)


def _plot_hit_rate(ax: Any, run: Run, view: _View, target: float) -> None:
    values = _stack(run, "hit_rate")
    if view.aggregate:
        ax.plot(run.t_s, _nan_reduce(np.nanmin, values), color="0.25", label="fleet worst")
    for cid in view.cameras:
        ax.plot(run.t_s, run.cameras[cid].hit_rate, color=view.colours[cid], lw=1.8,
                label=view.label(cid) if view.aggregate else None)
    ax.axhline(target, color="tab:red", ls=":", lw=1.2, label=f"target {target:g}")
    low = np.nanmin(values) if np.isfinite(values).any() else 1.0
    ax.set_ylim(max(0.0, min(low, target) - 0.02), 1.005)
    ax.set_ylabel("hit-rate")
    ax.set_title("hit-rate per camera: frames admitted to a buffer / offered (windowed)",
                 loc="left", fontsize=10)
    _legend(ax)


def _plot_latency(ax: Any, run: Run, view: _View) -> None:
    if view.aggregate:
        p95 = _stack(run, "p95_ms")
        ax.fill_between(run.t_s, _nan_reduce(np.nanmin, p95), _nan_reduce(np.nanmax, p95),
                        color="0.85", label="p95, all cameras")
    for cid in view.cameras:
        c = run.cameras[cid]
        ax.plot(run.t_s, c.p50_ms, ":", color=view.colours[cid], lw=1.5)
        ax.plot(run.t_s, c.p95_ms, color=view.colours[cid], lw=1.8,
                label=view.label(cid) if view.aggregate else None)
    _style_keys(ax, "p50", "p95")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("ms")
    ax.set_title("latency per camera, capture to result: p50 (dotted), p95 (solid)",
                 loc="left", fontsize=10)
    _legend(ax)


def _plot_detectors(ax: Any, run: Run, plt: Any) -> None:
    palette = plt.get_cmap("Dark2")
    top = 1.0
    for i, d in enumerate(run.detectors.values()):
        colour = palette(i % 8)
        # Kinds often run the same count: each later line thinner, so all stay visible.
        ax.step(run.t_s, d.running, where="post", color=colour, lw=max(1.2, 3.5 - 0.8 * i),
                label=f"{d.detector} running")
        ax.step(run.t_s, d.target, where="post", color=colour, lw=1.2, ls="--",
                label=f"{d.detector} target")
        if np.isfinite(d.running).any() or np.isfinite(d.target).any():
            top = max(top, float(np.nanmax(np.concatenate([d.running, d.target]))))
    rows = min(len(run.decisions), DECISION_LABEL_ROWS)
    # Room above the lines for the staggered decision labels.
    ax.set_ylim(0, (top + 1) / (1 - 0.1 * rows - 0.04 * bool(rows)))
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("actors")
    ax.set_title("detector actors: running (solid) vs target (dashed); scaling decisions marked",
                 loc="left", fontsize=10)
    if run.detectors:
        _legend(ax)


def _mark_decisions(axes: Any, run: Run) -> None:
    """A faint line through every panel per decision, labelled on the detector panel."""
    for i, d in enumerate(run.decisions):
        colour = ACTION_COLOURS.get(d.action, "0.4")
        for ax in axes:
            ax.axvline(d.t_s, color=colour, lw=1, alpha=0.5, zorder=0)
        if i < MAX_DECISION_LABELS:
            kind, _, name = d.target.partition(":")
            what = " buffers" if kind == "camera" else ""
            late = d.t_s > 0.7 * run.duration_s  # label to the left, or it runs off the panel
            axes[-1].annotate(
                f"{name}{what} {d.action} {d.before}\u2192{d.after} ({d.reason})",
                (d.t_s, 0.96 - 0.1 * (i % DECISION_LABEL_ROWS)), xycoords=("data", "axes fraction"),
                xytext=(-3 if late else 3, 0), textcoords="offset points", va="top",
                ha="right" if late else "left", fontsize=7.5, color=colour,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})


def _title(run: Run, view: _View) -> str:
    t = run.totals()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.start_time))
    title = (f"camfleet run {run.name}: {run.duration_s:.0f} s from {started}, "
             f"{len(run.cameras)} camera(s), {len(run.decisions)} scaling decision(s)\n"
             f"captured {t['captured']} = processed {t['processed']} + dropped {t['dropped']} "
             f"+ failed {t['failed']} + in flight {t['in_flight']}")
    if view.aggregate:
        title += (f"\nmore than {MAX_CAMERA_LINES} cameras: the fleet, plus the worst camera "
                  f"(lowest mean hit-rate, then highest p95), {view.cameras[0]}")
    return title


def render(run: Run, out_png: str | Path, target_hit_rate: float = DEFAULT_TARGET_HIT_RATE) -> Path:
    """Draw the run's five panels into one PNG at ``out_png``; returns its path."""
    plt = _pyplot()
    view = _view(run, plt)
    fig, axes = plt.subplots(5, 1, figsize=(13, 15), sharex=True, layout="constrained")
    _plot_fps(axes[0], run, view)
    _plot_drops(axes[1], run)
    _plot_hit_rate(axes[2], run, view, target_hit_rate)
    _plot_latency(axes[3], run, view)
    _plot_detectors(axes[4], run, plt)
    _mark_decisions(axes, run)
    for ax in axes:
        ax.grid(alpha=0.3)
        if len(run.t_s) < 3:  # a line through one or two points is invisible or misleading
            for line in ax.get_lines():
                if len(line.get_xdata()) == len(run.t_s):
                    line.set_marker("o")
    axes[-1].set_xlim(min([0.0, *(d.t_s for d in run.decisions)]), max(run.duration_s, 1.0))
    axes[-1].set_xlabel("seconds since the first snapshot")
    fig.suptitle(_title(run, view), fontsize=11)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


# --- text summary and CLI ----------------------------------------------------------------------


def _accounting(camera: str, s: dict[str, Any]) -> str:
    n = {k: int(s.get(k) or 0) for k in ("captured", "processed", "failed", "in_flight")}
    dropped = _dropped(s)
    ok = n["captured"] == n["processed"] + dropped + n["failed"] + n["in_flight"]
    reasons = " ".join(f"{k}={v}" for k, v in sorted((s.get("dropped") or {}).items()) if v)
    return (f"  {camera:<16.16} {n['captured']:>8} = {n['processed']:>9} + {dropped:>7} + "
            f"{n['failed']:>6} + {n['in_flight']:>9}  {'ok' if ok else 'MISMATCH':<8} "
            f"{reasons or '-'}")


def summary_text(run: Run) -> str:
    """A paragraph for the terminal: per-camera accounting, detections per label, decisions."""
    t = run.totals()
    lines = [
        (f"{run.name}: {run.duration_s:.0f} s, {len(run.cameras)} camera(s); fleet captured "
         f"{t['captured']} = processed {t['processed']} + dropped {t['dropped']} + failed "
         f"{t['failed']} + in flight {t['in_flight']} (final counters from {run.summary_source})"),
        (f"  {'camera':<16} {'captured':>8} = {'processed':>9} + {'dropped':>7} + {'failed':>6} + "
         f"{'in_flight':>9}  {'':<8} drops by reason"),
    ]
    detections: dict[str, int] = {}
    for camera, counters in run.summary.items():
        lines.append(_accounting(camera, counters))
        for label, n in (counters.get("detections") or {}).items():
            detections[label] = detections.get(label, 0) + int(n)
    labels = " ".join(f"{k}={v}" for k, v in sorted(detections.items())) or "none"
    actions: dict[str, int] = {}
    for d in run.decisions:
        actions[d.action] = actions.get(d.action, 0) + 1
    made = ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
    lines.append(f"detections: {labels}; scaling decisions: {len(run.decisions)}"
                 + (f" ({made})" if made else ""))
    return "\n".join(lines)


def add_parser(sub: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    """Add ``report RUN [-o out.png]`` to the CLI's subcommands; ``handler`` runs it."""
    report = sub.add_parser("report", help="render a finished run's stats to a PNG (no Ray needed)")
    report.add_argument("run", help="run folder written by `camfleet run` (runs/<name>-<time>/)")
    report.add_argument("--output", "-o", help="PNG path (default: RUN/report.png)")
    report.add_argument("--target-hit-rate", type=float, default=DEFAULT_TARGET_HIT_RATE,
                        help="draw the hit-rate target here (the run folder does not record it)")
    report.set_defaults(func=handler)


def main(args: argparse.Namespace) -> int:
    """``camfleet report``: load, render, print the PNG path and the summary. Raises ReportError."""
    run = load_run(args.run)
    out = render(run, args.output or run.path / "report.png", args.target_hit_rate)
    print(out)
    print(summary_text(run))
    return 0
