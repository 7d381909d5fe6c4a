"""The problems found in a fleet file: where each is written, once per field, and how they are
shown: every value taken from the environment (or a secret file) masked, on one line, bounded.

A problem in a value a camera took from ``defaults:`` is reported once, at the ``defaults:``
line; a problem under a value that an unset or refused variable left empty is not reported at
all (the variable's own message says why).
"""

from __future__ import annotations

from fleet.config._text import KeyPath, bounded, dotted, visible, written_forms
from fleet.errors import ConfigProblem
from fleet.redact import redact_url

# An environment value this short is not worth masking, and masking it would garble messages.
_MIN_SECRET_LEN = 4
# User texts with a line break that a message may quote; beyond these, line breaks still never
# start a problem of their own (see _report.own_parts), they are only shown less neatly.
_MAX_ESCAPED_TEXTS = 100


class Problems:
    """The line of each path of the file, the problems found so far, and what to mask."""

    def __init__(self, filename: str):
        self.filename = filename
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[ConfigProblem] = []
        self._reported: set[tuple[str, int | None]] = set()
        self.env_problem_paths: set[KeyPath] = set()
        self.env_values: set[str] = set()  # substituted from ${VAR} or ${file:...}: masked
        self._secret_forms: list[str] = []
        self._secret_forms_of = 0  # len(env_values) when _secret_forms was made
        self.broken_texts: set[str] = set()  # values with a line break, as validated
        self._escapes: list[tuple[str, str]] = []

    def problem(self, path: KeyPath, message: str) -> None:
        """Record a problem at ``path``; once per field, never under an unset variable."""
        path, line = self.locate(path)
        if any(path[:end] in self.env_problem_paths for end in range(len(path) + 1)):
            return  # the unset variable is the cause; its message says so
        where = (dotted(path), line)
        if where in self._reported:
            return  # a camera's copy of a bad default, or a second error on one value
        self._reported.add(where)
        self.problems.append(ConfigProblem(self.filename, line, where[0], message))

    def env_problem(self, path: KeyPath, message: str) -> None:
        """A problem with a substituted value (unset, refused, unreadable): recorded, and every
        problem under it from then on left out, as this one is their cause."""
        self.problem(path, message)
        self.env_problem_paths.add(self.locate(path)[0])

    def written(self, path: KeyPath) -> bool:
        """Is ``path`` in the file (in the camera, or in ``defaults:``)?"""
        return path in self.lines or (
            len(path) >= 3 and path[0] == "cameras" and ("defaults", *path[2:]) in self.lines
        )

    def locate(self, path: KeyPath) -> tuple[KeyPath, int | None]:
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
                for form in written_forms(value)
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
                (form, visible(form)) for text in texts for form in dict.fromkeys(
                    (text, redact_url(text)))
            ]
        for form, escaped in self._escapes:
            if len(form) <= len(message) and form in message:
                message = message.replace(form, escaped)
        return message

    def scrubbed(self) -> list[ConfigProblem]:
        """The problems as shown: secrets masked first, then on one line and of bounded length."""
        return [
            ConfigProblem(p.file, p.line, p.field, bounded(visible(self.mask(p.message))))
            for p in self.problems
        ]
