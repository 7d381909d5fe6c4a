"""Keep credentials out of logs, metrics, events and errors."""

from __future__ import annotations

import re
from collections.abc import Callable

# scheme://user:password@host -> scheme://user:***@host ; scheme://token@host -> scheme://***@host.
# The password may hold unescaped '@' or '/': the host is what follows the *first* '@' after which
# the rest looks like a host (a host, then '/', '?', '#', whitespace, punctuation or the end).
# It may hold spaces and tabs too, as long as it stays on one line and before the next '://'.
#
# This is a scan, not one regular expression: a backtracking regex tries the scheme at every letter
# and the password at every '@', which is quadratic in the length of a text (a 1 MB value took
# minutes). Each helper below answers "the next ... at or after q" for growing q, resuming where it
# stopped, so redacting a text reads it a bounded number of times.
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_USER = re.compile(r"[^:@/\s]*")
_HOST = re.compile(r"[^@/?#\s]*")
_HOST_THEN = re.compile(r"[,;'\")\]]")  # may also end a host that an '@' follows
_SPACE = re.compile(r"\s")
_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# A query parameter whose name says it is a secret: token, access_token, api_key, x-api-key,
# client_secret, password, ... (but not "monkey": a prefix must end in '_' or '-').
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:[a-z0-9]+[_-])*(?:access_?token|auth_?token|token|api_?key|key|password|"
    r"passwd|pass|pwd|secret|auth|signature|sig|credentials?)=)[^&\s#,;'\")\]]*",
    re.IGNORECASE,
)


def _forward(search: Callable[[int], int]) -> Callable[[int], int]:
    """``search(q)``: the first position >= q where something is (len(text) if none), asked for
    non-decreasing q only; an answer still ahead of q is reused, so the text is read once."""
    found = -1

    def at_or_after(q: int) -> int:
        nonlocal found
        if found < q:
            found = search(q)
        return found

    return at_or_after


class _Scan:
    """The positions a userinfo match depends on, in one text."""

    def __init__(self, text: str):
        self.text = text
        n = len(text)

        def regex(pattern: re.Pattern[str]) -> Callable[[int], int]:
            def search(q: int) -> int:
                match = pattern.search(text, q)
                return match.start() if match else n

            return search

        def literal(needle: str) -> Callable[[int], int]:
            def search(q: int) -> int:
                at = text.find(needle, q)
                return n if at < 0 else at

            return search

        def host_at(q: int) -> int:
            at = text.find("@", q)
            while at >= 0 and not self.host_follows(at + 1):
                at = text.find("@", at + 1)
            return n if at < 0 else at

        # Asked by userinfo() only, for a growing start.
        self.space = _forward(regex(_SPACE))
        self.line_break = _forward(regex(_LINE_BREAK))
        self.separator = _forward(literal("://"))
        self.host_at = _forward(host_at)  # an '@' that a host follows

    def host_follows(self, start: int) -> bool:
        """Does a host start at ``start``? (The regex's lookahead.)"""
        text = self.text
        end = _HOST.match(text, start).end()  # type: ignore[union-attr]  # * always matches
        if end == start:
            return False
        if end == len(text) or text[end] != "@":
            return True  # the end, '/', '?', '#' or whitespace
        return _HOST_THEN.search(text, start + 1, end) is not None  # "host," then more

    def scheme_start(self, separator: int, floor: int) -> int | None:
        """Where the scheme before the ``"://"`` at ``separator`` starts: a letter, then scheme
        characters (none: None)."""
        text, start = self.text, separator
        while start > floor and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < separator and not ("a" <= text[start].lower() <= "z"):
            start += 1
        return start if start < separator else None

    def userinfo(self, start: int) -> tuple[int, int, bool] | None:
        """``(end of user, the '@', has a password)`` for a userinfo at ``start``, if one is."""
        text = self.text
        user_end = _USER.match(text, start).end()  # type: ignore[union-attr]  # * always matches
        if user_end == len(text):
            return None
        if text[user_end] == "@":
            return (user_end, user_end, False) if self.host_follows(user_end + 1) else None
        if text[user_end] != ":":
            return None
        at = self.host_at(user_end + 1)
        if at == len(text):
            return None
        if at < self.space(user_end + 1):
            return user_end, at, True  # a password without whitespace: any length, any '://'
        if at < self.line_break(user_end + 1) and at < self.separator(user_end + 1):
            return user_end, at, True  # spaces or tabs in the password, within this URL
        return None


def _mask_userinfo(text: str) -> str:
    if "://" not in text:
        return text
    scan = _Scan(text)
    out: list[str] = []
    done = 0  # text[:done] is in out
    separator = text.find("://")
    while separator >= 0:
        scheme = scan.scheme_start(separator, done)
        found = scan.userinfo(separator + 3) if scheme is not None else None
        if scheme is None or found is None:
            separator = text.find("://", separator + 1)
            continue
        user_end, at, has_password = found
        user = text[separator + 3:user_end]
        out += [text[done:separator + 3], f"{user}:***@" if has_password else "***@"]
        done = at + 1
        separator = text.find("://", done)
    out.append(text[done:])
    return "".join(out)


def redact_url(text: str) -> str:
    """Mask passwords and tokens in every URL inside ``text``, in time linear in its length.

    >>> redact_url("rtsp://admin:hunter2@10.0.0.5/stream?token=abc")
    'rtsp://admin:***@10.0.0.5/stream?token=***'
    """
    text = _mask_userinfo(text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}***", text)
