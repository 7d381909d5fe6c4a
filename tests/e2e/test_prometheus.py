"""Every query of every shipped dashboard panel returns data from a real Prometheus scraping a
real fleet run with the shipped scrape config (port adjusted). No empty panel, no misspelt
metric."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import MEGAMIND, REPO
from tests.dashboards.queries import dashboard_queries
from tests.helpers import camfleet, free_port, wait_until

pytestmark = pytest.mark.timeout(300)
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def prometheus_config(folder: Path, metrics_port: int) -> Path:
    """The shipped config, pointed at this run's metrics port and scraping every second."""
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    config.setdefault("global", {})["scrape_interval"] = "1s"
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "camfleet"]
    assert jobs, "deploy/prometheus/prometheus.yml has no camfleet job"
    jobs[0]["scrape_interval"] = jobs[0]["scrape_timeout"] = "1s"
    jobs[0]["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def query(api: str, expr: str) -> dict:
    url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def has_data(api: str, expr: str) -> bool:
    try:
        return bool(query(api, expr)["data"]["result"])
    except OSError:
        return False


@pytest.fixture
def fleet_run(tmp_path, footage):
    """A fleet that exercises every panel: detections, drops, a down camera, scaling actions."""
    port = free_port()
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"""
name: prom
metrics: {{port: {port}}}
stats_interval_s: 0.5
defaults: {{fps: 5, buffers: 2}}
cameras:
  - {{id: faces, source: {MEGAMIND}, detect: [face]}}
  - {{id: synth, source: {{type: synthetic, width: 1280, height: 720, fps: 25}}, fps: 25}}
  - id: offline
    source: {{url: "rtsp://admin:${{CAM_PASSWORD}}@127.0.0.1:9/s", open_timeout_s: 1}}
detectors:
  # Haar, not the default BlazeFace: BlazeFace runs these frames at under 10% busy, below the
  # lowest target the config allows, so it would never scale
  face: {{type: haar, actors: 1, max_actors: 3, num_cpus: 0.5}}
autoscaling: {{target_utilisation: 0.1, upscale_delay_s: 1}}   # forces scaling actions
sinks:   # a webhook nobody answers: its queue fills and drops, for the push sink panels
  webhook: {{enabled: true, url: "http://127.0.0.1:9/hook", queue_size: 3, max_backoff_s: 1}}
""")
    env = {**os.environ, "CAM_PASSWORD": "hunter2"}
    run = subprocess.Popen(
        camfleet("run", str(fleet), "--run-dir", str(tmp_path / "run"),
                 "--num-cpus", "3", "--object-store-mb", "300", "--every", "5"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    yield port, tmp_path
    run.send_signal(signal.SIGTERM)
    out, _ = run.communicate(timeout=90)
    assert run.returncode == 0, out


@pytest.fixture
def prometheus(fleet_run):
    port, folder = fleet_run
    api_port = free_port()
    log = open(folder / "prometheus.log", "w")  # noqa: SIM115 - closed in teardown
    server = subprocess.Popen(
        [PROMETHEUS, f"--config.file={prometheus_config(folder, port)}",
         f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{api_port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    yield f"http://127.0.0.1:{api_port}", port, server, folder / "prometheus.log"
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def test_every_dashboard_query_returns_data(prometheus):
    api, metrics_port, server, log = prometheus

    def scraped() -> bool:
        assert server.poll() is None, f"prometheus exited: {log.read_text()[-2000:]}"
        return has_data(api, 'up{job="camfleet"} == 1')

    # given Prometheus scraping the running fleet for long enough for rate() windows to fill
    wait_until(scraped, 120, "the first camfleet scrape", interval_s=1)
    wait_until(lambda: has_data(api, "camfleet_autoscaler_decisions_total"), 90,
               "a scaling decision", interval_s=1)
    time.sleep(20)
    # when every panel's query is sent to Prometheus
    empty, failed = [], []
    for dashboard, panel, expr in dashboard_queries():
        try:
            answer = query(api, expr)
        except OSError as exc:
            failed.append((dashboard, panel, expr, str(exc)))
            continue
        if answer.get("status") != "success":
            failed.append((dashboard, panel, expr, answer.get("error")))
        elif not answer["data"]["result"]:
            empty.append((dashboard, panel, expr))
    # then none fails and none is empty
    assert not failed, failed
    assert not empty, empty
    # and the annotation queries (data only in the minute after a decision) are valid PromQL
    panels = set(dashboard_queries())
    for dashboard, panel, expr in set(dashboard_queries(annotations=True)) - panels:
        assert query(api, expr).get("status") == "success", (dashboard, panel, expr)
    # and the scraped metrics hold no credential
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        assert b"hunter2" not in r.read()
