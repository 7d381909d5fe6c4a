"""What a refused Ray says, and which addresses are not probed (pure logic; the real refusal
by a token-auth head is tests/e2e/test_ray_token.py)."""

from __future__ import annotations

from actors import rayaccess


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
