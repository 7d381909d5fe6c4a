"""A real Ray head for end-to-end tests: ``ray start --head --block`` in its own process group,
with this venv's ``python`` first on its PATH (as in an image with camfleet installed), the
dashboard on 127.0.0.1 only, and a small footprint; ended by its PID's group, never ``ray stop``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, wait_until

RAY = str(Path(sys.executable).with_name("ray"))


@dataclass(frozen=True)
class Head:
    address: str  # the dashboard's http:// address, for `ray job`
    gcs: str  # host:port, for ray.init and camfleet --address
    env: dict[str, str]  # the head's environment


@contextmanager
def ray_head(folder: Path, env: dict[str, str], unset: tuple[str, ...] = (),
             num_cpus: int = 3) -> Iterator[Head]:
    """Start a head with ``env`` (on top of this process's less ``unset``, with the venv's PATH)
    and yield it once its dashboard answers (a 401 is an answer: the head runs with token auth).
    """
    env = {**{k: v for k, v in os.environ.items() if k not in unset},
           "RAY_free_objects_batch_size": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", **env}
    dashboard, port = free_port(), free_port()
    log_path = folder / "head.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finally below
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", f"--port={port}", f"--dashboard-port={dashboard}",
         "--dashboard-host=127.0.0.1", f"--num-cpus={num_cpus}",
         "--object-store-memory=300000000", "--disable-usage-stats"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"

    def dashboard_answers() -> bool:
        assert head.poll() is None, log_path.read_text()
        try:
            urllib.request.urlopen(f"{address}/api/version", timeout=2).read()
        except urllib.error.HTTPError:
            return True  # refused without a token: it is up
        except OSError:
            return False
        return True

    try:
        wait_until(dashboard_answers, 90,
                   lambda: f"the Ray dashboard at {address}: {log_path.read_text()}",
                   interval_s=1)
        yield Head(address, f"127.0.0.1:{port}", env)
    finally:  # also when the head never came up: it must not outlive the test
        head.send_signal(signal.SIGINT)  # `ray start --block` stops its cluster on Ctrl-C
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
