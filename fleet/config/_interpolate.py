"""``${VAR}``, ``${VAR:-default}`` and ``${file:/path}`` in a fleet file's text values.

``${file:/run/secrets/gate}`` is a secret from a file (a Kubernetes or Docker secret), read where
the fleet file is loaded, so it never travels in Ray's job metadata. ``${file:-x}`` is not a
file: it is the variable ``file``, with the default x.

What ``${file:...}`` and ``${VAR}`` may read is the operator's to limit, from the environment the
file is loaded in (parse_fleet's ``env``, os.environ by default), never from the fleet file
itself: SECRET_DIRS_VAR lists the directories (os.pathsep-separated) a secret file must be in once
links and '..' are resolved; ENV_PREFIXES_VAR (comma-separated) the prefixes a variable's name
must start with. Unset, a fleet file reads any variable and any file the loading process can;
set but empty, it reads none. Empty entries are ignored. See docs/security.md.

Every value substituted is remembered, to be masked in every message: it may be a password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from fleet.config._problems import Problems
from fleet.config._text import KeyPath, word

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_FILE = re.compile(r"\$\{file:(?!-)([^}]+)\}")
SECRET_DIRS_VAR = "CAMFLEET_SECRET_DIRS"
ENV_PREFIXES_VAR = "CAMFLEET_ENV_PREFIXES"
_MAX_SECRET_FILE_BYTES = 65536


class Interpolator:
    """Substitutes ``${...}`` in one file's values; problems go to ``problems``."""

    def __init__(self, env: Mapping[str, str], problems: Problems):
        self.env = env
        self.problems = problems
        # The operator's allow-lists: None when unset, that is, anything goes.
        self.secret_dirs_text = env.get(SECRET_DIRS_VAR)
        self.secret_dirs = None if self.secret_dirs_text is None else tuple(filter(None, (
            _resolved(entry) for entry in self.secret_dirs_text.split(os.pathsep) if entry.strip()
        )))
        self.env_prefixes_text = env.get(ENV_PREFIXES_VAR)
        self.env_prefixes = None if self.env_prefixes_text is None else tuple(
            entry.strip() for entry in self.env_prefixes_text.split(",") if entry.strip()
        )

    def __call__(self, text: str, path: KeyPath) -> str:
        if "${" not in text:
            return text
        files = _substitute(_FILE, lambda m: self._read_secret(m.group(1), path), text)
        return _substitute(_ENV, lambda m: self._variable(m, path), files)

    def _variable(self, match: re.Match[str], path: KeyPath) -> str:
        name, default = match.group(1), match.group(2)
        if self.env_prefixes is not None and not name.startswith(self.env_prefixes):
            listed = _listed(self.env_prefixes_text, self.env_prefixes)
            self.problems.env_problem(  # unread: neither its value nor whether it is set may show
                path,
                f"environment variable {word(name)} is refused: its name starts with none "
                f"of {ENV_PREFIXES_VAR} ({listed})"
                + ("; its default is not used instead" if default is not None else "")
                + "; use a variable the list allows, or widen the list",
            )
            return ""
        if name in self.env:
            self.problems.env_values.add(self.env[name])
            return self.env[name]
        if default is not None:
            return default
        self.problems.env_problem(
            path,
            f"environment variable {name} is not set; export it, or give a default "
            f"as ${{{name}:-value}}",
        )
        return ""

    def _read_secret(self, name: str, path: KeyPath) -> str:
        where = name
        if self.secret_dirs is not None:
            where = _resolved(name)  # opened as resolved: a link changed since cannot escape
            if not any(_inside(where, folder) for folder in self.secret_dirs):
                listed = _listed(self.secret_dirs_text, self.secret_dirs)
                resolved = "" if where == name else " once links and '..' are resolved"
                self.problems.env_problem(
                    path, f"the secret file {word(name)} is outside {SECRET_DIRS_VAR} "
                    f"({listed}){resolved}; put it there or widen the list")
                return ""
        try:
            with open(where, encoding="utf-8") as handle:
                value = handle.read(_MAX_SECRET_FILE_BYTES).rstrip("\r\n")
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the name
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.problems.env_problem(
                path, f"cannot read the secret file {word(name)}: {reason}; mount it there, "
                "or use ${VAR} from the environment")
            return ""
        self.problems.env_values.add(value)
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
