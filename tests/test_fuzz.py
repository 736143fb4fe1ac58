"""Property-based tests: arbitrary bytes from a server, or arbitrary model text, give a typed
result or a typed error (ProviderError, AnswerError), never an unhandled exception."""

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixtract import answers
from pixtract.messages import ChatRequest, ChatResponse, Message
from pixtract.providers import Endpoint, ProviderError, make_client
from pixtract.providers.sse import iter_sse

DIALECT_PROFILES = ["mistral", "openrouter", "modelslab", "modelslab-anthropic", "openai"]
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# JSON-ish bodies that look like the real thing, mutated: far more interesting than random bytes.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["choices", "message", "content", "delta", "usage", "finish_reason", "type", "text",
                         "tool_calls", "function", "arguments", "error", "status", "output", "stop_reason",
                         "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "id", "model"]),
        inner, max_size=5),
    max_leaves=20)
bodies = st.one_of(
    st.binary(max_size=400),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(json_values.map(json.dumps), max_size=5).map(
        lambda chunks: "".join(f"data: {c}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"),
    st.lists(st.tuples(st.sampled_from(["message_start", "content_block_delta", "message_delta", "error", "ping"]),
                       json_values.map(json.dumps)), max_size=5).map(
        lambda evs: "".join(f"event: {e}\ndata: {d}\n\n" for e, d in evs).encode()),
)


def _client(profile: str, status: int, body: bytes, ctype: str):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": ctype})

    ep = Endpoint(profile=profile, base_url="http://fuzz.invalid/v1", api_key="sk-fuzz-SECRET",
                  vision_model="v", text_model="t", max_retries=0, backoff_base=0, backoff_max=0,
                  max_rate_limit_wait=0)
    return make_client(ep, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("profile", DIALECT_PROFILES)
@pytest.mark.parametrize("stream", [False, True])
@FUZZ
@given(body=bodies, status=st.sampled_from([200, 200, 200, 400, 401, 429, 500, 503, 529]))
def test_response_parsers_never_crash(profile, stream, body, status):
    ctype = "text/event-stream" if stream and status == 200 else "application/json"
    with _client(profile, status, body, ctype) as client:
        try:
            resp = client.complete(ChatRequest([Message("user", "hi")], max_tokens=10), stream=stream)
        except ProviderError as e:
            assert "sk-fuzz-SECRET" not in str(e)
            return
    assert isinstance(resp, ChatResponse) and isinstance(resp.text, str)


@FUZZ
@given(st.lists(st.text(max_size=60), max_size=30))
def test_sse_parser_never_crashes(lines):
    events = list(iter_sse(lines))
    assert all(isinstance(e.data, str) for e in events)


@FUZZ
@given(st.text(max_size=600))
def test_json_answer_path_gives_data_or_answer_error(text):
    try:
        data = answers.parse_json(text)
    except answers.AnswerError:
        return
    errors = answers.validate(data, {"type": "object", "properties": {"a": {"type": "integer"}}})
    assert isinstance(errors, list)


@FUZZ
@given(st.text(max_size=600))
def test_chart_answer_path_gives_table_or_answer_error(text):
    try:
        chart = answers.parse_chart(text)
    except answers.AnswerError:
        return
    assert len(chart.rows) >= 2 and all(isinstance(c, str) for row in chart.rows for c in row)


@FUZZ
@given(st.text(max_size=300), st.text(max_size=300))
def test_cross_check_is_total(answer, layer):
    agreement, flags = answers.cross_check(answer, layer)
    assert 0.0 <= agreement <= 1.0 and isinstance(flags, list)


@FUZZ
@given(st.sampled_from(["stop", "length", "error", None, "tool_calls"]), st.text(max_size=50))
def test_answer_text_refuses_empty_and_truncated(finish, text):
    resp = ChatResponse(text=text, finish_reason=finish)
    try:
        got = answers.answer_text(resp)
    except answers.AnswerError:
        assert finish in ("length", "error") or not text.strip()
        return
    assert got.strip() and finish not in ("length", "error")


def test_endless_429s_without_wait_hint_end_in_a_typed_error():
    """Found by the fuzzer: 429s with no (or zero) wait used to be retried forever."""
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "0"})

    ep = Endpoint(profile="openai", base_url="http://x.invalid/v1", api_key="k", vision_model="v", text_model="t",
                  max_retries=0, backoff_base=0, backoff_max=0)
    with make_client(ep, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ProviderError) as e:
            client.complete(ChatRequest([Message("user", "hi")]))
    assert e.value.type == "rate_limited" or "429" in str(e.value)
    assert 1 < len(calls) <= 51
