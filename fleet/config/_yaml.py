"""A fleet file's YAML made plain data, with the line of every value, its text interpolated.

Whatever the text, reading ends in data or a :class:`ConfigError`: nesting, numbers and aliases
are bounded before anything recursive or costly sees them, and text that is not text (lone
surrogates) is refused before validation. Problems found on the way are recorded, not raised,
so that validation can report its own beside them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from fleet.config._interpolate import Interpolator
from fleet.config._problems import Problems
from fleet.config._text import (
    SURROGATE,
    KeyPath,
    bounded,
    digit_count,
    dotted,
    reason,
    shown,
    valid_text,
    visible,
    word,
)
from fleet.errors import ConfigError, ConfigProblem

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
# A few hundred bytes of nested aliases ("billion laughs") expand to billions of values. Aliases
# may expand a file's values (`<<: *defaults` in every camera) about tenfold at most, plus a
# margin; past that, and past 16 MiB on disk, loading stops with a clear message.
MAX_FILE_BYTES = 16 * 2**20
EXPANSION_MARGIN, EXPANSION_FACTOR = 100_000, 10
_TOO_DEEP = (
    f"lists and mappings nest more than {MAX_DEPTH} levels deep here (a fleet file needs a "
    "handful); check the brackets, the indentation and the aliases"
)
_LONE_SURROGATE = (
    "holds a lone surrogate (a \\ud800-\\udfff escape without its pair), which is not text; "
    "write the character itself, or escape it whole as \\UXXXXXXXX"
)


def read_yaml(text: str, filename: str, env: Mapping[str, str]) -> tuple[Any, Problems]:
    """The file's data, and the problems found reading it (with the line of every value).
    Raises :class:`ConfigError` when there is no mapping of settings to validate at all."""
    node = _compose(text, filename)
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError([_top_level_problem(filename, node)])
    problems = Problems(filename)
    builder = _Builder(problems, Interpolator(env, problems))
    builder.max_values = EXPANSION_MARGIN + EXPANSION_FACTOR * _distinct_nodes(node)
    return builder.build(node, (), node.start_mark.line + 1, frozenset()), problems


class _Builder:
    """Plain data built from YAML nodes, recording each path's line in ``problems.lines``."""

    def __init__(self, problems: Problems, interpolate: Interpolator):
        self.problems = problems
        self.interpolate = interpolate
        self._written_keys: dict[int, set[int]] = {}
        self._constructor = yaml.SafeLoader("")
        self.values = 0  # values built so far, aliases expanded: bounded against alias bombs
        self.max_values = EXPANSION_MARGIN

    def build(self, node: yaml.Node, path: KeyPath, line: int, stack: frozenset[int]) -> Any:
        self.problems.lines[path] = line
        self.values += 1
        if self.values > self.max_values:
            raise ConfigError([ConfigProblem(
                self.problems.filename, line, dotted(path),
                f"the file's aliases expand it to more than {self.max_values:,} values (an alias "
                "bomb?); write the values out, or use `defaults:` instead of aliases")])
        if id(node) in stack:
            self.problems.problem(
                path, "this alias refers to a node that contains it; YAML data must be a tree"
            )
            return None
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and len(path) >= MAX_DEPTH:
            self.problems.problem(path, _TOO_DEEP)  # deep through aliases: composer saw no more
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

    def _text(self, value: str, path: KeyPath) -> str:
        """A text value, interpolated; one that is not text (lone surrogates) is refused here,
        before validation (pydantic-core cannot even encode it into an error message)."""
        text = valid_text(value)
        if text is None:
            self.problems.problem(path, f"{shown(value)} {_LONE_SURROGATE}")
            text = SURROGATE.sub("\ufffd", value)
        value = self.interpolate(text, path)
        text = valid_text(value)
        if text is None:  # from the environment: say nothing of the value
            self.problems.env_problem(
                path, "a value substituted here (${...}) holds a lone surrogate, which is not "
                "text (was the variable set from bytes that are not UTF-8?); set it to text"
            )
            text = SURROGATE.sub("\ufffd", value)
        if "\n" in text:
            self.problems.broken_texts.add(text)
        return text

    def _mapping(
        self, node: yaml.MappingNode, path: KeyPath, stack: frozenset[int]
    ) -> dict[Any, Any]:
        # Keys written in this mapping, not merged in by `<<:`; kept from the first visit because
        # flatten_mapping rewrites the node and an alias may bring us back to it.
        written = self._written_keys.setdefault(
            id(node), {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
        )
        if not self._merge_keys(node, path):
            return {}
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            key = self._key(key_node, path, key_line)
            if key is None:
                continue
            out[key] = self.build(value_node, (*path, key), key_line, stack)
            if key in first_line and id(key_node) in written:
                self.problems.problem(
                    (*path, key),
                    f"duplicate key '{word(key)}' (first at line {first_line[key]}); YAML would "
                    "keep only the last value: remove one",
                )
            if id(key_node) in written:
                first_line.setdefault(key, key_line)
        return out

    def _merge_keys(self, node: yaml.MappingNode, path: KeyPath) -> bool:
        """Apply YAML merge keys (``<<: *anchor``) in place; False (a problem) if they fail."""
        try:
            self._constructor.flatten_mapping(node)
        except yaml.YAMLError as exc:
            self.problems.problem(
                path, f"bad merge key (<<): {reason(exc)}; merge a mapping or a list of them"
            )
            return False
        except RecursionError:  # a mapping merging one that merges another, ... a thousand deep
            self.problems.problem(
                path, "merge keys (<<) chain mappings too deep (each merging the next); "
                "merge the mappings you need directly, or use `defaults:`")
            return False
        return True

    def _key(self, key_node: yaml.Node, path: KeyPath, key_line: int) -> str | None:
        """A mapping's key as text; None (and a problem) if it is not a plain word."""
        value = (
            self._construct(key_node, path, "key")
            if isinstance(key_node, yaml.ScalarNode) else None
        )
        if isinstance(value, str) and valid_text(value) is None:
            self.problems.problem(
                path, f"the key at line {key_line}, {shown(value)}, {_LONE_SURROGATE}")
            return None
        if isinstance(value, str):
            value = valid_text(value)
        if not isinstance(value, (str, int, float, bool)):
            self.problems.problem(
                path, f"the key at line {key_line} is not a plain word; write key: value"
            )
            return None
        return str(value)  # every key of a fleet file is a name: `1:` or `on:` are typos

    def _construct(self, node: yaml.Node, path: KeyPath, what: str = "value") -> Any:
        """A scalar as PyYAML reads it; a problem (and None) when it cannot, whatever it raises:
        ``!!int ""`` raises IndexError, ``!!bool maybe`` KeyError, ``!!timestamp soon``
        AttributeError."""
        text = node.value if isinstance(node.value, str) else ""
        if node.tag == _INT_TAG and len(text) > _MAX_INT_TEXT:
            self.problems.problem(
                path, _too_large(f"a number written with {len(text):,} characters"))
            return None
        try:
            value = self._constructor.construct_object(node, deep=True)
        except Exception as exc:  # any input: PyYAML's constructors trust theirs
            self._constructor = yaml.SafeLoader("")  # its state is half-way through a node
            self.problems.problem(path, _unreadable(node, text, exc, what))
            return None
        if type(value) is int and value.bit_length() > _MAX_INT_DIGITS * 3:
            digits = digit_count(value)
            if digits > _MAX_INT_DIGITS:
                self.problems.problem(path, _too_large(f"a {digits:,}-digit number"))
                return None
        return value


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
    shown_tag = f"!!{short}" if short != tag else word(tag)
    if short == "int" and _DECIMAL.fullmatch(text) and not isinstance(exc, yaml.YAMLError):
        digits = len(text.lstrip("+-").replace("_", "").lstrip("0"))
        if digits > _MAX_INT_DIGITS:  # Python refuses to read it: say so our way
            return _too_large(f"a {digits:,}-digit number")
    if isinstance(exc, yaml.YAMLError):
        why = reason(exc)
    else:
        expects = _TAG_EXPECTS.get(short, f"a valid {shown_tag}")
        why = f"{shown(text)} is not {expects}"
        if isinstance(exc, ValueError) and str(exc):
            why += f" ({reason(exc)})"  # "month must be in 1..12"
    return f"YAML cannot read this {what} as {shown_tag}: {why}; quote it as text, or fix it"


def _too_large(found: str) -> str:
    return f"{found} is larger than any setting takes; give a smaller number"


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
        raise ConfigError([ConfigProblem(filename, line, "", bounded(visible(message)))]) \
            from None
    except _TooDeep as exc:
        raise ConfigError([ConfigProblem(filename, exc.line, "", _TOO_DEEP)]) from None


def _syntax_reason(exc: yaml.YAMLError) -> str:
    """PyYAML's problem, with its context: ``... (while parsing a list that starts at line 3)``."""
    context, mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if not context:
        return reason(exc)
    if context.startswith("while") and mark is not None:
        return f"{reason(exc)} ({context} that starts at line {mark.line + 1})"
    return f"{context}, {reason(exc)}"  # "expected a single document..., but found another"


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
