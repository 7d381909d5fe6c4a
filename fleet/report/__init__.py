"""``camfleet report RUN``: the main panels of a finished run as one PNG, from its recorded stats.

For people who ran the CLI without Grafana. Reads only what ``camfleet run`` left in the run
folder (``stats.jsonl``, ``decisions.jsonl``, ``summary.json``), so it needs no Ray and works on a
copied folder. By job:

- :mod:`fleet.report.load`: reading and validating a run folder (:func:`load_run`);
- :mod:`fleet.report.series`: the run as time series and the figures drawn from them; rates come
  from :mod:`fleet.stats`, the live stats' own code;
- :mod:`fleet.report.plot`: the five panels (:func:`render`); matplotlib is imported only there,
  and only when drawing;
- :mod:`fleet.report.command`: the subcommand and its text summary.

>>> run = load_run("runs/demo-20261126-170512")          # doctest: +SKIP
>>> render(run, "/tmp/demo.png")                          # doctest: +SKIP
"""

from __future__ import annotations

from fleet.report.command import add_parser, main, summary_text
from fleet.report.load import ReportError, load_run
from fleet.report.plot import DEFAULT_TARGET_HIT_RATE, MAX_CAMERA_LINES, render
from fleet.report.series import (
    FPS_WINDOW_S,
    CameraSeries,
    Decision,
    DetectorSeries,
    Run,
    worst_camera,
)
from fleet.stats import windowed_rate

__all__ = [
    "DEFAULT_TARGET_HIT_RATE", "FPS_WINDOW_S", "MAX_CAMERA_LINES", "CameraSeries", "Decision",
    "DetectorSeries", "ReportError", "Run", "add_parser", "load_run", "main", "render",
    "summary_text", "windowed_rate", "worst_camera",
]
