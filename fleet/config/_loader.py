"""Load a fleet file: YAML with line numbers, ``${VAR}`` interpolation, defaults, validation.

Every problem found is reported at once as ``FILE:LINE: field.path: message``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fleet.config._models import FleetConfig
from fleet.errors import ConfigError, ConfigProblem
from fleet.redact import redact_url

Path_ = tuple[str | int, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DOTTED = re.compile(r"^([a-z_][\w]*(?:\[\d+\]|\.[\w-]+)*): (.*)$", re.DOTALL)


class _Document:
    """Plain data built from YAML nodes, plus the line of each path."""

    def __init__(self, filename: str, env: Mapping[str, str]):
        self.filename = filename
        self.env = env
        self.lines: dict[Path_, int] = {}
        self.problems: list[ConfigProblem] = []
        self._constructor = yaml.SafeLoader("")

    def problem(self, path: Path_, message: str, line: int | None = None) -> None:
        line = line if line is not None else self.line_of(path)
        self.problems.append(ConfigProblem(self.filename, line, _dotted(path), message))

    def line_of(self, path: Path_) -> int | None:
        """Line of ``path``, or of the ``defaults:`` entry it came from, or of its nearest parent."""
        for end in range(len(path), -1, -1):
            head = path[:end]
            if head in self.lines:
                return self.lines[head]
            if len(head) >= 3 and head[0] == "cameras" and ("defaults", *head[2:]) in self.lines:
                return self.lines[("defaults", *head[2:])]
        return None

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            self._constructor.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)):
                    self.problem(path, "mapping keys must be plain scalars", key_node.start_mark.line + 1)
                    continue
                if key in out:
                    self.problem((*path, key), "duplicate key", key_node.start_mark.line + 1)
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        value = self._constructor.construct_object(node, deep=True)
        return self._interpolate(value, path) if isinstance(value, str) else value

    def _interpolate(self, text: str, path: Path_) -> str:
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.problem(
                path,
                f"environment variable {name} is not set; export it, or give a default "
                f"as ${{{name}:-value}}",
            )
            return ""

        return _ENV.sub(substitute, text)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _undotted(text: str) -> Path_:
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", text))


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


def _apply_defaults(data: dict[str, Any]) -> dict[str, Any]:
    defaults = data.get("defaults")
    cameras = data.get("cameras")
    if not isinstance(defaults, dict) or not isinstance(cameras, list):
        return data
    merged = [_merge(defaults, c) if isinstance(c, dict) else c for c in cameras]
    return {**data, "cameras": merged}


def _all_field_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for arg in _flatten_annotation(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _all_field_names(arg, seen)
    return names


def _flatten_annotation(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [leaf for arg in args for leaf in _flatten_annotation(getattr(arg, "__origin__", arg))] + [
        leaf for arg in args for leaf in _flatten_annotation(arg) if hasattr(arg, "__args__")
    ]


_KNOWN_FIELDS = _all_field_names(FleetConfig)


def _describe(error: Any, data_path: Path_) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        key = str(data_path[-1]) if data_path else "?"
        close = difflib.get_close_matches(key, sorted(_KNOWN_FIELDS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch" and data_path and data_path[-1] in ("id", "name"):
        return (
            f"{redact_url(repr(error.get('input')))[:60]} is not a safe id: use lowercase letters, "
            "digits, '-' and '_', starting with a letter or digit (ids become metric labels and "
            "file names)"
        )
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    value = error.get("input")
    if isinstance(value, (str, int, float, bool)) and kind not in ("value_error",):
        shown = redact_url(repr(value))
        message += f" (got {shown[:60]})"
    return message


def _data_path(loc: tuple[Any, ...], data: Any) -> Path_:
    """Drop the union tags pydantic puts in ``loc`` (e.g. the ``rtsp`` of source.rtsp.url)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and node.get("type") == part:
            continue  # the discriminator's tag, not a key of the file
        else:
            node = None
        path.append(part)
    return tuple(path)


def parse_fleet(text: str, filename: str = "<fleet>", env: Mapping[str, str] | None = None) -> FleetConfig:
    """Parse a fleet file's text. Raises :class:`ConfigError` listing every problem.

    >>> parse_fleet("cameras: [{id: demo, source: synthetic}]").cameras[0].source.type
    'synthetic'
    """
    doc = _Document(filename, os.environ if env is None else env)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(filename, line, "", f"YAML syntax error: {reason}")]) from None
    if node is None:
        raise ConfigError([ConfigProblem(filename, 1, "", "the file is empty; a fleet needs cameras:")])
    data = doc.build(node, ())
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(filename, 1, "", "the top level must be a mapping with cameras:")])
    data = _apply_defaults(data)
    try:
        config = FleetConfig.model_validate(data)
    except ValidationError as exc:
        # A field already reported (say, an unset variable) is not reported twice.
        reported = {p.field for p in doc.problems}
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = _describe(error, _data_path(loc, data))
            if not loc and (match := _DOTTED.match(message)):
                loc, message = _undotted(match.group(1)), match.group(2)
            path = _data_path(loc, data)
            if _dotted(path) not in reported:
                doc.problem(path, message)
        raise ConfigError(doc.problems) from None
    if doc.problems:
        raise ConfigError(doc.problems)
    return config


def load_fleet(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> FleetConfig:
    """Read and validate a fleet file. Raises :class:`ConfigError` naming file, line and field."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([ConfigProblem(filename, None, "", f"cannot read the file: {reason}")]) from None
    return parse_fleet(text, filename, env)
