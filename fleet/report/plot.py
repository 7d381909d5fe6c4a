"""Drawing a run's five panels into one PNG, with matplotlib (imported only to draw).

Panels share one time axis, seconds since the first snapshot:

1. input and analysed fps per camera;
2. drops per second by reason, fleet-wide (rates from the cumulative counters);
3. hit-rate per camera, against the target;
4. p50 and p95 latency per camera, capture to result;
5. detector actors running against the target per kind, with every scaling decision marked.

Beyond :data:`MAX_CAMERA_LINES` cameras a panel shows the fleet (total, worst at each instant,
or the spread) plus the single worst camera, so twenty cameras stay readable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleet.report.load import ReportError
from fleet.report.series import FPS_WINDOW_S, Run, nan_reduce, worst_camera

DEFAULT_TARGET_HIT_RATE = 0.99  # the fleet file's default; the run folder does not record it
MAX_CAMERA_LINES = 8  # more cameras than this: fleet aggregate plus the worst camera
MAX_DECISION_LABELS = 16  # more decisions than this are marked, but only these are labelled
DECISION_LABEL_ROWS = 3  # labels of close decisions are staggered over this many rows
ACTION_COLOURS = {"scale_up": "tab:green", "scale_down": "tab:orange",
                  "capacity_limited": "tab:red"}


def _pyplot() -> Any:
    """pyplot on the Agg backend: no display needed, and no matplotlib unless drawing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("matplotlib is not installed; pip install 'camfleet[bench]' "
                          "to render reports") from None
    return plt


@dataclass(frozen=True)
class _View:
    """Which cameras get their own line, and in which colour."""

    cameras: list[str]
    colours: dict[str, Any]
    aggregate: bool  # too many cameras: draw the fleet, plus `cameras` (the worst one)

    def label(self, camera: str) -> str:
        return f"worst: {camera}" if self.aggregate else camera


def _view(run: Run, plt: Any) -> _View:
    """Every camera in its own colour, or, past MAX_CAMERA_LINES, the worst one in red."""
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
    """Legend entries for the line styles, in grey: the colours already name the cameras."""
    ax.plot([], [], "--" if dashed != "p50" else ":", color="0.4", label=dashed)
    ax.plot([], [], color="0.4", label=solid)


def _plot_fps(ax: Any, run: Run, view: _View) -> None:
    """Averaged over FPS_WINDOW_S, as the per-interval rates recorded alias."""
    captured, processed = run.fps("captured"), run.fps("processed")
    if view.aggregate:
        fleet_in = nan_reduce(np.nansum, np.array(list(captured.values())))
        fleet_out = nan_reduce(np.nansum, np.array(list(processed.values())))
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
    """Per interval, fleet-wide, one line per reason in a colour that stays with the reason."""
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
    """As recorded (windowed live); zoomed to just below the lowest value or the target."""
    values = run.stack("hit_rate")
    if view.aggregate:
        ax.plot(run.t_s, nan_reduce(np.nanmin, values), color="0.25", label="fleet worst")
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
    """As recorded; many cameras: the band of all p95s behind the worst camera's lines."""
    if view.aggregate:
        p95 = run.stack("p95_ms")
        ax.fill_between(run.t_s, nan_reduce(np.nanmin, p95), nan_reduce(np.nanmax, p95),
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
    """Steps, since actor counts change at decisions; headroom above for decision labels."""
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
    """What the run was and whether its frames add up, above the panels."""
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
