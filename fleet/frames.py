"""The records and protocols that cross module and actor boundaries.

The frozen records travel between actors and hold no pixels. ``Completion`` and the
``Dispatcher`` protocol are the seam between a camera's pipeline (``fleet.pipeline.camera``, no
Ray) and the hand-off that implements it (``actors.handoff``, Ray): both sides import them from
here. Imports no Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fleet.config import CameraConfig, SinksConfig


@dataclass(frozen=True)
class FrameMeta:
    """What a detector needs to know about a frame besides its pixels."""

    camera: str
    index: int  # captured-frame counter of the camera, from 0
    capture_time: float  # wall clock (time.time()) when the frame was read
    width: int
    height: int
    detect_width: int | None  # downscale to this width before detecting (None: native)
    put_scale: float = 1.0  # original width / width of the frame put (put_width): boxes x this
    stream_time: float | None = None  # seconds on the media's own clock (files read faster than
    # real time); None: the stream runs on the wall clock (capture_time)


@dataclass(frozen=True)
class Detection:
    """One box in original-frame pixel coordinates."""

    label: str
    x: int
    y: int
    w: int
    h: int
    score: float


@dataclass(frozen=True)
class DetectionResult:
    """A detector's answer for one frame."""

    detector: str
    camera: str
    index: int
    detections: tuple[Detection, ...]
    service_s: float  # time spent inside the detector, read to result
    actor: str = ""  # which detector actor answered (its Ray actor id)


@dataclass(frozen=True)
class SinkStats:
    """One sink of one camera. ``published == sent + queued + sum(dropped.values())``."""

    sink: str  # webhook | mqtt (push sinks) | jsonl | snapshots (files)
    published: int
    sent: int
    queued: int
    dropped: dict[str, int]  # queue_full | rejected | shutdown; files: disk_full | io_error
    retries: int
    last_error: str = ""


@dataclass(frozen=True)
class CameraStats:
    """A camera's counters at one instant. Counters are totals since the camera started.

    Invariant: ``captured == processed + sum(dropped.values()) + failed + in_flight``.
    """

    camera: str
    state: str  # starting | up | down | ended | stopped
    captured: int
    processed: int
    failed: int
    in_flight: int  # captured, not yet settled (decoding, waiting for a slot, or at a detector)
    slots_used: int  # in flight at detectors; never above ``buffers``
    dropped: dict[str, int]
    offered: int  # frames that passed the fps limit and motion gate
    admitted: int  # frames that got an in-flight slot
    buffers: int
    peak_slots_used: int
    reconnects: int
    frames_with_detections: int
    detections: dict[str, int]
    latency_s: tuple[float, ...] = ()  # end-to-end latencies since the previous snapshot
    last_error: str = ""
    time: float = 0.0  # time.time() of the snapshot
    source_fps: float = 0.0
    width: int = 0
    height: int = 0
    outstanding: dict[str, int] = field(default_factory=dict)  # frames at each detector actor
    stuck_s: float = 0.0  # how long capture has been inside one source call (the watchdog's)
    # what the per-frame audit found (fleet.pipeline.accounting)
    audit_problems: tuple[str, ...] = ()
    put_bytes: int = 0  # bytes of the last frame put into the object store (see put_width)
    puts: int = 0  # objects put into the store: one per frame, one per group with put_frames
    tracks_active: dict[str, int] = field(default_factory=dict)  # live objects per label
    object_events: dict[str, int] = field(default_factory=dict)  # object events by type
    frames_late: int = 0  # results too late for the tracker's reorder window (not tracked)
    sinks: tuple[SinkStats, ...] = ()  # the camera's push sinks (webhook, MQTT), then files
    handoffs_local: int = 0  # frames handed to a detector on the camera's node
    handoffs_remote: int = 0  # ... on another node (the frame crossed the network)
    remote_bytes: int = 0  # frame bytes those pulled across nodes
    node: str = ""  # the node the camera actor runs on
    # the end events of the live objects, should the actor die (its successor sends them)
    live_objects: tuple[dict[str, Any], ...] = ()

    @property
    def accounted(self) -> bool:
        """The counters add up, no counter is negative, and the per-frame audit agrees."""
        settled = self.processed + sum(self.dropped.values()) + self.failed
        counters = (self.captured, self.processed, self.failed, self.in_flight,
                    self.slots_used, *self.dropped.values())
        return (self.captured == settled + self.in_flight and min(counters) >= 0
                and not self.audit_problems)

    @property
    def hit_rate(self) -> float:
        return self.admitted / self.offered if self.offered else 1.0


@dataclass(frozen=True)
class DetectorStats:
    """A detector actor's counters since it started."""

    detector: str
    actor: str
    calls: int
    errors: int
    busy_s: float
    uptime_s: float
    service_s: tuple[float, ...] = field(default=())  # service times since the previous snapshot
    batch_sizes: tuple[int, ...] = ()  # frames per model call since the previous snapshot
    queue_wait_s: tuple[float, ...] = ()  # time each frame waited for its batch, likewise
    batch_size: int = 1  # the actor's max batch size now
    queued: int = 0  # frames waiting in the actor for a batch now


@dataclass
class Completion:
    """A frame whose detectors have all answered (or failed)."""

    meta: FrameMeta
    started: float  # time.monotonic() at capture
    results: list[DetectionResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lost: bool = False  # a detector actor died with the frame
    view: Callable[[], np.ndarray] | None = None  # the frame, for snapshots; valid until returned


class Dispatcher(Protocol):
    def submit(self, frame: np.ndarray, meta: FrameMeta, started: float) -> None:
        """Copy the frame once into shared memory and send it to one detector of each kind."""

    def submit_group(self, frames: np.ndarray, metas: list[FrameMeta],
                     started: list[float]) -> None:
        """Copy several frames (stacked, ``frames[i]`` is ``metas[i]``'s) once into shared
        memory as one object and send them in one call to one detector of each kind."""

    def wait(self, timeout_s: float) -> list[Completion]:
        """Frames finished since the last call, waiting up to ``timeout_s`` for the first."""

    def abandon(self) -> list[Completion]:
        """Give up on every frame still in flight (shutdown) and return them."""

    def outstanding(self) -> dict[str, int]:
        """Frames sent and not yet answered, per detector actor id."""

    def locality(self) -> tuple[int, int, int]:
        """Hand-offs so far: (to the camera's node, to another node, bytes that crossed)."""


@dataclass(frozen=True)
class CameraPlan:
    """What a camera actor is started with (and restarted with, ``resume`` then set)."""

    config: CameraConfig
    sinks: SinksConfig
    run_dir: str
    offset: int = 0  # spreads the cameras' first routing choices over the detector actors
    resume: CameraStats | None = None  # a previous actor's last counters: they go on from these
    lease_s: float = 0.0  # end the actor when its controller has not called for this long
    fleet: str = ""  # the fleet's name (in object events and MQTT topics)
