"""Leak checks that can leak: keys of several shapes (none caught by a generic "sk-" pattern
except one), servers whose error bodies echo the request's headers and body, every dialect;
every exception text, error body, traceback and log line is scanned."""

import json
import logging
import traceback

import pytest

from pixtract.messages import ChatRequest, Message
from pixtract.providers import ProviderError, make_client
from pixtract.providers import errors as provider_errors
from tests.emulator.helpers import PROFILES, endpoint_for, png

KEY_SHAPES = {
    "bare": "Lk2Qm9Xv7Tz4Rw8Np3Hs",  # ModelsLab-style bare token
    "base64": "qZ7+Kd/3Wm9=Yx2+Pn/8Lr==",  # +, / and =
    "sk": "sk-proj-Aa1Bb2Cc3Dd4",
}
ECHOES = [("echo", {"status": 400}), ("echo", {"status": 502}), ("401_echo", {})]
REQ = ChatRequest([Message.user("Read: <text_layer>Total 42 EUR</text_layer>", png())], max_tokens=50)


@pytest.fixture(autouse=True)
def fresh(emu):
    emu.reset()
    yield


def everything_said(err: BaseException, caplog) -> str:
    return "\n".join([str(err), repr(err), getattr(err, "message", ""), json.dumps(getattr(err, "body", None)),
                      "".join(traceback.format_exception(err)), caplog.text,
                      *[r.getMessage() for r in caplog.records]])


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("shape", sorted(KEY_SHAPES))
@pytest.mark.parametrize("fault,params", ECHOES, ids=["echo400", "echo502", "401echo"])
def test_echoed_keys_never_leave_the_client(emu, caplog, profile, shape, fault, params):
    caplog.set_level(logging.DEBUG)
    key = KEY_SHAPES[shape] + profile  # one key per case: the registry cannot have met it before
    emu.inject(fault, **params)  # every attempt: retries (the 502) log each error too
    with make_client(endpoint_for(emu, profile, api_key=key, max_retries=1, backoff_base=0.0)) as c, \
            pytest.raises(ProviderError) as info:
        c.complete(REQ)
    said = everything_said(info.value, caplog)
    assert key not in said
    if (fault, profile) != ("401_echo", "mistral"):  # Mistral's 401 body is a bare "Unauthorized"
        assert "***" in said  # the echo carried the key, and it was removed


@pytest.mark.parametrize("profile", PROFILES)
def test_the_echo_check_can_fail(emu, caplog, monkeypatch, profile):
    """With redaction switched off the same scan finds the key: the echo really carries it."""
    monkeypatch.setattr(provider_errors, "redact", lambda text: str(text))
    monkeypatch.setattr(provider_errors, "redact_body", lambda body: body)
    key = KEY_SHAPES["bare"] + "control" + profile
    emu.inject("echo", status=400)
    with make_client(endpoint_for(emu, profile, api_key=key, max_retries=0)) as c, \
            pytest.raises(ProviderError) as info:
        c.complete(REQ)
    assert key in everything_said(info.value, caplog)
