"""The PromQL of camfleet's Grafana dashboards, ready to send to a real Prometheus.

``dashboard_queries()`` returns every query of every dashboard in ``dashboards/`` with Grafana's
template variables filled in; ``METRICS`` is the metric contract of the controller's ``/metrics``
endpoint (``fleet/control/metrics.py``) that the dashboards may use; ``metric_names`` and
``label_names`` read the metric and label names out of an expression.

    >>> from tests.dashboards.queries import dashboard_queries
    >>> for dashboard, panel, expr in dashboard_queries(camera="gate-1"):
    ...     ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"

# metric name -> its labels, as fleet/control/metrics.py exposes them (the scrape adds job and
# instance)
_COUNTERS = {
    "camfleet_object_events_total": {"camera", "event"},
    "camfleet_handoffs_total": {"camera", "locality"},
    "camfleet_handoff_remote_bytes_total": {"camera"},
    "camfleet_puts_total": {"camera"},
    "camfleet_frames_late_total": {"camera"},
    "camfleet_sink_sent_total": {"camera", "sink"},
    "camfleet_sink_dropped_total": {"camera", "sink", "reason"},
    "camfleet_frames_captured_total": {"camera"},
    "camfleet_frames_processed_total": {"camera"},
    "camfleet_frames_failed_total": {"camera"},
    "camfleet_frames_dropped_total": {"camera", "reason"},
    "camfleet_frames_offered_total": {"camera"},
    "camfleet_frames_admitted_total": {"camera"},
    "camfleet_reconnects_total": {"camera"},
    "camfleet_detections_total": {"camera", "label"},
    "camfleet_autoscaler_decisions_total": {"action", "reason", "target"},
}
_GAUGES = {
    "camfleet_tracks_active": {"camera", "label"},
    "camfleet_sink_queue_depth": {"camera", "sink"},
    "camfleet_frames_in_flight": {"camera"},
    "camfleet_buffer_slots": {"camera"},
    "camfleet_buffer_slots_used": {"camera"},
    "camfleet_hit_rate": {"camera"},
    "camfleet_source_up": {"camera"},
    "camfleet_camera_state": {"camera", "state"},
    "camfleet_detector_actors": {"detector", "state"},
    "camfleet_detector_actors_target": {"detector"},
    "camfleet_detector_utilisation": {"detector"},
    "camfleet_detector_queued_frames": {"detector"},
    "camfleet_fleet_info": {"fleet"},
}
HISTOGRAMS = {
    "camfleet_latency_seconds": {"camera"},
    "camfleet_detector_service_seconds": {"detector"},
    "camfleet_controller_loop_seconds": set(),
}
SCRAPE_LABELS = frozenset({"job", "instance"})


def _series() -> dict[str, frozenset[str]]:
    found = {name: frozenset(labels) for name, labels in {**_COUNTERS, **_GAUGES}.items()}
    for name, labels in HISTOGRAMS.items():
        found[f"{name}_bucket"] = frozenset(labels | {"le"})
        found[f"{name}_sum"] = found[f"{name}_count"] = frozenset(labels)
    return found


#: every series name a query may select, with the labels it carries besides job and instance
METRICS: dict[str, frozenset[str]] = _series()

#: what Grafana's own variables become: a rate window that holds several 5 s scrapes
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "1m", "__interval_ms": "60000",
                     "__range": "1h", "__range_s": "3600", "__range_ms": "3600000"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)\]\]")


class Query(NamedTuple):
    dashboard: str  # the dashboard's title
    panel: str  # the panel's title; "variable $name" or "annotation: name" for those
    expr: str


def load_dashboards(folder: Path = DASHBOARDS) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` in ``folder`` by file name, parsed."""
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def variables_in(expr: str) -> set[str]:
    """Names of the template variables an expression uses.

    Grafana writes them as ``$x``, ``${x}``, ``${x:fmt}`` or ``[[x]]``.
    """
    return {next(g for g in match.groups() if g) for match in _VARIABLE.finditer(expr)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every template variable replaced from ``values`` or ``GRAFANA_VARIABLES``."""
    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name in values:
            return values[name]
        if name in GRAFANA_VARIABLES:
            return GRAFANA_VARIABLES[name]
        raise KeyError(f"no value for template variable ${name} in {expr!r}")
    return _VARIABLE.sub(replace, expr)


def variable_values(camera: str | None = None) -> dict[str, str]:
    """Values for the dashboards' variables: every job, fleet and instance; ``camera`` or all.

    Variables sit inside regex matchers (``camera=~"$camera"``), so a camera id is escaped for
    RE2 and then for a PromQL string.
    """
    one = re.escape(camera).replace("\\", "\\\\") if camera else ".+"
    return {"datasource": "", "job": ".+", "fleet": ".*", "instance": ".+", "camera": one}


def _label_values_to_promql(query: str) -> str:
    """``label_values(selector, label)`` as the PromQL that has the same label values."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query)
    if not match:
        raise ValueError(f"not a label_values(selector, label) query: {query!r}")
    selector, label = match.groups()
    return f"group by ({label}) ({selector})"


def raw_queries(dashboard: Mapping[str, Any], annotations: bool = True,
                variables: bool = True) -> Iterator[Query]:
    """Every query of one dashboard as written, template variables and all."""
    title = dashboard["title"]
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            yield Query(title, panel.get("title", ""), target.get("expr", ""))
    if variables:
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable["query"]
                query = query["query"] if isinstance(query, dict) else query
                yield Query(title, f"variable ${variable['name']}", _label_values_to_promql(query))
    if annotations:
        for annotation in dashboard.get("annotations", {}).get("list", []):
            if "expr" in annotation:
                yield Query(title, f"annotation: {annotation['name']}", annotation["expr"])


def dashboard_queries(camera: str | None = None, *, annotations: bool = False,
                      variables: bool = True, folder: Path = DASHBOARDS) -> list[Query]:
    """Every (dashboard, panel title, expr) of the shipped dashboards, variables substituted.

    ``$job``, ``$instance`` match everything, ``$fleet`` too, ``$camera`` matches ``camera`` or
    every camera, ``$__rate_interval``/``$__interval`` are ``1m`` and ``$__range`` is ``1h``.
    Each expression is plain PromQL for ``/api/v1/query``.

    ``variables``: also the dashboards' ``label_values(selector, label)`` variable queries, as
    ``group by (label) (selector)``; each returns a series when the variable has values.
    ``annotations``: also the scaling-decision annotation queries. Off by default: they select
    only steps where a decision happened, so they are rightly empty most of the time.
    """
    values = variable_values(camera)
    return [
        Query(query.dashboard, query.panel, substitute(query.expr, values))
        for dashboard in load_dashboards(folder).values()
        for query in raw_queries(dashboard, annotations, variables)
    ]


# ---- reading names out of PromQL ------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>\[[^\]]*\])
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<variable>\$\{?\w+(?::[\w-]+)?\}?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<punct>[{}(),]|[=!]~|[=!<>]=?|[-+*/%^])
  | (?P<space>\s+)
""", re.VERBOSE)
_AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                 "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
_LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = _LABEL_LIST_KEYWORDS | {"and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"}


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if not match:
            raise ValueError(f"cannot read {expr[position:]!r} in {expr!r}")
        if match.lastgroup != "space":
            tokens.append((match.lastgroup or "", match.group()))
        position = match.end()
    return tokens


def _walk(expr: str) -> Iterator[tuple[str, str, str | None]]:
    """(kind, name, metric) for every metric and label name: kind is "metric", "matcher" (a
    label in ``metric{...}``, with that metric) or "grouping" (in ``by (...)``, ``on (...)``)."""
    tokens = _tokens(expr)
    metric: str | None = None
    context = "expr"
    for i, (kind, text) in enumerate(tokens):
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if text == "{":
            context = "matcher"
        elif text == "}":
            context, metric = "expr", None
        elif text == ")" and context == "grouping":
            context = "expr"
        elif kind != "ident":
            continue
        elif context == "matcher":
            yield context, text, metric
        elif context == "grouping":
            yield context, text, None
        elif text in _LABEL_LIST_KEYWORDS and following == "(":
            context = "grouping"
        elif text in _KEYWORDS or text in _AGGREGATIONS or following == "(":
            continue
        else:
            metric = text
            yield "metric", text, None


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects."""
    return {name for kind, name, _ in _walk(expr) if kind == "metric"}


def label_names(expr: str) -> list[tuple[str, str | None]]:
    """(label, metric) for every label in a matcher (``metric{label=...}``) and (label, None)
    for every label in a grouping (``by (label)``, ``on (label)``)."""
    return [(name, metric) for kind, name, metric in _walk(expr) if kind != "metric"]
