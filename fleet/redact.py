"""Keep credentials out of logs, metrics, events and errors."""

from __future__ import annotations

import re

# scheme://user:password@host -> scheme://user:***@host ; scheme://token@host -> scheme://***@host
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|token|auth|key|secret|signature)=)[^&\s]*", re.IGNORECASE
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _ = match.group("userinfo").partition(":")
    masked = f"{user}:***" if sep else "***"
    return f"{match.group('scheme')}{masked}@"


def redact_url(text: str) -> str:
    """Mask passwords and tokens in every URL inside ``text``.

    >>> redact_url("rtsp://admin:hunter2@10.0.0.5/stream?token=abc")
    'rtsp://admin:***@10.0.0.5/stream?token=***'
    """
    text = _USERINFO.sub(_mask_userinfo, text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}***", text)
