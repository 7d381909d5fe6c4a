"""The "camfleet / Fleet" dashboard: every camera and detector pool of the chosen fleets.

Rows from the top: headline stats, frames (fps, drops, hit-rate, latency), tracked objects and
push sinks, the detector pools, then per-camera buffers, detections, states, reconnects and the
scaling decisions. Per-camera panels link to the "camfleet / Camera" dashboard of the camera
under the cursor.
"""

from __future__ import annotations

from dashboards.grafana import (
    FLEET,
    FPS,
    HIT_RATE_STEPS,
    LATENCY_STEPS,
    PER_S,
    Json,
    dashboard,
    dashed,
    layout,
    quantile,
    quantiles,
    rate,
    right_axis,
    sel,
    stat,
    timeseries,
)

REMOTE = 'locality="remote"'
CAMERA_LINK = {
    "title": "Camera ${__field.labels.camera}",
    "url": "/d/camfleet-camera?var-camera=${__field.labels.camera}&${datasource:queryparam}"
           "&${job:queryparam}&${fleet:queryparam}&${__url_time_range}",
}


def fleet_stats() -> list[Json]:
    """The headline row: is the fleet up, keeping up, and on target?"""
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
    """Where the frames go, fleet-wide and per camera: fps, drops, hit-rate, latency."""
    per_camera = {"links": [CAMERA_LINK]}
    return [[
        timeseries("Fleet input vs analysed fps", "Frames read from the sources against frames "
                   "analysed by every detector, failed and dropped (all reasons).", [
                       (f"sum({rate('camfleet_frames_captured_total', FLEET)})", "input"),
                       (f"sum({rate('camfleet_frames_processed_total', FLEET)})", "analysed"),
                       (f"sum({rate('camfleet_frames_dropped_total', FLEET)})", "dropped"),
                       (f"sum({rate('camfleet_frames_failed_total', FLEET)})", "failed")], FPS),
        timeseries("Drops by reason", "fps: skipped by the fps limit; no_motion: motion gate; "
                   "no_buffer: no free slot; detector_lost: the detector actor died; "
                   "camera_lost: the camera actor died; shutdown: in flight at stop; corrupt: "
                   "the source could not decode it; too_large: over max_frame_pixels.",
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


def fleet_objects() -> list[list[Json]]:
    """Tracked objects, their events, the push sinks that deliver them, and late results."""
    return [[
        timeseries("Active tracks", "Objects being tracked now, all cameras with tracking on, "
                   "stacked by label.",
                   [(f"sum by (label) ({sel('camfleet_tracks_active', FLEET)})", "{{label}}")],
                   stack=True, steps=True, min=0),
        timeseries("Object events /s", "Object events per second by type: start and end of a "
                   "track, update, stationary, zone enter and leave, loiter.",
                   [(f"sum by (event) ({rate('camfleet_object_events_total', FLEET)})",
                     "{{event}}")], PER_S, min=0),
    ], [
        timeseries("Push sinks: queue depth and drops", "Events waiting in each push sink "
                   "(webhook, MQTT), all cameras; and events dropped per second (right axis): "
                   "queue_full (the oldest waiting event, to make room), rejected (refused for "
                   "good, e.g. HTTP 400), shutdown (still queued when the fleet stopped); the "
                   "file sinks (jsonl, snapshots): disk_full, io_error.", [
                       (f"sum by (sink) ({sel('camfleet_sink_queue_depth', FLEET)})",
                        "{{sink}} queued"),
                       (f"sum by (sink, reason) ({rate('camfleet_sink_dropped_total', FLEET)})",
                        "{{sink}} dropped {{reason}}")],
                   min=0, overrides=[right_axis(".* dropped .*", PER_S)]),
        timeseries("Late results", "Results per second that came back after the tracker "
                   "had moved past their frame (more than tracking.reorder_window results were "
                   "held behind it): counted, not tracked. Steady late results: raise the window.",
                   [(f"sum by (camera) ({rate('camfleet_frames_late_total', FLEET)})",
                     "{{camera}}")], FPS, min=0, links=[CAMERA_LINK]),
    ]]


def fleet_detectors() -> list[list[Json]]:
    """The detector pools: size against the autoscaler's target, load, queue, speed."""
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
    """Per camera: buffers, detections, states, reconnects, failures; then the decisions."""
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
    ], [
        timeseries("Cross-node hand-offs per camera", "Share of a camera's frames handed to "
                   "a detector actor on another node (which pulls the whole frame over the "
                   "network instead of reading it in shared memory). Above 0: that node is "
                   "short of detector actors.",
                   [(f"sum by (camera) ({rate('camfleet_handoffs_total', FLEET, REMOTE)}) / "
                     f"sum by (camera) ({rate('camfleet_handoffs_total', FLEET)})", "{{camera}}")],
                   "percentunit", min=0, max=1, links=[CAMERA_LINK]),
        timeseries("Bytes across nodes", "Frame bytes per second that detectors on other "
                   "nodes pulled across the network, all cameras.",
                   [(f"sum({rate('camfleet_handoff_remote_bytes_total', FLEET)})", "crossed")],
                   "Bps", min=0),
        timeseries("Frames per put", "Frames a camera hands off per object-store put and "
                   "detector call (put_frames groups; 1 without). Ray's cost per object and "
                   "per call is shared among them.",
                   [(f"sum by (camera) ({rate('camfleet_frames_admitted_total', FLEET)}) / "
                     f"sum by (camera) ({rate('camfleet_puts_total', FLEET)})", "{{camera}}")],
                   min=0, links=[CAMERA_LINK]),
    ]]


def fleet_dashboard() -> Json:
    """"camfleet / Fleet": the stats row, then the rows of graphs, eight units high."""
    rows = [(4, fleet_stats())]
    rows += [(8, row) for row in
             fleet_frames() + fleet_objects() + fleet_detectors() + fleet_cameras()]
    return dashboard("camfleet-fleet", "camfleet / Fleet",
                     "camfleet: every camera and detector pool of the chosen fleets.",
                     layout(rows), camera=False)
