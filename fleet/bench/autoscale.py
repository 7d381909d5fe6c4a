"""``camfleet bench autoscale``: a load step on real Ray, the autoscaled fleet against a fixed
fleet sized for the peak, on the same scenario in the same run.

Scenario: ``--cameras`` synthetic cameras drawn on a frame of real footage (so the Haar face
detector does real work) run at ``--low-fps`` each, step to ``--high-fps`` for ``--step-s``,
then drop back. Reported: time to recover the target hit-rate after the step, peak p95 latency
during the step, actor-seconds used, and the same figures for the fixed fleet.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fleet.bench import plotting
from fleet.bench.common.fleets import build, synthetic_cameras
from fleet.bench.common.footage import background_image
from fleet.bench.common.running import ControlLoop
from fleet.config import FleetConfig


def fleet_config(args: argparse.Namespace, background: str | None, autoscaling: bool,
                 actors: int) -> FleetConfig:
    """The load step: ``--cameras`` at ``--low-fps``, ``--high-fps`` from the warm-up's end for
    ``--step-s``, then back; the face pool starts at ``actors``."""
    t1, t2 = args.warmup_s, args.warmup_s + args.step_s
    cameras = synthetic_cameras(args.cameras, 1280, 720, args.low_fps, background,
                                fps_schedule=[[t1, args.high_fps], [t2, args.low_fps]])
    return build(
        "bench-autoscale", cameras, stats_interval_s=0.5,
        defaults={"fps": 60, "buffers": 2, "detect": ["face"], "detect_width": 640,
                  "num_cpus": 0.1},
        detectors={"face": {"actors": actors, "min_actors": 1, "max_actors": args.max_actors,
                            "num_cpus": args.detector_cpus}},
        autoscaling={"enabled": autoscaling, "target_hit_rate": args.target_hit_rate,
                     "target_utilisation": 0.75, "latency_slo_ms": 1000, "upscale_delay_s": 2,
                     "downscale_delay_s": 10, "look_back_s": 5})


def run_scenario(config: FleetConfig, run_dir: Path, duration_s: float,
                 progress: Callable[[str], None], label: str) -> dict[str, Any]:
    """One fleet on real Ray, its control loop in a thread, sampled every 0.5 s."""
    timeline: list[dict[str, Any]] = []
    fleet = ControlLoop(config, run_dir)
    with fleet as controller:
        started = time.monotonic()
        next_note = started
        while (elapsed := time.monotonic() - started) < duration_s:
            time.sleep(0.5)
            snap = controller.latest
            face = snap.detectors.get("face")
            views = list(snap.cameras.values())
            if face is None or not views:
                continue
            p95 = [v.p95_ms for v in views if v.p95_ms is not None]
            timeline.append({
                "t": round(elapsed, 2), "offered_fps": round(sum(v.offered_fps for v in views), 2),
                "actors": face.running, "target": face.target, "utilisation": face.utilisation,
                "buffers": round(float(np.mean([v.stats.buffers for v in views])), 2),
                "hit_rate": round(min(v.hit_rate for v in views), 4),
                "p95_ms": round(max(p95), 1) if p95 else None,
            })
            if time.monotonic() >= next_note:
                next_note += 10
                last = timeline[-1]
                progress(f"{label}: {elapsed:.0f}/{duration_s:.0f} s, offered "
                         f"{last['offered_fps']} fps, {last['actors']} actor(s), "
                         f"hit-rate {last['hit_rate']}")
    final = fleet.final
    return {"timeline": timeline, "actions": list(controller.recent),
            "accounted": all(s.accounted for s in final.values()),
            "lost": sum(s.dropped.get("detector_lost", 0) for s in final.values())}


def recovery_s(step: list[dict[str, Any]], start: float, target: float) -> float | None:
    """Seconds from the step until the hit-rate is back at target after its first dip below it
    (0 if it never dipped, None if it never recovered within the step)."""
    dipped = next((i for i, p in enumerate(step) if p["hit_rate"] < target), None)
    if dipped is None:
        return 0.0
    back = next((p for p in step[dipped:] if p["hit_rate"] >= target), None)
    return None if back is None else back["t"] - start


def summarise(run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    timeline = run["timeline"]
    t1, t2 = args.warmup_s, args.warmup_s + args.step_s
    step = [p for p in timeline if t1 <= p["t"] < t2]
    recovered = recovery_s(step, t1, args.target_hit_rate)
    actor_seconds = sum(b["actors"] * (b["t"] - a["t"]) for a, b in itertools.pairwise(timeline))
    p95 = [p["p95_ms"] for p in step if p["p95_ms"] is not None]
    hits = [p["hit_rate"] for p in step]
    return {
        "recover_s": None if recovered is None else round(recovered, 1),
        "peak_p95_ms_during_step": max(p95) if p95 else None,
        "min_hit_rate_during_step": min(hits) if hits else None,
        "mean_hit_rate_during_step": round(float(np.mean(hits)), 4) if hits else None,
        "actor_seconds": round(actor_seconds, 1),
        "peak_actors": max((p["actors"] for p in timeline), default=0),
        "accounted": run["accounted"], "detector_lost": run["lost"],
    }


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    duration = args.warmup_s + args.step_s + args.cooldown_s
    with tempfile.TemporaryDirectory(prefix="camfleet-bench-") as tmp:
        folder = Path(tmp)
        background = background_image(folder)
        progress(f"autoscaled fleet: {args.cameras} cameras, {args.low_fps} -> {args.high_fps} -> "
                 f"{args.low_fps} fps each, {duration:.0f} s")
        auto = run_scenario(fleet_config(args, background, True, 1), folder / "auto", duration,
                            progress, "autoscaled")
        peak = max((p["actors"] for p in auto["timeline"]), default=1)
        progress(f"fixed fleet of {peak} actor(s) (the autoscaled peak), same scenario")
        fixed = run_scenario(fleet_config(args, background, False, peak), folder / "fixed",
                             duration, progress, "fixed")
    results = {
        "scenario": {"cameras": args.cameras, "low_fps": args.low_fps, "high_fps": args.high_fps,
                     "warmup_s": args.warmup_s, "step_s": args.step_s,
                     "cooldown_s": args.cooldown_s,
                     "real_footage": background is not None},
        "autoscaled": summarise(auto, args), "fixed": summarise(fixed, args),
        "timeline": {"autoscaled": auto["timeline"], "fixed": fixed["timeline"]},
        "actions": auto["actions"],
    }
    a, f = results["autoscaled"], results["fixed"]
    results["actor_seconds_ratio"] = (round(a["actor_seconds"] / f["actor_seconds"], 3)
                                      if f["actor_seconds"] else None)
    print(table(results))
    if args.plot and plot(results, Path(args.plot), args):
        print(f"\nplot: {args.plot}")
    return results


def table(results: dict[str, Any]) -> str:
    rows = [("| fleet | recover s | peak p95 ms (step) | min hit-rate (step) | "
             "mean hit-rate (step) | actor-seconds | peak actors | accounted | lost |"),
            "|---|---|---|---|---|---|---|---|---|"]
    for name in ("autoscaled", "fixed"):
        r = results[name]
        rows.append(f"| {name} | {r['recover_s']} | {r['peak_p95_ms_during_step']} | "
                    f"{r['min_hit_rate_during_step']} | {r['mean_hit_rate_during_step']} | "
                    f"{r['actor_seconds']} | {r['peak_actors']} | {r['accounted']} | "
                    f"{r['detector_lost']} |")
    rows.append(f"\nactor-seconds, autoscaled / fixed: {results['actor_seconds_ratio']}")
    return "\n".join(rows)


def plot(results: dict[str, Any], path: Path, args: argparse.Namespace) -> bool:
    plt = plotting.pyplot()
    if plt is None:
        return False
    panels = [("offered_fps", "offered fps"), ("actors", "detector actors"),
              ("buffers", "buffers/camera"), ("hit_rate", "hit-rate (min)"),
              ("p95_ms", "p95 ms (max)")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 10), sharex=True)
    for ax, (key, label) in zip(axes, panels, strict=True):
        for name, style in (("autoscaled", "-"), ("fixed", "--")):
            points = [(p["t"], p[key]) for p in results["timeline"][name] if p[key] is not None]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=name)
        ax.set_ylabel(label)
        ax.axvspan(args.warmup_s, args.warmup_s + args.step_s, color="0.92")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right")
    axes[3].axhline(args.target_hit_rate, color="r", lw=0.8)
    axes[-1].set_xlabel("seconds (grey: load step)")
    plotting.save(fig, path,
                  "camfleet autoscaling: load step, autoscaled vs fixed fleet sized for the peak")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--low-fps", type=float, default=3.0, help="per camera, before and after")
    parser.add_argument("--high-fps", type=float, default=9.0, help="per camera, during the step")
    parser.add_argument("--warmup-s", type=float, default=15.0)
    parser.add_argument("--step-s", type=float, default=30.0)
    parser.add_argument("--cooldown-s", type=float, default=30.0)
    parser.add_argument("--max-actors", type=int, default=4)
    parser.add_argument("--detector-cpus", type=float, default=0.75, help="num_cpus per actor")
    parser.add_argument("--target-hit-rate", type=float, default=0.95)
    parser.add_argument("--plot", default="bench-autoscale.png", help="PNG plot path ('' for none)")
