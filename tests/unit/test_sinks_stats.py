"""Event sinks (JSONL batching and flushing, bounded snapshots, track lines), the live feed of
object events, and the fleet stats view."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from fleet.config import SinksConfig
from fleet.control.stats import FleetSnapshot, FleetStats, format_summary, format_table
from fleet.feed import EventFeed
from fleet.frames import CameraStats, Detection, DetectionResult, FrameMeta, SinkStats
from fleet.sinks.events import EventSink
from tests.helpers import free_port


def result(boxes: int) -> DetectionResult:
    detections = tuple(Detection("face", 10 * i, 5, 20, 20, 1.5) for i in range(boxes))
    return DetectionResult("face", "cam", 7, detections, 0.01)


def test_jsonl_lines_for_frames_with_detections_are_flushed_on_close(tmp_path):
    config = SinksConfig.model_validate({"jsonl": {"flush_interval_s": 60, "frames": True}})
    sink = EventSink(config, str(tmp_path), "cam")
    meta = FrameMeta("cam", 7, 1.5, 640, 480, None)
    sink.emit(meta, [result(2)], 0.05)
    sink.emit(meta, [result(0)], 0.05)  # no detections: no line
    assert (tmp_path / "events.jsonl").read_text() == ""  # batched
    sink.close()
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "frame" and event["camera"] == "cam" and event["frame"] == 7
    assert event["detector"] == "face"
    assert event["boxes"] == [[0, 5, 20, 20], [10, 5, 20, 20]] and event["latency_ms"] == 50.0


def test_snapshots_are_bounded_and_never_draw_on_the_shared_frame(tmp_path):
    config = SinksConfig.model_validate(
        {"snapshots": {"frames": True, "max_per_camera": 2, "min_interval_s": 0, "width": 320}}
    )
    sink = EventSink(config, str(tmp_path), "cam")
    frame = np.zeros((240, 320, 3), np.uint8)
    frame.flags.writeable = False
    for i in range(5):
        sink.emit(FrameMeta("cam", i, 0.0, 320, 240, None), [result(1)], 0.01, lambda: frame)
    sink.close()
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [
        "cam-00000000.jpg", "cam-00000001.jpg"]
    assert not frame.any()


def test_an_objects_snapshot_is_a_jpeg_with_its_box_replaced_whole(tmp_path):
    config = SinksConfig.model_validate({"snapshots": {"width": 160}})
    sink = EventSink(config, str(tmp_path), "cam")
    assert sink.object_snapshots is not None
    frame = np.zeros((240, 320, 3), np.uint8)
    frame.flags.writeable = False
    box = Detection("person", 40, 40, 100, 150, 0.9)
    jpeg = sink.object_snapshots.encode(frame, FrameMeta("cam", 3, 0.0, 320, 240, None), box)
    assert jpeg is not None and jpeg[:2] == b"\xff\xd8"  # a JPEG
    path = sink.object_snapshots.save("cam-x-1", jpeg)
    assert path == "snapshots/cam/cam-x-1.jpg"
    sink.object_snapshots.save("cam-x-1", jpeg)  # a better one replaces it
    assert [p.name for p in (tmp_path / "snapshots" / "cam").iterdir()] == ["cam-x-1.jpg"]
    assert not frame.any()  # drawn on its own copy


def test_object_events_go_to_the_jsonl_file_and_frame_lines_only_when_asked(tmp_path):
    sink = EventSink(SinksConfig(), str(tmp_path), "cam")
    sink.emit(FrameMeta("cam", 7, 1.5, 640, 480, None), [result(2)], 0.05)
    sink.objects([{"type": "object", "event": "start", "camera": "cam", "track": "cam-x-1"}])
    sink.close()
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e["type"], e["event"]) for e in lines] == [("object", "start")]


TRACK_LINE = {"type": "track", "camera": "cam", "frame": 7, "time": 1.5, "track": "cam-x-1",
              "label": "person", "box": [10, 20, 30, 60], "score": 0.9, "started": False}


def test_track_lines_go_to_the_file_only_with_jsonl_tracks_and_never_to_a_push_sink(tmp_path):
    for tracks in (False, True):
        # given a camera's sinks with a webhook (nobody listens), track lines off or on
        config = SinksConfig.model_validate({
            "jsonl": {"tracks": tracks},
            "webhook": {"enabled": True, "url": f"http://127.0.0.1:{free_port()}/hook"},
        })
        sink = EventSink(config, str(tmp_path / str(tracks)), "cam")
        assert sink.track_lines is tracks  # the tracker builds them only then
        sink.tracks([TRACK_LINE])
        webhook, *files = sink.close(0.1)
        assert [s.sink for s in files] == ["jsonl", "snapshots"]  # the file sinks' counters
        # then the file has the line only with tracks: true, and the webhook never got it
        written = (tmp_path / str(tracks) / "events.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in written] == ([TRACK_LINE] if tracks else [])
        assert webhook.published == 0


def test_the_live_feed_shows_stationary_and_moving_again_and_passes_over_track_lines(tmp_path):
    def event(kind: str, stationary: bool = False) -> dict:
        return {"type": "object", "event": kind, "camera": "cam", "track": "cam-x-1",
                "label": "car", "time": 0, "score": 0.9, "stationary": stationary}

    path = tmp_path / "events.jsonl"
    lines = [event("start"), TRACK_LINE, event("update"), event("stationary", True),
             {**TRACK_LINE, "label": "object"}, event("update"), event("update"), event("end")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    shown = [line.split(" ", 4)[-1] for line in EventFeed(path).lines()]  # after the track id
    # the first update after stationary says it moves again; other updates are not shown
    assert [text.split(" (")[0] for text in shown[:3]] == ["start", "stationary", "moves again"]
    assert len(shown) == 4 and shown[3].startswith("end after")


def stats(t: float, captured: int, processed: int, latencies=()) -> CameraStats:
    return CameraStats(
        camera="cam", state="up", captured=captured, processed=processed, failed=0, in_flight=0,
        slots_used=0, dropped={"fps": captured - processed}, offered=processed, admitted=processed,
        buffers=4, peak_slots_used=1, reconnects=0, frames_with_detections=0, detections={},
        latency_s=tuple(latencies), time=t,
    )


def test_rates_and_latency_percentiles_over_the_window():
    fleet = FleetStats(window_s=10)
    fleet.update_camera(stats(100.0, 0, 0, [0.1] * 10))
    view = fleet.update_camera(stats(102.0, 60, 10, [0.2] * 10))
    assert view.input_fps == 30 and view.analysed_fps == 5
    assert 100 <= view.p50_ms <= 200 and view.p99_ms == 200
    later = fleet.update_camera(stats(120.0, 60, 10, [0.3]))  # old samples left the window
    assert later.p50_ms == 300


def test_table_and_summary_show_accounting():
    fleet = FleetStats()
    fleet.update_camera(stats(1.0, 30, 5))
    from fleet.control.stats import FleetSnapshot

    snapshot = FleetSnapshot(1.0, cameras=dict(fleet.cameras))
    assert "cam" in format_table(snapshot) and "fps=25" in format_table(snapshot)
    summary = format_summary({"cam": stats(1.0, 30, 5)})
    assert "30 =         5 +      25" in summary and "ok" in summary


def test_offered_rate_follows_a_step_within_seconds_and_hit_rate_uses_the_window():
    fleet = FleetStats(window_s=10)
    offered = admitted = 0
    view = None
    for t in range(20):  # 5 fps for 10 s, then 15 fps, half of it admitted
        step = 5 if t < 10 else 15
        offered += step
        admitted += step if t < 10 else step // 2
        s = stats(float(t), offered, admitted)
        view = fleet.update_camera(replace(s, offered=offered, admitted=admitted))
        if t == 13:
            assert view.offered_fps == 15  # three seconds after the step
    assert view is not None and view.offered_fps == 15
    assert 0.45 < view.hit_rate < 0.6  # admitted / offered over the last 10 s


def test_a_big_fleets_table_shows_the_most_troubled_cameras_and_sums_up_the_rest():
    views = {}
    for i in range(100):
        s = replace(stats(10.0, 100, 100), camera=f"cam-{i:03d}",
                    state="down" if i == 57 else "up")
        views[s.camera] = FleetStats().update_camera(s)
    snapshot = FleetSnapshot(10.0, cameras=views)
    text = format_table(snapshot, limit=10)
    rows = [line for line in text.splitlines() if line.startswith("cam-")]
    assert len(rows) == 10 and rows[0].startswith("cam-057")  # the down camera first
    assert "... and 90 more camera(s), the least troubled (90 up;" in text


# ------------------------------------------------------------------------- sink drops shown
def sink(name: str, sent: int, queued: int = 0, error: str = "", **dropped: int) -> SinkStats:
    return SinkStats(name, sent + queued + sum(dropped.values()), sent, queued, dropped, 0, error)


def sink_fleet(*cameras: tuple[str, tuple[SinkStats, ...]]) -> FleetSnapshot:
    views = {}
    for camera, sinks in cameras:
        s = replace(stats(10.0, 100, 100), camera=camera, sinks=sinks)
        views[camera] = FleetStats().update_camera(s)
    return FleetSnapshot(10.0, cameras=views)


WELL = (sink("webhook", 40, queued=2, queue_full=0), sink("jsonl", 90, disk_full=0))


def test_the_table_says_nothing_of_sinks_while_none_dropped_an_event():
    text = format_table(sink_fleet(("cam-a", WELL), ("cam-b", WELL)))
    assert "sink" not in text


def test_the_table_has_one_line_with_what_each_sink_dropped_why_and_where():
    # given: a webhook that dropped events on two cameras, and a full disk on one
    snapshot = sink_fleet(
        ("cam-a", (sink("webhook", 30, queue_full=10, rejected=2), sink("jsonl", 90))),
        ("cam-b", (sink("webhook", 30, queue_full=1), sink("jsonl", 80, disk_full=3))),
        ("cam-c", WELL))
    # then
    (line,) = [line for line in format_table(snapshot).splitlines() if "sink" in line]
    assert line == ("sink drops: webhook dropped 13 (queue_full=11 rejected=2) on cam-a, cam-b; "
                    "jsonl dropped 3 (disk_full=3) on cam-b")


def test_the_table_counts_the_cameras_when_many_dropped():
    cameras = [(f"cam-{i}", (sink("mqtt", 5, queue_full=1),)) for i in range(5)]
    text = format_table(sink_fleet(*cameras, ("cam-ok", (sink("mqtt", 5),))))
    assert "sink drops: mqtt dropped 5 (queue_full=5) on 5 of 6 cameras" in text


def test_status_has_every_sinks_totals_even_when_all_is_well():
    # given: one camera dropping webhook events, one well
    snapshot = sink_fleet(
        ("cam-a", (sink("webhook", 30, queued=4, queue_full=10, shutdown=1), sink("jsonl", 90))),
        ("cam-b", WELL))
    # when: the form camfleet status prints
    lines = [line for line in format_table(snapshot, sinks=True).splitlines() if "sink" in line]
    # then: a line per sink, sent, queued and dropped by reason; no separate drops line
    assert lines == [
        "sink webhook (2 cameras): 70 sent, 6 queued, 11 dropped (queue_full=10 shutdown=1) "
        "on cam-a",
        "sink jsonl (2 cameras): 180 sent, 0 queued, 0 dropped"]


def test_sink_lines_never_show_a_url_or_an_error():
    # given: a sink's last error holds its URL with a token, and a name that is a URL
    error = "POST https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX: timed out"
    snapshot = sink_fleet(
        ("cam-a", (sink("webhook", 1, error=error, queue_full=1),
                   sink("https://bot:hunter2@mq.example.com/x?token=abc", 1, rejected=1))))
    for text in (format_table(snapshot), format_table(snapshot, sinks=True)):
        assert "webhook dropped 1" in text or "sink webhook (1 camera): 1 sent" in text
        assert "hooks.example.com" not in text and "SECRET" not in text
        assert "hunter2" not in text and "abc" not in text
