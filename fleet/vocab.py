"""The words camfleet counts and reports with, each list in one place: object event kinds,
why a frame was dropped, why a sink lost an event. Metrics export every value at 0 from the
start, the config validates against them, and the reports print them in this order.

Each is a ``StrEnum``, so a member is its string (``EventKind.START == "start"``) and goes
into JSON, metric labels and YAML as is; the tuples are the same values in order.
"""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    """An object's lifecycle (tracking) and its zones (``fleet.pipeline.zones``)."""

    START = "start"
    UPDATE = "update"
    END = "end"
    ENTER = "enter"
    LEAVE = "leave"
    LOITER = "loiter"
    STATIONARY = "stationary"


class FrameDrop(StrEnum):
    """Why a captured frame was not analysed (``camfleet_frames_dropped_total{reason}``)."""

    FPS = "fps"  # over the camera's analysis rate
    NO_MOTION = "no_motion"  # the motion gate saw nothing move
    NO_BUFFER = "no_buffer"  # every in-flight buffer busy (drop_policy)
    DETECTOR_LOST = "detector_lost"  # its detector actor died with it in flight
    CAMERA_LOST = "camera_lost"  # the camera actor died with it in flight
    SHUTDOWN = "shutdown"  # in flight when the drain timed out
    CORRUPT = "corrupt"  # could not be decoded
    TOO_LARGE = "too_large"  # over max_frame_pixels


class SinkDrop(StrEnum):
    """Why a sink lost an event (``camfleet_sink_dropped_total{reason}``)."""

    QUEUE_FULL = "queue_full"  # push sinks: the queue was full, the oldest went
    REJECTED = "rejected"  # push sinks: the receiver refused it for good
    SHUTDOWN = "shutdown"  # push sinks: still queued when the close deadline passed
    DISK_FULL = "disk_full"  # files: no space left
    IO_ERROR = "io_error"  # files: any other write error


EVENT_KINDS: tuple[str, ...] = tuple(e.value for e in EventKind)
FRAME_DROPS: tuple[str, ...] = tuple(e.value for e in FrameDrop)
PUSH_DROPS: tuple[str, ...] = ("queue_full", "rejected", "shutdown")
FILE_DROPS: tuple[str, ...] = ("disk_full", "io_error")
SINK_DROPS: tuple[str, ...] = PUSH_DROPS + FILE_DROPS
assert set(SINK_DROPS) == {e.value for e in SinkDrop}
