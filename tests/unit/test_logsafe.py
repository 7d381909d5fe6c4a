"""Every log line is redacted on its way to any handler: its message, the exception text and
the traceback of ``log.exception``, its stack, and the secrets registered from the config.

The handler is a real one writing to a StringIO, on the root logger, and the filter is put on
it by :func:`install_log_redaction` as the CLI and the actors install it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fleet import redact
from fleet.logsafe import LOG_FORMAT, RedactingFilter, install_log_redaction
from tests.unit.test_redact_properties import (
    PATH_FORMS,
    QUERY_FORMS,
    SEGMENT_CHARS,
    USERINFO_FORMS,
    WEBHOOK_FORMS,
)

FORMS = USERINFO_FORMS + [f.replace("{key}", "token") for f in QUERY_FORMS] + PATH_FORMS \
    + WEBHOOK_FORMS
log = logging.getLogger("fleet.pipeline.camera")
SOURCE = Path(__file__).read_text()


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """What the root logger's handler writes, with the filter installed as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    factory = logging.getLogRecordFactory()
    install_log_redaction()
    try:
        yield stream
    finally:
        logging.setLogRecordFactory(factory)  # other tests' records stay as Python makes them
        root.removeHandler(handler)
        for other in root.handlers:  # pytest's own: leave them as they were
            for f in [f for f in other.filters if isinstance(f, RedactingFilter)]:
                other.removeFilter(f)


@pytest.fixture(autouse=True)
def no_registered_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_registered", set())


class CaptureFailed(Exception):
    pass


def open_capture(url: str) -> None:
    raise CaptureFailed(f"could not open {url}: 401 Unauthorized")


def log_failure(url: str) -> None:
    try:
        open_capture(url)
    except CaptureFailed:
        log.exception("camera gate: capture of %s failed", url)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=st.sampled_from(FORMS), secret=st.text(SEGMENT_CHARS, min_size=6, max_size=30))
def test_log_exception_never_writes_the_secret(output: io.StringIO, template: str,
                                               secret: str) -> None:
    # The secret must not be a word the traceback prints anyway (this file's source lines, its
    # path, the format), or finding it would not mean it leaked.
    assume(secret not in template.replace("{}", " ") + LOG_FORMAT + __file__ + SOURCE)
    output.truncate(0)
    output.seek(0)

    log_failure(template.replace("{}", secret))

    written = output.getvalue()
    assert "Traceback" in written and "CaptureFailed" in written  # the traceback is there
    assert secret not in written


def test_the_traceback_is_redacted_not_dropped(output: io.StringIO) -> None:
    log_failure("rtsp://admin:hunter22@10.0.0.5/s")

    written = output.getvalue()
    assert "capture of rtsp://admin:***@10.0.0.5/s failed" in written
    assert "CaptureFailed: could not open rtsp://admin:***@10.0.0.5/s: 401" in written
    assert 'raise CaptureFailed(f"could not open {url}' in written
    assert "hunter22" not in written


def test_a_stack_is_redacted(output: io.StringIO) -> None:
    log.warning("opening %s", "https://h/x?token=s3cr3t99", stack_info=True)

    assert "token=***" in output.getvalue() and "s3cr3t99" not in output.getvalue()


def test_a_registered_secret_is_masked_in_any_text(output: io.StringIO) -> None:
    install_log_redaction({"sinks": {"webhook": {"secret": "whsec-8f3k2j"}}})

    log.error("signing with %s failed", "whsec-8f3k2j")

    assert "signing with *** failed" in output.getvalue()


@dataclass(frozen=True)
class _Plan:
    source: str
    headers: dict[str, str]
    signature_header: str = "X-Camfleet-Signature"


def test_secrets_are_found_in_config_fields_headers_and_urls() -> None:
    redact.register_secrets_in(_Plan("rtsp://admin:Gate-pass-1@10.0.0.5/s",
                                     {"Authorization": "Bearer abc123def"}))

    assert redact._registered == {"Gate-pass-1", "Bearer abc123def"}


def test_installing_twice_puts_one_filter_on_each_handler(output: io.StringIO) -> None:
    install_log_redaction()
    install_log_redaction()

    for handler in logging.getLogger().handlers:
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1


def test_a_record_with_bad_arguments_is_still_written_redacted(output: io.StringIO) -> None:
    log.error("two values %s %s", "rtsp://a:hunter22@h/s")

    assert "hunter22" not in output.getvalue() and "two values" in output.getvalue()


def test_short_values_are_not_registered() -> None:
    for value in ["", "***", "abc", "12345"]:
        redact.register_secret(value)

    assert redact._registered == set()


def test_a_handler_added_after_install_and_a_logger_that_does_not_propagate_are_redacted(
        output: io.StringIO) -> None:
    # given a handler a library or a user's logging config adds later, on a logger of its own
    # that does not propagate to the root (where the filter is)
    late = io.StringIO()
    handler = logging.StreamHandler(late)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    own = logging.getLogger("somelib.transport")
    own.addHandler(handler)
    own.propagate = False
    try:
        # when it logs a URL with a password, and an exception that quotes one
        own.warning("connecting to %s", "rtsp://admin:hunter22@10.0.0.5/s")
        try:
            open_capture("https://hooks.slack.com/services/T0/B0/xoxbsecrettoken1")
        except CaptureFailed:
            own.exception("hook failed")
    finally:
        own.removeHandler(handler)
        own.propagate = True
    # then neither secret reaches it, and the lines are there
    written = late.getvalue()
    assert "connecting to rtsp://admin:***@10.0.0.5/s" in written
    assert "CaptureFailed" in written and "Traceback" in written
    assert "hunter22" not in written and "xoxbsecrettoken1" not in written
