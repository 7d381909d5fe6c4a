"""``camfleet report RUN``: the command, and the text summary it prints after the PNG's path.

The CLI (``fleet/cli.py``) adds the subcommand with :func:`add_parser` and runs :func:`main`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from fleet.report.load import load_run
from fleet.report.plot import DEFAULT_TARGET_HIT_RATE, render
from fleet.report.series import Run, dropped_total


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
