"""The exceptions camfleet raises, all of them here, in one tree.

    FleetError                  root: every error camfleet raises on purpose
    ├── ConfigError             a fleet file is malformed; carries every problem found
    ├── SourceError             a camera source misbehaves (the camera reconnects)
    │   ├── SourceConnectionError   could not open, or the connection dropped
    │   ├── EndOfStreamError        a finite source (file, folder) has no more frames
    │   └── FrameError              one frame is unusable (undecodable, too large); the
    │                               source is fine and goes on with the next
    ├── DetectorError           a detector could not be built or failed on a frame
    │   └── SettingError            one detector setting is unusable (names the field)
    ├── PushSettingError        a push sink's setting is unusable on this node (also a
    │                           ValueError)
    ├── ActorLostError          an actor died (fleet.control.actorsys)
    ├── ActorTimeoutError       an actor did not answer in time; it may be alive
    ├── ControllerGone          the fleet's controller did not answer the CLI (actors.runtime)
    ├── ReportError             a run folder cannot be reported on (fleet/report/)
    └── BenchError              a benchmark could not measure what it set out to (fleet/bench/)
        └── BaselineError           a baseline's process failed or answered for the wrong pixels

The modules that raise them import them from here; the modules where they used to be defined
(``fleet.control.actorsys``, ``fleet.detectors.base``, ``actors.runtime``, ...) re-export them, so
older imports still work. A module's private exception that never leaves it (a signal between
two of its functions) stays in that module. ``tests/unit/test_errors.py`` holds the rule.

Messages say what was found, what was expected and what to do. They never contain a
credential: URLs go through :func:`fleet.redact.redact_url` before they reach a message.
"""

from __future__ import annotations

from dataclasses import dataclass


class FleetError(Exception):
    """Root of every error camfleet raises on purpose."""


# --- configuration ----------------------------------------------------------------------------

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


# --- sources ----------------------------------------------------------------------------------

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


# --- detectors and sinks ----------------------------------------------------------------------

class DetectorError(FleetError):
    """A detector could not be built, or failed on a frame."""


class SettingError(DetectorError):
    """A detector cannot start because of one setting: ``model.path: no file at ...``.

    ``field`` is relative to the detector's config; :func:`fleet.detectors.build_detector` puts
    ``detectors.<name>.`` in front when it knows the detector's name.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def under(self, prefix: str) -> SettingError:
        return SettingError(f"{prefix}.{self.field}", self.message)


class PushSettingError(FleetError, ValueError):
    """A push sink's setting cannot be used on this node (a TLS file missing, say)."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


# --- actors -----------------------------------------------------------------------------------

class ActorLostError(FleetError):
    """The actor died (its process was killed, its node was lost, or it raised at start)."""


class ActorTimeoutError(FleetError):
    """The actor did not answer within the timeout."""


class ControllerGone(FleetError):
    """The fleet's controller did not answer; ``for_good`` when Ray will not restart it."""

    def __init__(self, why: str, for_good: bool):
        super().__init__(why)
        self.for_good = for_good


# --- commands ---------------------------------------------------------------------------------

class ReportError(FleetError):
    """A run folder is missing, incomplete or has a corrupt file; or it cannot be drawn."""


class BenchError(FleetError):
    """A benchmark could not measure what it set out to (too few frames done, a frame that
    should have been read-only was not, a codec round trip failed)."""


class BaselineError(BenchError):
    """A baseline's server, worker or child process failed, or answered for the wrong pixels."""
