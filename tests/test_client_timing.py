"""Retries, Retry-After, the rate gate and AIMD on an injected clock: exact waits, in order,
without waiting (wall-clock figures belong to bench/)."""

import random

import httpx
import pytest

from pixtract.messages import ChatRequest, Message
from pixtract.providers import Endpoint, make_client
from pixtract.providers.errors import RateLimitError, ServerError
from pixtract.providers.limits import RATE_HOLD, AdaptiveLimiter, RateGate, for_endpoint
from pixtract.providers.retry import RetryPolicy
from tests.helpers import FakeClock

OK = {"id": "c1", "object": "chat.completion", "model": "v", "created": 1,
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
REQ = ChatRequest([Message("user", "hi")])


def scripted(*replies):
    """A transport that answers with the given (status, headers) in order, then 200s."""
    queue = list(replies)
    seen = []

    def handler(request):
        seen.append(request)
        if queue:
            status, headers = queue.pop(0)
            return httpx.Response(status, json={"error": {"message": "nope"}}, headers=headers)
        return httpx.Response(200, json=OK)

    return httpx.MockTransport(handler), seen


def client(transport, clock, *, concurrency=8, policy=None, **ep):
    endpoint = Endpoint(profile="openai", base_url=f"http://timing-{id(clock)}.invalid/v1", api_key="k",
                        vision_model="v", text_model="t", concurrency=concurrency, **ep)
    return make_client(endpoint, transport=transport, policy=policy, clock=clock, sleep=clock.sleep)


def test_backoff_is_exponential_with_full_jitter_and_capped():
    clock = FakeClock()
    policy = RetryPolicy(max_retries=4, backoff_base=1.0, backoff_max=3.0, rng=random.Random(7))
    transport, seen = scripted(*[(503, {})] * 4)
    with client(transport, clock, policy=policy) as c:
        assert c.complete(REQ).attempts == 5
    rng = random.Random(7)
    expected = [rng.uniform(0.5, 1.0), rng.uniform(1.0, 2.0), rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0)]
    assert clock.sleeps == expected and len(seen) == 5


def test_retries_stop_at_max_retries_with_the_last_error():
    clock = FakeClock()
    transport, seen = scripted(*[(503, {})] * 5)
    with client(transport, clock, policy=RetryPolicy(max_retries=2, backoff_base=0.0)) as c, \
            pytest.raises(ServerError):
        c.complete(REQ)
    assert len(seen) == 3 and clock.sleeps == [0.0, 0.0]


@pytest.mark.parametrize("headers,wait", [
    ({"retry-after": "3"}, 3.0), ({"retry-after-ms": "250"}, 0.25), ({"retry-after": "500"}, 120.0),
    ({"x-ratelimit-reset": "7"}, 7.0),
])
def test_a_rate_limit_waits_what_the_server_said_once(headers, wait):
    clock = FakeClock()
    transport, seen = scripted((429, headers))
    with client(transport, clock) as c:
        resp = c.complete(REQ)
    assert clock.sleeps == [wait]  # never more than max_hint (120 s); the gate adds no second wait
    assert resp.attempts == 2 and resp.latency_s == wait


def test_the_gate_holds_every_caller_of_the_endpoint():
    clock = FakeClock()
    transport, _ = scripted((429, {"retry-after": "5"}))
    with client(transport, clock) as first:
        gate = first.gate
        gate.block_for(5)  # as a 429 on another thread would
        first.complete(REQ)  # waits at the gate, then its own 429 (another 5 s), then answers
    assert clock.sleeps == [5.0, 5.0]


def test_rate_limit_waits_are_bounded_in_total_and_in_number():
    clock = FakeClock()
    transport, seen = scripted(*[(429, {"retry-after": "2"})] * 100)
    with client(transport, clock, max_rate_limit_wait=7.0) as c, pytest.raises(RateLimitError):
        c.complete(REQ)
    assert clock.sleeps == [2.0, 2.0, 2.0] and len(seen) == 4
    clock = FakeClock()
    transport, seen = scripted(*[(429, {"retry-after": "0"})] * 100)
    with client(transport, clock) as c, pytest.raises(RateLimitError):
        c.complete(REQ)
    assert len(seen) == RetryPolicy().max_rate_limit_retries + 1 and set(clock.sleeps) == {0.0}


def test_a_stray_429_costs_only_its_own_retry():
    clock = FakeClock()
    transport, seen = scripted((429, {}))  # no Retry-After: not a request-rate limit
    with client(transport, clock, policy=RetryPolicy(backoff_base=0.0)) as c:
        for _ in range(20):
            c.complete(REQ)
    assert len(seen) == 21  # the rejected request was sent again
    assert c.limiter.history == [] and c.limiter.limit == 8  # and nobody else slowed down


def test_aimd_halves_once_per_cluster_of_429s_and_climbs_back_one_per_window():
    clock = FakeClock()
    # an overloaded server answers 429 to everything for a while: a quarter of the last 16
    # outcomes (4) halves the limit once; the fifth starts a new count and changes nothing
    transport, _ = scripted(*[(429, {})] * 5)
    with client(transport, clock, policy=RetryPolicy(backoff_base=0.0)) as c:
        c.complete(REQ)
        assert c.limiter.history == [4]
        for _ in range(8):
            c.complete(REQ)
    # +1/limit per success from 4: 4.25, 4.49, 4.71, 4.92, 5.12, 5.32, 5.51, 5.69, 5.87
    assert c.limiter.history == [4, 5]
    # three more 429s: with the fifth above, 4 of the last 16 outcomes, so halved again
    lim = c.limiter
    lim.on_throttle(); lim.on_throttle()
    assert lim.limit == 5
    lim.on_throttle()
    assert lim.limit == 2 and lim.history == [4, 5, 2]


def test_a_request_rate_429_trims_to_what_was_in_flight_and_holds_growth():
    clock = FakeClock()
    transport, _ = scripted((429, {"retry-after": "0.5"}))
    with client(transport, clock) as c:
        c.complete(REQ)  # nothing else in flight: the limit comes down to 1
        assert c.limiter.limit == 1 and clock.sleeps == [0.5]
        c.complete(REQ)  # 0.5 s after the 429: still inside the hold
        assert c.limiter.limit == 1
        clock.advance(RATE_HOLD)
        c.complete(REQ)
        assert c.limiter.limit == 2


def test_limiter_on_the_clock():
    clock = FakeClock()
    lim = AdaptiveLimiter(4, cooldown=1.0, clock=clock)  # 2 of the last 8 outcomes make a cluster
    lim.on_throttle(); lim.on_throttle()
    clock.advance(0.999)
    lim.on_throttle(); lim.on_throttle()  # within the cooldown: one decrease for one burst of 429s
    assert lim.limit == 2
    clock.advance(0.001)
    lim.on_throttle()
    assert lim.limit == 1 and lim.history == [2, 1]
    lim = AdaptiveLimiter(8, clock=clock)
    lim.acquire()
    lim.on_rate_limited()  # one in flight: trimmed to 1, growth held for RATE_HOLD
    assert lim.limit == 1
    clock.advance(RATE_HOLD - 0.01)
    lim.on_success()
    assert lim.limit == 1
    clock.advance(0.01)
    lim.on_success()
    assert lim.limit == 2 and lim.history == [1, 2]


def test_gate_on_the_clock():
    clock = FakeClock()
    gate = RateGate(clock, clock.sleep)
    assert gate.wait(10) == 0.0 and clock.sleeps == []
    gate.block_for(3)
    gate.block_for(1)  # a shorter hint does not shorten the block
    gate.block_for(-5)
    assert gate.wait(2) == 2 and gate.wait(10) == 1 and gate.wait(10) == 0.0
    assert clock.sleeps == [2, 1]


def test_clients_on_another_clock_do_not_share_the_real_clocks_limiter():
    clock = FakeClock()
    real = for_endpoint(("openai", "http://shared.invalid"), 4)
    assert for_endpoint(("openai", "http://shared.invalid"), 4) is real
    fake = for_endpoint(("openai", "http://shared.invalid"), 4, clock, clock.sleep)
    assert fake is not real and fake[0].clock is clock and fake[1].sleep == clock.sleep
