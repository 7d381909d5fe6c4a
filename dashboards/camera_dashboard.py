"""The "camfleet / Camera" dashboard: one camera's frames, drops, latency, buffers, tracked
objects, push sinks and source.

The ``$camera`` variable picks the camera (:data:`~dashboards.grafana.CAMERA` scopes the
selectors to it); the detector pools it shares with the other cameras are shown fleet-wide.
"""

from __future__ import annotations

from dashboards.grafana import (
    CAMERA,
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


def camera_stats() -> list[Json]:
    """The headline row: is this camera up, keeping up, and on target?"""
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
    """Where this camera's frames go: fps, drops, hit-rate, admission, latency, buffers."""
    return [[
        timeseries("Input vs analysed fps", "Frames read from the source against frames "
                   "analysed by every detector, failed and dropped (all reasons).", [
                       (f"sum({rate('camfleet_frames_captured_total', CAMERA)})", "input"),
                       (f"sum({rate('camfleet_frames_processed_total', CAMERA)})", "analysed"),
                       (f"sum({rate('camfleet_frames_dropped_total', CAMERA)})", "dropped"),
                       (f"sum({rate('camfleet_frames_failed_total', CAMERA)})", "failed")], FPS),
        timeseries("Drops by reason", "fps: skipped by the fps limit; no_motion: motion gate; "
                   "no_buffer: no free slot; detector_lost: the detector actor died; "
                   "camera_lost: the camera actor died; shutdown: in flight at stop; corrupt: "
                   "the source could not decode it; too_large: over max_frame_pixels.",
                   [(f"sum by (reason) ({rate('camfleet_frames_dropped_total', CAMERA)})",
                     "{{reason}}")], FPS, stack=True),
    ], [
        timeseries("Hit-rate over time", "Admitted / offered frames over the controller's "
                   "look-back window.", [(sel("camfleet_hit_rate", CAMERA), "{{camera}}")],
                   "percentunit", min=0, max=1),
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


def camera_objects() -> list[list[Json]]:
    """This camera's tracked objects, their events, its push sinks and its late results."""
    return [[
        timeseries("Active tracks by label", "Objects this camera is tracking now, stacked by "
                   "label.",
                   [(f"sum by (label) ({sel('camfleet_tracks_active', CAMERA)})", "{{label}}")],
                   stack=True, steps=True, min=0),
        timeseries("Object events /s by type", "This camera's object events per second: "
                   "start and end of a track, update, stationary, zone enter and leave, "
                   "loiter.",
                   [(f"sum by (event) ({rate('camfleet_object_events_total', CAMERA)})",
                     "{{event}}")], PER_S, min=0),
    ], [
        timeseries("Push sinks: queue depth, sent and drops", "Events waiting in each of this "
                   "camera's push sinks (webhook, MQTT); events sent and dropped per second "
                   "(right axis), dropped by reason: queue_full (the oldest waiting event, to "
                   "make room), rejected (refused for good, e.g. HTTP 400), shutdown (still "
                   "queued when the fleet stopped); the file sinks (jsonl, snapshots) drop on "
                   "disk_full and io_error.", [
                       (f"sum by (sink) ({sel('camfleet_sink_queue_depth', CAMERA)})",
                        "{{sink}} queued"),
                       (f"sum by (sink) ({rate('camfleet_sink_sent_total', CAMERA)})",
                        "{{sink}} sent"),
                       (f"sum by (sink, reason) ({rate('camfleet_sink_dropped_total', CAMERA)})",
                        "{{sink}} dropped {{reason}}")],
                   min=0, overrides=[right_axis(".* (sent|dropped .*)", PER_S)]),
        timeseries("Late results", "Results per second that came back after the tracker "
                   "had moved past their frame (more than tracking.reorder_window results were "
                   "held behind it): counted, not tracked.",
                   [(f"sum({rate('camfleet_frames_late_total', CAMERA)})", "late")], FPS, min=0),
    ]]


def camera_health() -> list[list[Json]]:
    """Detections, the source's health, and the scaling that touched this camera."""
    decisions = sel("camfleet_autoscaler_decisions_total", FLEET,
                    'target=~"camera:$camera|detector:.+"')
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
    """"camfleet / Camera": the stats row, then the rows of graphs, eight units high."""
    rows = [(4, camera_stats())]
    rows += [(8, row) for row in camera_frames() + camera_objects() + camera_health()]
    return dashboard("camfleet-camera", "camfleet / Camera",
                     "camfleet: one camera's frames, drops, latency, buffers and source.",
                     layout(rows), camera=True)
