"""Whole CLI runs: `camfleet run` on an embedded local Ray, stopped by --duration or SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import MEGAMIND, VTEST
from tests.helpers import camfleet, check_run_folder

pytestmark = pytest.mark.timeout(240)
RAY_ARGS = ["--num-cpus", "3", "--object-store-mb", "300", "--every", "2"]
SECRET = "hunter2-secret"  # the offline camera's password, in the environment only


def fleet_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(f"""
name: e2e
defaults: {{fps: 4, buffers: 2}}
cameras:
  - {{id: faces, source: {MEGAMIND}, detect: [face]}}
  - {{id: people, source: {VTEST}, detect: [person]}}
  - {{id: synth, source: {{type: synthetic, width: 1920, height: 1080, fps: 30}}, detect: [face]}}
  - id: offline
    source: rtsp://admin:${{CAM_PASSWORD}}@127.0.0.1:9/stream
detectors:
  face: {{actors: 1, num_cpus: 0.5}}
  person: {{actors: 1, num_cpus: 0.5}}
sinks:
  snapshots: {{enabled: true, frames: true, max_per_camera: 2, min_interval_s: 1}}
""")
    return path


def env() -> dict[str, str]:
    return {**os.environ, "CAM_PASSWORD": SECRET, "PYTHONUNBUFFERED": "1"}


def test_run_for_a_duration_prints_tables_and_an_exact_summary(tmp_path, footage):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        camfleet("run", str(fleet_file(tmp_path)), "--duration", "14", "--run-dir", str(run_dir),
                 *RAY_ARGS),
        check=False, capture_output=True, text=True, env=env(), timeout=180,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "in fps" in proc.stdout and "detector face" in proc.stdout  # the live table
    assert "captured = processed + dropped + failed + in_flight" in proc.stdout
    assert "MISMATCH" not in proc.stdout
    assert SECRET not in output and "rtsp://admin:***@127.0.0.1:9" in output
    summary = check_run_folder(run_dir, secret=SECRET)
    assert summary["faces"]["detections"].get("face", 0) > 0
    assert summary["people"]["detections"].get("person", 0) > 0
    assert summary["synth"]["processed"] > 0
    assert summary["offline"]["captured"] == 0 and summary["offline"]["reconnects"] >= 1
    assert len(list((run_dir / "snapshots").glob("faces-*.jpg"))) == 2  # frames, bounded
    # and the faces became objects: printed as they started, each with its best snapshot
    assert re.search(r" faces face faces-\S+ start \(score", proc.stdout), proc.stdout[-3000:]
    objects = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    ends = [e for e in objects if e["event"] == "end" and e["camera"] == "faces"]
    assert ends and all((run_dir / e["snapshot"]).is_file() for e in ends)
    assert summary["faces"]["object_events"]["start"] == len(ends)


def test_sigterm_drains_flushes_and_exits_zero(tmp_path, footage):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        camfleet("run", str(fleet_file(tmp_path)), "--run-dir", str(run_dir), *RAY_ARGS),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(),
    )
    try:
        # wait until frames are being analysed (the second live table), then stop it
        tables, deadline = 0, time.monotonic() + 120
        assert proc.stdout is not None
        for line in proc.stdout:
            tables += line.startswith("camera ") and "in fps" in line
            if tables >= 2 or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "stopping on SIGTERM" in rest
    summary = check_run_folder(run_dir, secret=SECRET)
    assert sum(s["processed"] for s in summary.values()) > 0


def test_a_fleet_that_does_not_fit_says_so_at_once(tmp_path):
    # the example: five cameras of 0.25 CPU and two detector actors of 0.5 on 2 CPUs
    path = tmp_path / "big.yaml"
    cameras = "".join(f"  - {{id: c{i}, source: synthetic}}\n" for i in range(5))
    path.write_text(f"defaults: {{num_cpus: 0.25}}\ncameras:\n{cameras}"
                    "detectors:\n  face: {actors: 2, num_cpus: 0.5}\n")
    started = time.monotonic()
    proc = subprocess.run(camfleet("run", str(path), "--run-dir", str(tmp_path / "run"),
                                   "--num-cpus", "2", "--object-store-mb", "200"),
                          check=False, capture_output=True, text=True, env=env(), timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "needs 2.25 CPUs" in proc.stderr and "has 2 of 2 free" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - started < 60  # Ray's own start-up is most of it


def test_sigterm_during_start_up_exits_cleanly(tmp_path, footage):
    proc = subprocess.Popen(
        camfleet("run", str(fleet_file(tmp_path)), "--run-dir", str(tmp_path / "run"),
                 *RAY_ARGS),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed once Ray is up, before the fleet starts
        assert first.startswith("camfleet: fleet 'e2e'"), first
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    assert "Traceback" not in err


def test_a_detector_that_cannot_start_is_named_with_its_setting(tmp_path):
    path = tmp_path / "bad-model.yaml"
    path.write_text("cameras: [{id: c, source: synthetic, detect: [cars]}]\n"
                    "detectors:\n  cars: {type: onnx, model: {path: /nonexistent/yolo.onnx}}\n")
    proc = subprocess.run(camfleet("run", str(path), "--run-dir", str(tmp_path / "run"),
                                   "--num-cpus", "2", "--object-store-mb", "200"),
                          check=False, capture_output=True, text=True, env=env(), timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "detector cars could not start" in proc.stderr
    assert "detectors.cars.model.path" in proc.stderr and "/nonexistent/yolo.onnx" in proc.stderr
    assert "Traceback" not in proc.stderr
