"""Is this process let into the Ray it is about to join? One question, asked before ``ray.init``.

A Ray head started with ``RAY_AUTH_MODE=token`` (Ray >= 2.52; camfleet's deploy files turn it
on) refuses every gRPC call without its token. ``ray.init`` then retries for about 20 seconds,
prints a C++ warning a second, and ends with "Failed to connect", which reads like a head that is
down. Here the head's GCS is asked for its cluster id once, with the token this process would
send (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, as Ray reads them), 5
seconds at most. A refusal becomes one line that says what to set; the token itself is never in
it. Anything else (no head there, a ``ray://`` client address, an older Ray) is left to
``ray.init`` and its own message.
"""

from __future__ import annotations

import logging

from fleet.errors import FleetError

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 5.0
_NOT_GCS = ("ray://", "http://", "https://")


def check_ray_access(address: str | None) -> None:
    """Raise :class:`FleetError` if the Ray at ``address`` ("auto": this machine's) refuses us."""
    gcs = _gcs_address(address)
    if gcs is None:
        return
    import grpc

    try:
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:  # a Ray whose generated stubs moved: ray.init will say what is wrong
        return
    token = _token()
    metadata = [("authorization", f"Bearer {token}")] if token else []
    with grpc.insecure_channel(gcs) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            request = gcs_service_pb2.GetClusterIdRequest()  # type: ignore[attr-defined]
            stub.GetClusterId(request, metadata=metadata,
                              timeout=PROBE_TIMEOUT_S)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise FleetError(refusal(address or "auto", gcs, bool(token))) from None
            log.debug("Ray access probe of %s: %s", gcs, exc.code())


def refusal(address: str, gcs: str, had_token: bool) -> str:
    where = gcs if address in ("auto", gcs) else f"{address} ({gcs})"
    if had_token:
        return (f"the Ray cluster at {where} refused our token; set RAY_AUTH_TOKEN (or "
                "RAY_AUTH_TOKEN_PATH, a file) to the cluster's token (its Kubernetes secret, or "
                "~/.ray/auth_token on the head)")
    return (f"the Ray cluster at {where} requires a token (RAY_AUTH_MODE=token); set "
            "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, a file) to the "
            "cluster's token")


def _gcs_address(address: str | None) -> str | None:
    if address is not None and (address == "local" or address.startswith(_NOT_GCS)):
        return None
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(address or "auto")
    except Exception:  # no head recorded on this machine, a bad address: ray.init says so
        return None


def _token() -> str | None:
    """The token Ray would send: its own loader, which reads RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH
    and ~/.ray/auth_token in Ray's order; None when there is none (or this Ray has no tokens)."""
    try:
        from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]

        # whatever RAY_AUTH_MODE says here: with it unset, ray.init sends a token it finds
        # (maybe_enable_token_auth_if_token_available), e.g. the ~/.ray/auth_token an
        # embedded camfleet run's Ray wrote
        loader = AuthenticationTokenLoader.instance()
        if not loader.has_token(ignore_auth_mode=True):
            return None
        header = loader.get_token_for_http_header(ignore_auth_mode=True)
    except Exception:
        return None
    value = next(iter(header.values()), "") if header else ""
    return value.removeprefix("Bearer ") or None
