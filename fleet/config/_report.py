"""Pydantic's validation errors as a fleet file's problems: each at the field and line it is
about, saying what was found, what was expected, and what to do; never a secret.

A cross-field check names the field it is about as a ``field.path: `` prefix of its message,
one problem a line (see ``_fleet.py``); ``own_parts`` splits such a message into its problems.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from fleet.config._base import ID_PATTERN
from fleet.config._fleet import FleetConfig
from fleet.config._problems import Problems
from fleet.config._text import SHOWN_CHARS, KeyPath, shown, undotted, unmasked, word

_DOTTED = re.compile(r"^([a-z_]\w*(?:\[\d+\]|\.[\w-]+)*): (.*)$", re.DOTALL)


def report(problems: Problems, error: Any) -> None:
    """Record one of pydantic's errors (an item of ``ValidationError.errors()``)."""
    where = _locate(tuple(error["loc"]))
    message = _describe(error, where, problems.mask)
    if error["type"] == "union_tag_invalid":
        where = _Where((*where.path, "type"), where.owner, where.annotation)
    if error["type"] != "value_error":
        problems.problem(where.path, message)
        return
    for path, part in own_parts(problems.escape_user_breaks(message), where, problems.written):
        problems.problem(path, part)


def own_parts(
    message: str, where: _Where, written: Callable[[KeyPath], bool]
) -> list[tuple[KeyPath, str]]:
    """A model validator's message, split into its problems.

    A cross-field check names the field it is about as a ``field.path: `` prefix, one problem a
    line. Only the model's own words count: a line starts a problem when its prefix is a field of
    the models at that place, or a key written there (a Haar setting under a BlazeFace detector),
    so a detector name ``"a: b"`` is no field of a list; any other line (a line break in the
    user's text, when escape_user_breaks could not escape it) goes on the line before it, shown as
    ``\\n``. Every part has a message.
    """
    parts: list[tuple[KeyPath, str]] = []
    for line in message.split("\n"):
        match = _DOTTED.match(line)
        inner = undotted(match.group(1)) if match else ()
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


@dataclass(frozen=True)
class _Where:
    """A pydantic ``loc`` resolved against the models: the path in the file, and what is there."""

    path: KeyPath
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


def _is_field(annotation: Any, parts: KeyPath) -> bool:
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


def _describe(error: Any, where: _Where, mask: Callable[[str], str] = unmasked) -> str:
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
            f"{shown(value, mask)} is not a safe id: use lowercase letters, digits, '-' and '_', "
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
        message += f"; found {shown(value, mask)}"
    elif isinstance(value, (list, dict)):
        message += f"; found a {'list' if isinstance(value, list) else 'mapping'}"
    return message


def _unknown_key(key: str, owner: type[BaseModel] | None) -> str:
    names = sorted(owner.model_fields) if owner else []
    close = difflib.get_close_matches(key, names, n=1) if len(key) <= 2 * SHOWN_CHARS else []
    if close:
        return f"unknown key '{word(key)}'; did you mean '{close[0]}'?"
    return f"unknown key '{word(key)}'; expected one of: {', '.join(names)}"


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
        return f"unknown type {shown(ctx.get('tag'), mask)}; expected one of: {tags}"
    hint = ", or give url: or path:" if where.path[-1:] == ("source",) else ""
    return f"no type given; add type: with one of {tags}{hint}"
