"""Builds camfleet's Grafana dashboards, ``dashboards/*.json``, from the panel lists below.

    python dashboards/build.py          # rewrite the JSON files
    python dashboards/build.py --check  # exit 1, naming the file, if a JSON file is out of date

The JSON files are what Grafana loads (file provisioning, or Dashboards > New > Import); this
script is where they are edited, so that every panel gets the same data source, selectors, legend,
units and layout. Edit here, run it, commit both. PromQL in here uses only the metrics the
controller exposes (``fleet/metrics.py``); ``tests/unit/test_dashboards.py`` holds it to that,
and to Grafana's own dashboard schema.

Every selector carries ``job=~"$job", instance=~"$instance"``: ``$fleet`` picks fleets by the
name in ``camfleet_fleet_info``, and the hidden ``$instance`` turns that into the controllers'
scrape instances, so several fleets can share one Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39  # Grafana 10.4 and 11.x; newer Grafana migrates it on load
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DEFAULT_DATASOURCE_UID = "camfleet-prometheus"  # deploy/grafana/provisioning/datasources
FLEET = 'job=~"$job", instance=~"$instance"'
CAMERA = FLEET + ', camera=~"$camera"'
FPS = "suffix: fps"
CAMERA_LINK = {
    "title": "Camera ${__field.labels.camera}",
    "url": "/d/camfleet-camera?var-camera=${__field.labels.camera}&${datasource:queryparam}"
           "&${job:queryparam}&${fleet:queryparam}&${__url_time_range}",
}
Json = dict[str, Any]


# ---- PromQL ---------------------------------------------------------------------------------

def sel(metric: str, scope: str, extra: str = "") -> str:
    """``metric{scope, extra}``: a selector inside the dashboard's job/instance(/camera) scope."""
    return f"{metric}{{{scope}{', ' + extra if extra else ''}}}"


def rate(metric: str, scope: str, extra: str = "") -> str:
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

    ``increase`` sees a decision only once its series exists; the controller creates the series
    with the first decision of each (action, reason, target), so a series that is new within the
    window counts as a decision too.
    """
    decisions = sel("camfleet_autoscaler_decisions_total", scope, f'target=~"{target}"')
    by = "sum by (action, reason, target)"
    return (f"{by} (increase({decisions}[$__rate_interval]) > 0) or "
            f"{by} ({decisions} unless {decisions} offset $__rate_interval)")


# ---- panels ---------------------------------------------------------------------------------

def target(expr: str, legend: str, ref_id: str, instant: bool = False) -> Json:
    return {"datasource": DATASOURCE, "editorMode": "code", "expr": expr, "instant": instant,
            "legendFormat": legend, "range": not instant, "refId": ref_id}


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def _panel(kind: str, title: str, description: str, targets: list[Json]) -> Json:
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
    panel = _panel("timeseries", title, description,
                   [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)])
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


# ---- camfleet / Fleet -----------------------------------------------------------------------

LATENCY_STEPS = [(None, "green"), (0.8, "yellow"), (1.0, "red")]  # latency_slo_ms default 1000
HIT_RATE_STEPS = [(None, "red"), (0.9, "yellow"), (0.99, "green")]  # target_hit_rate default


def fleet_stats() -> list[Json]:
    return [
        stat("Cameras up", "Cameras whose source is delivering frames.",
             f"sum({sel('camfleet_source_up', FLEET)})"),
        stat("Cameras down", "Cameras in state down (reconnecting) or crashed.",
             "sum(" + sel("camfleet_camera_state", FLEET, 'state=~"down|crashed"') + ")",
             steps=[(None, "green"), (1, "red")]),
        stat("Input fps", "Frames read from all sources per second.",
             f"sum({rate('camfleet_frames_captured_total', FLEET)})", FPS, decimals=1),
        stat("Analysed fps", "Frames every detector answered for, per second.",
             f"sum({rate('camfleet_frames_processed_total', FLEET)})", FPS, decimals=1),
        stat("Lowest hit-rate", "The worst camera's admitted / offered frames over the "
             "controller's look-back window.", f"min({sel('camfleet_hit_rate', FLEET)})",
             "percentunit", steps=HIT_RATE_STEPS, decimals=1),
        stat("Latency p95", "Capture to result, all cameras.",
             quantile(0.95, "camfleet_latency_seconds", FLEET), "s", steps=LATENCY_STEPS),
    ]


def fleet_frames() -> list[list[Json]]:
    per_camera = {"links": [CAMERA_LINK]}
    return [[
        timeseries("Fleet input vs analysed fps", "Frames read from the sources against frames "
                   "analysed by every detector, failed and dropped (all reasons).", [
                       (f"sum({rate('camfleet_frames_captured_total', FLEET)})", "input"),
                       (f"sum({rate('camfleet_frames_processed_total', FLEET)})", "analysed"),
                       (f"sum({rate('camfleet_frames_dropped_total', FLEET)})", "dropped"),
                       (f"sum({rate('camfleet_frames_failed_total', FLEET)})", "failed")], FPS),
        timeseries("Drops by reason", "fps: skipped by the fps limit; no_motion: motion gate; "
                   "no_buffer: no free slot; detector_lost; shutdown.",
                   [(f"sum by (reason) ({rate('camfleet_frames_dropped_total', FLEET)})",
                     "{{reason}}")], FPS, stack=True),
    ], [
        timeseries("Hit-rate per camera", "Admitted / offered frames over the controller's "
                   "look-back window. Below target with detector headroom: more buffers.",
                   [(sel("camfleet_hit_rate", FLEET), "{{camera}}")], "percentunit",
                   min=0, max=1, **per_camera),
        timeseries("Latency p50 / p95 / p99", "Capture to result, all cameras.",
                   quantiles("camfleet_latency_seconds", FLEET), "s"),
    ], [
        timeseries("Latency p95 per camera", "Capture to result.",
                   [(quantile(0.95, "camfleet_latency_seconds", FLEET, "camera"), "{{camera}}")],
                   "s", **per_camera),
        timeseries("Analysed fps per camera", "Frames every detector answered for.",
                   [(f"sum by (camera) ({rate('camfleet_frames_processed_total', FLEET)})",
                     "{{camera}}")], FPS, **per_camera),
    ]]


def fleet_detectors() -> list[list[Json]]:
    running = sel("camfleet_detector_actors", FLEET, 'state="running"')
    other = sel("camfleet_detector_actors", FLEET, 'state!="running"')
    return [[
        timeseries("Detector actors: current vs target", "Running, pending and draining actors "
                   "per detector kind, and the count the autoscaler wants (dashed).", [
                       (f"sum by (detector) ({running})",
                        "{{detector}} running"),
                       (f"sum by (detector, state) ({other})",
                        "{{detector}} {{state}}"),
                       (f"max by (detector) ({sel('camfleet_detector_actors_target', FLEET)})",
                        "{{detector}} target")],
                   steps=True, min=0, overrides=[dashed(".* target")]),
        timeseries("Detector utilisation", "Busy time / wall time of each kind's actors over "
                   "the look-back window.",
                   [(sel("camfleet_detector_utilisation", FLEET), "{{detector}}")],
                   "percentunit", min=0, max=1),
    ], [
        timeseries("Detector queued frames", "Frames waiting at each kind's actors.",
                   [(f"sum by (detector) ({sel('camfleet_detector_queued_frames', FLEET)})",
                     "{{detector}}")], min=0),
        timeseries("Detector service time p50 / p95", "Time inside the detector, per call.",
                   [(quantile(q, "camfleet_detector_service_seconds", FLEET, "detector"),
                     f"{{{{detector}}}} p{round(q * 100)}") for q in (0.5, 0.95)], "s"),
    ]]


def fleet_cameras() -> list[list[Json]]:
    return [[
        timeseries("Buffers per camera", "In-flight buffers each camera may use (set by the "
                   "autoscaler, dashed) and those holding a frame at the detectors.", [
                       (sel("camfleet_buffer_slots", FLEET), "{{camera}} configured"),
                       (sel("camfleet_buffer_slots_used", FLEET), "{{camera}} used")],
                   steps=True, min=0, overrides=[dashed(".* configured")]),
        timeseries("Frames in flight per camera", "Captured and not yet settled.",
                   [(sel("camfleet_frames_in_flight", FLEET), "{{camera}}")], min=0),
    ], [
        timeseries("Detections per minute by label", "Boxes found, all cameras.",
                   [(f"sum by (label) ({rate('camfleet_detections_total', FLEET)}) * 60",
                     "{{label}}")]),
        timeseries("Cameras by state", "How many cameras are in each state.",
                   [(f"sum by (state) ({sel('camfleet_camera_state', FLEET)})", "{{state}}")],
                   stack=True, steps=True, min=0),
    ], [
        timeseries("Reconnects per minute", "Times a source failed and was reopened.",
                   [(f"sum by (camera) ({rate('camfleet_reconnects_total', FLEET)}) * 60",
                     "{{camera}}")], links=[CAMERA_LINK]),
        timeseries("Failed frames per camera", "Frames that could not be decoded or that a "
                   "detector failed on.",
                   [(f"sum by (camera) ({rate('camfleet_frames_failed_total', FLEET)})",
                     "{{camera}}")], FPS, links=[CAMERA_LINK]),
    ], [
        timeseries("Scaling decisions", "Scaling actions since the controller started, by "
                   "action and target; each step is a decision (also shown as annotations).",
                   [("sum by (action, target) ("
                     + sel("camfleet_autoscaler_decisions_total", FLEET) + ")",
                     "{{action}} {{target}}")], steps=True, min=0),
        timeseries("Controller loop duration", "One control step: gather stats, decide, apply.",
                   quantiles("camfleet_controller_loop_seconds", FLEET), "s"),
    ]]


def fleet_dashboard() -> Json:
    rows = [(4, fleet_stats())]
    rows += [(8, row) for row in fleet_frames() + fleet_detectors() + fleet_cameras()]
    return dashboard("camfleet-fleet", "camfleet / Fleet",
                     "camfleet: every camera and detector pool of the chosen fleets.",
                     layout(rows), camera=False)


# ---- camfleet / Camera ----------------------------------------------------------------------

def camera_stats() -> list[Json]:
    return [
        stat("State", "The camera's current state: starting, up, down (reconnecting), ended, "
             "stopped or crashed.", f"{sel('camfleet_camera_state', CAMERA)} == 1",
             legend="{{state}}", text_mode="name", instant=True),
        stat("Input fps", "Frames read from the source per second.",
             f"sum({rate('camfleet_frames_captured_total', CAMERA)})", FPS, decimals=1),
        stat("Analysed fps", "Frames every detector answered for, per second.",
             f"sum({rate('camfleet_frames_processed_total', CAMERA)})", FPS, decimals=1),
        stat("Hit-rate", "Admitted / offered frames over the controller's look-back window.",
             f"min({sel('camfleet_hit_rate', CAMERA)})", "percentunit", steps=HIT_RATE_STEPS,
             decimals=1),
        stat("Latency p95", "Capture to result.",
             quantile(0.95, "camfleet_latency_seconds", CAMERA), "s", steps=LATENCY_STEPS),
        stat("Reconnects in range", "Times the source failed and was reopened, over the time "
             "range shown.", f"sum(increase({sel('camfleet_reconnects_total', CAMERA)}[$__range]))",
             steps=[(None, "green"), (1, "orange")], instant=True, decimals=0),
    ]


def camera_frames() -> list[list[Json]]:
    return [[
        timeseries("Input vs analysed fps", "Frames read from the source against frames "
                   "analysed by every detector, failed and dropped (all reasons).", [
                       (f"sum({rate('camfleet_frames_captured_total', CAMERA)})", "input"),
                       (f"sum({rate('camfleet_frames_processed_total', CAMERA)})", "analysed"),
                       (f"sum({rate('camfleet_frames_dropped_total', CAMERA)})", "dropped"),
                       (f"sum({rate('camfleet_frames_failed_total', CAMERA)})", "failed")], FPS),
        timeseries("Drops by reason", "fps: skipped by the fps limit; no_motion: motion gate; "
                   "no_buffer: no free slot; detector_lost; shutdown.",
                   [(f"sum by (reason) ({rate('camfleet_frames_dropped_total', CAMERA)})",
                     "{{reason}}")], FPS, stack=True),
    ], [
        timeseries("Hit-rate over time", "Admitted / offered frames over the controller's look-back "
                   "window.", [(sel("camfleet_hit_rate", CAMERA), "{{camera}}")], "percentunit",
                   min=0, max=1),
        timeseries("Offered vs admitted fps", "Offered: past the fps limit and motion gate. "
                   "Admitted: got an in-flight buffer.", [
                       (f"sum({rate('camfleet_frames_offered_total', CAMERA)})", "offered"),
                       (f"sum({rate('camfleet_frames_admitted_total', CAMERA)})", "admitted")],
                   FPS),
    ], [
        timeseries("Latency p50 / p95 / p99", "Capture to result.",
                   quantiles("camfleet_latency_seconds", CAMERA), "s"),
        timeseries("Buffers and frames in flight", "Buffers the camera may use (set by the "
                   "autoscaler, dashed), buffers holding a frame, frames not yet settled.", [
                       (sel("camfleet_buffer_slots", CAMERA), "configured"),
                       (sel("camfleet_buffer_slots_used", CAMERA), "used"),
                       (sel("camfleet_frames_in_flight", CAMERA), "in flight")],
                   steps=True, min=0, overrides=[dashed("configured")]),
    ]]


def camera_health() -> list[list[Json]]:
    decisions = sel("camfleet_autoscaler_decisions_total", FLEET, 'target=~"camera:$camera|detector:.+"')
    return [[
        timeseries("Detections per minute by label", "Boxes found in this camera's frames.",
                   [(f"sum by (label) ({rate('camfleet_detections_total', CAMERA)}) * 60",
                     "{{label}}")]),
        timeseries("Source up", "1 while the source delivers frames, 0 while down or ended.",
                   [(sel("camfleet_source_up", CAMERA), "up")], steps=True, min=0, max=1),
        timeseries("Reconnects per minute", "Times the source failed and was reopened.",
                   [(f"sum({rate('camfleet_reconnects_total', CAMERA)}) * 60", "reconnects")]),
    ], [
        timeseries("Scaling decisions", "Scaling actions since the controller started for this "
                   "camera's buffers and for the detector pools; each step is a decision.",
                   [(f"sum by (action, target) ({decisions})", "{{action}} {{target}}")],
                   steps=True, min=0),
        timeseries("Detector utilisation", "The detector pools this camera shares with the "
                   "others: busy time / wall time over the look-back window.",
                   [(sel("camfleet_detector_utilisation", FLEET), "{{detector}}")],
                   "percentunit", min=0, max=1),
    ]]


def camera_dashboard() -> Json:
    rows = [(4, camera_stats())] + [(8, row) for row in camera_frames() + camera_health()]
    return dashboard("camfleet-camera", "camfleet / Camera",
                     "camfleet: one camera's frames, drops, latency, buffers and source.",
                     layout(rows), camera=True)


DASHBOARDS = {"camfleet-fleet.json": fleet_dashboard, "camfleet-camera.json": camera_dashboard}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a JSON file differs from what this script builds")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path, text = HERE / name, render(build)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python dashboards/build.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
