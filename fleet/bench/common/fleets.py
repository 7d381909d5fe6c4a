"""The one fleet builder of the benchmarks: FleetConfig objects, never YAML text.

A mode describes its scenario as a fleet file would (cameras, detectors, the other sections, as
plain dicts) and gets a validated :class:`fleet.config.FleetConfig` from ``model_validate``, what
``parse_fleet`` does once it has read the YAML: the same checks, without writing text to parse
it back (a path or a float formatted into YAML is one more thing to get wrong). The scenarios
two modes share live here too: the fixed-pool fleet of ``bench fleet`` and ``bench raydata``,
and the one-camera fleet the hand-off is measured through (``bench transport``, ``bench fleet``).
"""

from __future__ import annotations

from typing import Any

from fleet.config import FleetConfig

# `bench fleet --model`: the detector the fleet and the bound run (the pool is named face
# either way); `bench raydata` runs "front"
MODELS: dict[str, dict[str, Any]] = {
    "front": {"type": "blazeface", "model": "front"},
    "back": {"type": "blazeface", "model": "back"},
    "nanodet": {"type": "nanodet", "classes": ["person"]},
}


def build(name: str, cameras: list[dict[str, Any]], **sections: Any) -> FleetConfig:
    """A validated fleet named ``name``: its cameras, and any other top-level section of a fleet
    file (``detectors``, ``defaults``, ``autoscaling``, ``sinks``...). A section left out takes
    its default, as in a fleet file that does not name it."""
    return FleetConfig.model_validate({"name": name, "cameras": cameras, **sections})


def synthetic_cameras(count: int, width: int, height: int, fps: float,
                      background: str | None = None, ids: str = "cam-{}",
                      **source: Any) -> list[dict[str, Any]]:
    """``count`` synthetic cameras, one moving object each, drawn on ``background`` (a frame of
    real footage, so a face detector does real work) if there is one; ``ids`` formats each
    camera's index into its id; ``source`` adds settings to every source."""
    scene = {"background": background} if background else {}
    return [{"id": ids.format(i),
             "source": {"type": "synthetic", "width": width, "height": height, "fps": fps,
                        "objects": 1, **scene, **source}}
            for i in range(count)]


def fixed_pool(actors: int, **detector: Any) -> dict[str, Any]:
    """A detector pool that neither grows nor shrinks: the set of processes stays the same."""
    return {**detector, "actors": actors, "min_actors": actors, "max_actors": actors}


def capacity_fleet(cameras: int, fps: float, width: int, height: int, background: str | None,
                   actors: int, detect_width: int, max_batch_size: int = 1,
                   put_frames: int = 1, model: str = "front") -> FleetConfig:
    """``bench fleet``'s point (and ``bench raydata``'s camfleet side): synthetic cameras on a
    fixed pool of ``actors`` face detectors of 0.9 CPU, autoscaling and files off."""
    face = fixed_pool(actors, **MODELS[model], num_cpus=0.9,
                      batching={"max_batch_size": max_batch_size})
    return build(
        "bench-fleet", synthetic_cameras(cameras, width, height, fps, background),
        stats_interval_s=0.5, metrics={"enabled": False}, sinks={"jsonl": {"enabled": False}},
        defaults={"fps": fps, "buffers": max(4, 2 * put_frames), "drop_policy": "drop_newest",
                  "detect": ["face"], "detect_width": detect_width, "num_cpus": 0.01,
                  "put_frames": put_frames},
        detectors={"face": face}, autoscaling={"enabled": False})


def handoff_fleet(buffers: int, put_width: int | None = None, put_frames: int = 1) -> FleetConfig:
    """One camera that admits every frame it is given (240 fps on its own timeline) and waits
    for a buffer when ``buffers`` frames are in flight; its source is replaced by the bench's,
    so the file is never read. Nothing written: metrics, event lines and snapshots off."""
    camera: dict[str, Any] = {
        "id": "bench", "source": {"type": "file", "path": "/dev/null", "realtime": False},
        "fps": 240, "buffers": buffers, "drop_policy": "wait", "detect": ["face"],
        "put_frames": put_frames}
    if put_width:
        camera["put_width"] = put_width
    return build("bench-transport", [camera], metrics={"enabled": False},
                 sinks={"jsonl": {"enabled": False}, "snapshots": {"enabled": False}})
