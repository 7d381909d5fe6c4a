"""Load a fleet file: YAML with line numbers, ``${VAR}`` interpolation, validation.

Every problem found is reported at once as ``FILE:LINE: field.path: message``. A problem in a value
a camera took from ``defaults:`` is reported once, at the ``defaults:`` line. Values taken from the
environment never appear in a message: they may be passwords.

Whatever the text, loading ends in a :class:`FleetConfig` or a :class:`ConfigError`: nesting,
numbers and aliases are bounded before anything recursive or costly sees them, text that is not
text (lone surrogates) is refused before validation, and every message is one line, shows a
bounded part of a value, and is built in time linear in the file.

The jobs, one module each: ``_yaml`` reads the YAML within its limits, ``_interpolate``
substitutes ``${...}``, ``_problems`` records and masks the problems, ``_report`` turns
pydantic's errors into problems, ``_text`` is how a message shows a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from fleet.config._fleet import FleetConfig
from fleet.config._report import report
from fleet.config._yaml import MAX_FILE_BYTES, read_yaml
from fleet.errors import ConfigError, ConfigProblem


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
    data, problems = read_yaml(text, filename, os.environ if env is None else env)
    try:
        config = FleetConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            report(problems, error)
        raise ConfigError(problems.scrubbed()) from None
    if problems.problems:
        raise ConfigError(problems.scrubbed())
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
