"""Where events go: the files of the run folder (JSON lines, snapshots), and the push sinks
(webhook, MQTT: ``_push.py``) beside them."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from fleet.config._base import StrictModel
from fleet.config._push import MqttSinkConfig, WebhookSinkConfig


def _inside_run_folder(value: str) -> str:
    """Sink paths are relative and stay inside the run folder: a fleet file writes nowhere else."""
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "~")) or (len(value) > 1 and value[1] == ":"):
        raise ValueError(f"{value!r} is absolute; give a path relative to the run folder "
                         "(set output_dir or --run-dir to move the run folder itself)")
    if ".." in parts:
        raise ValueError(f"{value!r} leaves the run folder ('..'); give a path inside it")
    return value


RunPath = Annotated[str, AfterValidator(_inside_run_folder)]


class JsonlSinkConfig(StrictModel):
    enabled: bool = Field(default=True, description="Write events to a JSON-lines file.")
    path: RunPath = Field(
        default="events.jsonl", min_length=1, description="File, relative to the run folder."
    )
    objects: bool = Field(
        default=True,
        description='Object events (type "object": start, update, end, enter, leave, loiter, '
        "stationary).",
    )
    frames: bool = Field(
        default=False,
        description='Also one line per analysed frame with detections (type "frame"): many '
        "lines a second per camera; for debugging and offline analysis.",
    )
    tracks: bool = Field(
        default=False,
        description='Also one line per tracked box per analysed frame (type "track": camera, '
        "frame, time, track, label, box, score, started), after the masks and in capture "
        "order, from the frame a track is confirmed, before and after its start; for "
        "trajectories, debugging and offline analysis. Never pushed (webhook, MQTT).",
    )
    flush_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="Longest a line waits in memory."
    )
    rotate_mb: float = Field(
        default=256, ge=0, le=1_000_000,
        description="Start a new file when the file passes this size (MB): the old one becomes "
        "<path>.1 (.1 becomes .2, and so on). 0: never rotate. stats.jsonl in the run folder "
        "rotates by the same rule.",
    )
    keep_files: int = Field(
        default=5, ge=0, le=1000,
        description="Rotated files kept (<path>.1 newest ... <path>.<keep_files>); older ones "
        "are deleted. 0: a full file is deleted at rotation.",
    )
    max_pending_lines: int = Field(
        default=10_000, ge=256, le=10_000_000,
        description="Lines held in memory while the file cannot be written (a full disk); past "
        "this the oldest are dropped and counted (sink jsonl, reason disk_full). Push sinks "
        "never wait for the file.",
    )


class SnapshotSinkConfig(StrictModel):
    enabled: bool = Field(
        default=True,
        description="Save the best snapshot of every tracked object (<dir>/<camera>/<track>.jpg, "
        "its path in the object's events).",
    )
    frames: bool = Field(
        default=False,
        description="Also save frames with detections (<dir>/<camera>-<frame>.jpg), at most "
        "max_per_camera, min_interval_s apart.",
    )
    dir: RunPath = Field(
        default="snapshots", min_length=1, description="Folder, relative to the run folder."
    )
    max_per_camera: int = Field(
        default=50, ge=1, le=100_000, description="Frame snapshots kept per camera."
    )
    min_interval_s: float = Field(
        default=5.0, ge=0, le=86400, description="Least time between frame snapshots."
    )
    width: int = Field(default=640, ge=32, le=7680, description="Snapshot width (downscaled).")
    jpeg_quality: int = Field(default=85, ge=10, le=100, description="JPEG quality.")
    max_age_days: float | None = Field(
        default=None, gt=0, le=3650,
        description="Delete snapshots older than this (days, by file time). None: kept "
        "whatever their age (max_mb still applies).",
    )
    max_mb: float = Field(
        default=1024, ge=0, le=10_000_000,
        description="Disk budget of the snapshot folder (MB, all cameras of the run folder on "
        "a node together): past it the oldest snapshots are deleted first. 0: no budget.",
    )
    prune_interval_s: float = Field(
        default=60, ge=1, le=86400,
        description="How often the snapshot folder is checked against max_age_days and "
        "max_mb (seconds; once per node, whatever the number of cameras; at once after a "
        "snapshot failed for want of space).",
    )


class SinksConfig(StrictModel):
    jsonl: JsonlSinkConfig = Field(default_factory=JsonlSinkConfig, description="JSONL events.")
    snapshots: SnapshotSinkConfig = Field(default_factory=SnapshotSinkConfig, description="JPEGs.")
    webhook: WebhookSinkConfig = Field(
        default_factory=WebhookSinkConfig, description="HTTP POST of each object event."
    )
    mqtt: MqttSinkConfig = Field(
        default_factory=MqttSinkConfig, description="Object events and camera state over MQTT."
    )
