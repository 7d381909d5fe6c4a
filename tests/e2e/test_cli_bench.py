"""`camfleet bench` modes keep working (tiny sizes: smoke tests, no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(200)


def test_bench_transport_smoke(tmp_path):
    out, plot = tmp_path / "transport.json", tmp_path / "transport.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "bench", "transport", "--sizes", "720p", "--repeats", "5",
         "--frames", "10", "--process-repeats", "2", "--runs", "1", "--put-width", "640",
         "--no-memory-table", "--num-cpus", "2", "--object-store-mb", "200",
         "--json", str(out), "--plot", str(plot)],
        check=False, capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())["sizes"]["720p"]
    assert result["frame_mb"] == pytest.approx(2.76, abs=0.01)
    for key in ("memcpy_ms", "handoff_median_ms", "pipelined_ms_per_frame", "handoff_vs_memcpy",
                "read_median_ms", "http_x_single", "http_x_pipelined"):
        assert result[key] > 0
    # the real camera path: every frame accounted for, the bytes put are the frame's
    assert result["accounted"] is True and result["put_bytes"] == 720 * 1280 * 3
    assert result["put_width"]["put_bytes"] == 360 * 640 * 3
    floor = result["ray_floor"]  # Ray's own cost, measured in the same run
    assert floor["put_call_ms"] > 0 and floor["put_ms"] > 0 and floor["camfleet_over_floor"] > 0
    targets = json.loads(out.read_text())["targets"]["720p"]
    assert isinstance(targets["at_least_20x_faster_than_http"], bool)
    assert isinstance(targets["ray_floor"]["at_least_20x_faster_than_http"], bool)
    for method in ("http_base64_json", "process_per_frame", "pickled_pipe"):
        baseline = result["baselines"][method]
        assert baseline["median_ms"] > 0 and baseline["x_camfleet"] > 0 and baseline["x_memcpy"] > 0
    assert "| 720p |" in proc.stdout
    assert plot.stat().st_size > 1000


def test_bench_autoscale_smoke(tmp_path):
    out, plot = tmp_path / "autoscale.json", tmp_path / "autoscale.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "bench", "autoscale", "--cameras", "1", "--warmup-s", "3",
         "--step-s", "4", "--cooldown-s", "3", "--object-store-mb", "200", "--json", str(out),
         "--plot", str(plot)],
        check=False, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    for fleet in ("autoscaled", "fixed"):
        assert results[fleet]["accounted"] is True and results[fleet]["detector_lost"] == 0
        assert results[fleet]["actor_seconds"] > 0
        assert results["timeline"][fleet]
    # with autoscaling disabled the fixed fleet keeps its actor count throughout
    assert len({p["actors"] for p in results["timeline"]["fixed"]}) == 1
    assert "| autoscaled |" in proc.stdout and "[bench] fixed" in proc.stderr
    assert plot.stat().st_size > 1000


def test_bench_fleet_smoke(tmp_path):
    out, plot = tmp_path / "fleet.json", tmp_path / "fleet.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "bench", "fleet", "--cameras", "1", "--fps", "5",
         "--bound-s", "2", "--point-s", "3", "--warmup-s", "2", "--table-s", "0", "--runs", "1",
         "--batch-sizes", "4", "--put-frames", "2", "1", "--split-cameras", "1",
         "--split-fps", "5", "--num-cpus", "2", "--object-store-mb", "200",
         "--json", str(out), "--plot", str(plot)],
        check=False, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert results["compute_bound"]["fps"] > 0
    assert [p["put_frames"] for p in results["points"]] == [2, 1]
    for point in results["points"]:
        assert point["accounted"] is True and point["analysed_fps"] > 0
        assert len(point["runs"]) == 1 and point["p95_ms"] is not None
        expected = point["analysed_fps"] / results["compute_bound"]["fps"]
        assert point["efficiency"] == pytest.approx(expected, abs=0.01)
        # where the CPU went, from this run's own processes: detectors and cameras did work
        assert point["cores"]["detectors"] > 0 and point["cores"]["cameras"] > 0
        assert point["cpu_ms_per_frame"]["detectors"] > 0 and point["detector_efficiency"] > 0
    assert results["script_bound"]["fps"] > 0
    # the split run: the detector actor alone on the last core, with its own one-core bound
    split = results["split"]
    assert split["compute_bound"]["cores"] == 1 and len(split["points"]) == 2
    for point in split["points"]:
        assert point["accounted"] is True and point["cores"]["detectors"] > 0
    assert set(results["by_batch_size"]) == {"max_batch_size 4, put_frames 2",
                                             "max_batch_size 4, put_frames 1"}
    assert results["detector"] == "blazeface"
    assert "compute bound:" in proc.stdout and plot.stat().st_size > 1000


def test_bench_raydata_smoke(tmp_path):
    out = tmp_path / "raydata.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "bench", "raydata", "--frames", "8", "--batch-size", "2",
         "--actors", "1", "--latency-repeats", "1", "--cameras", "1", "--fps", "5",
         "--point-s", "3", "--runs", "1", "--plot", "", "--num-cpus", "2",
         "--object-store-mb", "200", "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert results["ray_data"]["frames"] == 8 and results["ray_data"]["fps"] > 0
    assert results["ray_data"]["single_frame_latency_ms"] > 0
    assert results["ray_data"]["startup_s"] > 0 and results["camfleet"]["startup_s"] > 0
    assert results["camfleet"]["fps"] > 0 and results["camfleet"]["accounted"] is True


def test_bench_serve_smoke(tmp_path):
    pytest.importorskip("ray.serve")
    out, plot = tmp_path / "serve.json", tmp_path / "serve.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "bench", "serve", "--size", "720p", "--repeats", "5",
         "--frames", "8", "--runs", "1", "--num-cpus", "2", "--object-store-mb", "200",
         "--json", str(out),
         "--plot", str(plot)],
        check=False, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert set(results["methods"]) == {"direct actor", "camfleet DetectorActor", "Serve handle"}
    for row in results["methods"].values():
        assert row["median_ms"] > 0 and row["pipelined_ms_per_frame"] > 0
    # the direct call hands the callee a read-only view on the object store
    assert results["probes"]["direct actor"]["zero_copy"] is True
    assert isinstance(results["serve_zero_copy"], bool)
    assert "| Serve handle |" in proc.stdout and plot.stat().st_size > 1000


def test_bench_soak_smoke(tmp_path):
    out, plot = tmp_path / "soak.json", tmp_path / "soak.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "bench", "soak", "--minutes", "0.3", "--sample-s", "2",
         "--cameras", "2", "--num-cpus", "2", "--object-store-mb", "200", "--json", str(out),
         "--plot", str(plot)],
        check=False, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    summary, timeline = results["summary"], results["timeline"]
    assert summary["accounted_every_sample"] is True and summary["final_accounted"] is True
    assert summary["samples"] == len(timeline) >= 5 and summary["samples_after_warmup"] >= 2
    for sample in timeline:
        assert sample["camera"]["n"] == 2 and sample["detector"]["n"] == 2
        for kind in ("camera", "detector", "controller"):
            assert sample[kind]["rss_sum"] > 0 and sample[kind]["fds"] > 0
            assert sample[kind]["threads"] > 0
        assert sample["store"]["mib"] is not None
        assert sample["disk"]["files"] > 0  # the run folder, retention on
    assert summary["disk_within_bound"] is True and summary["nothing_lost"] is True
    assert summary["disk_peak_mib"] <= summary["disk_bound_mib"]
    for key in ("camera.rss_sum", "detector.private_sum", "detector.fds", "controller.threads",
                "store.mib_min", "store.mib"):
        assert key in summary["growth"]
    assert not summary["growth"]["store.mib"]["judged"]
    assert {p["kind"] for p in summary["by_process"]} == {"camera", "detector", "controller"}
    assert summary["final"]["processed"] > 0 and results["scenario"]["detector_type"]
    assert "| camera RSS MiB (sum) |" in proc.stdout and "[bench] soak:" in proc.stderr
    assert plot.stat().st_size > 1000


def test_bench_tracking_smoke(tmp_path):
    out, plot = tmp_path / "tracking.json", tmp_path / "tracking.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "bench", "tracking", "--objects", "1", "4",
         "--seconds", "10", "--runs", "1", "--json", str(out), "--plot", str(plot)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["people"] for r in rows] == [1, 4]
    for row in rows:  # the ground truth scene: everyone found, no id switch
        assert row["found"] == row["people"] and row["id_switches"] == 0
        assert row["tracking_ms_per_frame"] > 0 and row["frame_lines"] > row["object_events"]
    assert plot.stat().st_size > 1000


def synthetic_clip(folder, frames: int = 60, fps: float = 10.0):
    """A clip of two red boxes walking on straight lines (what the blobs detector finds), and
    its ground truth in MOTChallenge's format (1-based frames, flag 1)."""
    import cv2
    import numpy as np

    clip, gt = folder / "clip.avi", folder / "gt.txt"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    rows = []
    for k in range(frames):
        image = np.full((240, 320, 3), 90, np.uint8)
        for person, (x, y) in enumerate(((20 + 4 * k, 40), (280 - 4 * k, 150))):
            cv2.rectangle(image, (x, y), (x + 19, y + 49), (0, 0, 255), -1)
            rows.append(f"{k + 1},{person + 1},{x},{y},20,50,1,-1,-1,-1")
        writer.write(image)
    writer.release()
    gt.write_text("\n".join(rows) + "\n")
    return clip, gt


def test_bench_mot_scores_the_fleets_tracks_against_ground_truth(tmp_path):
    clip, gt = synthetic_clip(tmp_path)
    out, plot = tmp_path / "mot.json", tmp_path / "mot.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "bench", "mot", "--gt", str(gt), "--clip", str(clip),
         "--detector", '{"type": "blobs", "label": "person"}', "--runs", "1", "--fps", "10", "5",
         "--cost-frames", "0", "--sweep", "--num-cpus", "2", "--object-store-mb", "200",
         "--json", str(out), "--plot", str(plot)],
        check=False, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    every, half = results["rates"]["10"], results["rates"]["5"]
    assert every["frames_scored"] == 60 and half["frames_scored"] == 30
    for rate in (every, half):
        run = rate["runs"][0]
        # the fleet path: every frame accounted for, the file read to its end
        assert run["accounted"] and run["captured"] == 60
        # two boxes found exactly, two tracks: a tracker that loses nobody and swaps no id
        assert run["det_p@0.5"] == run["det_r@0.5"] == 1.0
        assert run["MOTA"] > 0.9 and run["IDF1"] > 0.9 and run["id_switches"] == 0
        assert run["objects_started"] == 2 and run["gt_ids"] == 2
    assert results["sweep"]["settings"] > 1 and results["sweep"]["best"]
    assert "MOTA" in proc.stdout and "tracker sweep" in proc.stdout
    assert plot.stat().st_size > 1000
