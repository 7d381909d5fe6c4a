"""``camfleet status`` and ``camfleet apply`` against a fleet that ``camfleet run`` runs in
another process: the table from outside, and a live change (a camera added, one removed, a
detector retuned) while an untouched camera keeps running without a gap in its counters."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from tests.helpers import camfleet, check_run_folder, wait_until

pytestmark = pytest.mark.timeout(300)

CAMERA = "  - {{id: {cid}, source: {{type: synthetic, width: 320, height: 240, fps: 10}}}}\n"


def fleet_text(cameras: tuple[str, ...], score: float = 0.9) -> str:
    listed = "".join(CAMERA.format(cid=cid) for cid in cameras)
    return f"""
name: live
metrics: {{enabled: false}}
stats_interval_s: 0.5
autoscaling: {{enabled: false}}
defaults: {{fps: 5, buffers: 2, detect_width: null, num_cpus: 0.1, detect: [blobs]}}
cameras:
{listed}detectors:
  blobs: {{type: blobs, actors: 1, num_cpus: 0.25, score: {score}}}
"""


class Run:
    """``camfleet run`` in a subprocess, its output collected by a thread."""

    def __init__(self, fleet: Path, run_dir: Path):
        self.proc = subprocess.Popen(
            camfleet("run", str(fleet), "--run-dir", str(run_dir), "--num-cpus", "2",
                     "--object-store-mb", "200", "--every", "1"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def embedded(self) -> bool:
        return "embedded Ray at" in self.text()


def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(camfleet(*args), capture_output=True, text=True, timeout=240,
                          check=False)


def test_status_and_apply_change_a_running_fleet_from_another_process(tmp_path):
    first, second = tmp_path / "fleet.yaml", tmp_path / "fleet2.yaml"
    first.write_text(fleet_text(("keep", "gone")))
    second.write_text(fleet_text(("keep", "new"), score=0.8))
    run = Run(first, tmp_path / "run")
    try:
        wait_until(lambda: run.text().count("in fps") >= 2, 120,
                   lambda: f"two live tables: {run.text()[-2000:]}")
        assert run.embedded(), run.text()
        # when `camfleet status` asks from another process (it finds this machine's Ray)
        status = command("status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert re.search(r"^keep\s+up", status.stdout, re.M) and "gone" in status.stdout
        # and a file with an error is refused before anything is touched
        bad = tmp_path / "bad.yaml"
        bad.write_text(fleet_text(("keep",)).replace("fps: 5", "fps: -1"))
        refused = command("apply", str(bad))
        assert refused.returncode == 2 and "bad.yaml:" in refused.stderr
        # and a change that needs a restart is refused, naming it, changing nothing
        sinks = tmp_path / "sinks.yaml"
        sinks.write_text(fleet_text(("keep", "gone")) + "sinks: {jsonl: {frames: true}}\n")
        needs_restart = command("apply", str(sinks))
        assert needs_restart.returncode == 1 and "sinks cannot change" in needs_restart.stderr
        # when the fleet is changed: "gone" removed, "new" added, the detector retuned
        applied = command("apply", str(second))
        assert applied.returncode == 0, applied.stdout + applied.stderr
        for expected in ("camera gone: removed", "camera new: added",
                         "detector blobs: new settings"):
            assert expected in applied.stdout, applied.stdout
        after = command("status")
        assert re.search(r"^new\s+", after.stdout, re.M) and not re.search(r"^gone\s", after.stdout,
                                                                             re.M)
        wait_until(lambda: re.search(r"^new\s+up", run.text(), re.M), 60, "the new camera up")
    finally:
        run.proc.send_signal(signal.SIGTERM)
        run.proc.wait(timeout=120)
    assert run.proc.returncode == 0, run.text()[-3000:]
    # then the run's summary has all three cameras, every frame accounted for
    summary = check_run_folder(tmp_path / "run")
    assert set(summary) == {"keep", "gone", "new"}
    # and the untouched camera ran on, one actor, no gap: in every stats line, counters rising
    keep = [next(c for c in json.loads(line)["cameras"] if c["camera"] == "keep")
            for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()
            if '"cameras"' in line]
    captured = [c["captured"] for c in keep]
    assert captured == sorted(captured) and all(c["state"] == "up" for c in keep[2:])
    assert summary["keep"]["reconnects"] == 0
