"""fleet.bench.cpu: CPU time by role over this process's tree, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from fleet.bench import cpu


def test_a_child_that_ended_is_left_out_and_an_idle_one_costs_nothing():
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    busy = subprocess.Popen([sys.executable, "-c",
                             "import time\nt=time.process_time()\n"
                             "while time.process_time()-t<0.6: pass"])
    try:
        before = cpu.snapshot()
        assert before[os.getpid()][0] == "driver" and other.pid in before
        start = time.monotonic()
        busy.wait(timeout=30)
        after = cpu.snapshot()
        cores = cpu.cores_by_role(before, after, time.monotonic() - start)
        # the busy child ended before the second snapshot: a process gone is left out
        assert busy.pid not in after
        assert cores["other"] < 0.2
        assert set(cores) <= {"driver", "other"}
    finally:
        other.kill()
        other.wait()


def test_roles_follow_ray_process_names():
    root = 1
    assert cpu.role("ray::DetectorWorker.detect", 5, root) == "detectors"
    assert cpu.role("ray::CameraWorker", 5, root) == "cameras"
    assert cpu.role("raylet", 5, root) == "raylet"
    assert cpu.role("gcs_server", 5, root) == "gcs"
    assert cpu.role("python", root, root) == "driver"
    assert cpu.role("ray::IDLE", 5, root) == "other"


def test_a_running_child_is_counted_by_its_cpu():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        before, start = cpu.snapshot(), time.monotonic()
        time.sleep(1.0)
        cores = cpu.cores_by_role(before, cpu.snapshot(), time.monotonic() - start)
        assert cores["other"] > 0.3  # a spinning child is most of a core, on a shared machine
    finally:
        busy.kill()
        busy.wait()
