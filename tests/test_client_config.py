"""Endpoint/profile resolution, retry hints, limiter and redaction units."""
import email.utils
import threading
import time

import pytest

from pixtract.providers.profiles import PROFILES
from pixtract.providers import ConfigError, Endpoint, make_client
from pixtract.providers.errors import redact, register_secret
from pixtract.providers.limits import AdaptiveLimiter
from pixtract.providers.retry import RetryPolicy, parse_retry_after
from tests.emulator import Emulator
from tests.emulator.helpers import FAKE_KEY, PROFILES as EMU_PROFILES, endpoint_for


def test_profile_table():
    assert PROFILES["mistral"].base_url == "https://api.mistral.ai/v1"
    assert PROFILES["openrouter"].vision_model == "mistralai/pixtral-large-2411"
    assert PROFILES["modelslab"].vision_model == "mistralai-pixtral-large-2411"
    assert PROFILES["modelslab-anthropic"].dialect == "anthropic"
    assert PROFILES["local"].dialect is None and PROFILES["openai"].base_url is None


def test_resolve_defaults_and_env_key(monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    ep = Endpoint(profile="mistral").resolved()
    assert (ep.dialect, ep.base_url, ep.vision_model, ep.text_model) == \
        ("mistral", "https://api.mistral.ai/v1", "pixtral-large-2411", "mistral-large-2411")
    assert ep.api_key == FAKE_KEY and FAKE_KEY not in repr(ep)
    ep2 = Endpoint(profile="mistral", vision_model="x", base_url="http://h/v1/").resolved()
    assert ep2.vision_model == "x" and ep2.base_url == "http://h/v1"


def test_config_errors(monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENROUTER_API_KEY"):
        Endpoint(profile="openrouter").resolved()
    with pytest.raises(ConfigError, match="base_url"):
        Endpoint(profile="openai", text_model="m").resolved()
    with pytest.raises(ConfigError, match="model"):
        Endpoint(profile="openai", base_url="http://h/v1").resolved()
    with pytest.raises(ConfigError, match="unknown profile"):
        Endpoint(profile="nope").resolved()
    with pytest.raises(ConfigError):
        make_client(Endpoint(profile="local"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert Endpoint(profile="openai", base_url="http://h/v1", text_model="m").resolved().api_key is None


def test_retry_hints():
    now = 1_000_000_000.0
    assert parse_retry_after({"Retry-After": "2"}) == 2
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < parse_retry_after({"Retry-After": date}) <= 30
    assert parse_retry_after({"X-RateLimit-Reset": str(int((now + 5) * 1000))}, now=now) == pytest.approx(5)
    assert parse_retry_after({"X-RateLimit-Reset": str(int(now + 7))}, now=now) == pytest.approx(7)
    assert parse_retry_after({"ratelimitbysize-reset": "3"}) == 3
    assert parse_retry_after({"x-ratelimit-reset-tokens-minute": "4"}) == 4
    assert parse_retry_after({"anthropic-ratelimit-requests-reset": "2001-09-09T01:46:50Z"}, now=now) == \
        pytest.approx(10, abs=1)
    assert parse_retry_after({}, {"status": "error", "retry_after": 30}) == 30
    assert parse_retry_after({}) is None
    p = RetryPolicy(backoff_base=0.1, backoff_max=1.0)
    assert all(0.05 <= p.backoff(0) <= 0.1 for _ in range(20)) and p.backoff(10) <= 1.0


def test_limiter_aimd_unit():
    lim = AdaptiveLimiter(8)  # a cluster: 4 of the last 16 outcomes
    for _ in range(15):
        lim.on_success()
    lim.on_throttle()  # a stray one
    assert lim.limit == 8 and lim.history == []
    for _ in range(3):
        lim.on_throttle()
    assert lim.limit == 4
    for _ in range(3 * 4):
        lim.on_throttle()
    assert lim.limit == 1
    for _ in range(200):
        lim.on_success()
    assert lim.limit == 8
    # a request-rate 429 (with Retry-After): down to what was in flight, never halved, never up
    lim = AdaptiveLimiter(16)
    for _ in range(11):
        lim.acquire()
    lim.release()  # the rejected one
    lim.on_rate_limited()
    assert lim.limit == 10
    lim.on_rate_limited()
    assert lim.limit == 10
    for _ in range(10):
        lim.release()
    lim.on_rate_limited()
    assert lim.limit == 1 and lim.history[-2:] == [10, 1]
    # the limit is enforced across threads
    lim = AdaptiveLimiter(2)
    peak, cur, lock = [0], [0], threading.Lock()

    def work():
        with lim:
            with lock:
                cur[0] += 1
                peak[0] = max(peak[0], cur[0])
            time.sleep(0.01)
            with lock:
                cur[0] -= 1
    ts = [threading.Thread(target=work) for _ in range(10)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert peak[0] == 2


def test_redaction():
    register_secret("my-very-secret-value")
    s = redact('Authorization: Bearer abc123xyz {"key": "qwertyuiop"} my-very-secret-value sk-or-v1-0123456789')
    for leaked in ("abc123xyz", "qwertyuiop", "my-very-secret-value", "sk-or-v1-0123456789"):
        assert leaked not in s


@pytest.fixture(scope="module")
def emu():
    with Emulator() as e:
        yield e


@pytest.mark.parametrize("profile", EMU_PROFILES)
def test_list_models_each_dialect(emu, profile):
    with make_client(endpoint_for(emu, profile)) as c:
        models = c.list_models()
        assert set(c.endpoint.models) <= set(models)
        assert c.check_models().ok


def test_client_is_thread_safe(emu):
    from pixtract.messages import ChatRequest, Message

    with make_client(endpoint_for(emu, "mistral", concurrency=4)) as c:
        out = []
        ts = [threading.Thread(target=lambda i=i: out.append(c.complete(ChatRequest([Message("user", f"<t>n{i}</t>")])).text))
              for i in range(20)]
        [t.start() for t in ts]
        [t.join() for t in ts]
    assert sorted(out) == sorted(f"n{i}" for i in range(20))
