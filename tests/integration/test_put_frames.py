"""put_frames on real Ray: several frames of a camera in one object and one call. Each frame is
still a read-only view on the object store, gets the same detections as when it comes alone,
fails alone, and the whole fleet path keeps every frame accounted for."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from actors.detector import DetectorActor
from actors.handoff import RayDispatcher
from fleet.config import FaceDetectorConfig
from fleet.frames import FrameMeta
from tests.conftest import MEGAMIND
from tests.integration.probes import ProbeDetector, read_probes
from tests.integration.test_pipeline import run_until, start_fleet
from tests.integration.test_zero_copy import megamind_frames, wait_for_empty_store

pytestmark = pytest.mark.timeout(180)


class FailsOn:
    """A real face detector that fails on one frame index (a bad frame)."""

    def __init__(self, config, index: int):
        from fleet.detectors import build_detector

        self.inner, self.index = build_detector(config), index
        self.label = self.inner.label

    def detect(self, frame, meta):
        if meta.index == self.index:
            raise ValueError(f"planted failure on frame {meta.index}")
        return self.inner.detect(frame, meta)


def collect(dispatcher: RayDispatcher, count: int, timeout_s: float = 60.0) -> dict:
    done, deadline = {}, time.monotonic() + timeout_s
    while len(done) < count and time.monotonic() < deadline:
        for completion in dispatcher.wait(0.5):
            done[completion.meta.index] = completion
    assert len(done) == count, f"{len(done)} of {count} frames finished"
    return done


def metas(count: int, frame: np.ndarray) -> list[FrameMeta]:
    return [FrameMeta("cam", i, time.time(), frame.shape[1], frame.shape[0], 640)
            for i in range(count)]


def test_a_group_gives_each_frame_a_view_and_the_same_detections_as_alone(
    ray_ready, footage, tmp_path, plasma_objects
):
    # given a real face detector actor, probed, and 4 frames of a real clip at 1080p
    factory = functools.partial(ProbeDetector, out_dir=str(tmp_path))
    actor = DetectorActor.options(num_cpus=1).remote("face", FaceDetectorConfig(), factory)
    frames = megamind_frames(4, size=(1920, 1080))
    stack = np.stack(frames)  # the camera's group buffer
    dispatcher = RayDispatcher({"face": [actor]})
    # when the 4 go as one object, then each alone
    dispatcher.submit_group(stack, metas(4, frames[0]), [time.monotonic()] * 4)
    grouped = collect(dispatcher, 4)
    alone = {}
    for i, meta in enumerate(metas(4, frames[0])):
        dispatcher.submit(frames[i], meta, time.monotonic())
        alone.update(collect(dispatcher, 1))
    # then each frame got its own result, the same boxes either way
    for i in range(4):
        assert not grouped[i].errors and grouped[i].results
        assert grouped[i].results[0].detections == alone[i].results[0].detections
    assert sum(len(alone[i].results[0].detections) for i in range(4)) > 0
    # and the detector saw 8 read-only views of one frame each, on the plasma mapping
    records = read_probes(tmp_path)
    assert len(records) == 8
    for record in records:
        assert record["writeable"] is False and record["nbytes"] == 1080 * 1920 * 3
        assert "/dev/shm/plasma" in record["mapping"], record["mapping"]
    # and the snapshot view of a grouped frame is that frame, from the store
    view = grouped[2].view()
    assert view.shape == frames[2].shape and np.array_equal(view, frames[2])
    del view, grouped, alone
    wait_for_empty_store(plasma_objects)  # nothing keeps the group once its frames are done
    ray_ready.kill(actor)


def test_a_frame_that_fails_in_a_group_fails_alone(ray_ready, footage):
    factory = functools.partial(FailsOn, index=1)
    actor = DetectorActor.options(num_cpus=1).remote("face", FaceDetectorConfig(), factory)
    frames = megamind_frames(3, size=(1280, 720))
    dispatcher = RayDispatcher({"face": [actor]})
    dispatcher.submit_group(np.stack(frames), metas(3, frames[0]), [time.monotonic()] * 3)
    done = collect(dispatcher, 3)
    assert done[1].errors and "planted failure on frame 1" in done[1].errors[0]
    assert not done[0].errors and not done[2].errors
    assert done[0].results and done[2].results and not done[1].lost
    ray_ready.kill(actor)


def test_a_fleet_with_put_frames_analyses_every_frame_of_a_file(ray_ready, footage, tmp_path):
    # given a file read as fast as possible, grouped 4 frames a put, two detector actors
    controller = start_fleet(f"""
cameras:
  - {{id: faces, source: {{type: file, path: {MEGAMIND}, loop: false, realtime: false}},
     fps: 30, buffers: 8, put_frames: 4, detect: [face]}}
detectors:
  face: {{actors: 2, num_cpus: 0.5}}
""", tmp_path)
    run_until(controller, lambda s: controller.ended(), timeout_s=120)
    final = controller.stop()["faces"]
    # then nothing of a file that is not live is lost, in fewer puts than frames
    assert final.accounted and final.state == "ended"
    assert final.captured == 270 and final.processed == 270 and final.dropped == {}
    assert final.puts < 270 / 2  # mostly groups of 4
    assert final.detections.get("face", 0) > 20


def test_groups_keep_the_camera_within_its_buffers_and_the_store_bounded(
    ray_ready, tmp_path, plasma_objects
):
    # given a detector far slower than a 30 fps 1080p camera grouping 4 frames, 8 buffers
    from actors.detector import DetectorActor as Actor
    from tests.integration.probes import ProbedDetectorActor

    slow = functools.partial(ProbeDetector, out_dir=str(tmp_path), delay_s=0.1)
    controller = start_fleet("""
defaults: {buffers: 8, put_frames: 4, fps: 30, detect_width: 320, drop_policy: drop_newest}
cameras:
  - {id: cam, source: {type: synthetic, width: 1920, height: 1080, fps: 30}}
detectors:
  face: {actors: 1, num_cpus: 0.5}
""", tmp_path, ProbedDetectorActor(Actor, slow))
    samples = []
    for _ in range(12):
        time.sleep(0.5)
        controller.collect()
        samples.append(plasma_objects())
    final = controller.stop()["cam"]
    # then the camera never had more than its buffers in flight, and dropped the rest
    assert final.peak_slots_used <= 8 and final.dropped.get("no_buffer", 0) > 0
    assert final.accounted and final.puts < final.admitted
    # and the store held whole groups only while their frames were out: at most the frames in
    # flight rounded up to groups, plus what the tracker holds in capture order (<= buffers)
    frame_mib = 1920 * 1080 * 3 / 2**20
    for _, mib in samples:
        assert mib <= (8 + 4 + 8) * frame_mib + 1, samples
