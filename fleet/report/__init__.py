"""``camfleet report RUN``: the main panels of a finished run as one PNG, from its recorded stats;
and, for a run with object events, an objects timeline as a second PNG.

For people who ran the CLI without Grafana. Reads only what ``camfleet run`` left in the run
folder (``stats.jsonl``, ``decisions.jsonl``, ``summary.json``, the object events in
``events.jsonl``), so it needs no Ray and works on a copied folder. By job:

- :mod:`fleet.report.load`: reading and validating a run folder (:func:`load_run`,
  :func:`load_objects`);
- :mod:`fleet.report.series`: the run as time series and the figures drawn from them; rates come
  from :mod:`fleet.control.stats`, the live stats' own code; the object events as tracks
  (:class:`Objects`);
- :mod:`fleet.report.plot`: the five panels (:func:`render`) and the objects timeline
  (:func:`render_objects`); matplotlib is imported only there, and only when drawing;
- :mod:`fleet.report.command`: the subcommand and its text summaries.

>>> run = load_run("runs/demo-20261126-170512")          # doctest: +SKIP
>>> render(run, "/tmp/demo.png")                          # doctest: +SKIP
>>> render_objects(run, "/tmp/demo-objects.png")          # doctest: +SKIP
"""

from __future__ import annotations

from fleet.control.stats import windowed_rate
from fleet.report.command import add_parser, main, objects_text, summary_text
from fleet.report.load import EVENTS_FILE, ReportError, load_objects, load_run
from fleet.report.plot import (
    DEFAULT_TARGET_HIT_RATE,
    MAX_CAMERA_LINES,
    MAX_LANE_ROWS,
    MAX_OBJECT_LANES,
    objects_path,
    pack_rows,
    render,
    render_objects,
    timeline_layout,
)
from fleet.report.series import (
    FPS_WINDOW_S,
    CameraObjects,
    CameraSeries,
    Decision,
    DetectorSeries,
    ObjectEvent,
    Objects,
    Run,
    Track,
    ZoneMark,
    worst_camera,
)

__all__ = [
    "DEFAULT_TARGET_HIT_RATE", "EVENTS_FILE", "FPS_WINDOW_S", "MAX_CAMERA_LINES", "MAX_LANE_ROWS",
    "MAX_OBJECT_LANES", "CameraObjects", "CameraSeries", "Decision", "DetectorSeries",
    "ObjectEvent", "Objects", "ReportError", "Run", "Track", "ZoneMark", "add_parser",
    "load_objects", "load_run", "main", "objects_path", "objects_text", "pack_rows", "render",
    "render_objects", "summary_text", "timeline_layout", "windowed_rate", "worst_camera",
]
