"""The Grafana vocabulary camfleet's dashboards are written in: PromQL, panels, variables.

Kept apart from the dashboards themselves so that every panel of every dashboard gets the same
data source, selectors, legend, units and layout, and a dashboard file reads as a list of panels.

Every selector carries ``job=~"$job", instance=~"$instance"`` (:data:`FLEET`): ``$fleet`` picks
fleets by the name in ``camfleet_fleet_info``, and the hidden ``$instance`` turns that into the
controllers' scrape instances, so several fleets can share one Prometheus. PromQL in here uses only
the metrics the controller exposes (``fleet/control/metrics.py``).
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 39  # Grafana 10.4 and 11.x; newer Grafana migrates it on load
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DEFAULT_DATASOURCE_UID = "camfleet-prometheus"  # deploy/grafana/provisioning/datasources
FLEET = 'job=~"$job", instance=~"$instance"'
CAMERA = FLEET + ', camera=~"$camera"'
FPS = "suffix: fps"
PER_S = "suffix: /s"  # events (not frames) per second
LATENCY_STEPS = [(None, "green"), (0.8, "yellow"), (1.0, "red")]  # latency_slo_ms default 1000
HIT_RATE_STEPS = [(None, "red"), (0.9, "yellow"), (0.99, "green")]  # target_hit_rate default
Json = dict[str, Any]


# ---- PromQL ---------------------------------------------------------------------------------

def sel(metric: str, scope: str, extra: str = "") -> str:
    """``metric{scope, extra}``: a selector inside the dashboard's job/instance(/camera) scope."""
    return f"{metric}{{{scope}{', ' + extra if extra else ''}}}"


def rate(metric: str, scope: str, extra: str = "") -> str:
    """Per second over ``$__rate_interval``, which Grafana keeps at least four scrapes long."""
    return f"rate({sel(metric, scope, extra)}[$__rate_interval])"


def quantile(q: float, histogram: str, scope: str, by: str = "") -> str:
    """The q-quantile of a histogram over the rate window, per ``by`` labels (all if empty)."""
    labels = f"{by}, le" if by else "le"
    buckets = rate(f"{histogram}_bucket", scope)
    return f"histogram_quantile({q}, sum by ({labels}) ({buckets}))"


def quantiles(histogram: str, scope: str, by: str = "", legend: str = "") -> list[tuple[str, str]]:
    """p50, p95 and p99 as (expr, legend) pairs."""
    return [(quantile(q, histogram, scope, by), f"{legend}p{round(q * 100)}")
            for q in (0.5, 0.95, 0.99)]


def decision_events(scope: str, target: str) -> str:
    """Scaling decisions in each step, for annotations.

    The controller exports every (action, reason, target) its pools and cameras can see at 0
    from the start, so ``increase`` sees a decision as a step up. A series that is new within the
    window with a count above 0 (a decision in the same step as its camera or pool was added)
    counts as a decision too; one new at 0 does not.
    """
    decisions = sel("camfleet_autoscaler_decisions_total", scope, f'target=~"{target}"')
    by = "sum by (action, reason, target)"
    return (f"{by} (increase({decisions}[$__rate_interval]) > 0) or "
            f"{by} ({decisions} > 0 unless {decisions} offset $__rate_interval)")


# ---- panels ---------------------------------------------------------------------------------

def target(expr: str, legend: str, ref_id: str, instant: bool = False) -> Json:
    """One query of a panel; ``instant`` for a stat that shows only the latest value."""
    return {"datasource": DATASOURCE, "editorMode": "code", "expr": expr, "instant": instant,
            "legendFormat": legend, "range": not instant, "refId": ref_id}


def thresholds(*steps: tuple[float | None, str]) -> Json:
    """Colour steps from (value, colour) pairs; the first value is None (everything below)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def _panel(kind: str, title: str, description: str, targets: list[Json]) -> Json:
    """What every panel has: the dashboard's data source variable, so one import serves all."""
    return {"datasource": DATASOURCE, "description": description, "targets": targets,
            "title": title, "type": kind}


def timeseries(title: str, description: str, queries: list[tuple[str, str]], unit: str = "short",
               **style: Any) -> Json:
    """A time series panel; ``style``: min, max, stack, steps, links, overrides."""
    custom = {
        "drawStyle": "line",
        "fillOpacity": 30 if style.get("stack") else 10,
        "lineInterpolation": "stepAfter" if style.get("steps") else "linear",
        "lineWidth": 1, "showPoints": "never", "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if style.get("stack") else "none"},
    }
    defaults: Json = {"color": {"mode": "palette-classic"}, "custom": custom,
                      "thresholds": thresholds((None, "green")), "unit": unit}
    for key in ("min", "max", "links"):
        if key in style:
            defaults[key] = style[key]
    targets = [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]
    panel = _panel("timeseries", title, description, targets)
    panel["fieldConfig"] = {"defaults": defaults, "overrides": list(style.get("overrides", []))}
    panel["options"] = {
        "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def stat(title: str, description: str, expr: str, unit: str = "none", **style: Any) -> Json:
    """A single-value panel; ``style``: steps (thresholds), legend, text_mode, instant, decimals."""
    instant = style.get("instant", False)
    panel = _panel("stat", title, description,
                   [target(expr, style.get("legend", "__auto"), "A", instant)])
    defaults: Json = {"color": {"mode": "thresholds"},
                      "thresholds": thresholds(*style.get("steps", [(None, "blue")])), "unit": unit}
    if "decimals" in style:
        defaults["decimals"] = style["decimals"]
    panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
    panel["options"] = {
        "colorMode": "value", "graphMode": "none" if instant else "area", "justifyMode": "auto",
        "orientation": "auto", "percentChangeColorMode": "standard",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showPercentChange": False, "textMode": style.get("text_mode", "auto"), "wideLayout": True,
    }
    return panel


def dashed(regex: str) -> Json:
    """A field override: series whose name matches ``regex`` drawn dashed (targets, limits)."""
    return {"matcher": {"id": "byRegexp", "options": regex},
            "properties": [{"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}}]}


def right_axis(regex: str, unit: str) -> Json:
    """A field override: series whose name matches ``regex`` on an axis of their own, on the
    right, in ``unit``: a rate drawn beside a level, such as drops beside a queue's depth."""
    return {"matcher": {"id": "byRegexp", "options": regex},
            "properties": [{"id": "custom.axisPlacement", "value": "right"},
                           {"id": "unit", "value": unit}]}


def layout(rows: list[tuple[int, list[Json]]]) -> list[Json]:
    """Panels in rows of the given height, each row's width shared evenly; ids in reading order."""
    panels: list[Json] = []
    y = 0
    for height, row in rows:
        width = 24 // len(row)
        for i, panel in enumerate(row):
            panel["gridPos"] = {"h": height, "w": width, "x": i * width, "y": y}
            panel["id"] = len(panels) + 1
            panels.append(panel)
        y += height
    return panels


# ---- variables, annotations, dashboard ------------------------------------------------------

def query_variable(name: str, label: str, query: str, **options: Any) -> Json:
    """A variable filled from Prometheus; ``options``: hide, include_all, multi, all_value."""
    variable: Json = {
        "datasource": DATASOURCE, "hide": options.get("hide", 0),
        "includeAll": options.get("include_all", True), "label": label,
        "multi": options.get("multi", True), "name": name, "options": [], "query": query,
        "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1, "type": "query",
    }
    if variable["includeAll"]:
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    if "all_value" in options:
        variable["allValue"] = options["all_value"]
    return variable


def variables(camera: bool) -> list[Json]:
    """Data source, job, fleet and the hidden instance; the camera picker on a camera view."""
    found = [
        {"current": {"selected": True, "text": DEFAULT_DATASOURCE_UID,
                     "value": DEFAULT_DATASOURCE_UID},
         "hide": 0, "includeAll": False, "label": "Data source", "multi": False,
         "name": "datasource", "options": [], "query": "prometheus", "refresh": 1, "regex": "",
         "skipUrlSync": False, "type": "datasource"},
        query_variable("job", "Job", "label_values(camfleet_fleet_info, job)", all_value=".+"),
        query_variable("fleet", "Fleet", 'label_values(camfleet_fleet_info{job=~"$job"}, fleet)',
                       all_value=".*"),
        # every instance of the chosen fleets, as a regex of their values: hidden
        query_variable("instance", "Instance",
                       'label_values(camfleet_fleet_info{job=~"$job", fleet=~"$fleet"}, instance)',
                       hide=2),
    ]
    if camera:
        found.append(query_variable(
            "camera", "Camera", f"label_values(camfleet_frames_captured_total{{{FLEET}}}, camera)",
            include_all=False, multi=False))
    return found


def scaling_annotations(buffer_target: str) -> list[Json]:
    """Grafana's own annotations plus a marker per scaling decision, so a step in a graph is
    shown next to the decision that caused it; ``buffer_target`` picks the cameras' ones."""
    builtin = {
        "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
        "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    found = [builtin]
    for name, color, scaled in (("Detector scaling", "orange", "detector:.+"),
                                ("Buffer scaling", "purple", buffer_target)):
        found.append({
            "datasource": DATASOURCE, "enable": True, "expr": decision_events(FLEET, scaled),
            "hide": False, "iconColor": color, "name": name, "step": "15s",
            "tagKeys": "action,reason", "textFormat": "reason: {{reason}}",
            "titleFormat": "{{action}} {{target}}", "useValueForTime": False,
        })
    return found


def dashboard(uid: str, title: str, description: str, panels: list[Json], camera: bool) -> Json:
    """A whole dashboard around ``panels``; the same variables, links and refresh for both."""
    return {
        "annotations": {"list": scaling_annotations("camera:$camera" if camera else "camera:.+")},
        "description": description, "editable": True, "fiscalYearStartMonth": 0,
        "graphTooltip": 1, "id": None,
        "links": [{"asDropdown": True, "icon": "external link", "includeVars": False,
                   "keepTime": True, "tags": ["camfleet"], "targetBlank": False,
                   "title": "camfleet", "tooltip": "", "type": "dashboards", "url": ""}],
        "liveNow": False, "panels": panels, "refresh": "10s", "schemaVersion": SCHEMA_VERSION,
        "tags": ["camfleet"], "templating": {"list": variables(camera)},
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m", "15m"]},
        "timezone": "browser", "title": title, "uid": uid, "version": 1, "weekStart": "",
    }
