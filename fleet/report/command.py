"""``camfleet report RUN``: the command, and the text summaries it prints after each PNG's path.

The CLI (``fleet/cli.py``) adds the subcommand with :func:`add_parser` and runs :func:`main`. It
prints the report PNG's path and the run's summary (:func:`summary_text`), then, for a run with
object events, the objects timeline's path and the objects summary (:func:`objects_text`); for a
run without, one line saying so.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from fleet.report.load import EVENTS_FILE, load_run
from fleet.report.plot import DEFAULT_TARGET_HIT_RATE, objects_path, render, render_objects
from fleet.report.series import CameraObjects, Run, Track, dropped_total

MAX_LISTED_TRACKS = 5  # tracks named in a note about incomplete tracks; the rest are counted


def _accounting(camera: str, s: dict[str, Any]) -> str:
    """One camera's final counters as the sum that must hold, and whether it does."""
    n = {k: int(s.get(k) or 0) for k in ("captured", "processed", "failed", "in_flight")}
    dropped = dropped_total(s)
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


def _objects_row(c: CameraObjects) -> str:
    """One camera's tracks, durations and events; counts in the style of the drops column."""
    labels = " ".join(f"{k}={v}" for k, v in c.by_label.items()) or "-"
    events = " ".join(f"{k}={v}" for k, v in c.events.items() if v) or "-"
    mean, peak = (f"{x:.1f}" if math.isfinite(x) else "-"
                  for x in (c.mean_duration_s, c.max_duration_s))
    return (f"  {c.camera:<16.16} {c.tracks:>6} {c.open_tracks:>6} {mean:>7} {peak:>7}  "
            f"{labels:<24} {events}")


def _listed(tracks: list[Track]) -> str:
    """The first few tracks as camera/track with when each was last seen, then how many more."""
    named = ", ".join(f"{t.camera}/{t.track} (last seen {t.last_s:.1f} s)"
                      for t in tracks[:MAX_LISTED_TRACKS])
    more = len(tracks) - MAX_LISTED_TRACKS
    return named + (f" and {more} more" if more > 0 else "")


def objects_text(run: Run) -> str:
    """The objects summary: per camera, tracks by label, mean and max duration (the tracker's
    ``duration_s``), events by type; then the tracks whose start or end is missing. One line
    for a run without object events."""
    objects = run.objects
    if objects is None:
        found = ("has no object events (a run from before tracking, or with tracking off)"
                 if (run.path / EVENTS_FILE).is_file() else "is missing")
        return f"objects: {EVENTS_FILE} {found}; no objects timeline"
    events = sum(sum(n.values()) for n in objects.events.values())
    lines = [
        (f"objects: {len(objects.tracks)} track(s) and {events} object event(s) on "
         f"{len(objects.events)} camera(s); times in seconds since {objects.origin}"),
        (f"  {'camera':<16} {'tracks':>6} {'no end':>6} {'mean s':>7} {'max s':>7}  "
         f"{'tracks by label':<24} events by type"),
        *(_objects_row(c) for c in objects.per_camera()),
    ]
    open_tracks = objects.open_tracks()
    if open_tracks:
        lines.append(f"  {len(open_tracks)} track(s) without an end event (the run was killed?), "
                     f"drawn to their last event: {_listed(open_tracks)}")
    unstarted = [t for t in objects.tracks if not t.started]
    if unstarted:
        lines.append(f"  {len(unstarted)} track(s) without a start event: {_listed(unstarted)}")
    if objects.note:
        lines.append(f"  {objects.note}")
    return "\n".join(lines)


def add_parser(sub: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    """Add ``report RUN [-o out.png]`` to the CLI's subcommands; ``handler`` runs it."""
    report = sub.add_parser("report", help="render a finished run's stats to a PNG (no Ray needed)")
    report.add_argument("run", help="run folder written by `camfleet run` (runs/<name>-<time>/)")
    report.add_argument("--output", "-o",
                        help="PNG path (default: RUN/report.png); a run with object events "
                             "also gets its objects timeline beside it (objects.png, or "
                             "NAME-objects.png for -o NAME.png)")
    report.add_argument("--target-hit-rate", type=float, default=DEFAULT_TARGET_HIT_RATE,
                        help="draw the hit-rate target here (the run folder does not record it)")
    report.set_defaults(func=handler)


def main(args: argparse.Namespace) -> int:
    """``camfleet report``: load, render, print each PNG's path and its summary.

    Raises ReportError.
    """
    run = load_run(args.run)
    out = render(run, args.output or run.path / "report.png", args.target_hit_rate)
    print(out)
    print(summary_text(run))
    if run.objects is not None:
        print(render_objects(run, objects_path(out)))
    print(objects_text(run))
    return 0
