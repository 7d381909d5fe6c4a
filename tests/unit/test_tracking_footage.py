"""Tracking on real footage: the pedestrians of vtest.avi through the real person detector
(NanoDet) and the real tracker, in this process (no Ray: the camera actor runs the same code).

vtest.avi is View 001 of PETS 2009 S2.L1 (768x576, 795 frames at 10 fps, a campus crossing);
its published ground truth has 19 people walking through. So we expect about 19 objects. With
the defaults (chosen by ``camfleet bench mot``'s sweep) and analysed at 5 fps, NanoDet and
ByteTrack give 22 objects here: people who cross each other or walk in pairs are
sometimes split, and a few people on the far path, who are not in the ground truth, are real
objects too. The test holds the count between 0.7x and 1.6x of 19: no explosion of one-frame
objects and no tracker that merges everyone. (HOG, the person detector before NanoDet, gave
28 objects and found almost none of the people at IoU 0.5.)
"""

from __future__ import annotations

import cv2
import pytest

from fleet.config import CameraConfig, NanoDetDetectorConfig
from fleet.detectors import build_detector
from fleet.frames import Completion, DetectionResult, FrameMeta
from fleet.pipeline.tracking import ObjectTracker
from tests.conftest import VTEST

PEOPLE = 19  # PETS 2009 S2.L1 View 001 ground truth


@pytest.mark.slow
def test_the_number_of_objects_on_vtest_stays_close_to_the_people_who_walk_through(footage):
    camera = CameraConfig.model_validate({"id": "square", "source": str(VTEST), "fps": 5})
    detector = build_detector(NanoDetDetectorConfig(classes=["person"]))
    tracker = ObjectTracker(camera, "test")
    capture = cv2.VideoCapture(str(VTEST))
    events, index = [], -1
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        index += 1
        if index % 2:  # 5 of the clip's 10 fps, as fps: 5 analyses it
            continue
        meta = FrameMeta("square", index, 1000 + index / 10, frame.shape[1], frame.shape[0],
                         camera.detect_width, stream_time=index / 10)
        boxes = tuple(detector.detect(frame, meta))
        tracker.expect(meta)
        result = DetectionResult("person", "square", index, boxes, 0.0)
        events += tracker.settle(index, Completion(meta, 0.0, [result]))
    events += tracker.close()
    assert index == 794
    starts = [e for e in events if e["event"] == "start"]
    ends = [e for e in events if e["event"] == "end"]
    assert len(starts) == len(ends)
    assert 0.7 * PEOPLE <= len(starts) <= 1.6 * PEOPLE, len(starts)
