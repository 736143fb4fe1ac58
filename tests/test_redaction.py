"""Redaction and the secret registry, unit by unit, with keys of several shapes: a key that
no generic pattern recognises is only removed because it was registered."""

import json

import pytest

from pixtract.providers.errors import (AuthError, ProviderError, RateLimitError, redact, redact_body,
                                       register_secret)

# Shapes real keys have; none of them starts with "sk-", so only the registry can catch them.
KEY_SHAPES = {
    "bare token (ModelsLab)": "Zq81TtKkPw0bXr7LmN4e",
    "base64 with +/=": "aB3+xY9/Qw7=Rt5+Lm2/Zp==",
    "short": "k9Z!",
    "dotted JWT-like": "eyJhbGciOi.eyJzdWIiOi.SflKxwRJ",
}


@pytest.mark.parametrize("shape", sorted(KEY_SHAPES))
def test_a_registered_key_of_any_shape_is_removed(shape):
    key = KEY_SHAPES[shape] + "-reg"
    text = f"echo: token={key!r} headers={{'Authorization': 'Bearer {key}'}} body {key}{key}"
    assert key in redact(text) or shape == "never"  # not registered yet: nothing removes it fully
    register_secret(key)
    out = redact(text)
    assert key not in out
    assert out.count("***") >= 4


def test_unregistered_and_too_short_secrets_stay():
    register_secret(None)
    register_secret("")
    register_secret("abc")  # under 4 characters: would blank out ordinary words
    assert redact("abc abcd") == "abc abcd"
    register_secret("wxyz")
    assert redact("abc wxyz") == "abc ***"


@pytest.mark.parametrize("short, long_", [
    ("Pq7Lm2Vx", "Pq7Lm2Vx+tail/XYZ="),  # the shorter one starts the longer one
    ("zQ7Lm2Vx", "Aa+zQ7Lm2Vx/tail="),  # inside it, and later in alphabetical order: only length order works
])
def test_a_longer_key_that_contains_a_shorter_one_leaves_no_tail(short, long_):
    register_secret(short)
    register_secret(long_)
    out = redact(f"a {long_} b {short} c")
    assert "tail" not in out and "XYZ" not in out and "Aa+" not in out and short not in out
    assert out == "a *** b *** c"


@pytest.mark.parametrize("text,kept,gone", [
    ("Authorization: Bearer abc123xyz", "Authorization: *** ***", "abc123xyz"),
    ("sent bearer abc.12-3_x now", "sent bearer *** now", "abc.12-3_x"),
    ('{"key": "qwertyuiop"}', '{"key": "***"}', "qwertyuiop"),
    ("api_key=qwe+rty/uiop=", "api_key=***", "qwe+rty"),
    ('"x-api-key": "zzzzzzzz"', '"x-api-key": "***"', "zzzzzzzz"),
    ("API-KEY:  yyyyyyyy, next", "API-KEY:  ***, next", "yyyyyyyy"),
    ("sk-or-v1-0123456789 rest", "*** rest", "sk-or-v1"),
])
def test_patterns_catch_keys_nobody_registered(text, kept, gone):
    out = redact(text)
    assert kept in out and gone not in out


def test_patterns_leave_ordinary_text_alone():
    text = "the key: short, sk-12 and a bearer of news; monkey=banana"
    assert redact("the key: abc") == "the key: abc"  # under 6 characters is not a key
    assert redact("sk-12345") == "sk-12345"
    assert redact(text) == "the key: short, sk-12 and a bearer of news; monkey=banana"
    assert redact(42) == "42"


def test_redact_body_masks_secret_fields_at_any_depth():
    body = {"Key": "ml-secret-value", "API_KEY": "a", "ApiKey": "b", "authorization": "c", "X-Api-Key": "d",
            "model": "m", "messages": [{"content": [{"text": "hi", "key": "e"}]}], "n": 3, "t": None}
    out = redact_body(body)
    assert out == {"Key": "***", "API_KEY": "***", "ApiKey": "***", "authorization": "***", "X-Api-Key": "***",
                   "model": "m", "messages": [{"content": [{"text": "hi", "key": "***"}]}], "n": 3, "t": None}
    assert body["Key"] == "ml-secret-value"  # a copy, the request itself is untouched


def test_redact_body_shortens_images_and_long_strings():
    image = "data:image/png;base64," + "A" * 200
    out = redact_body({"url": image, "short": "data:" + "B" * 75, "long": "x" * 9_999, "longer": "y" * 10_001,
                       "just": "data:" + "C" * 76, "edge": "z" * 10_000})
    assert out["url"] == image[:40] + f"...({len(image)} chars)"
    assert out["short"] == "data:" + "B" * 75  # 80 characters: kept as is
    assert out["long"] == "x" * 9_999
    assert out["longer"] == "y" * 10_000 + "..."
    assert out["just"] == "data:" + "C" * 35 + "...(81 chars)"
    assert out["edge"] == "z" * 10_000 + "..."  # 10,000 characters are already shortened


def test_redact_body_redacts_text_inside_strings():
    register_secret("Ww9+tok/en=")
    assert redact_body(["say Ww9+tok/en= please", {"k": "Bearer abcdefgh"}]) == ["say *** please",
                                                                                  {"k": "Bearer ***"}]
    assert redact_body("q" * 10_050 + " Ww9+tok/en=").endswith("...")
    assert "Ww9+tok/en=" not in redact_body("q" * 9_000 + " Ww9+tok/en=" + "q" * 2_000)


def test_provider_error_redacts_message_and_body_and_formats_itself():
    register_secret("Kx7+Yy/Zz9==")
    e = AuthError("bad key Kx7+Yy/Zz9== sent", status=401, request_id="req_1", provider="mistral",
                  body={"error": {"message": "got Kx7+Yy/Zz9=="}, "key": "Kx7+Yy/Zz9=="})
    assert e.message == "bad key *** sent" and e.args == ("bad key *** sent",)
    assert e.body == {"error": {"message": "got ***"}, "key": "***"}
    assert str(e) == "[authentication] mistral HTTP 401: bad key *** sent (request id req_1)"
    assert repr(e) == f"AuthError({str(e)!r})"
    assert "Kx7" not in json.dumps(e.body) + str(e) + repr(e)
    assert (e.status, e.request_id, e.provider, e.retryable) == (401, "req_1", "mistral", False)


def test_provider_error_fields_and_type_override():
    e = ProviderError("plain")
    assert (str(e), e.body, e.status, e.retry_after, e.type) == ("[provider_error]: plain", None, None, None,
                                                                  "provider_error")
    r = RateLimitError("slow down", retry_after=2.5, type="capacity", status=429)
    assert (r.type, r.retry_after, r.retryable, str(r)) == ("capacity", 2.5, True, "[capacity] HTTP 429: slow down")
    assert RateLimitError("x").type == "rate_limited"
    assert str(ProviderError("m", status=0)) == "[provider_error] HTTP 0: m"
