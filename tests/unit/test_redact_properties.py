"""A secret put anywhere a camera or sink URL can carry one never survives ``redact_url``.

Each form is a template with one ``{}`` where the secret goes: the password of a userinfo (an
e-mail user name too), a query parameter named like a secret, the path-segment forms of XMEye
and ONVIF clones, and the token of a webhook path. The secret is drawn from the characters that
form allows unescaped; it is at least 6 long and not already in the template, so finding it in
the output means it leaked, not that it was there by chance.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fleet.redact import _secret_name, redact_url

UNRESERVED = string.ascii_letters + string.digits + "-._~"
# '@', ':' and '%' may be in a password (the host is what follows the last '@'); '/' and ','
# after an '@' would make a host of the rest, and '*' is what a mask is made of.
PASSWORD_CHARS = UNRESERVED + "!$+=:@%&"
# A value ends at & ; # , ' " ) ] or whitespace; '=' after '_name' would start a parameter of
# the XMEye form; '@' after a port reads as a userinfo (the whole URL is then masked).
VALUE_CHARS = UNRESERVED + "!$+:%/?"
SEGMENT_CHARS = UNRESERVED + "!$+%"  # one path segment: no '/', no '?'
TOKEN_CHARS = string.ascii_letters + string.digits + "-_"  # webhook tokens as services issue

USERINFO_FORMS = [
    "rtsp://admin:{}@10.0.0.5:554/Streaming/Channels/101",
    "rtsps://viewer:{}@cam.example:322/live?res=hd",
    "rtsp://ops@example.com:{}@192.0.2.10/stream1",
    "http://user:{}@host:8080/mjpg/video.mjpg",
    "mqtt://camfleet:{}@broker.example:1883",
    "mqtts://camfleet:{}@broker.example",
]
TOKEN_USERINFO_FORMS = ["https://{}@example.com/feed", "rtsp://{}@10.0.0.5/s"]
QUERY_KEYS = ["token", "access_token", "api_key", "apikey", "key", "password", "passwd", "pass",
              "pwd", "pw", "psw", "loginpas", "secret", "client_secret", "auth", "authorization",
              "sig", "signature", "x-api-key", "Password", "TOKEN", "AccessKey", "credentials"]
QUERY_FORMS = [
    "https://cam.example/live?{key}={}",
    "https://cam.example/live?res=hd&{key}={}&fps=5",
    "rtsp://admin:hunter22@10.0.0.5/s?{key}={}#frag",
    "http://10.0.0.5/cgi-bin/snapshot.cgi?user=admin&{key}={}",
    "https://hooks.example/camfleet?{key}={}",
]
PATH_FORMS = [
    "rtsp://10.0.0.5:554/user=admin_password={}_channel=1_stream=0.sdp?real_stream",
    "rtsp://10.0.0.5:554/user=admin_password={}",
    "rtsp://10.0.0.5/cam;user=admin;password={};channel=1",
    "http://10.0.0.5/videostream.cgi?user=admin&pwd={}",
    "http://10.0.0.5/onvif/snapshot;pwd={}",
]
WEBHOOK_FORMS = [
    "https://hooks.slack.com/services/T0000000/B0000000/{}",
    "https://discord.com/api/webhooks/123456789012345678/{}",
    "https://discordapp.com/api/webhooks/123456789012345678/{}?wait=true",
    "https://contoso.webhook.office.com/webhookb2/0000aaaa-11@2222bbbb-33/IncomingWebhook/{}/"
    "4444cccc-55",
    "https://contoso.webhook.office.com/webhookb2/0000aaaa-11@2222bbbb-33/IncomingWebhook/"
    "0123abcd/{}",
    "https://maker.ifttt.com/trigger/motion/with/key/{}",
    "https://maker.ifttt.com/use/{}",
    "https://api.example/v1/token/{}/events",
]


def secrets(alphabet: str) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=6, max_size=40)


def leaks(template: str, secret: str) -> bool:
    # In a sentence, quoted, or as the only text: the secret is gone from all three. The secret
    # must not already be in the template or in the words around it ("camera" is in the
    # sentence), or finding it would not mean it leaked.
    wrappers = ["{}", "camera 'gate': could not open '{}', retrying", "[{}, {}]"]
    assume(all(secret not in w.replace("{}", template.replace("{}", " ")) for w in wrappers))
    url = template.replace("{}", secret)
    return any(secret in redact_url(w.replace("{}", url)) for w in wrappers)


@settings(max_examples=150, deadline=None)
@pytest.mark.parametrize("template", USERINFO_FORMS)
@given(secret=secrets(PASSWORD_CHARS))
def test_a_userinfo_password_never_survives(template: str, secret: str) -> None:
    assert not leaks(template, secret)


@settings(max_examples=150, deadline=None)
@pytest.mark.parametrize("template", TOKEN_USERINFO_FORMS)
@given(secret=secrets(PASSWORD_CHARS.replace(":", "")))  # a ':' would end the user name
def test_a_token_as_userinfo_never_survives(template: str, secret: str) -> None:
    assert not leaks(template, secret)


@settings(max_examples=40, deadline=None)
@pytest.mark.parametrize("key", QUERY_KEYS)
@pytest.mark.parametrize("form", QUERY_FORMS)
@given(secret=secrets(VALUE_CHARS))
def test_a_secret_query_parameter_never_survives(form: str, key: str, secret: str) -> None:
    assert not leaks(form.replace("{key}", key), secret)


@settings(max_examples=150, deadline=None)
@pytest.mark.parametrize("template", PATH_FORMS)
@given(secret=secrets(SEGMENT_CHARS))
def test_a_password_in_a_path_segment_never_survives(template: str, secret: str) -> None:
    assert not leaks(template, secret)


@settings(max_examples=150, deadline=None)
@pytest.mark.parametrize("template", WEBHOOK_FORMS)
@given(secret=secrets(TOKEN_CHARS))
def test_a_webhook_token_never_survives(template: str, secret: str) -> None:
    assert not leaks(template, secret)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(QUERY_KEYS),
       prefix=st.sampled_from(["", "x-", "my_", "login", "client."]))
def test_every_secret_parameter_name_is_known_with_any_prefix(name: str, prefix: str) -> None:
    assert _secret_name((prefix + name).split("_")[-1])
