"""Load a fleet file: YAML with line numbers, ``${VAR}`` interpolation, validation.

Every problem found is reported at once as ``FILE:LINE: field.path: message``. A problem in a value
a camera took from ``defaults:`` is reported once, at the ``defaults:`` line. Values taken from the
environment never appear in a message: they may be passwords.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from fleet.config._models import ID_PATTERN, FleetConfig
from fleet.errors import ConfigError, ConfigProblem
from fleet.redact import redact_url

Path_ = tuple[str | int, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# ${file:/run/secrets/gate}: a secret from a file (a Kubernetes or Docker secret), read where
# the fleet file is loaded, so it never travels in Ray's job metadata.
_FILE = re.compile(r"\$\{file:([^}]+)\}")
_MAX_SECRET_FILE_BYTES = 65536
_DOTTED = re.compile(r"^([a-z_]\w*(?:\[\d+\]|\.[\w-]+)*): (.*)$", re.DOTALL)
_MERGE_TAG = "tag:yaml.org,2002:merge"
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
        self.lines: dict[Path_, int] = {}
        self.problems: list[ConfigProblem] = []
        self.env_problem_paths: list[Path_] = []
        self.env_values: set[str] = set()
        self._written_keys: dict[int, set[int]] = {}
        self._constructor = yaml.SafeLoader("")
        self.values = 0  # values built so far, aliases expanded: bounded against alias bombs
        self.max_values = EXPANSION_MARGIN

    # ------------------------------------------------------------------------------ problems
    def problem(self, path: Path_, message: str) -> None:
        """Record a problem at ``path``; once per field, never under an unset variable."""
        path, line = self.locate(path)
        if any(path[: len(p)] == p for p in self.env_problem_paths):
            return  # the unset variable is the cause; its message says so
        if any(p.field == _dotted(path) and p.line == line for p in self.problems):
            return  # a camera's copy of a bad default, or a second error on one value
        self.problems.append(ConfigProblem(self.filename, line, _dotted(path), message))

    def locate(self, path: Path_) -> tuple[Path_, int | None]:
        """Where ``path`` is written: the camera itself, the ``defaults:`` entry, or a parent."""
        for end in range(len(path), -1, -1):
            head = path[:end]
            if head in self.lines:
                return path, self.lines[head]
            if end >= 3 and head[0] == "cameras" and ("defaults", *head[2:]) in self.lines:
                return ("defaults", *path[2:]), self.lines[("defaults", *head[2:])]
        return path, None

    def scrubbed(self) -> list[ConfigProblem]:
        secrets = sorted((v for v in self.env_values if len(v) >= _MIN_SECRET_LEN), key=len)
        out = []
        for p in self.problems:
            message = p.message
            for secret in reversed(secrets):
                message = message.replace(secret, "***")
            out.append(ConfigProblem(p.file, p.line, p.field, message))
        return out

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
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, stack | {id(node)})
        if isinstance(node, yaml.SequenceNode):
            return [
                self.build(child, (*path, i), child.start_mark.line + 1, stack | {id(node)})
                for i, child in enumerate(node.value)
            ]
        value = self._construct(node, path)
        return self._interpolate(value, path) if isinstance(value, str) else value

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
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            value = (
                self._construct(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            )
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
                    f"duplicate key '{key}' (first at line {first_line[key]}); YAML would keep "
                    "only the last value: remove one",
                )
            if id(key_node) in written:
                first_line.setdefault(key, key_line)
        return out

    def _construct(self, node: yaml.Node, path: Path_) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            self.problem(
                path, f"YAML cannot read this value: {_reason(exc)}; quote it or fix the tag"
            )
            return None

    def _interpolate(self, text: str, path: Path_) -> str:
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
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
            self.env_problem_paths.append(self.locate(path)[0])
            return ""

        return _ENV.sub(substitute, _FILE.sub(lambda m: self._read_secret(m.group(1), path), text))

    def _read_secret(self, name: str, path: Path_) -> str:
        try:
            with open(name, encoding="utf-8") as handle:
                value = handle.read(_MAX_SECRET_FILE_BYTES).rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.problem(path, f"cannot read the secret file {name}: {reason}; mount it there, "
                         "or use ${VAR} from the environment")
            self.env_problem_paths.append(self.locate(path)[0])
            return ""
        self.env_values.add(value)
        return value


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "problem", None) or exc).strip().splitlines()[0]


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
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


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    text = redact_url(repr(value) if isinstance(value, str) else str(value))
    return text if len(text) <= 60 else text[:57] + "..."


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


def _describe(error: Any, where: _Where) -> str:
    """A message that says what was found, what was expected, and what to do."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    key = str(where.path[-1]) if where.path else ""
    if kind == "extra_forbidden":
        return _unknown_key(key, where.owner)
    if kind == "missing":
        return _missing_key(key, where.owner)
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return _bad_tag(kind, ctx, where)
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == ID_PATTERN:
        return (
            f"{_shown(value)} is not a safe id: use lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit (ids become metric labels and file names)"
        )
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "too_short" and isinstance(value, list):
        found = ctx.get("actual_length", len(value)) or "none"
        return f"expected at least {ctx.get('min_length')} item(s), found {found}; add one"
    if kind == "string_too_short":
        return "expected a non-empty value, found an empty one"
    return _expected(kind, ctx, error, value)


def _expected(kind: str, ctx: dict[str, Any], error: Any, value: Any) -> str:
    """The generic message: what was expected, and what was found when it is short to show."""
    if kind in _BOUNDS:
        message = _BOUNDS[kind].format(**ctx)
    else:
        message = _EXPECTED.get(kind) or str(error["msg"]).replace("Input should be", "expected")
    if isinstance(value, (str, int, float, bool)) or value is None:
        message += f"; found {_shown(value)}"
    elif isinstance(value, (list, dict)):
        message += f"; found a {'list' if isinstance(value, list) else 'mapping'}"
    return message


def _unknown_key(key: str, owner: type[BaseModel] | None) -> str:
    names = sorted(owner.model_fields) if owner else []
    close = difflib.get_close_matches(key, names, n=1)
    if close:
        return f"unknown key '{key}'; did you mean '{close[0]}'?"
    return f"unknown key '{key}'; expected one of: {', '.join(names)}"


def _missing_key(key: str, owner: type[BaseModel] | None) -> str:
    field = owner.model_fields.get(key) if owner else None
    about = (
        f" ({_lower_first(field.description.rstrip('.'))})" if field and field.description else ""
    )
    return f"required key '{key}' is missing{about}; add it"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _bad_tag(kind: str, ctx: Mapping[str, Any], where: _Where) -> str:
    tags = ", ".join(_tagged_members(where.annotation)) or str(ctx.get("expected_tags", ""))
    if kind == "union_tag_invalid":
        return f"unknown type {ctx.get('tag')!r}; expected one of: {tags}"
    hint = ", or give url: or path:" if where.path[-1:] == ("source",) else ""
    return f"no type given; add type: with one of {tags}{hint}"


def _report(doc: _Document, error: Any) -> None:
    where = _locate(tuple(error["loc"]))
    message = _describe(error, where)
    if error["type"] == "union_tag_invalid":
        where = _Where((*where.path, "type"), where.owner, where.annotation)
    for part in message.split("\n") if error["type"] == "value_error" else [message]:
        if match := _DOTTED.match(part):
            doc.problem((*where.path, *_undotted(match.group(1))), match.group(2))
        else:
            doc.problem(where.path, part)


# ------------------------------------------------------------------------------------ parsing
def _compose(text: str, filename: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        message = (
            f"YAML syntax error: {_syntax_reason(exc)}; check indentation, quotes and brackets"
        )
        raise ConfigError([ConfigProblem(filename, line, "", message)]) from None


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

    ``env`` (default: ``os.environ``) supplies ``${VAR}`` and ``${VAR:-default}``.

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
