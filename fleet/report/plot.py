"""Drawing a run's five panels into one PNG, with matplotlib (imported only to draw).

Panels share one time axis, seconds since the first snapshot:

1. input and analysed fps per camera;
2. drops per second by reason, fleet-wide (rates from the cumulative counters);
3. hit-rate per camera, against the target;
4. p50 and p95 latency per camera, capture to result;
5. detector actors running against the target per kind, with every scaling decision marked.

Beyond :data:`MAX_CAMERA_LINES` cameras a panel shows the fleet (total, worst at each instant,
or the spread) plus the single worst camera, so twenty cameras stay readable.

A run with object events also gets an objects timeline (:func:`render_objects`), on the same time
axis: a lane per camera, a bar per track from first to last seen, coloured by label, with its
zone events marked. Beyond :data:`MAX_OBJECT_LANES` cameras only the busiest are drawn, and
concurrent tracks stack in up to :data:`MAX_LANE_ROWS` rows per lane.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleet.report.load import ReportError
from fleet.report.series import FPS_WINDOW_S, Objects, Run, Track, nan_reduce, worst_camera

DEFAULT_TARGET_HIT_RATE = 0.99  # the fleet file's default; the run folder does not record it
MAX_CAMERA_LINES = 8  # more cameras than this: fleet aggregate plus the worst camera
MAX_DECISION_LABELS = 16  # more decisions than this are marked, but only these are labelled
DECISION_LABEL_ROWS = 3  # labels of close decisions are staggered over this many rows
ACTION_COLOURS = {"scale_up": "tab:green", "scale_down": "tab:orange",
                  "capacity_limited": "tab:red"}
MAX_OBJECT_LANES = 12  # cameras on the objects timeline: those with the most tracks
MAX_LANE_ROWS = 6  # concurrent tracks of a camera stack in rows; beyond, they overlap
MAX_ZONE_LABELS = 30  # more zone events than this are marked, but their zones not named
ZONE_MARKERS: dict[str, dict[str, Any]] = {
    "enter": {"marker": ">", "facecolor": "white", "label": "zone enter"},
    "leave": {"marker": "<", "facecolor": "black", "label": "zone leave"},
    "loiter": {"marker": "*", "facecolor": "gold", "label": "loiter", "s": 90}}


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


# ---- the objects timeline --------------------------------------------------------------------

def objects_path(report_png: str | Path) -> Path:
    """Where the objects timeline goes: ``objects.png`` beside the default ``report.png``, else
    ``<name>-objects.png`` beside the report, so two reports in one folder keep their own."""
    report = Path(report_png)
    name = "objects.png" if report.name == "report.png" else f"{report.stem}-objects.png"
    return report.with_name(name)


def _objects(run: Run) -> Objects:
    """The run's object events, or a ReportError saying there are none to draw."""
    if run.objects is None:
        raise ReportError(f"{run.path}: no object events to draw; the run's events.jsonl has "
                          "none (a run from before tracking, or with tracking off)")
    return run.objects


def pack_rows(tracks: list[Track], max_rows: int, gap_s: float = 0.0) -> tuple[list[int], int]:
    """A row for each track (in order of first sighting) such that tracks in a row do not
    overlap, first row that fits; past ``max_rows`` rows, the row that frees first. Returns the
    rows and how many tracks had to overlap another."""
    ends: list[float] = []
    rows, overlaps = [], 0
    for t in tracks:
        row = next((i for i, end in enumerate(ends) if end + gap_s < t.first_s), None)
        if row is None and len(ends) < max_rows:
            row = len(ends)
            ends.append(t.last_s)
        elif row is None:
            row, overlaps = int(np.argmin(ends)), overlaps + 1
        ends[row] = max(ends[row], t.last_s)
        rows.append(row)
    return rows, overlaps


@dataclass(frozen=True)
class TimelineLayout:
    """Where every drawn track goes: lanes top to bottom, a y per track, what was left out."""

    lanes: list[tuple[str, float, float]]  # camera, top y, bottom y (y grows downwards)
    y: dict[tuple[str, str], float]  # (camera, track) -> its row's centre
    left_out: tuple[int, int]  # cameras, and their tracks, not drawn
    overlaps: int  # tracks drawn over another for want of rows


def timeline_layout(run: Run, gap_s: float = 0.0) -> TimelineLayout:
    """The busiest :data:`MAX_OBJECT_LANES` cameras, in the fleet file's order, each lane as tall
    as the most tracks it had at once (up to :data:`MAX_LANE_ROWS`); ``gap_s`` keeps bars in a
    row apart. Raises :class:`ReportError` for a run without object events."""
    objects = _objects(run)
    ranked = objects.cameras()
    drawn = set(ranked[:MAX_OBJECT_LANES])
    order = [c for c in [*run.cameras, *ranked] if c in drawn]
    lanes, y, top, overlaps = [], {}, 0.0, 0
    for camera in dict.fromkeys(order):
        tracks = [t for t in objects.tracks if t.camera == camera]
        rows, overlapped = pack_rows(tracks, MAX_LANE_ROWS, gap_s)
        overlaps += overlapped
        y.update({(camera, t.track): top + row + 0.5 for t, row in zip(tracks, rows, strict=True)})
        bottom = top + max(rows, default=0) + 1
        lanes.append((camera, top, bottom))
        top = bottom + 0.5  # a half row between lanes
    shown = sum(1 for t in objects.tracks if t.camera in drawn)
    return TimelineLayout(lanes, y, (len(ranked) - len(drawn), len(objects.tracks) - shown),
                          overlaps)


def _draw_tracks(ax: Any, objects: Objects, line: TimelineLayout, colours: dict[str, Any],
                 min_width_s: float) -> None:
    """One broken_barh per row, label and ended-ness: a few collections, however many tracks."""
    groups: dict[tuple[float, str, bool], list[tuple[float, float]]] = {}
    for t in objects.tracks:
        y = line.y.get((t.camera, t.track))
        if y is not None:
            width = max(t.last_s - t.first_s, min_width_s)  # one sighting still shows
            groups.setdefault((y, t.label, t.ended), []).append((t.first_s, width))
    for (y, label, ended), spans in groups.items():
        ax.broken_barh(spans, (y - 0.4, 0.8), facecolors=colours[label], alpha=0.85,
                       edgecolor="none" if ended else "tab:red", linewidth=0 if ended else 0.8,
                       hatch=None if ended else "////")


def _draw_zone_marks(ax: Any, objects: Objects, line: TimelineLayout) -> None:
    """A marker per zone event on its track's bar; the zone named when there are few."""
    marks = [(m, line.y[(m.camera, m.track)]) for m in objects.marks
             if (m.camera, m.track) in line.y]
    for event, style in ZONE_MARKERS.items():
        points = [(m.t_s, y) for m, y in marks if m.event == event]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.scatter(xs, ys, marker=style["marker"], s=style.get("s", 40),
                       facecolors=style["facecolor"], edgecolors="black", linewidths=0.8,
                       zorder=3, label=style["label"])
    if len(marks) <= MAX_ZONE_LABELS:
        for m, y in marks:
            ax.annotate(m.zone, (m.t_s, y - 0.4), xytext=(0, 1), textcoords="offset points",
                        ha="center", va="bottom", fontsize=6.5, color="0.2")


def _style_timeline(ax: Any, run: Run, objects: Objects, line: TimelineLayout) -> None:
    """Lane names on the left, lines between lanes, the report's time axis."""
    counts = {c.camera: c for c in objects.per_camera()}
    ax.set_yticks([(top + bottom) / 2 for _, top, bottom in line.lanes],
                  [f"{camera[:24]}\n{counts[camera].tracks} track(s)"
                   for camera, _, _ in line.lanes], fontsize=8)
    for _, _, bottom in line.lanes[:-1]:
        ax.axhline(bottom + 0.25, color="0.6", lw=0.8)
    ax.set_ylim(line.lanes[-1][2] + 0.1, -0.1)  # first lane on top
    lo = min([0.0, *(t.first_s for t in objects.tracks)])
    hi = max([run.duration_s, 1.0, *(t.last_s for t in objects.tracks)])
    ax.set_xlim(lo - 0.01 * (hi - lo), hi + 0.01 * (hi - lo))
    ax.set_xlabel(f"seconds since {objects.origin}")
    ax.grid(axis="x", alpha=0.3)


def _objects_title(run: Run, objects: Objects, line: TimelineLayout) -> str:
    """What is drawn, and every way the picture is incomplete."""
    events = sum(sum(n.values()) for n in objects.events.values())
    lines = [f"camfleet run {run.name}: objects timeline, {len(objects.tracks)} track(s) on "
             f"{len(objects.events)} camera(s), {events} object event(s)",
             "a bar per track from first to last seen, coloured by label; markers: zone events"]
    open_tracks = len(objects.open_tracks())
    if open_tracks:
        lines.append(f"{open_tracks} track(s) without an end event (the run was killed?): "
                     "drawn to their last event, hatched and edged in red")
    cameras, tracks = line.left_out
    if cameras:
        lines.append(f"{cameras} more camera(s) with {tracks} track(s) not drawn (only the "
                     f"{MAX_OBJECT_LANES} with the most tracks are); the summary lists all")
    if line.overlaps:
        lines.append(f"{line.overlaps} track(s) overlap others: more than {MAX_LANE_ROWS} at "
                     "once on a camera")
    return "\n".join(lines)


def _objects_legend(ax: Any, plt: Any, colours: dict[str, Any], open_tracks: bool) -> None:
    """Labels, then the zone markers (already on the axes), then the hatch of open tracks."""
    handles, names = ax.get_legend_handles_labels()
    patches = [plt.Rectangle((0, 0), 1, 1, fc=c, alpha=0.85) for c in colours.values()]
    if open_tracks:
        patches.append(plt.Rectangle((0, 0), 1, 1, fc="0.8", ec="tab:red", hatch="////"))
    ax.legend([*patches[:len(colours)], *handles, *patches[len(colours):]],
              [*colours, *names, *(["no end event"] if open_tracks else [])],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8,
              frameon=False)


def render_objects(run: Run, out_png: str | Path) -> Path:
    """Draw the run's objects timeline into a PNG at ``out_png``; returns its path.

    Raises :class:`ReportError` if the run recorded no object events (``run.objects`` is None).
    """
    objects = _objects(run)
    plt = _pyplot()
    hi = max([run.duration_s, 1.0, *(t.last_s for t in objects.tracks)])
    min_width_s = 0.002 * hi  # a track seen once is a sliver, not nothing
    line = timeline_layout(run, min_width_s)
    palette = plt.get_cmap("tab10" if len(objects.labels()) <= 10 else "tab20")
    colours = {label: palette(i % palette.N) for i, label in enumerate(objects.labels())}
    title = _objects_title(run, objects, line)
    rows = line.lanes[-1][2]
    height = min(18.0, max(4.0, 1.2 + 0.22 * title.count("\n") + 0.32 * rows))
    fig, ax = plt.subplots(figsize=(13, height), layout="constrained")
    _draw_tracks(ax, objects, line, colours, min_width_s)
    _draw_zone_marks(ax, objects, line)
    _style_timeline(ax, run, objects, line)
    _objects_legend(ax, plt, colours, bool(objects.open_tracks()))
    fig.suptitle(title, fontsize=10)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
