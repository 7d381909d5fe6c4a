"""Invariant 1: one copy per frame. Inside a real DetectorActor the frame is a read-only view
whose memory lies in Ray's shared-memory object store, and the detector allocates nothing
frame-sized per call and keeps no reference to it."""

from __future__ import annotations

import functools
import time

import cv2
import numpy as np
import pytest

from actors.detector import DetectorActor
from fleet.config import FaceDetectorConfig
from fleet.frames import FrameMeta
from tests.conftest import MEGAMIND
from tests.helpers import wait_until
from tests.integration.probes import ProbeDetector, read_probes

pytestmark = pytest.mark.timeout(180)


def megamind_frames(count: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(MEGAMIND))
    frames = []
    for i in range(count * 10):
        ok, frame = cap.read()
        assert ok
        if i % 10 == 0:
            frames.append(cv2.resize(frame, size) if size else frame)
    cap.release()
    return frames


def wait_for_empty_store(plasma_objects, timeout_s: float = 10.0) -> None:
    wait_until(lambda: plasma_objects()[0] == 0, timeout_s,
               lambda: f"an empty object store ({plasma_objects()[0]} objects left)",
               interval_s=0.2)


def test_detector_reads_a_read_only_view_on_the_object_store(
    ray_ready, footage, tmp_path, plasma_objects
):
    # given a real face detector actor, probed, and 1080p-sized frames of a real clip
    factory = functools.partial(ProbeDetector, out_dir=str(tmp_path))
    actor = DetectorActor.options(num_cpus=1).remote("face", FaceDetectorConfig(), factory)
    frames = megamind_frames(5, size=(1920, 1080))
    buffer = np.empty_like(frames[0])  # the camera's reused decode buffer
    # when each frame is put once and its ObjectRef handed over
    results = []
    for i, frame in enumerate(frames):
        np.copyto(buffer, frame)
        ref = ray_ready.put(buffer)
        meta = FrameMeta("cam", i, time.time(), buffer.shape[1], buffer.shape[0], 640)
        results.append(ray_ready.get(actor.detect.remote(ref, meta)))
        del ref
    # then the detector saw read-only views whose memory is the plasma mapping
    records = read_probes(tmp_path)
    assert len(records) == 5
    for record in records:
        assert record["writeable"] is False
        assert "/dev/shm/plasma" in record["mapping"], record["mapping"]
        assert record["chain"][0] == "ndarray" and record["chain"][-1] != "ndarray"
        assert record["nbytes"] == 1080 * 1920 * 3
    # and after the first call (which sizes its own downscale buffers) nothing frame-sized is
    # allocated
    for record in records[1:]:
        assert record["peak_alloc"] < record["nbytes"] // 4, record
    # and the real detector found faces, in original-frame (upscaled) coordinates
    boxes = [d for r in results for d in r.detections]
    assert boxes and max(d.x + d.w for d in boxes) > 720
    # and it kept no reference: the store empties once the camera drops its refs
    wait_for_empty_store(plasma_objects)
    ray_ready.kill(actor)


def test_a_detector_that_keeps_frames_pins_them(ray_ready, tmp_path, plasma_objects):
    """The negative control for the test above: the check can fail."""
    factory = functools.partial(ProbeDetector, out_dir=str(tmp_path), pin=True)
    actor = DetectorActor.options(num_cpus=1).remote("face", FaceDetectorConfig(), factory)
    frame = np.zeros((720, 1280, 3), np.uint8)
    for i in range(3):
        ref = ray_ready.put(frame)
        ray_ready.get(actor.detect.remote(ref, FrameMeta("cam", i, 0.0, 1280, 720, 320)))
        del ref
    # the kept frames are still in the store 2 s on (when nothing keeps them, it empties) ...
    time.sleep(2)
    assert plasma_objects()[0] >= 3
    # ... until the actor keeping them is gone
    ray_ready.kill(actor)
    wait_for_empty_store(plasma_objects)
