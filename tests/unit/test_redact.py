"""``redact_url`` masks passwords and tokens in URLs, wherever they sit in a text."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet import redact
from fleet.redact import _mask_userinfo, redact_url


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a password with spaces or tabs is masked whole (it was left as is)
        ("rtsp://admin:pass word@10.0.0.5/s", "rtsp://admin:***@10.0.0.5/s"),
        ("rtsp://admin:AAAA\tAAAA@10.0.0.5/s", "rtsp://admin:***@10.0.0.5/s"),
        ("found 'rtsp://admin:a b c@10.0.0.5/s'; fix", "found 'rtsp://admin:***@10.0.0.5/s'; fix"),
        # ... but it does not reach into the next URL, nor onto the next line
        (
            "tried rtsp://10.0.0.5:554/s then http://b:pw@h2/m",
            "tried rtsp://10.0.0.5:554/s then http://b:***@h2/m",
        ),
        ("rtsp://10.0.0.5:554/s\nwrite to bob@example.com", None),
    ],
)
def test_a_password_with_whitespace_is_masked(text: str, expected: str | None) -> None:
    assert redact_url(text) == (text if expected is None else expected)


def _seconds(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        redact_url(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize(
    "unit",
    ["x", "rtsp", "a://b:", "a://b:@", "a://@x", "?x_", "rtsp://a:b ", "a:// b", "${a:-"],
)
def test_redacting_takes_time_linear_in_the_text(unit: str) -> None:
    # The regex it replaces tried the scheme at every letter and the password at every '@':
    # 24 kB took 0.4 s, 1 MB minutes.
    short, long = unit * (20_000 // len(unit)), unit * (160_000 // len(unit))

    # A complexity check, not a benchmark: 8x the text may cost up to 32x (linear is 8x,
    # quadratic 64x), and a megabyte must not take minutes.
    assert _seconds(long) <= 32 * _seconds(short) + 0.05
    assert _seconds(unit * (1_000_000 // len(unit))) < 30


# The regex redact_url used before it became a linear scan (it could not mask a password with
# whitespace), with '@' allowed in the user (an e-mail address, as FFmpeg reads it): on text
# without whitespace, the scan must mask exactly what it masks.
_OLD_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/\s]*?)(?::(?P<password>\S*?))?@"
    r"(?=[^@/\s?#]+(?:[/?#\s,;'\")\]]|$))"
)


def _old_mask(match: re.Match[str]) -> str:
    masked = "***" if match.group("password") is None else f"{match.group('user')}:***"
    return f"{match.group('scheme')}{masked}@"


@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(st.sampled_from(
    ["a", "Z", "1", "://", ":", "@", "/", "?", "#", ",", ";", "'", '"', ")", "]", "x.", "rtsp",
     "+", "-", "é", "token=", "&"]), max_size=16).map("".join))
def test_without_whitespace_the_scan_masks_what_the_regex_masked(text: str) -> None:
    assert _mask_userinfo(text) == _OLD_USERINFO.sub(_old_mask, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an e-mail user name: the userinfo runs to the last '@' before the host (as FFmpeg reads)
        ("rtsp://ops@example.com:PASS1@host/s", "rtsp://ops@example.com:***@host/s"),
        ("https://a@b@host/", "https://***@host/"),
        # credentials in path segments (XMEye, ONVIF clones)
        ("rtsp://h:554/user=admin_password=PASS1_channel=1_stream=0.sdp",
         "rtsp://h:554/user=admin_password=***_channel=1_stream=0.sdp"),
        ("rtsp://h/cam;user=admin;password=PASS1;channel=1",
         "rtsp://h/cam;user=admin;password=***;channel=1"),
        ("http://h/videostream.cgi?user=admin&pwd=PASS1", "http://h/videostream.cgi?user=admin&pwd=***"),
        # parameter names: anything holding pass, pwd, psw, pw, secret, token, auth, cred,
        # signature, or ending in key, sig or pas, in any case
        ("http://h/x?loginpas=a&psw=b&PW=c&Authorization=d&x-api-key=e&AccessKey=f&fps=5",
         "http://h/x?loginpas=***&psw=***&PW=***&Authorization=***&x-api-key=***&AccessKey=***"
         "&fps=5"),
        ("http://h/x?signal=3&channel=1&subtype=0", "http://h/x?signal=3&channel=1&subtype=0"),
        # webhook tokens in the path
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX",
         "https://hooks.slack.com/services/T000/B000/***"),
        ("https://discord.com/api/webhooks/1234/abc-DEF_ghi",
         "https://discord.com/api/webhooks/1234/***"),
        ("https://c.webhook.office.com/webhookb2/g1@g2/IncomingWebhook/abc/g3",
         "https://c.webhook.office.com/webhookb2/g1@g2/IncomingWebhook/***/***"),
        ("https://maker.ifttt.com/trigger/motion/with/key/dK3abc",
         "https://maker.ifttt.com/trigger/motion/with/key/***"),
        ("https://api.telegram.org/bot123:AAH-dq_T/sendMessage",
         "https://api.telegram.org/***/sendMessage"),
        # a long random-looking segment, wherever it is
        ("see https://example.com/hook/aZ3kQ9mP2xL7vB4nR8tY1wE6, then",
         "see https://example.com/hook/***, then"),
        # ... but not names and numbers
        ("rtsp://h/Streaming/Channels/101 rtsp://h/stream1 rtsp://h/cam/realmonitor?channel=1",
         None),
        ("rtsp://h/front_door_camera_01/Streaming_Channel_101_Main_Stream/h264Preview_01_main",
         None),
        ("https://h/recordings/2026-12-08T01-28-12_lobby_entrance_0001.mp4", None),
        # a secret that two rules find is masked once, wherever they overlap
        ("rtsp://10.0.0.5:554/s?token=ab@cd", "rtsp://10.0.0.5:***"),
    ],
)
def test_issue_17_forms(text: str, expected: str | None) -> None:
    assert redact_url(text) == (text if expected is None else expected)


def test_a_registered_secret_is_masked_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_registered", set())
    redact.register_secret("Gate-pass-1")

    assert redact_url("bad password Gate-pass-1 for gate") == "bad password *** for gate"
