"""One redaction point for every log line a camfleet process writes.

:func:`install_log_redaction` redacts every record as it is made: its message, its exception
(the text and the traceback of ``log.exception``, which may quote a URL) and its stack. It wraps
the process's log record factory, so a record is redacted before any handler sees it, whichever
logger made it and whenever that handler was added: a library's own handler, one a user's
logging config adds later, a logger that does not propagate to the root. It also puts a
:class:`RedactingFilter` on each handler of the root logger, for records made some other way
(``logging.makeLogRecord``). Both mask what :func:`fleet.redact.redact_url` masks, including the
secrets registered from the config. The CLI installs it at start and each actor when it is built
(its own process); installing twice changes nothing.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from fleet.redact import redact_url, register_secrets_in

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
_EXCEPTIONS = logging.Formatter()  # formats exc_info as the standard formatter does
_DONE = "_camfleet_redacted"  # set on a record once redacted (it may reach several handlers)


class RedactingFilter(logging.Filter):
    """Redacts a record in place (message, exception, stack) and lets it through."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> None:
    """Redact ``record`` in place: message (args merged in), exception text, stack. Once."""
    if getattr(record, _DONE, False):
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string must not hide the line
        message = f"{record.msg!r} % {record.args!r}"
    record.msg, record.args = redact_url(message), None
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = _EXCEPTIONS.formatException(record.exc_info)
        # The text is what formatters show; without exc_info none can format it again from the
        # exception, unredacted.
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact_url(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_url(record.stack_info)
    setattr(record, _DONE, True)


def _install_record_factory() -> None:
    """Wrap the log record factory (Ray wraps it too, and keeps ours inside): every record this
    process makes is redacted as it is made."""
    current = logging.getLogRecordFactory()
    if getattr(current, _DONE, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redact_record(record)
        return record

    setattr(factory, _DONE, True)
    logging.setLogRecordFactory(factory)


def install_log_redaction(*configs: object) -> None:
    """Redact every record this process makes, and every one that reaches a root handler;
    register the secrets ``configs`` hold first (see :func:`fleet.redact.register_secrets_in`).
    With no handler yet (a Ray worker), add one to stderr as Python's last resort would print.
    Idempotent."""
    for config in configs:
        register_secrets_in(config)
    _install_record_factory()
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setLevel(logging.WARNING)  # what logging.lastResort prints
        stderr.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(stderr)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
