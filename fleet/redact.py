"""Keep credentials out of logs, metrics, events and errors."""

from __future__ import annotations

import re

# scheme://user:password@host -> scheme://user:***@host ; scheme://token@host -> scheme://***@host.
# The password may hold unescaped '@' or '/': the host is what follows the *last* '@' before the
# path, so the lazy password grows until the rest looks like a host.
_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*)(?::(?P<password>\S*?))?@"
    r"(?=[^@/\s?#]+(?:[/?#\s,;'\")\]]|$))"
)
# A query parameter whose name says it is a secret: token, access_token, api_key, x-api-key,
# client_secret, password, ... (but not "monkey": a prefix must end in '_' or '-').
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:[a-z0-9]+[_-])*(?:access_?token|auth_?token|token|api_?key|key|password|"
    r"passwd|pass|pwd|secret|auth|signature|sig|credentials?)=)[^&\s#,;'\")\]]*",
    re.IGNORECASE,
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, password = match.group("user"), match.group("password")
    masked = f"{user}:***" if password is not None else "***"
    return f"{match.group('scheme')}{masked}@"


def redact_url(text: str) -> str:
    """Mask passwords and tokens in every URL inside ``text``.

    >>> redact_url("rtsp://admin:hunter2@10.0.0.5/stream?token=abc")
    'rtsp://admin:***@10.0.0.5/stream?token=***'
    """
    text = _USERINFO.sub(_mask_userinfo, text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}***", text)
