"""Each injected fault: retried and answered, or a typed final error; never a leaked key."""
import logging
import threading
import time

import pytest

from pixtract.messages import ChatRequest, Message
from pixtract.providers import make_client
from pixtract.providers.errors import (AuthError, BadRequest, ContextTooLong, FinalError, ModelGoneError,
                                       PayloadTooLarge, PaymentRequired, PermissionDenied, ProviderError,
                                       RateLimitError, RetryableError, UnprocessableError)
from tests.emulator.helpers import FAKE_KEY, endpoint_for, png
from tests.helpers import FakeClock

DIALECTS = ["mistral", "openrouter", "modelslab", "modelslab-anthropic", "openai"]
REQ = ChatRequest([Message.user("Read: <text_layer>Total 42 EUR</text_layer>", png())], max_tokens=100)


@pytest.fixture(autouse=True)
def fresh(emu):
    emu.reset()
    yield


def no_secret(*objs):
    for o in objs:
        assert FAKE_KEY not in str(o) and FAKE_KEY not in repr(o)


RETRYABLE = ["429", "408", "500", "502", "503", "524", "529", "500_empty", "502_html", "drop", "malformed_json",
             "truncated_json", "timeout"]


@pytest.mark.parametrize("profile", DIALECTS)
@pytest.mark.parametrize("fault", RETRYABLE)
def test_retryable_fault_is_retried_and_answered(emu, profile, fault, caplog):
    caplog.set_level(logging.DEBUG)
    emu.inject(fault, count=1, hang=0.5)
    with make_client(endpoint_for(emu, profile, timeout=0.3)) as c:
        r = c.complete(REQ)
    assert r.text == "Total 42 EUR" and r.attempts == 2
    deadline = time.monotonic() + 2  # a held ("timeout") request is logged when the server lets go
    while len(emu.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(x["outcome"] for x in emu.requests) == sorted([fault, "ok"])
    no_secret(*[rec.getMessage() for rec in caplog.records])


@pytest.mark.parametrize("profile", DIALECTS)
@pytest.mark.parametrize("fault", ["stream_cut", "midstream_error", "429", "503", "drop"])
def test_stream_faults_are_retried(emu, profile, fault):
    emu.inject(fault, count=1)
    toks = []
    with make_client(endpoint_for(emu, profile)) as c:
        r = c.complete(REQ, on_token=toks.append)
    assert r.text == "Total 42 EUR" and r.attempts == 2 and r.finish_reason == "stop"


FINAL = [("400", BadRequest), ("401", AuthError), ("402", PaymentRequired), ("403", PermissionDenied),
         ("413", PayloadTooLarge), ("422", UnprocessableError), ("404", ModelGoneError),
         ("model_retired", ModelGoneError), ("context_too_long", ContextTooLong)]


@pytest.mark.parametrize("profile", DIALECTS)
@pytest.mark.parametrize("fault,exc", FINAL)
def test_final_fault_raises_typed_error_once(emu, profile, fault, exc, caplog):
    caplog.set_level(logging.DEBUG)
    emu.inject(fault, count=1)
    with make_client(endpoint_for(emu, profile)) as c, pytest.raises(exc) as info:
        c.complete(REQ)
    e = info.value
    assert isinstance(e, FinalError) and not e.retryable and e.status is not None and e.message
    assert e.provider and len(emu.requests) == 1
    if exc is ModelGoneError:
        assert "Mistral Medium 3.5" in str(e) and e.model
    no_secret(e, *[rec.getMessage() for rec in caplog.records])


def test_provider_message_and_request_id_kept(emu):
    emu.inject("context_too_long", count=1)
    with make_client(endpoint_for(emu, "mistral")) as c, pytest.raises(ContextTooLong) as info:
        c.complete(REQ)
    assert "too large for model with 131072 maximum context length" in info.value.message
    emu.inject("401", count=1)
    with make_client(endpoint_for(emu, "modelslab-anthropic")) as c, pytest.raises(AuthError) as info:
        c.complete(REQ)
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert info.value.type == "authentication"


def test_wrong_key_is_401_without_the_key(emu):
    emu.configure(api_keys=["other-key-123456"])
    with make_client(endpoint_for(emu, "mistral")) as c, pytest.raises(AuthError) as info:
        c.complete(REQ)
    no_secret(info.value, info.value.body, emu.requests)


def test_modelslab_status_error_under_200(emu):
    emu.inject("status_error", count=1)
    with make_client(endpoint_for(emu, "modelslab")) as c:
        assert c.complete(REQ).attempts == 2  # "try again" -> retryable
    emu.inject("status_error", count=1, message="Invalid API key")
    with make_client(endpoint_for(emu, "modelslab")) as c, pytest.raises(AuthError):
        c.complete(REQ)


def test_empty_content_and_length_returned_faithfully(emu):
    with make_client(endpoint_for(emu, "mistral")) as c:
        emu.inject("empty_content", count=1)
        r = c.complete(REQ)
        assert (r.text, r.finish_reason, r.attempts) == ("", "stop", 1)
        emu.inject("length", count=1, words=1)
        r = c.complete(REQ)
        assert (r.text, r.finish_reason) == ("Total", "length")
        emu.inject("length", count=1, words=1)
        assert c.complete(REQ, stream=True).finish_reason == "length"


def test_retry_budget_is_bounded(emu):
    emu.inject("503", count=10)
    with make_client(endpoint_for(emu, "openrouter", max_retries=2)) as c, pytest.raises(RetryableError) as info:
        c.complete(REQ)
    assert len(emu.requests) == 3 and info.value.status == 503


@pytest.mark.parametrize("profile", ["openrouter", "modelslab-anthropic", "modelslab", "openai"])
def test_retry_after_is_honoured(emu, profile):
    """The wait is exactly the server's hint, once (the rate gate does not add a second wait)."""
    emu.inject("429", count=1, retry_after=0.4)
    clock = FakeClock()
    with make_client(endpoint_for(emu, profile), clock=clock, sleep=clock.sleep) as c:
        r = c.complete(REQ)
    assert r.attempts == 2 and clock.sleeps == [0.4]
    assert [q["status"] for q in emu.requests] == [429, 200]


def test_rate_limit_waits_do_not_use_retry_budget(emu):
    emu.inject("429", count=4, retry_after=0.01)
    clock = FakeClock()
    with make_client(endpoint_for(emu, "openrouter", max_retries=0), clock=clock, sleep=clock.sleep) as c:
        assert c.complete(REQ).attempts == 5
    assert clock.sleeps == [0.01] * 4
    emu.inject("429", count=1)  # Mistral: no Retry-After (§1.11) -> exponential backoff
    with make_client(endpoint_for(emu, "mistral", max_retries=0)) as c:
        assert c.complete(REQ).attempts == 2


def test_rate_limit_waiting_is_capped(emu):
    emu.inject("429", retry_after=0.1)  # always
    clock = FakeClock()
    with make_client(endpoint_for(emu, "openrouter", max_rate_limit_wait=0.35), clock=clock,
                     sleep=clock.sleep) as c, pytest.raises(RateLimitError):
        c.complete(REQ)
    assert clock.sleeps == [0.1, 0.1, 0.1]  # a fourth wait would pass 0.35 s
    assert len(emu.requests) == 4


def test_rpm_limit_gives_429_with_retry_after_and_client_waits(emu):
    emu.configure(rpm_limit=2, rpm_window=0.5)
    with make_client(endpoint_for(emu, "openrouter")) as c:
        t0 = time.monotonic()
        for _ in range(4):
            c.complete(REQ)
        assert time.monotonic() - t0 >= 0.4
    assert any(r["outcome"] == "rpm_limit" and r["status"] == 429 for r in emu.requests)


def test_aimd_shrinks_on_429_and_grows_back(emu):
    """Over real concurrency: the server admits 2 of 16 threads at a time; the client's limit must
    come down from 8 and, once the server admits everyone, climb back (exact steps: test_client_timing)."""
    emu.configure(max_concurrency=2, latency=0.05)
    from pixtract.providers.limits import AdaptiveLimiter

    ep = endpoint_for(emu, "openai", concurrency=8, backoff_base=0.02)
    with make_client(ep) as c:
        c.limiter = lim = AdaptiveLimiter(8)  # fresh, not the endpoint's shared one from earlier tests
        threads = [threading.Thread(target=c.complete, args=(REQ,)) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rejected = sum(r["status"] == 429 for r in emu.requests)
        assert (min(lim.history) < 8) == (rejected > 0)  # every 429 the server sent brought the limit down
        low = lim.limit
        emu.configure(max_concurrency=None, latency=0.0)
        for _ in range(60):
            c.complete(REQ)
        assert lim.limit == 8 or lim.limit > low  # additive increase, bounded


def test_client_limits_raise_before_any_request(emu):
    from pixtract.providers.errors import ClientLimitError, RequestTooLarge

    with make_client(endpoint_for(emu, "mistral")) as c:
        nine = ChatRequest([Message.user("x", *[png(16, 16)] * 9)])
        with pytest.raises(RequestTooLarge) as info:
            c.complete(nine)
        assert "at most 8" in str(info.value)
        big = ChatRequest([Message.user("x", b"\x89PNG" + b"0" * (10 * 1024 * 1024))])
        with pytest.raises(RequestTooLarge):
            c.complete(big)
    with make_client(endpoint_for(emu, "openrouter")) as c, pytest.raises(ClientLimitError):
        c.complete(ChatRequest([Message.user("x")], stop=["1", "2", "3", "4", "5"]))
    assert emu.requests == []


def test_errors_never_show_the_key(emu, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[ProviderError] = []
    for profile in DIALECTS:
        for fault in ("401", "500", "429"):
            emu.inject(fault)
            with make_client(endpoint_for(emu, profile, max_retries=0, max_rate_limit_wait=0.0)) as c:
                try:
                    c.complete(REQ)
                except ProviderError as e:
                    errors.append(e)
            emu.reset()
    assert len(errors) == 15
    no_secret(*errors, *[e.body for e in errors], *[r.getMessage() for r in caplog.records])
    ep = endpoint_for(emu, "modelslab")
    no_secret(ep, make_client(ep))
