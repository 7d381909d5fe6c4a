"""The bench modes' fleets, and the fence between the modes.

Every mode that runs a fleet builds it with :mod:`fleet.bench.common.fleets` (FleetConfig
objects). Each used to write its fleet as YAML text and parse it back; that YAML is kept below,
verbatim, as the reference: for each mode's scenario the builder must give the very fleet the
YAML gave (equal ``model_dump()``), so moving to the builder changed no benchmark's figures.
And no mode module imports another: what two modes share lives in :mod:`fleet.bench.common`
(or a shared module such as ``plotting``, ``cpu``, ``measure``), read from the source with
``ast`` (imports inside functions count too).
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path
from typing import Any

import pytest

from fleet.bench import autoscale, mot, raydata, scale, soak
from fleet.bench.common.fleets import MODELS, capacity_fleet, handoff_fleet
from fleet.config import FleetConfig, parse_fleet
from tests.conftest import REPO

BACKGROUNDS = (None, "/tmp/camfleet-bench-x1y2/background.png")


# --- the YAML the modes wrote before the builder (the reference; do not edit) -----------------
def legacy_autoscale(args: argparse.Namespace, background: str | None, autoscaling: bool,
                     actors: int) -> str:
    t1, t2 = args.warmup_s, args.warmup_s + args.step_s
    schedule = f"[[{t1}, {args.high_fps}], [{t2}, {args.low_fps}]]"
    scene = f"background: {background}, objects: 1" if background else "objects: 1"
    cameras = "\n".join(
        f"  - {{id: cam-{i}, source: {{type: synthetic, width: 1280, height: 720, "
        f"fps: {args.low_fps}, fps_schedule: {schedule}, {scene}}}}}"
        for i in range(args.cameras)
    )
    return f"""
name: bench-autoscale
stats_interval_s: 0.5
defaults: {{fps: 60, buffers: 2, detect: [face], detect_width: 640, num_cpus: 0.1}}
cameras:
{cameras}
detectors:
  face: {{actors: {actors}, min_actors: 1, max_actors: {args.max_actors},
          num_cpus: {args.detector_cpus}}}
autoscaling:
  enabled: {str(autoscaling).lower()}
  target_hit_rate: {args.target_hit_rate}
  target_utilisation: 0.75
  latency_slo_ms: 1000
  upscale_delay_s: 2
  downscale_delay_s: 10
  look_back_s: 5
"""


def legacy_capacity(cameras: int, fps: float, width: int, height: int, background: str | None,
                    actors: int, detect_width: int, max_batch_size: int = 1,
                    put_frames: int = 1, model: str = "front") -> str:
    scene = f", background: {background}" if background else ""
    detector = ", ".join(f"{k}: {json.dumps(v)}" for k, v in MODELS[model].items())
    rows = "\n".join(
        f"  - {{id: cam-{i}, source: {{type: synthetic, width: {width}, height: {height}, "
        f"fps: {fps}, objects: 1{scene}}}}}" for i in range(cameras)
    )
    return f"""
name: bench-fleet
stats_interval_s: 0.5
metrics: {{enabled: false}}
sinks: {{jsonl: {{enabled: false}}}}
defaults: {{fps: {fps}, buffers: {max(4, 2 * put_frames)}, drop_policy: drop_newest,
           detect: [face], detect_width: {detect_width}, num_cpus: 0.01,
           put_frames: {put_frames}}}
cameras:
{rows}
detectors:
  face: {{{detector}, actors: {actors}, min_actors: {actors},
         max_actors: {actors},
         num_cpus: 0.9, batching: {{max_batch_size: {max_batch_size}}}}}
autoscaling: {{enabled: false}}
"""


def legacy_soak(cameras: int, background: str | None, rotate_mb: float = 1.0,
                snapshots_mb: float = 5.0) -> str:
    width, height, source_fps, fps, detect_width, buffers = 1280, 720, 15.0, 5.0, 480, 4
    actors, cpus, keep_files, prune_s, interval_s = 2, 0.5, 2, 10, 1.0
    scene = f", background: {background}" if background else ""
    rows = "\n".join(
        f"  - {{id: cam-{i}, source: {{type: synthetic, width: {width}, height: {height}, "
        f"fps: {source_fps}, objects: 1{scene}}}}}" for i in range(cameras)
    )
    return f"""
name: bench-soak
stats_interval_s: 1.0
metrics: {{enabled: true, port: 0}}
defaults: {{fps: {fps}, buffers: {buffers}, detect: [face], detect_width: {detect_width},
           num_cpus: 0.1}}
cameras:
{rows}
detectors:
  face: {{actors: {actors}, min_actors: {actors},
          max_actors: {actors}, num_cpus: {cpus}}}
autoscaling: {{enabled: false}}
sinks:
  jsonl: {{frames: true, tracks: true, rotate_mb: {rotate_mb}, keep_files: {keep_files}}}
  snapshots: {{frames: true, max_per_camera: 100000, min_interval_s: {interval_s},
              max_mb: {snapshots_mb}, prune_interval_s: {prune_s}}}
"""


def legacy_scale(cameras: int, fps: float) -> str:
    rows = "\n".join(f"  - {{id: cam-{i:04d}, source: {{type: synthetic, width: 64, height: 48, "
                     f"fps: 2, objects: 1}}}}" for i in range(cameras))
    return f"""
name: bench-scale
stats_interval_s: 1.0
metrics: {{enabled: true, port: 0}}
autoscaling: {{enabled: false}}
defaults: {{fps: {fps}, buffers: 2, detect: [blobs], detect_width: null, num_cpus: 0}}
cameras:
{rows}
detectors:
  blobs: {{type: blobs, actors: 1, num_cpus: 0.5}}
sinks: {{jsonl: {{enabled: false}}, snapshots: {{enabled: false}}}}
"""


LEGACY_TRANSPORT = """
name: bench-transport
metrics: {{enabled: false}}
sinks: {{jsonl: {{enabled: false}}, snapshots: {{enabled: false}}}}
cameras:
  - id: bench
    source: {{type: file, path: /dev/null, realtime: false}}
    fps: 240
    buffers: {buffers}
    drop_policy: wait
    detect: [face]
    put_frames: {put_frames}
{put_width}
"""


def legacy_mot(clip: str, fps: float, detector: dict[str, Any],
               tracking: dict[str, Any]) -> FleetConfig:
    """bench mot built its dict directly; this is that dict."""
    if detector.get("type", "nanodet") == "nanodet" and "min_score" not in detector:
        detector = {"min_score": 0.3, **detector}
    return FleetConfig.model_validate({
        "name": "bench-mot", "stats_interval_s": 1.0, "metrics": {"enabled": False},
        "autoscaling": {"enabled": False},
        "cameras": [{
            "id": "clip", "source": {"type": "file", "path": clip, "loop": False,
                                     "realtime": False},
            "fps": fps, "buffers": 4, "drop_policy": "wait", "detect": ["person"],
            "tracking": tracking,
        }],
        "detectors": {"person": {"actors": 1, "num_cpus": 1, **detector}},
        "sinks": {"jsonl": {"tracks": True, "frames": True}, "snapshots": {"enabled": False}},
    })


# --- the builder gives the same fleets -------------------------------------------------------
def same(built: FleetConfig, legacy: str | FleetConfig) -> None:
    reference = parse_fleet(legacy, env={}) if isinstance(legacy, str) else legacy
    assert built.model_dump() == reference.model_dump()


def autoscale_args(**changes: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    autoscale.add_arguments(parser)
    return argparse.Namespace(**{**vars(parser.parse_args([])), **changes})


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize(("autoscaling", "actors"), [(True, 1), (False, 3)])
def test_autoscale_fleets(background: str | None, autoscaling: bool, actors: int) -> None:
    for args in (autoscale_args(), autoscale_args(cameras=3, low_fps=2.5, high_fps=12.0,
                                                  warmup_s=5.0, max_actors=6, detector_cpus=0.5,
                                                  target_hit_rate=0.9)):
        same(autoscale.fleet_config(args, background, autoscaling, actors),
             legacy_autoscale(args, background, autoscaling, actors))


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_capacity_fleets(background: str | None, model: str) -> None:
    points = ((2, 30.0, (1280, 720), 4), (4, 120.0, (3840, 2160), 1))
    for batch, group in ((8, 8), (8, 1), (1, 8), (1, 1)):
        for cameras, fps, (w, h), actors in points:
            same(capacity_fleet(cameras, fps, w, h, background, actors, 640, batch, group, model),
                 legacy_capacity(cameras, fps, w, h, background, actors, 640, batch, group, model))


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_raydata_fleets(background: str | None) -> None:
    args = argparse.Namespace(cameras=4, fps=15.0, actors=2, batch_size=8)
    saturating, light = raydata.fleet_configs(args, background)
    same(saturating, legacy_capacity(4, 15.0, 1280, 720, background, 2, 640, 8))
    same(light, legacy_capacity(1, 5.0, 1280, 720, background, 2, 640, 8))


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_soak_fleets(background: str | None) -> None:
    same(soak.fleet_config(1, None), legacy_soak(1, None))
    same(soak.fleet_config(4, background, 2.5, 7.0), legacy_soak(4, background, 2.5, 7.0))


def test_scale_fleets() -> None:
    for cameras, fps in ((3, 0.5), (12, 2.0)):
        same(scale.fleet_config(cameras, fps), legacy_scale(cameras, fps))


@pytest.mark.parametrize(("buffers", "put_width", "put_frames"),
                         [(1, None, 1), (4, None, 1), (16, None, 8), (1, 640, 1), (4, 640, 1)])
def test_transport_fleets(buffers: int, put_width: int | None, put_frames: int) -> None:
    width = f"    put_width: {put_width}" if put_width else ""
    same(handoff_fleet(buffers, put_width, put_frames),
         LEGACY_TRANSPORT.format(buffers=buffers, put_width=width, put_frames=put_frames))


@pytest.mark.parametrize("detector", [{}, {"type": "nanodet", "min_score": 0.4},
                                      {"type": "blazeface"}])
def test_mot_fleets(detector: dict[str, Any]) -> None:
    tracking = {"min_frames": 2}
    same(mot.fleet_config("/clip.avi", 4.0, detector, tracking),
         legacy_mot("/clip.avi", 4.0, detector, tracking))


# --- the fence between the modes ---------------------------------------------------------------
def bench_imports_text(text: str, package: str) -> set[str]:
    """Every fleet.bench module ``text`` (a module of ``package``) imports, at the top or
    inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.update({base, *(f"{base}.{alias.name}" for alias in node.names)})
    return {name for name in found if name.startswith("fleet.bench")}


def bench_imports(path: Path) -> set[str]:
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    return bench_imports_text(path.read_text(encoding="utf-8"), package)


def mode_modules() -> set[str]:
    from fleet.bench.main import MODES

    return {module.__name__ for module, _ in MODES.values()}


def test_no_bench_module_imports_a_mode_but_the_command() -> None:
    modes = mode_modules()
    assert {"fleet.bench.capacity", "fleet.bench.transport", "fleet.bench.soak"} <= modes
    wrong = []
    for path in sorted((REPO / "fleet" / "bench").rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        if name != "fleet.bench.main":  # the command lists the modes
            wrong += [f"{name} imports {m}" for m in bench_imports(path) & modes if m != name]
    assert not wrong, "\n".join(wrong)


def test_the_fence_check_sees_every_form_of_import() -> None:
    text = ("from fleet.bench import capacity\nimport fleet.bench.soak\n"
            "def f():\n    from .transport import SIZES\n")
    assert bench_imports_text(text, "fleet.bench") >= {
        "fleet.bench.capacity", "fleet.bench.soak", "fleet.bench.transport"}
    assert bench_imports(REPO / "fleet" / "bench" / "common" / "handoff.py") >= {
        "fleet.bench.common.fleets", "fleet.bench.common.running"}
