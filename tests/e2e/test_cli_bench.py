"""`camfleet bench transport` keeps working (tiny sizes: a smoke test, no timing asserted)."""

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
         "--frames", "10", "--object-store-mb", "200", "--json", str(out), "--plot", str(plot)],
        check=False, capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())["sizes"]["720p"]
    assert result["frame_mb"] == pytest.approx(2.76, abs=0.01)
    for key in ("memcpy_ms", "handoff_median_ms", "pipelined_ms_per_frame", "handoff_vs_memcpy"):
        assert result[key] > 0
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
