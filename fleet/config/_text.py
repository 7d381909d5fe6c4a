"""How a message shows what it quotes: on one line, bounded, URLs redacted, no lone surrogate.

Plain functions of text, shared by the YAML reader, the interpolation and the error report. Each
runs in time linear in its text: a value may be a megabyte long.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from fleet.redact import redact_url

# Where a value is in the file: keys and list indexes from the top (cameras, 0, source).
KeyPath = tuple[str | int, ...]
# What a message shows of a value, and of a whole message.
SHOWN_CHARS = 60
_MESSAGE_HEAD, _MESSAGE_TAIL = 320, 160
_BIG_NUMBER = 10**40  # shown as "a 45-digit number"
# Characters that break a message's line, or are not text: shown escaped, as repr() does.
_UNSHOWABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
SURROGATE = re.compile("[\ud800-\udfff]")


def unmasked(text: str) -> str:
    return text


def shown(value: Any, mask: Callable[[str], str] = unmasked) -> str:
    """A value as a message shows it: short, secrets masked before it is cut (so no part of one
    shows), URLs redacted; a huge number by its size, as str() refuses it past 4300 digits."""
    if value is None:
        return "nothing (null)"
    if type(value) is int and abs(value) >= _BIG_NUMBER:
        return f"a {'negative ' if value < 0 else ''}{digit_count(value):,}-digit number"
    text = redact_url(mask(repr(value) if isinstance(value, str) else str(value)))
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def word(text: str) -> str:
    """A key or name, as a message or field shows it: one line, at most SHOWN_CHARS long."""
    text = visible(text)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def visible(text: str) -> str:
    """``text`` on one line: line breaks, control characters and surrogates escaped as repr()
    escapes them (tabs and spaces stay)."""
    return _UNSHOWABLE.sub(lambda m: repr(m.group())[1:-1], text)


def bounded(message: str) -> str:
    if len(message) <= _MESSAGE_HEAD + _MESSAGE_TAIL + 5:
        return message
    return f"{message[:_MESSAGE_HEAD]} ... {message[-_MESSAGE_TAIL:]}"


def valid_text(text: str) -> str | None:
    """``text`` with escaped surrogate pairs (JSON's "\\ud83d\\ude00") made the character they
    encode; None if a lone surrogate remains."""
    if not SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        return None


def written_forms(value: str) -> set[str]:
    """How a message may show ``value``: as is, on one line (visible), or inside a repr(),
    which quotes with ' (escaping ' when the whole also holds ") or with "."""
    forms = {value, visible(value), repr(value)[1:-1], repr(value + "'\"")[1:-4]}
    if '"' not in value:
        forms.add(repr(value + "'")[1:-2])
    return forms


def reason(exc: BaseException) -> str:
    """The first line of what an exception (PyYAML's, an OS error) says went wrong."""
    lines = str(getattr(exc, "problem", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def digit_count(number: int) -> int:
    """Decimal digits of ``number``, without str(): Python refuses that past 4300 digits."""
    number = abs(number)
    if number < 10**18:
        return len(str(number))
    digits = int(math.log10(number)) + 1  # close; exact but at the edges, fixed below
    if number.bit_length() < 1_000_000:
        while 10 ** (digits - 1) > number:
            digits -= 1
        while 10**digits <= number:
            digits += 1
    return digits


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{word(part)}" if out else word(part)
    return out


def undotted(text: str) -> KeyPath:
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", text))
