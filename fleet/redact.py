"""Keep credentials out of logs, metrics, events and errors."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

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
_MASK = "***"
# A parameter whose name says it is a secret, in a query (?token=, &pwd=), in ;-separated
# parameters (;password=) or in a path segment (XMEye: /user=admin_password=PASS_channel=1). The
# name is the run of letters, digits, '.' and '-' before '=' (access_token= is judged by "token");
# _secret_name() tells whether it is a secret's.
_PARAM_NAME = re.compile(r"(?<![A-Za-z0-9.-])([A-Za-z0-9.-]+)=")
# The value: up to a separator, or to '_name=value' (the XMEye form; base64 puts '=' only at its
# end, so a token is not cut there).
_PARAM_VALUE = re.compile(
    r"""(?:[^&;\s#,'")\]_]|_(?![A-Za-z][A-Za-z0-9.-]*=[^=&;\s#,'")\]]))*"""
)
# Words that make a name a secret's wherever they are in it (loginpassword, x-auth-token) ...
_SECRET_PARTS = ("pass", "pwd", "psw", "pw", "secret", "token", "auth", "cred", "signature")
# ... and words it may end with (loginpas, apikey, accesskey, streamkey; "sig" but not "signal").
_SECRET_ENDS = ("pas", "key", "sig")
# The path of a URL: after the authority, up to a query, a fragment, whitespace or a quote.
_URL_PATH = re.compile(r"""://(?P<host>[^\s/?#'"<>]*)(?P<path>/[^\s?#'"<>]*)""")
_TRAILING = ",;.:)]"  # punctuation that ends a sentence, not a path segment
# A segment after one of these is a key: IFTTT's /with/key/<key>, /token/<token>.
_KEY_SEGMENTS = frozenset({"key", "keys", "token", "tokens", "secret", "password", "passwd",
                           "apikey", "api_key", "api-key", "access_token", "auth_token"})
_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_-]{20,}")
_TELEGRAM_BOT = re.compile(r"bot[0-9]+:[A-Za-z0-9_-]+")
MIN_SECRET_LEN = 6  # shorter registered values are not masked (see register_secret)
_registered: set[str] = set()
_MAX_WALKED = 100_000  # register_secrets_in reads at most this many values


def _secret_segment(host: str, before: list[str], segment: str) -> bool:
    """Is this path segment a token? ``before``: the (up to three) segments ahead of it."""
    last = [s.lower() for s in before]
    last = [""] * (3 - len(last)) + last
    return (
        last[-1] in _KEY_SEGMENTS
        # Slack: /services/T.../B.../<token>; Discord: /api/webhooks/<id>/<token>
        or (last[0] == "services" and last[1][:1] == "t" and last[2][:1] == "b")
        or last[-2] == "webhooks"
        # Teams: /webhookb2/<guid>@<guid>/IncomingWebhook/<id>/<guid>
        or "incomingwebhook" in last[-2:]
        or ("ifttt" in host and last[-1] == "use")  # maker.ifttt.com/use/<key>
        or _TELEGRAM_BOT.fullmatch(segment) is not None  # api.telegram.org/bot<id>:<token>/
        or _random_looking(segment)
    )


def _random_looking(segment: str) -> bool:
    """A long segment of token characters that changes between digits and letters, or from
    lower to upper case, at least once in five characters: a random token does (about every
    other character), words and names (``Streaming_Channel_101``, ``front_door_camera_01``)
    do not."""
    if _TOKEN_SEGMENT.fullmatch(segment) is None:
        return False
    changes = sum(
        1 for a, b in zip(segment, segment[1:], strict=False)
        if (a.isdigit() and b.isalpha()) or (a.isalpha() and b.isdigit())
        or (a.islower() and b.isupper())
    )
    return changes * 5 >= len(segment)


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
        """``(end of user, the '@', has a password)`` for a userinfo at ``start``, if one is.

        The user may hold '@' (an e-mail address, ``ops@example.com:pw@host``, as FFmpeg reads
        it): an '@' a host follows ends a userinfo without password, else the user goes on to
        the ':' before the password."""
        text = self.text
        user_end = _USER.match(text, start).end()  # type: ignore[union-attr]  # * always matches
        while user_end < len(text) and text[user_end] == "@":
            if self.host_follows(user_end + 1):
                return user_end, user_end, False
            user_end = _USER.match(text, user_end + 1).end()  # type: ignore[union-attr]
        if user_end == len(text) or text[user_end] != ":":
            return None
        at = self.host_at(user_end + 1)
        if at == len(text):
            return None
        if at < self.space(user_end + 1):
            return user_end, at, True  # a password without whitespace: any length, any '://'
        if at < self.line_break(user_end + 1) and at < self.separator(user_end + 1):
            return user_end, at, True  # spaces or tabs in the password, within this URL
        return None


Span = tuple[int, int]  # text[start:end] is a secret, shown as "***" (even when empty)


def _userinfo_spans(text: str) -> list[Span]:
    """The password of every ``scheme://user:password@host`` (a lone ``scheme://token@``)."""
    if "://" not in text:
        return []
    scan = _Scan(text)
    spans: list[Span] = []
    done = 0
    separator = text.find("://")
    while separator >= 0:
        scheme = scan.scheme_start(separator, done)
        found = scan.userinfo(separator + 3) if scheme is not None else None
        if scheme is None or found is None:
            separator = text.find("://", separator + 1)
            continue
        user_end, at, has_password = found
        spans.append((user_end + 1, at) if has_password else (separator + 3, at))
        done = at + 1
        separator = text.find("://", done)
    return spans


def _mask_userinfo(text: str) -> str:
    return _masked(text, _userinfo_spans(text))


def _secret_name(name: str) -> bool:
    words = name.lower().replace(".", "-").split("-")
    return any(part in word for word in words for part in _SECRET_PARTS) or any(
        word.endswith(_SECRET_ENDS) for word in words
    )


def _param_spans(text: str) -> list[Span]:
    """The value of every ``name=value`` whose name says it is a secret."""
    if "=" not in text:
        return []
    spans: list[Span] = []
    for match in _PARAM_NAME.finditer(text):
        if _secret_name(match.group(1)):
            end = _PARAM_VALUE.match(text, match.end()).end()  # type: ignore[union-attr]
            spans.append((match.end(), end))
    return spans


def _path_spans(text: str) -> list[Span]:
    """Tokens in the path of every URL: webhooks and long random-looking segments."""
    spans: list[Span] = []
    for url in _URL_PATH.finditer(text):
        host, start = url.group("host").lower(), url.start("path") + 1
        segments = url.group("path")[1:].split("/")
        for i, segment in enumerate(segments):
            core = segment.rstrip(_TRAILING)
            if core and _secret_segment(host, segments[max(0, i - 3):i], core):
                spans.append((start, start + len(core)))
            start += len(segment) + 1
    return spans


def _secret_spans(text: str) -> list[Span]:
    """Where the values given to :func:`register_secret` are in ``text``."""
    spans: list[Span] = []
    for secret in _registered:
        at = text.find(secret)
        while at >= 0:
            spans.append((at, at + len(secret)))
            at = text.find(secret, at + len(secret))
    return spans


def _masked(text: str, spans: list[Span]) -> str:
    """``text`` with each span, and each run of overlapping spans, replaced by one ``***``."""
    if not spans:
        return text
    out: list[str] = []
    done = 0  # text[:done] is in out
    spans = sorted(spans)
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start > end:  # a new run: the one before is done
            out += [text[done:start], _MASK]
            done, start, end = end, next_start, next_end
        else:
            end = max(end, next_end)
    out += [text[done:start], _MASK, text[end:]]
    return "".join(out)


def register_secret(value: str) -> None:
    """Mask ``value`` wherever :func:`redact_url` finds it from now on, in this process (a
    password or token read from the environment, a file or a config field). Values shorter
    than ``MIN_SECRET_LEN`` are ignored: masking them would garble ordinary text."""
    if len(value) >= MIN_SECRET_LEN and value != _MASK:
        _registered.add(value)


def register_secrets_in(data: object) -> None:
    """Register the secrets that config data holds: the value of every field or key named like
    a secret (``secret``, ``password``, a header such as ``Authorization``) and what
    :func:`redact_url` masks in its texts (a URL's password, token parameters, webhook tokens).
    ``data``: pydantic models, dataclasses, mappings, lists and texts, nested."""
    stack, seen = [data], 0
    while stack and seen < _MAX_WALKED:
        item, seen = stack.pop(), seen + 1
        dump = getattr(item, "model_dump", None)
        if callable(dump) and not isinstance(item, type):
            item = dump()
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            item = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
        if isinstance(item, Mapping):
            for key, value in item.items():
                if isinstance(value, str) and isinstance(key, str) and _secret_field(key):
                    register_secret(value)
                else:
                    stack.append(value)
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, str):
            for start, end in _userinfo_spans(item) + _param_spans(item) + _path_spans(item):
                register_secret(item[start:end])


def _secret_field(name: str) -> bool:
    # Judged by its last word, as a parameter is: client_secret is a secret, signature_header
    # and signature_scheme are not.
    return _secret_name(name.rsplit("_", 1)[-1])


def redact_url(text: str) -> str:
    """Mask passwords and tokens in every URL inside ``text``, in time linear in its length.

    Masked: the password of a userinfo (``user:***@``, an e-mail user included; a lone token as
    ``***@``); the value of a parameter named like a secret (``?token=``, ``&pwd=``,
    ``;password=``, ``/user=a_password=``: a name holding pass, pwd, psw, pw, secret, token,
    auth, cred or signature, or ending in key, sig or pas); tokens in webhook paths (Slack,
    Discord, Teams, IFTTT, Telegram, the segment after ``/key/`` or ``/token/``, a long
    random-looking segment); and every value given to :func:`register_secret`. Each rule reads
    the original text and overlapping finds are masked as one, so no rule hides a secret from
    another.

    >>> redact_url("rtsp://admin:hunter2@10.0.0.5/stream?token=abc")
    'rtsp://admin:***@10.0.0.5/stream?token=***'
    """
    spans = _userinfo_spans(text) + _param_spans(text) + _path_spans(text)
    return _masked(text, spans + _secret_spans(text) if _registered else spans)
