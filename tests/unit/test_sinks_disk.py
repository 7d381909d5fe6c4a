"""A full disk and files that grow for ever: the sinks stay independent and count what they
lose, recover when space returns, rotate the events and stats files, prune snapshots, and
``summary.json`` is replaced whole or not at all.

The full disk is real: a 256 KiB tmpfs, mounted for the test (as root) and filled up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from fleet.cli import _stop
from fleet.config import CameraConfig, SinksConfig
from fleet.feed import EventFeed
from fleet.frames import Completion, Detection, DetectionResult, FrameMeta
from fleet.pipeline.tracking import ObjectTracker
from fleet.report.load import load_objects, load_run
from fleet.sinks.events import EventSink
from fleet.sinks.rotation import LineLog, SnapshotPruner
from tests.conftest import REPO


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 256 KiB filesystem (tmpfs); unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"a full disk needs a small tmpfs and mounting one was refused "
                    f"({done.stderr.strip() or done.returncode}): run as root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill the filesystem to the last byte; the filler file, to delete for space again."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 4096)
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0")
    return filler


class RecordingPush:
    """A push sink that keeps what it is handed (the real ones have test_push.py)."""

    name = "recording"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def stats(self) -> Any:
        n = len(self.events)
        return SimpleNamespace(sink=self.name, published=n, sent=n, queued=0, dropped={},
                               retries=0, last_error="")

    def close(self, timeout_s: float) -> Any:
        return self.stats()

    def set_state(self, state: str) -> None:
        pass


def object_event(n: int, kind: str = "start") -> dict[str, Any]:
    return {"type": "object", "event": kind, "camera": "cam", "track": f"cam-x-{n}",
            "label": "person", "time": 1000.0 + n, "first_seen": 1000.0 + n,
            "last_seen": 1000.0 + n, "score": 0.9, "snapshot": None}


def sinks(**jsonl: Any) -> SinksConfig:
    return SinksConfig.model_validate({"jsonl": jsonl, "snapshots": {"enabled": False}})


def stats_of(sink: EventSink, name: str) -> Any:
    return next(s for s in sink.push_stats() if s.sink == name)


def test_a_full_disk_stops_no_push_sink_and_every_line_it_loses_is_counted(small_disk):
    # given a camera's sinks writing to a disk that is full, and a push sink
    sink = EventSink(sinks(flush_interval_s=0.01, max_pending_lines=300), str(small_disk), "cam")
    push = RecordingPush()
    sink.push = [push]  # type: ignore[list-item]
    fill(small_disk)
    # when 2,000 object events come
    for n in range(2000):
        sink.objects([object_event(n)])
    # then the push sink got every one, and the file sink counts what it could not write
    assert len(push.events) == 2000
    jsonl = stats_of(sink, "jsonl")
    assert jsonl.published == 2000 == jsonl.sent + jsonl.queued + sum(jsonl.dropped.values())
    assert jsonl.queued <= 300 and jsonl.dropped["disk_full"] >= 1700
    assert "No space left" in jsonl.last_error
    final = {s.sink: s for s in sink.close(0.1)}
    assert final["jsonl"].queued == 0  # at close, what could not be written is dropped
    assert final["jsonl"].sent + final["jsonl"].dropped["disk_full"] == 2000


def test_20000_lines_under_a_full_disk_stay_bounded_in_memory_and_cheap(small_disk):
    sink = EventSink(sinks(max_pending_lines=1000), str(small_disk), "cam")
    fill(small_disk)
    started = time.perf_counter()
    for n in range(20_000):
        sink.objects([object_event(n)])
    took = time.perf_counter() - started
    print(f"20,000 adds under a full disk: {took * 1000:.0f} ms")  # ~0.1 s; it was 20 s
    jsonl = stats_of(sink, "jsonl")
    # at most max_pending_lines held; the oldest dropped and counted; few write attempts
    assert jsonl.queued == 1000 and jsonl.dropped["disk_full"] == 19_000 - jsonl.sent
    assert jsonl.retries <= 5  # not one failed write per add
    sink.close(0.1)


def test_lines_are_written_again_when_space_returns_and_none_is_torn(small_disk):
    sink = EventSink(sinks(flush_interval_s=0.05), str(small_disk), "cam")
    sink.objects([object_event(0)])
    sink.tick()
    filler = fill(small_disk)
    os.truncate(filler, filler.stat().st_size - 4096)  # room for a page: a write cut short
    for n in range(1, 400):
        sink.objects([object_event(n)])
    assert stats_of(sink, "jsonl").retries >= 1
    filler.unlink()  # space again
    time.sleep(0.1)
    sink.objects([object_event(400)])
    sink.tick()
    jsonl = stats_of(sink, "jsonl")
    assert jsonl.queued == 0 and jsonl.sent + sum(jsonl.dropped.values()) == 401
    lines = (small_disk / "events.jsonl").read_text().splitlines()
    tracks = [json.loads(line)["track"] for line in lines]  # every line whole
    assert tracks[-1] == "cam-x-400" and len(tracks) == jsonl.sent
    sink.close(0.1)


def sighting(index: int) -> Completion:
    meta = FrameMeta("cam", index, 1000.0 + index / 10, 640, 480, None)
    box = Detection("person", 200, 100, 120, 240, 0.9)
    done = Completion(meta, 0.0, [DetectionResult("person", "cam", index, (box,), 0.01)])
    frame = np.full((480, 640, 3), 128, np.uint8)
    done.view = lambda: frame
    return done


def test_a_snapshot_that_cannot_be_saved_still_sends_the_objects_events(small_disk):
    # given a tracker whose snapshots go to a full disk
    config = SinksConfig.model_validate({"jsonl": {"enabled": False}})
    sink = EventSink(config, str(small_disk), "cam")
    camera = CameraConfig.model_validate({"id": "cam", "source": "synthetic",
                                          "detect": ["person"]})
    tracker = ObjectTracker(camera, "f", sink.object_snapshots)
    fill(small_disk)
    # when a person is seen for 30 frames
    events = []
    for index in range(30):
        tracker.expect(sighting(index).meta)
    for index in range(30):
        events += tracker.settle(index, sighting(index))
    events += tracker.close()
    # then it starts and ends, with no snapshot, and the failed saves are counted
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert all(e["snapshot"] is None for e in events)
    snapshots = stats_of(sink, "snapshots")
    assert snapshots.sent == 0 and snapshots.dropped["disk_full"] == snapshots.published >= 1
    assert not list((small_disk / "snapshots" / "cam").glob("*.jpg*"))  # no half a JPEG
    sink.close(0.1)


def test_the_events_file_rotates_and_the_feed_and_the_report_follow(tmp_path):
    # given a small rotation size, and the live feed following the file
    sink = EventSink(sinks(rotate_mb=0.002, keep_files=2, flush_interval_s=60), str(tmp_path),
                     "cam")
    feed = EventFeed(tmp_path / "events.jsonl", limit=10_000)
    shown = []
    # when events come in batches, the feed reading between them
    for n in range(0, 200, 10):
        sink.objects([object_event(i) for i in range(n, n + 10)])
        sink.jsonl.flush()  # type: ignore[union-attr]
        shown += feed.lines()
    sink.close(0.1)
    shown += feed.lines()
    # then the file rotated, keeping 2 older parts, each about the rotation size
    names = sorted(p.name for p in tmp_path.glob("events.jsonl*") if not p.name.endswith("lock"))
    assert names == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert all((tmp_path / name).stat().st_size < 2000 + 10 * 300 for name in names)
    # the feed showed every event once, through every rotation
    assert [line.split(" ")[3] for line in shown] == [f"cam-x-{i}" for i in range(200)]
    # and the report reads the kept parts, oldest first
    objects = load_objects(tmp_path)
    assert objects is not None
    tracks = [int(t.track.rsplit("-", 1)[1]) for t in objects.tracks]
    assert tracks == sorted(tracks) and tracks[-1] == 199 and len(tracks) > 20


def test_the_report_reads_a_rotated_stats_file_whole(tmp_path):
    demo = REPO / "tests/unit/fixtures/runs/demo-4cams"
    whole = load_run(demo)
    run = tmp_path / "run"
    shutil.copytree(demo, run)
    lines = (run / "stats.jsonl").read_text().splitlines(keepends=True)
    (run / "stats.jsonl").unlink()
    log = LineLog(run / "stats.jsonl", rotate_bytes=len("".join(lines)) // 3, keep_files=10)
    for line in lines:
        log.write(json.loads(line))
    log.close()
    assert (run / "stats.jsonl.2").is_file()
    split = load_run(run)
    assert list(split.t_s) == list(whole.t_s) and split.start_time == whole.start_time


def old_jpeg(folder: Path, name: str, age_s: float, size: int = 100_000) -> Path:
    path = folder / name
    path.write_bytes(b"\xff" * size)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_snapshots_are_pruned_oldest_first_by_age_and_by_budget(tmp_path):
    folder = tmp_path / "snapshots"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    ancient = old_jpeg(folder / "a", "t1.jpg", 10 * 86400)
    ages = {old_jpeg(folder / ("a" if i % 2 else "b"), f"t{i}.jpg", 3600 * (10 - i)): i
            for i in range(2, 10)}  # 8 x 100 kB, newest last
    pruner = SnapshotPruner(folder, max_age_days=7, max_mb=0.5, interval_s=60)
    assert pruner.prune() == 1 + 3  # the 10-day-old one, then the oldest down to 500 kB
    assert not ancient.exists()
    kept = sorted(ages[p] for p in ages if p.exists())
    assert kept == [5, 6, 7, 8, 9]
    assert pruner.prune() == 0  # another camera of the node just checked: nothing to do


def test_pruning_is_checked_at_most_every_interval_not_per_frame(tmp_path):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    pruner = SnapshotPruner(folder, max_age_days=None, max_mb=1, interval_s=60)
    pruner.next_check = 0.0
    pruner.maybe_prune()
    assert pruner.thread is not None
    pruner.thread.join(5)
    first = pruner.thread
    for _ in range(1000):
        pruner.maybe_prune()
    assert pruner.thread is first  # no second scan within the interval


def test_summary_json_is_replaced_whole_or_left_as_it_was(small_disk, capsys):
    # given a run folder whose summary the controller wrote, on a disk that then fills up
    (small_disk / "summary.json").write_text('{"cam": {"captured": 1}}\n')
    fill(small_disk)
    from tests.unit.test_sinks_stats import stats
    big = replace(stats(1.0, 10, 10), last_error="x" * 300_000)  # more than the disk holds
    fleet = SimpleNamespace(stop=lambda timeout_s: {"cam": big})
    config = SimpleNamespace(drain_timeout_s=1.0)
    # when the command writes its summary at the end
    assert _stop(fleet, config, small_disk, SimpleNamespace(signal=None)) is True
    # then the old summary is whole, no temporary file is left, and the command said why
    assert json.loads((small_disk / "summary.json").read_text()) == {"cam": {"captured": 1}}
    assert [p.name for p in small_disk.iterdir() if p.name != "filler"] == ["summary.json"]
    assert "summary.json could not be written" in capsys.readouterr().err


def test_a_file_size_limit_counts_as_a_full_disk(tmp_path):
    """EFBIG (RLIMIT_FSIZE), in a child process: the same disk_full reason as ENOSPC."""
    code = f"""
import resource, signal, json
from fleet.config import SinksConfig
from fleet.sinks.events import EventSink
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
sink = EventSink(SinksConfig.model_validate({{"snapshots": {{"enabled": False}}}}),
                 {str(tmp_path)!r}, "cam")
for n in range(200):
    sink.objects([{{"type": "object", "event": "start", "track": "t" * 100, "n": n}}])
(jsonl,) = sink.close(0.1)
print(json.dumps([jsonl.published, jsonl.sent, jsonl.dropped]))
"""
    done = subprocess.run([str(REPO / ".venv/bin/python"), "-c", code], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    published, sent, dropped = json.loads(done.stdout.strip().splitlines()[-1])
    assert published == 200 and 0 < sent < 200 and dropped["disk_full"] == 200 - sent
