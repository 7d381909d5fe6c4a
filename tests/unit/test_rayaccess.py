"""What a refused Ray says, and which addresses are not probed (pure logic; the real refusal
by a token-auth head is tests/e2e/test_ray_token.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from actors import rayaccess
from tests.conftest import REPO


def test_a_refusal_says_what_to_set_and_never_the_token():
    wrong = rayaccess.refusal("10.0.0.1:6379", "10.0.0.1:6379", had_token=True)
    none = rayaccess.refusal("auto", "10.0.0.1:6379", had_token=False)
    assert "refused our token" in wrong and "RAY_AUTH_TOKEN" in wrong
    assert "requires a token" in none and "RAY_AUTH_MODE=token" in none
    assert "10.0.0.1:6379" in none and "(" not in none.split("requires")[0]


def test_client_and_dashboard_addresses_are_left_to_ray():
    for address in ("ray://head:10001", "http://head:8265", "https://head", "local"):
        assert rayaccess._gcs_address(address) is None
    rayaccess.check_ray_access("ray://head:10001")  # no probe, no error


@pytest.mark.parametrize("mode", [None, "token", "disabled"])
def test_the_token_is_found_as_ray_init_would_find_it(tmp_path, mode):
    # given the token an embedded camfleet run's Ray wrote to ~/.ray/auth_token, and
    # RAY_AUTH_MODE unset (ray.init then sends it), or set either way
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("a" * 64)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)
    if mode:
        env["RAY_AUTH_MODE"] = mode
    # then the probe sends it (a fresh process: Ray's token loader is a process-wide singleton)
    code = "from actors.rayaccess import _token; print(_token() == 'a' * 64)"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "True", out.stderr
