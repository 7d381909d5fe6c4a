"""The exceptions camfleet raises.

    FleetError
    ├── ConfigError             a fleet file is malformed; carries every problem found
    ├── SourceError             a camera source misbehaves
    │   ├── SourceConnectionError   could not open, or the connection dropped
    │   ├── EndOfStreamError        a finite source (file, folder) has no more frames
    │   └── FrameError              one frame is unusable (undecodable, too large); the
    │                               source is fine and goes on with the next
    ├── DetectorError           a detector could not be built or failed on a frame
    └── ReportError             a run folder cannot be reported on (fleet/report/)

Messages say what was found, what was expected and what to do. They never contain a
credential: URLs go through :func:`fleet.redact.redact_url` before they reach a message.
"""

from __future__ import annotations

from dataclasses import dataclass


class FleetError(Exception):
    """Root of every error camfleet raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a fleet file, located as precisely as the YAML allows."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"\
            if self.field else f"{where}: {self.message}"


class ConfigError(FleetError):
    """A fleet file could not be loaded. ``problems`` lists each one, in file order."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.field))
        super().__init__("\n".join(str(p) for p in self.problems))


class SourceError(FleetError):
    """A camera source failed; the camera reconnects with backoff."""


class SourceConnectionError(SourceError):
    """The source could not be opened, or stopped delivering frames."""


class EndOfStreamError(SourceError):
    """A finite source has delivered its last frame."""


class FrameError(SourceError):
    """One frame (or ``count`` frames in a row) could not be used, but the source is fine: the
    camera drops them with ``reason`` (a drop reason: ``corrupt`` or ``too_large``) and reads
    on, without reconnecting. A source that would replay frames on a reopen must raise this,
    not :class:`SourceConnectionError`, for a bad frame."""

    def __init__(self, message: str, reason: str = "corrupt", count: int = 1):
        super().__init__(message)
        self.reason, self.count = reason, count


class DetectorError(FleetError):
    """A detector could not be built, or failed on a frame."""
