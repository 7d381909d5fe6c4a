"""Load a fleet file: YAML with line numbers, ``${VAR}`` interpolation, validation.

Every problem found is reported at once as ``FILE:LINE: field.path: message``. A problem in a value
a camera took from ``defaults:`` is reported once, at the ``defaults:`` line. Values taken from the
environment never appear in a message: they may be passwords.

Whatever the text, loading ends in a :class:`FleetConfig` or a :class:`ConfigError`: nesting,
numbers and aliases are bounded before anything recursive or costly sees them, text that is not
text (lone surrogates) is refused before validation, and every message is one line, shows a
bounded part of a value, and is built in time linear in the file.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from fleet.config._base import ID_PATTERN
from fleet.config._models import FleetConfig
from fleet.errors import ConfigError, ConfigProblem
from fleet.redact import redact_url

Path_ = tuple[str | int, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# ${file:/run/secrets/gate}: a secret from a file (a Kubernetes or Docker secret), read where
# the fleet file is loaded, so it never travels in Ray's job metadata. ${file:-x} is not a file:
# it is the variable `file`, with the default x.
# What ${file:...} and ${VAR} may read is the operator's to limit, from the environment the file
# is loaded in (parse_fleet's `env`, os.environ by default), never from the fleet file itself:
# SECRET_DIRS_VAR lists the directories (os.pathsep-separated) a secret file must be in once
# links and '..' are resolved; ENV_PREFIXES_VAR (comma-separated) the prefixes a variable's name
# must start with. Unset, a fleet file reads any variable and any file the loading process can;
# set but empty, it reads none. Empty entries are ignored. See docs/security.md.
_FILE = re.compile(r"\$\{file:(?!-)([^}]+)\}")
SECRET_DIRS_VAR = "CAMFLEET_SECRET_DIRS"
ENV_PREFIXES_VAR = "CAMFLEET_ENV_PREFIXES"
_MAX_SECRET_FILE_BYTES = 65536
_DOTTED = re.compile(r"^([a-z_]\w*(?:\[\d+\]|\.[\w-]+)*): (.*)$", re.DOTALL)
_YAML_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _YAML_TAG + "merge"
_INT_TAG = _YAML_TAG + "int"
# Lists and mappings nested deeper than this are refused before PyYAML's composer (or anything
# else) recurses into them: a fleet file needs a handful of levels; Python's stack, about 300.
MAX_DEPTH = 64
# Python cannot print an int of more than 4300 digits (and YAML builds hex, octal, binary and
# base-60 ints without that limit); no setting takes one. An int written longer than
# _MAX_INT_TEXT characters is refused unread: base 60 takes quadratic time to build.
_MAX_INT_DIGITS = 4300
_MAX_INT_TEXT = 65536
_BIG_NUMBER = 10**40  # shown as "a 45-digit number"
# What a message shows of a value, and of a whole message (a value may be a megabyte long).
_SHOWN_CHARS = 60
_MESSAGE_HEAD, _MESSAGE_TAIL = 320, 160
# Characters that break a message's line, or are not text: shown escaped, as repr() does.
_UNSHOWABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# User texts with a line break that a message may quote; beyond these, line breaks still never
# start a problem of their own (see _own_parts), they are only shown less neatly.
_MAX_ESCAPED_TEXTS = 100
# A few hundred bytes of nested aliases ("billion laughs") expand to billions of values. Aliases
# may expand a file's values (`<<: *defaults` in every camera) about tenfold at most, plus a
# margin; past that, and past 16 MiB on disk, loading stops with a clear message.
MAX_FILE_BYTES = 16 * 2**20
EXPANSION_MARGIN, EXPANSION_FACTOR = 100_000, 10
# An environment value this short is not worth masking, and masking it would garble messages.
_MIN_SECRET_LEN = 4


class _Document:
    """Plain data built from YAML nodes, the line of each path, and the problems found so far."""

    def __init__(self, filename: str, env: Mapping[str, str]):
        self.filename = filename
        self.env = env
        # The operator's allow-lists (see _FILE): None when unset, that is, anything goes.
        self.secret_dirs_text = env.get(SECRET_DIRS_VAR)
        self.secret_dirs = None if self.secret_dirs_text is None else tuple(filter(None, (
            _resolved(entry) for entry in self.secret_dirs_text.split(os.pathsep) if entry.strip()
        )))
        self.env_prefixes_text = env.get(ENV_PREFIXES_VAR)
        self.env_prefixes = None if self.env_prefixes_text is None else tuple(
            entry.strip() for entry in self.env_prefixes_text.split(",") if entry.strip()
        )
        self.lines: dict[Path_, int] = {}
        self.problems: list[ConfigProblem] = []
        self._reported: set[tuple[str, int | None]] = set()
        self.env_problem_paths: set[Path_] = set()
        self.env_values: set[str] = set()
        self._secret_forms: list[str] = []
        self._secret_forms_of = 0  # len(env_values) when _secret_forms was made
        self.broken_texts: set[str] = set()  # values with a line break, as validated
        self._escapes: list[tuple[str, str]] = []
        self._written_keys: dict[int, set[int]] = {}
        self._constructor = yaml.SafeLoader("")
        self.values = 0  # values built so far, aliases expanded: bounded against alias bombs
        self.max_values = EXPANSION_MARGIN

    # ------------------------------------------------------------------------------ problems
    def problem(self, path: Path_, message: str) -> None:
        """Record a problem at ``path``; once per field, never under an unset variable."""
        path, line = self.locate(path)
        if any(path[:end] in self.env_problem_paths for end in range(len(path) + 1)):
            return  # the unset variable is the cause; its message says so
        where = (_dotted(path), line)
        if where in self._reported:
            return  # a camera's copy of a bad default, or a second error on one value
        self._reported.add(where)
        self.problems.append(ConfigProblem(self.filename, line, where[0], message))

    def written(self, path: Path_) -> bool:
        """Is ``path`` in the file (in the camera, or in ``defaults:``)?"""
        return path in self.lines or (
            len(path) >= 3 and path[0] == "cameras" and ("defaults", *path[2:]) in self.lines
        )

    def locate(self, path: Path_) -> tuple[Path_, int | None]:
        """Where ``path`` is written: the camera itself, the ``defaults:`` entry, or a parent."""
        for end in range(len(path), -1, -1):
            head = path[:end]
            if head in self.lines:
                return path, self.lines[head]
            if end >= 3 and head[0] == "cameras" and ("defaults", *head[2:]) in self.lines:
                return ("defaults", *path[2:]), self.lines[("defaults", *head[2:])]
        return path, None

    def mask(self, text: str) -> str:
        """``text`` with every environment value (and secret file) masked, as written and as
        repr() or a message shows it escaped (a tab as \\t, a newline as \\n)."""
        if self._secret_forms_of != len(self.env_values):
            forms = {
                form
                for value in self.env_values if len(value) >= _MIN_SECRET_LEN
                for form in _written_forms(value)
            }
            self._secret_forms = sorted(forms, key=len, reverse=True)
            self._secret_forms_of = len(self.env_values)
        for form in self._secret_forms:
            text = text.replace(form, "***")
        return text

    def escape_user_breaks(self, message: str) -> str:
        """A model's message with the line breaks of the user's texts it quotes escaped: its own
        line breaks are then all that is left, and each starts a ``field.path: `` problem."""
        if "\n" not in message or not self.broken_texts:
            return message
        if not self._escapes:
            texts = sorted(self.broken_texts, key=len, reverse=True)[:_MAX_ESCAPED_TEXTS]
            self._escapes = [
                (form, _visible(form)) for text in texts for form in dict.fromkeys(
                    (text, redact_url(text)))
            ]
        for form, escaped in self._escapes:
            if len(form) <= len(message) and form in message:
                message = message.replace(form, escaped)
        return message

    def scrubbed(self) -> list[ConfigProblem]:
        """The problems as shown: secrets masked first, then on one line and of bounded length."""
        return [
            ConfigProblem(p.file, p.line, p.field, _bounded(_visible(self.mask(p.message))))
            for p in self.problems
        ]

    # -------------------------------------------------------------------------------- build
    def build(self, node: yaml.Node, path: Path_, line: int, stack: frozenset[int]) -> Any:
        self.lines[path] = line
        self.values += 1
        if self.values > self.max_values:
            raise ConfigError([ConfigProblem(
                self.filename, line, _dotted(path),
                f"the file's aliases expand it to more than {self.max_values:,} values (an alias "
                "bomb?); write the values out, or use `defaults:` instead of aliases")])
        if id(node) in stack:
            self.problem(
                path, "this alias refers to a node that contains it; YAML data must be a tree"
            )
            return None
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and len(path) >= MAX_DEPTH:
            self.problem(path, _TOO_DEEP)  # deep through aliases: the composer saw no more
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, stack | {id(node)})
        if isinstance(node, yaml.SequenceNode):
            return [
                self.build(child, (*path, i), child.start_mark.line + 1, stack | {id(node)})
                for i, child in enumerate(node.value)
            ]
        value = self._construct(node, path)
        return self._text(value, path) if isinstance(value, str) else value

    def _text(self, value: str, path: Path_) -> str:
        """A text value, interpolated; one that is not text (lone surrogates) is refused here,
        before validation (pydantic-core cannot even encode it into an error message)."""
        text = _valid_text(value)
        if text is None:
            self.problem(path, f"{_shown(value)} {_LONE_SURROGATE}")
            text = _SURROGATE.sub("\ufffd", value)
        value = self._interpolate(text, path)
        text = _valid_text(value)
        if text is None:  # from the environment: say nothing of the value
            self.problem(
                path, "a value substituted here (${...}) holds a lone surrogate, which is not "
                "text (was the variable set from bytes that are not UTF-8?); set it to text"
            )
            self.env_problem_paths.add(self.locate(path)[0])
            text = _SURROGATE.sub("\ufffd", value)
        if "\n" in text:
            self.broken_texts.add(text)
        return text

    def _mapping(
        self, node: yaml.MappingNode, path: Path_, stack: frozenset[int]
    ) -> dict[Any, Any]:
        # Keys written in this mapping, not merged in by `<<:`; kept from the first visit because
        # flatten_mapping rewrites the node and an alias may bring us back to it.
        written = self._written_keys.setdefault(
            id(node), {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
        )
        try:
            self._constructor.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
        except yaml.YAMLError as exc:
            self.problem(
                path, f"bad merge key (<<): {_reason(exc)}; merge a mapping or a list of them"
            )
            return {}
        except RecursionError:  # a mapping merging one that merges another, ... a thousand deep
            self.problem(path, "merge keys (<<) chain mappings too deep (each merging the next); "
                         "merge the mappings you need directly, or use `defaults:`")
            return {}
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            value = (
                self._construct(key_node, path, "key")
                if isinstance(key_node, yaml.ScalarNode) else None
            )
            if isinstance(value, str) and _valid_text(value) is None:
                self.problem(path, f"the key at line {key_line}, {_shown(value)}, "
                             f"{_LONE_SURROGATE}")
                continue
            if isinstance(value, str):
                value = _valid_text(value)
            if not isinstance(value, (str, int, float, bool)):
                self.problem(
                    path, f"the key at line {key_line} is not a plain word; write key: value"
                )
                continue
            key = str(value)  # every key of a fleet file is a name: `1:` or `on:` are typos
            out[key] = self.build(value_node, (*path, key), key_line, stack)
            if key in first_line and id(key_node) in written:
                self.problem(
                    (*path, key),
                    f"duplicate key '{_word(key)}' (first at line {first_line[key]}); YAML would "
                    "keep only the last value: remove one",
                )
            if id(key_node) in written:
                first_line.setdefault(key, key_line)
        return out

    def _construct(self, node: yaml.Node, path: Path_, what: str = "value") -> Any:
        """A scalar as PyYAML reads it; a problem (and None) when it cannot, whatever it raises:
        ``!!int ""`` raises IndexError, ``!!bool maybe`` KeyError, ``!!timestamp soon``
        AttributeError."""
        text = node.value if isinstance(node.value, str) else ""
        if node.tag == _INT_TAG and len(text) > _MAX_INT_TEXT:
            self.problem(path, _too_large(f"a number written with {len(text):,} characters"))
            return None
        try:
            value = self._constructor.construct_object(node, deep=True)
        except Exception as exc:  # any input: PyYAML's constructors trust theirs
            self._constructor = yaml.SafeLoader("")  # its state is half-way through a node
            self.problem(path, _unreadable(node, text, exc, what))
            return None
        if type(value) is int and value.bit_length() > _MAX_INT_DIGITS * 3:
            digits = _digit_count(value)
            if digits > _MAX_INT_DIGITS:
                self.problem(path, _too_large(f"a {digits:,}-digit number"))
                return None
        return value

    def _interpolate(self, text: str, path: Path_) -> str:
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if self.env_prefixes is not None and not name.startswith(self.env_prefixes):
                listed = _listed(self.env_prefixes_text, self.env_prefixes)
                self.problem(  # unread: neither its value nor whether it is set may show
                    path,
                    f"environment variable {_word(name)} is refused: its name starts with none "
                    f"of {ENV_PREFIXES_VAR} ({listed})"
                    + ("; its default is not used instead" if default is not None else "")
                    + "; use a variable the list allows, or widen the list",
                )
                self.env_problem_paths.add(self.locate(path)[0])
                return ""
            if name in self.env:
                self.env_values.add(self.env[name])
                return self.env[name]
            if default is not None:
                return default
            self.problem(
                path,
                f"environment variable {name} is not set; export it, or give a default "
                f"as ${{{name}:-value}}",
            )
            self.env_problem_paths.add(self.locate(path)[0])
            return ""

        if "${" not in text:
            return text
        files = _substitute(_FILE, lambda m: self._read_secret(m.group(1), path), text)
        return _substitute(_ENV, substitute, files)

    def _read_secret(self, name: str, path: Path_) -> str:
        where = name
        if self.secret_dirs is not None:
            where = _resolved(name)  # opened as resolved: a link changed since cannot escape
            if not any(_inside(where, folder) for folder in self.secret_dirs):
                listed = _listed(self.secret_dirs_text, self.secret_dirs)
                resolved = "" if where == name else " once links and '..' are resolved"
                self.problem(path, f"the secret file {_word(name)} is outside {SECRET_DIRS_VAR} "
                             f"({listed}){resolved}; put it there or widen the list")
                self.env_problem_paths.add(self.locate(path)[0])
                return ""
        try:
            with open(where, encoding="utf-8") as handle:
                value = handle.read(_MAX_SECRET_FILE_BYTES).rstrip("\r\n")
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the name
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.problem(path, f"cannot read the secret file {_word(name)}: {reason}; mount it "
                         "there, or use ${VAR} from the environment")
            self.env_problem_paths.add(self.locate(path)[0])
            return ""
        self.env_values.add(value)
        return value


def _resolved(name: str) -> str:
    """``name`` made absolute (against the cwd), links and '..' followed; "" if it cannot be
    (a NUL in it), which is inside no directory."""
    try:
        return os.path.normcase(os.path.realpath(name))
    except (OSError, ValueError):
        return ""


def _inside(path: str, folder: str) -> bool:
    """Is ``path`` ``folder`` or under it (both resolved)?"""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _listed(setting: str | None, entries: tuple[str, ...] | None) -> str:
    """An allow-list setting as a message shows it: as written, unless it lists nothing."""
    return setting if setting and entries else "set, but empty"


def _substitute(
    pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str], text: str
) -> str:
    """``pattern.sub(replace, text)`` for ``${...}``, in linear time: searching stops at the last
    '}', as no match ends past it (else every '${' with no '}' after it scans to the end)."""
    end = text.rfind("}") + 1
    out, done = [], 0
    for match in pattern.finditer(text, 0, end):
        out += [text[done:match.start()], replace(match)]
        done = match.end()
    return "".join(out) + text[done:] if out else text


def _reason(exc: BaseException) -> str:
    lines = str(getattr(exc, "problem", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


_TOO_DEEP = (
    f"lists and mappings nest more than {MAX_DEPTH} levels deep here (a fleet file needs a "
    "handful); check the brackets, the indentation and the aliases"
)
_LONE_SURROGATE = (
    "holds a lone surrogate (a \\ud800-\\udfff escape without its pair), which is not text; "
    "write the character itself, or escape it whole as \\UXXXXXXXX"
)
# What a scalar should look like, by tag, when PyYAML cannot read it as that.
_TAG_EXPECTS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "null": "null",
    "timestamp": "a date (2024-05-01) or a time (2024-05-01 12:30:00)",
    "binary": "base64 data",
}
_DECIMAL = re.compile(r"[-+]?[0-9_]+")


def _unreadable(node: yaml.Node, text: str, exc: Exception, what: str) -> str:
    tag = str(node.tag)
    short = tag.removeprefix(_YAML_TAG)
    shown_tag = f"!!{short}" if short != tag else _word(tag)
    if short == "int" and _DECIMAL.fullmatch(text) and not isinstance(exc, yaml.YAMLError):
        digits = len(text.lstrip("+-").replace("_", "").lstrip("0"))
        if digits > _MAX_INT_DIGITS:  # Python refuses to read it: say so our way
            return _too_large(f"a {digits:,}-digit number")
    if isinstance(exc, yaml.YAMLError):
        reason = _reason(exc)
    else:
        expects = _TAG_EXPECTS.get(short, f"a valid {shown_tag}")
        reason = f"{_shown(text)} is not {expects}"
        if isinstance(exc, ValueError) and str(exc):
            reason += f" ({_reason(exc)})"  # "month must be in 1..12"
    return f"YAML cannot read this {what} as {shown_tag}: {reason}; quote it as text, or fix it"


def _too_large(found: str) -> str:
    return f"{found} is larger than any setting takes; give a smaller number"


def _digit_count(number: int) -> int:
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


def _valid_text(text: str) -> str | None:
    """``text`` with escaped surrogate pairs (JSON's "\\ud83d\\ude00") made the character they
    encode; None if a lone surrogate remains."""
    if not _SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        return None


def _visible(text: str) -> str:
    """``text`` on one line: line breaks, control characters and surrogates escaped as repr()
    escapes them (tabs and spaces stay)."""
    return _UNSHOWABLE.sub(lambda m: repr(m.group())[1:-1], text)


def _written_forms(value: str) -> set[str]:
    """How a message may show ``value``: as is, on one line (_visible), or inside a repr(),
    which quotes with ' (escaping ' when the whole also holds ") or with "."""
    forms = {value, _visible(value), repr(value)[1:-1], repr(value + "'\"")[1:-4]}
    if '"' not in value:
        forms.add(repr(value + "'")[1:-2])
    return forms


def _word(text: str) -> str:
    """A key or name, as a message or field shows it: one line, at most _SHOWN_CHARS long."""
    text = _visible(text)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _bounded(message: str) -> str:
    if len(message) <= _MESSAGE_HEAD + _MESSAGE_TAIL + 5:
        return message
    return f"{message[:_MESSAGE_HEAD]} ... {message[-_MESSAGE_TAIL:]}"


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{_word(part)}" if out else _word(part)
    return out


def _undotted(text: str) -> Path_:
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", text))


# ------------------------------------------------------------------- pydantic error -> problem
@dataclass(frozen=True)
class _Where:
    """A pydantic ``loc`` resolved against the models: the path in the file, and what is there."""

    path: Path_
    owner: type[BaseModel] | None  # the model whose field (or unknown key) the path ends in
    annotation: Any  # the type expected at the path, when known


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _tagged_members(annotation: Any) -> dict[str, type[BaseModel]]:
    """``{"rtsp": RtspSource, ...}`` for a union of models told apart by ``type``; else empty."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return {}
    members = [_strip(a) for a in get_args(annotation)]
    if not all(
        isinstance(m, type) and issubclass(m, BaseModel) and "type" in m.model_fields
        for m in members
    ):
        return {}
    return {str(m.model_fields["type"].default): m for m in members}


def _locate(loc: tuple[Any, ...]) -> _Where:
    """Walk the models along ``loc``, dropping the union tags and ``[key]`` pydantic adds."""
    path: list[str | int] = []
    owner: type[BaseModel] | None = None
    annotation: Any = FleetConfig
    for part in loc:
        annotation = _strip(annotation)
        members = _tagged_members(annotation)
        if part in members:
            annotation = members[part]
            continue
        if part == "[key]":
            annotation = str
            continue
        path.append(part)
        annotation, owner = _step(annotation, part, owner)
    return _Where(tuple(path), owner, _strip(annotation))


_NOWHERE = object()


def _child(annotation: Any, part: str | int) -> Any:
    """The type at ``part`` inside ``annotation`` (a model, a union of them, a list or a dict);
    _NOWHERE when the models have no such place."""
    annotation = _strip(annotation)
    args = get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        for member in args:
            found = _child(member, part)
            if found is not _NOWHERE:
                return found
        return _NOWHERE
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field else _NOWHERE
    if get_origin(annotation) in (list, tuple) and isinstance(part, int) and args:
        return args[0]
    if get_origin(annotation) is dict and isinstance(part, str) and len(args) == 2:
        return args[1]
    return _NOWHERE


def _is_field(annotation: Any, parts: Path_) -> bool:
    for part in parts:
        annotation = _child(annotation, part)
        if annotation is _NOWHERE:
            return False
    return True


def _step(annotation: Any, part: Any, owner: type[BaseModel] | None) -> tuple[Any, Any]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return (field.annotation if field else None), annotation
    args = get_args(annotation)
    if get_origin(annotation) is list and args:
        return args[0], owner
    if get_origin(annotation) is dict and len(args) == 2:
        return args[1], owner
    return None, owner


def _unmasked(text: str) -> str:
    return text


def _shown(value: Any, mask: Callable[[str], str] = _unmasked) -> str:
    """A value as a message shows it: short, secrets masked before it is cut (so no part of one
    shows), URLs redacted; a huge number by its size, as str() refuses it past 4300 digits."""
    if value is None:
        return "nothing (null)"
    if type(value) is int and abs(value) >= _BIG_NUMBER:
        return f"a {'negative ' if value < 0 else ''}{_digit_count(value):,}-digit number"
    text = redact_url(mask(repr(value) if isinstance(value, str) else str(value)))
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


_BOUNDS = {
    "greater_than": "expected a value greater than {gt:g}",
    "greater_than_equal": "expected a value of at least {ge:g}",
    "less_than": "expected a value less than {lt:g}",
    "less_than_equal": "expected a value of at most {le:g}",
}
_EXPECTED = {
    "model_type": "expected a mapping of key: value pairs",
    "model_attributes_type": "expected a mapping of key: value pairs",
    "dict_type": "expected a mapping of key: value pairs",
    "list_type": "expected a list, such as [a, b]",
    "string_type": "expected text (quote the value)",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}


def _describe(error: Any, where: _Where, mask: Callable[[str], str] = _unmasked) -> str:
    """A message that says what was found, what was expected, and what to do."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    key = str(where.path[-1]) if where.path else ""
    if kind == "extra_forbidden":
        return _unknown_key(key, where.owner)
    if kind == "missing":
        return _missing_key(key, where.owner)
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return _bad_tag(kind, ctx, where, mask)
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == ID_PATTERN:
        return (
            f"{_shown(value, mask)} is not a safe id: use lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit (ids become metric labels and file names)"
        )
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "too_short" and isinstance(value, list):
        found = ctx.get("actual_length", len(value)) or "none"
        return f"expected at least {ctx.get('min_length')} item(s), found {found}; add one"
    if kind == "string_too_short":
        return "expected a non-empty value, found an empty one"
    return _expected(kind, ctx, error, value, mask)


def _expected(
    kind: str, ctx: dict[str, Any], error: Any, value: Any, mask: Callable[[str], str]
) -> str:
    """The generic message: what was expected, and what was found when it is short to show."""
    if kind in _BOUNDS:
        message = _BOUNDS[kind].format(**ctx)
    else:
        message = _EXPECTED.get(kind) or str(error["msg"]).replace("Input should be", "expected")
    if isinstance(value, (str, int, float, bool)) or value is None:
        message += f"; found {_shown(value, mask)}"
    elif isinstance(value, (list, dict)):
        message += f"; found a {'list' if isinstance(value, list) else 'mapping'}"
    return message


def _unknown_key(key: str, owner: type[BaseModel] | None) -> str:
    names = sorted(owner.model_fields) if owner else []
    close = difflib.get_close_matches(key, names, n=1) if len(key) <= 2 * _SHOWN_CHARS else []
    if close:
        return f"unknown key '{_word(key)}'; did you mean '{close[0]}'?"
    return f"unknown key '{_word(key)}'; expected one of: {', '.join(names)}"


def _missing_key(key: str, owner: type[BaseModel] | None) -> str:
    field = owner.model_fields.get(key) if owner else None
    about = (
        f" ({_lower_first(field.description.rstrip('.'))})" if field and field.description else ""
    )
    return f"required key '{key}' is missing{about}; add it"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _bad_tag(
    kind: str, ctx: Mapping[str, Any], where: _Where, mask: Callable[[str], str]
) -> str:
    tags = ", ".join(_tagged_members(where.annotation)) or str(ctx.get("expected_tags", ""))
    if kind == "union_tag_invalid":
        return f"unknown type {_shown(ctx.get('tag'), mask)}; expected one of: {tags}"
    hint = ", or give url: or path:" if where.path[-1:] == ("source",) else ""
    return f"no type given; add type: with one of {tags}{hint}"


def _report(doc: _Document, error: Any) -> None:
    where = _locate(tuple(error["loc"]))
    message = _describe(error, where, doc.mask)
    if error["type"] == "union_tag_invalid":
        where = _Where((*where.path, "type"), where.owner, where.annotation)
    if error["type"] != "value_error":
        doc.problem(where.path, message)
        return
    for path, part in _own_parts(doc.escape_user_breaks(message), where, doc.written):
        doc.problem(path, part)


def _own_parts(
    message: str, where: _Where, written: Callable[[Path_], bool]
) -> list[tuple[Path_, str]]:
    """A model validator's message, split into its problems.

    A cross-field check names the field it is about as a ``field.path: `` prefix, one problem a
    line. Only the model's own words count: a line starts a problem when its prefix is a field of
    the models at that place, or a key written there (a Haar setting under a BlazeFace detector),
    so a detector name ``"a: b"`` is no field of a list; any other line (a line break in the
    user's text, when escape_user_breaks could not escape it) goes on the line before it, shown as
    ``\\n``. Every part has a message.
    """
    parts: list[tuple[Path_, str]] = []
    for line in message.split("\n"):
        match = _DOTTED.match(line)
        inner = _undotted(match.group(1)) if match else ()
        if match and match.group(2).strip() and (
            _is_field(where.annotation, inner) or written((*where.path, *inner))
        ):
            parts.append(((*where.path, *inner), match.group(2)))
        elif parts:
            parts[-1] = (parts[-1][0], f"{parts[-1][1]}\\n{line}")
        else:
            parts.append((where.path, line))
    kept = [(path, part) for path, part in parts if part.strip()]
    return kept or [(where.path, "this value is refused; `camfleet schema` says what it takes")]


# ------------------------------------------------------------------------------------ parsing
class _TooDeep(Exception):
    def __init__(self, line: int | None):
        super().__init__(line)
        self.line = line


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing lists and mappings nested more than MAX_DEPTH deep before
    its composer, which recurses once per level, runs out of stack (a few kB of '[')."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if not self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise _TooDeep(mark.line + 1 if mark is not None else None)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _compose(text: str, filename: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        message = (
            f"YAML syntax error: {_syntax_reason(exc)}; check indentation, quotes and brackets"
        )
        raise ConfigError([ConfigProblem(filename, line, "", _bounded(_visible(message)))]) \
            from None
    except _TooDeep as exc:
        raise ConfigError([ConfigProblem(filename, exc.line, "", _TOO_DEEP)]) from None


def _syntax_reason(exc: yaml.YAMLError) -> str:
    """PyYAML's problem, with its context: ``... (while parsing a list that starts at line 3)``."""
    context, mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if not context:
        return _reason(exc)
    if context.startswith("while") and mark is not None:
        return f"{_reason(exc)} ({context} that starts at line {mark.line + 1})"
    return f"{context}, {_reason(exc)}"  # "expected a single document..., but found another"


def _distinct_nodes(root: yaml.Node) -> int:
    """Nodes in the composed document, each alias target counted once (linear time)."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            todo.extend(n for pair in node.value for n in pair)
    return len(seen)


def _top_level_problem(filename: str, node: yaml.Node | None) -> ConfigProblem:
    if node is None:
        found = "the file is empty"
    elif isinstance(node, yaml.SequenceNode):
        found = "the top level is a list (is 'cameras:' missing above it?)"
    else:
        found = "the top level is a single value"
    line = node.start_mark.line + 1 if node is not None else 1
    hint = "expected a mapping of keys with at least cameras:; `camfleet schema` lists every key"
    return ConfigProblem(filename, line, "", f"{found}; {hint}")


def parse_fleet(
    text: str, filename: str = "<fleet>", env: Mapping[str, str] | None = None
) -> FleetConfig:
    """Parse a fleet file's text. Raises :class:`ConfigError` listing every problem.

    ``env`` (default: ``os.environ``) supplies ``${VAR}`` and ``${VAR:-default}``, and the
    operator's allow-lists of what ``${VAR}`` and ``${file:...}`` may read,
    ``CAMFLEET_ENV_PREFIXES`` and ``CAMFLEET_SECRET_DIRS`` (unset: anything this process can).

    >>> parse_fleet("cameras: [{id: demo, source: synthetic}]").cameras[0].source.type
    'synthetic'
    """
    node = _compose(text, filename)
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError([_top_level_problem(filename, node)])
    doc = _Document(filename, os.environ if env is None else env)
    doc.max_values = EXPANSION_MARGIN + EXPANSION_FACTOR * _distinct_nodes(node)
    data = doc.build(node, (), node.start_mark.line + 1, frozenset())
    try:
        config = FleetConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            _report(doc, error)
        raise ConfigError(doc.scrubbed()) from None
    if doc.problems:
        raise ConfigError(doc.scrubbed())
    return config


def load_fleet(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> FleetConfig:
    """Read and validate a fleet file. Raises :class:`ConfigError` naming file, line and field."""
    filename = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError([ConfigProblem(
                filename, None, "", f"the file is {size / 2**20:.1f} MiB; a fleet file may be "
                f"at most {MAX_FILE_BYTES // 2**20} MiB (is this the right file?)")])
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            [ConfigProblem(filename, None, "", f"cannot read the file: {reason}")]
        ) from None
    return parse_fleet(text, filename, env)
