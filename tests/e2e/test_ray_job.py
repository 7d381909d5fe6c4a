"""`ray job submit` against a real Ray head started here; `ray job stop` drains the fleet."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from tests import rayhead
from tests.conftest import MEGAMIND, REPO
from tests.helpers import camfleet, check_run_folder, wait_until
from tests.servers import fixtures

pytestmark = pytest.mark.timeout(300)
RAY = rayhead.RAY
mjpeg_server = fixtures.mjpeg_server


SECRET = "s3cret-Gate-pw"  # reaches the driver through the head's environment only


@pytest.fixture
def ray_head(tmp_path):
    """A Ray head holding a camera password in its own environment, where the job's driver
    reads it: the job's metadata never has it. It keeps Ray's default `ray job stop` wait (3 s).
    """
    env = {"RAY_AUTH_MODE": "disabled", "CAM_PASSWORD": SECRET,
           # where a job's run folder goes (default ~/camfleet-runs): inside the test's folder
           "CAMFLEET_RUNS": str(tmp_path / "runs")}
    with rayhead.ray_head(tmp_path, env, unset=("RAY_JOB_STOP_WAIT_TIME_S",)) as head:
        client_env = {k: v for k, v in head.env.items() if k != "CAM_PASSWORD"}
        yield head.address, client_env


def ray_job(address: str, env: dict, command: str, *args: str) -> str:
    proc = subprocess.run([RAY, "job", command, "--address", address, *args], env=env, check=False,
                          capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


def test_ray_job_stop_drains_the_fleet_and_keeps_every_event(ray_head, tmp_path, footage):
    address, env = ray_head
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"""
name: job
defaults: {{fps: 4, buffers: 2}}
cameras:
  - {{id: faces, source: {MEGAMIND}, detect: [face]}}
  - {{id: synth, source: {{type: synthetic, width: 1280, height: 720, fps: 25}}, detect: [face]}}
detectors:
  face: {{actors: 1, num_cpus: 0.5}}
""")
    run_dir = tmp_path / "run"
    # when a fleet is submitted as a Ray job
    out = ray_job(address, env, "submit", "--no-wait", "--",
                  *camfleet("run", str(fleet), "--run-dir", str(run_dir), "--every", "2"))
    job = re.search(r"raysubmit_\w+", out)
    assert job, out
    # and it has analysed frames for a while
    stats = run_dir / "stats.jsonl"
    wait_until(lambda: stats.is_file() and len(stats.read_text().splitlines()) >= 5, 60,
               lambda: f"5 stats lines; job logs: {ray_job(address, env, 'logs', job.group())}",
               interval_s=1)
    # when the job is stopped
    ray_job(address, env, "stop", job.group())
    # then the driver got SIGTERM, drained, and wrote an exact summary
    logs = ray_job(address, env, "logs", job.group())
    assert "stopping on SIGTERM" in logs, logs
    assert "MISMATCH" not in logs
    summary = check_run_folder(run_dir)
    assert summary["faces"]["processed"] > 0
    assert "was stopped" in ray_job(address, env, "status", job.group())


@pytest.mark.slow
@pytest.mark.parametrize("mjpeg_server", [{"user": "viewer", "password": SECRET}], indirect=True)
def test_a_drain_longer_than_the_stop_wait_still_finishes_and_no_secret_leaks(
    ray_head, mjpeg_server, tmp_path
):
    address, env = ray_head
    assert "CAM_PASSWORD" not in env  # the submitter does not even know the password
    url = mjpeg_server.url_with("viewer", "${CAM_PASSWORD}")
    fleet = tmp_path / "fleet.yaml"
    # given a slow detector (HOG people at native 1080p, about 1 s a frame here) with 4 frames in
    # flight, so the drain takes several seconds, past Ray's 3 s stop wait
    fleet.write_text(f"""
name: slowdrain
drain_timeout_s: 60
cameras:
  - {{id: gate, source: {{url: "{url}", read_timeout_s: 5}}, fps: 2, detect: [person]}}
  - {{id: big, source: {{type: synthetic, width: 1920, height: 1080, fps: 10}},
     detect: [person], fps: 4, buffers: 4, detect_width: null}}
detectors:
  person: {{type: hog, actors: 1, num_cpus: 1}}
""")
    run_dir = tmp_path / "run"
    out = ray_job(address, env, "submit", "--no-wait", "--",
                  *camfleet("run", str(fleet), "--run-dir", str(run_dir), "--every", "2"))
    job = re.search(r"raysubmit_\w+", out)
    assert job, out
    stats = run_dir / "stats.jsonl"
    wait_until(lambda: stats.is_file() and '"processed":' in stats.read_text()
               and len(stats.read_text().splitlines()) >= 8, 120,
               lambda: f"stats lines; job logs: {ray_job(address, env, 'logs', job.group())}",
               interval_s=1)
    # when the job is stopped: the driver is killed 3 s after SIGTERM, mid-drain
    ray_job(address, env, "stop", job.group())
    # then the detached controller finishes the drain and writes an exact summary
    summary_file = run_dir / "summary.json"
    wait_until(summary_file.is_file, 90, "summary.json from the controller", interval_s=0.5)
    summary = check_run_folder(run_dir, secret=SECRET)
    assert summary["big"]["processed"] > 0 and summary["gate"]["processed"] > 0
    # and the password is nowhere: not in the job's metadata, logs or the run folder
    for command in (("list",), ("logs", job.group()), ("status", job.group())):
        assert SECRET not in ray_job(address, env, *command), command
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl"):
            assert SECRET not in path.read_text(), path
    # and nothing of the fleet is left running
    wait_until(lambda: "camfleet-slowdrain" not in ray_job(address, env, "list"), 5,
               "the job list", interval_s=1)


def readme_recipe() -> list[str]:
    """The `ray job submit` block of the README's "On a cluster" section, as argv."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## On a cluster"):]
    block = section[section.index("```bash\n") + 8:]
    block = block[:block.index("```")]
    return shlex.split(block.replace("\\\n", " "))


@pytest.mark.slow
def test_the_readmes_job_recipe_runs_the_demo_and_its_run_folder_outlives_the_job(
        ray_head, tmp_path, footage):
    address, env = ray_head
    # given the README's recipe, its placeholders filled in: the head, the models, a duration
    recipe = readme_recipe()
    assert recipe[:3] == ["ray", "job", "submit"] and "--working-dir" in recipe
    argv = [RAY, *recipe[1:]]
    argv[argv.index("http://HEAD:8265")] = address
    argv = [a.replace("/opt/camfleet/models", str(REPO / "models")) for a in argv]
    runs = tmp_path / "runs"  # CAMFLEET_RUNS in the head's environment (the fixture)
    # when it is submitted from the repository (--working-dir .) and runs for 20 s
    proc = subprocess.run([*argv, "--duration", "20", "--every", "5"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "succeeded" in out, out[-3000:]
    # then the job said where its run folder went, and it is there after the job's package is
    # gone: outside Ray's working_dir copy, with every frame accounted for and real objects
    assert "running from a Ray job's working_dir" in out, out[-3000:]
    (run_dir,) = runs.iterdir()
    assert "_ray_pkg_" not in str(run_dir)
    summary = check_run_folder(run_dir)
    assert set(summary) == {"megamind", "town-square", "lobby-1080p", "yard-720p"}
    assert summary["megamind"]["object_events"]["start"] > 0
