"""``redact_url`` masks passwords and tokens in URLs, wherever they sit in a text."""

from __future__ import annotations

import pytest

from fleet.redact import redact_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # user:password@ keeps the user, masks the password
        ("rtsp://admin:hunter2@10.0.0.5/stream", "rtsp://admin:***@10.0.0.5/stream"),
        ("rtsps://admin:p%40ss@cam.example:322/live", "rtsps://admin:***@cam.example:322/live"),
        ("http://user:pw@host:8080/mjpg", "http://user:***@host:8080/mjpg"),
        ("rtsp://admin:@10.0.0.5/s", "rtsp://admin:***@10.0.0.5/s"),
        # a single token as userinfo is masked whole
        ("https://ghp_token123@example.com/feed", "https://***@example.com/feed"),
        ("rtsp://hunter2@10.0.0.5/s", "rtsp://***@10.0.0.5/s"),
        # secrets in the query
        ("https://cam.example/live?token=abc123", "https://cam.example/live?token=***"),
        ("https://h/live?hd=1&password=hunter2", "https://h/live?hd=1&password=***"),
        ("https://cam.example/live?key=k1&res=hd", "https://cam.example/live?key=***&res=hd"),
        ("https://h/x?api=1&PASSWORD=Hunter2&auth=zz", "https://h/x?api=1&PASSWORD=***&auth=***"),
        ("https://h/x?signature=s&secret=t&pwd=u", "https://h/x?signature=***&secret=***&pwd=***"),
        ("rtsp://admin:hunter2@h/s?token=t", "rtsp://admin:***@h/s?token=***"),
        # nothing to hide: unchanged
        ("rtsp://10.0.0.5:554/stream", "rtsp://10.0.0.5:554/stream"),
        ("https://cam.example/live?res=hd&fps=5", "https://cam.example/live?res=hd&fps=5"),
        ("/data/videos/lobby.mp4", "/data/videos/lobby.mp4"),
        ("device:0", "device:0"),
        ("", ""),
        # several URLs in one text
        (
            "tried rtsp://a:pw1@h1/s then http://b:pw2@h2/m?token=t3 and gave up",
            "tried rtsp://a:***@h1/s then http://b:***@h2/m?token=*** and gave up",
        ),
        (
            "camera 'gate': could not open rtsp://admin:hunter2@10.0.0.5/s; see rtsp://10.0.0.6/s",
            "camera 'gate': could not open rtsp://admin:***@10.0.0.5/s; see rtsp://10.0.0.6/s",
        ),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "rtsp://admin:hunter2@10.0.0.5/stream",
        "https://hunter2@example.com/",
        "https://example.com/?token=hunter2",
        "'rtsp://admin:hunter2@10.0.0.5/s'",
        "[rtsp://u:hunter2@a/s, http://v:hunter2@b/m]",
    ],
)
def test_redacted_text_never_holds_the_secret(text: str) -> None:
    assert "hunter2" not in redact_url(text)


def test_redact_is_idempotent() -> None:
    once = redact_url("rtsp://admin:hunter2@10.0.0.5/s?token=abc")

    assert redact_url(once) == once


@pytest.mark.parametrize(
    "text", ["rtsp://admin:p@ssword@10.0.0.5/s", "rtsp://admin:pass/word@10.0.0.5/s"]
)
def test_password_with_at_or_slash_is_masked_whole(text: str) -> None:
    assert redact_url(text) == "rtsp://admin:***@10.0.0.5/s"


@pytest.mark.parametrize("param", ["access_token", "api_key", "apikey", "auth_token"])
def test_common_token_parameter_names_are_masked(param: str) -> None:
    assert redact_url(f"https://h/x?{param}=s3cr3t") == f"https://h/x?{param}=***"


def test_punctuation_after_a_masked_query_value_is_kept() -> None:
    assert redact_url("see https://h/x?token=abc, then") == "see https://h/x?token=***, then"
