"""A fleet on a Ray head started with token authentication (``RAY_AUTH_MODE=token``, as the
deploy files start it): ``camfleet run``, ``status`` and ``apply`` with the cluster's token work;
with a wrong token, or none, each is refused at once with one line that says what to set, never
a traceback, never 20 seconds of Ray's retries, never a token; the job API refuses a submitter
without the token; and a camera's password is in none of what Ray shows of its actors and tasks.
"""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import rayhead
from tests.helpers import camfleet, check_run_folder, free_port, wait_until

pytestmark = pytest.mark.timeout(300)
PASSWORD = "Gate-pw-" + secrets.token_hex(6)
CAMERA = "  - {{id: {cid}, source: {{type: synthetic, width: 320, height: 240, fps: 10}}}}\n"


def fleet_text(cameras: tuple[str, ...], locked_port: int) -> str:
    listed = "".join(CAMERA.format(cid=cid) for cid in cameras)
    # a camera behind a password, at an address where nothing answers: it retries, and its
    # URL (with the password) is in the camera actor's creation arguments
    locked = (f"  - {{id: locked, source: {{url: "
              f"\"rtsp://viewer:${{CAM_PASSWORD}}@127.0.0.1:{locked_port}/s\"}}}}\n")
    return f"""
name: tokened
metrics: {{enabled: false}}
stats_interval_s: 0.5
autoscaling: {{enabled: false}}
defaults: {{fps: 5, buffers: 2, detect_width: null, num_cpus: 0.1, detect: [blobs]}}
cameras:
{listed}{locked}detectors:
  blobs: {{type: blobs, actors: 1, num_cpus: 0.25}}
"""


@pytest.fixture
def head(tmp_path):
    token = secrets.token_hex(32)
    home = tmp_path / "home"  # no ~/.ray/auth_token of this machine's user is read
    home.mkdir()
    with rayhead.ray_head(tmp_path, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
                                     "HOME": str(home)},
                          unset=("RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")) as started:
        yield started, token


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(camfleet(*args), env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def refused(proc: subprocess.CompletedProcess[str], *tokens: str) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out and "gcs_client" not in out, out  # one line, no retry noise
    for token in tokens:
        assert token not in out
    return out


def test_status_and_apply_need_the_clusters_token(head, tmp_path):
    started, token = head
    right = {k: v for k, v in started.env.items() if k != "CAM_PASSWORD"}
    wrong = {**right, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    missing = {k: v for k, v in right.items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE")}
    locked_port = free_port()
    fleet, bigger = tmp_path / "fleet.yaml", tmp_path / "bigger.yaml"
    fleet.write_text(fleet_text(("yard",), locked_port))
    bigger.write_text(fleet_text(("yard", "dock"), locked_port))
    run_dir = tmp_path / "run"
    out = open(tmp_path / "run.log", "w")  # noqa: SIM115 - closed below
    # given a fleet run on the head by someone with the token (and the camera's password)
    proc = subprocess.Popen(
        camfleet("run", str(fleet), "--address", started.gcs, "--run-dir", str(run_dir),
                 "--every", "1"),
        env={**right, "CAM_PASSWORD": PASSWORD}, stdout=out, stderr=subprocess.STDOUT)
    log = tmp_path / "run.log"
    try:
        wait_until(lambda: log.read_text().count("in fps") >= 2, 120,
                   lambda: f"two live tables: {log.read_text()[-3000:]}", interval_s=0.5)
        # when status asks with the token, it sees the fleet
        status = run(right, "status", "--address", started.gcs)
        assert status.returncode == 0, status.stdout + status.stderr
        assert re.search(r"^yard\s+up", status.stdout, re.M), status.stdout
        # when it asks with a wrong token, or none, it is refused at once, and says what to set
        text = refused(run(wrong, "status", "--address", started.gcs), token, wrong[
            "RAY_AUTH_TOKEN"])
        assert "refused our token" in text and "RAY_AUTH_TOKEN" in text, text
        text = refused(run(missing, "status", "--address", started.gcs), token)
        assert "requires a token" in text and "RAY_AUTH_MODE=token" in text, text
        # and apply with a wrong token changes nothing
        text = refused(run({**wrong, "CAM_PASSWORD": PASSWORD}, "apply", str(bigger),
                           "--address", started.gcs), token, PASSWORD)
        assert "refused our token" in text, text
        assert "dock" not in run(right, "status", "--address", started.gcs).stdout
        # and the job API refuses a submitter without the token
        jobs = subprocess.run([rayhead.RAY, "job", "list", "--address", started.address],
                              env=wrong, capture_output=True, text=True, timeout=120,
                              check=False)
        assert jobs.returncode != 0, jobs.stdout + jobs.stderr
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{started.address}/api/jobs/", timeout=10)
        assert answer.value.code in (401, 403)
        # and with the token, apply changes the running fleet
        applied = run({**right, "CAM_PASSWORD": PASSWORD}, "apply", str(bigger), "--address",
                      started.gcs)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "camera dock: added" in applied.stdout, applied.stdout
        # and what Ray shows of actors and tasks, to anyone with the token, has no password
        for what in ("actors", "tasks"):
            shown = subprocess.run(
                [rayhead.RAY, "list", what, "--detail", "--limit", "1000", "--address",
                 started.gcs], env=right, capture_output=True, text=True, timeout=120,
                check=False)
            assert shown.returncode == 0 and "CameraWorker" in shown.stdout, shown.stderr
            assert PASSWORD not in shown.stdout + shown.stderr, what
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        out.close()
    assert proc.returncode == 0, log.read_text()[-3000:]
    summary = check_run_folder(run_dir, secret=PASSWORD)
    assert {"yard", "dock", "locked"} <= set(summary)
    assert PASSWORD not in log.read_text()
    for path in Path(run_dir).rglob("*"):
        if path.is_file():
            assert PASSWORD not in path.read_text(errors="replace"), path
