import json

import pytest

from pixtract.providers import Endpoint
from pixtract.providers.anthropic import AnthropicAdapter
from pixtract.providers.errors import MalformedResponse, RateLimitError, RetryableError
from pixtract.providers.openai import OpenAIAdapter
from pixtract.providers.sse import iter_sse, iter_sse_bytes

EP = Endpoint(profile="openai", base_url="http://x/v1", text_model="m")


def test_comments_multiline_and_events():
    lines = [": OPENROUTER PROCESSING", "", "event: ping", "data: {\"a\": 1}", "", "data: line1", "data: line2",
             "id: 7", "", "data: [DONE]", ""]
    events = list(iter_sse(lines))
    assert [e.event for e in events] == ["ping", "message", "message"]
    assert events[1].data == "line1\nline2" and events[1].id == "7"
    assert events[2].data == "[DONE]"


def test_bytes_split_anywhere_and_crlf():
    raw = "data: {\"x\": \"é\"}\r\n\r\n: keep-alive\r\n\r\ndata: [DONE]\r\n\r\n".encode()
    for size in (1, 2, 3, 7):
        chunks = [raw[i:i + size] for i in range(0, len(raw), size)]
        events = list(iter_sse_bytes(chunks))
        assert [e.data for e in events] == ['{"x": "é"}', "[DONE]"]


def _feed(asm, payloads):
    out = []
    for p in payloads:
        for ev in iter_sse(p.splitlines() + [""]):
            out += asm.feed(ev)
    return out


def chunk(delta=None, finish=None, **extra):
    c = {"id": "abc", "object": "chat.completion.chunk", "model": "m",
         "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    c.update(extra)
    return "data: " + json.dumps(c)


def test_openai_family_usage_in_final_chunk_mistral_style():
    asm = OpenAIAdapter(EP).new_stream("m", {})
    toks = _feed(asm, [chunk({"role": "assistant", "content": ""}), chunk({"content": "The total"}),
                       chunk({"content": " is 42."}, "stop", usage={"prompt_tokens": 5, "completion_tokens": 4,
                                                                    "total_tokens": 9}), "data: [DONE]"])
    r = asm.result()
    assert toks == ["The total", " is 42."] and r.text == "The total is 42."
    assert r.finish_reason == "stop" and r.usage.total_tokens == 9


def test_openrouter_usage_chunk_with_empty_choices_and_role_missing():
    asm = OpenAIAdapter(EP).new_stream("m", {})
    _feed(asm, [chunk({"content": "a"}), chunk({"content": "b"}, "length"),
                chunk(None, usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "cost": 0.1}),
                "data: [DONE]"])
    r = asm.result()
    assert r.text == "ab" and r.finish_reason == "length" and r.usage.cost_usd == 0.1


def test_tool_call_deltas_are_assembled():
    asm = OpenAIAdapter(EP).new_stream("m", {})
    _feed(asm, [chunk({"tool_calls": [{"index": 0, "id": "abcDEF123", "function": {"name": "f", "arguments": "{\"a\""}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}, "tool_calls"), "data: [DONE]"])
    r = asm.result()
    assert r.tool_calls[0].args() == {"a": 1} and r.finish_reason == "tool_calls"


def test_midstream_error_under_200_is_typed():
    asm = OpenAIAdapter(EP).new_stream("m", {})
    err = chunk({"content": ""}, "error", error={"code": 429, "message": "Rate limit exceeded"})
    with pytest.raises(RateLimitError) as e:
        _feed(asm, [chunk({"content": "x"}), err])
    assert "Rate limit exceeded" in e.value.message


def test_cut_stream_is_retryable():
    asm = OpenAIAdapter(EP).new_stream("m", {})
    _feed(asm, [chunk({"content": "partial"})])
    with pytest.raises(MalformedResponse) as e:
        asm.result()
    assert isinstance(e.value, RetryableError)


ANTHROPIC_STREAM = """event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"The total"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" is 42.10 EUR."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}

event: message_stop
data: {"type":"message_stop"}

"""


def test_anthropic_named_events():
    asm = AnthropicAdapter(EP).new_stream("m", {})
    toks = []
    for ev in iter_sse(ANTHROPIC_STREAM.splitlines()):
        toks += asm.feed(ev)
    r = asm.result()
    assert toks == ["The total", " is 42.10 EUR."]
    assert (r.text, r.finish_reason, r.usage.prompt_tokens, r.usage.completion_tokens) == \
        ("The total is 42.10 EUR.", "stop", 25, 12)


def test_anthropic_error_event_and_cut():
    asm = AnthropicAdapter(EP).new_stream("m", {})
    lines = ANTHROPIC_STREAM.splitlines()[:6] + ["event: error",
                                                 'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', ""]
    with pytest.raises(RetryableError):
        for ev in iter_sse(lines):
            asm.feed(ev)
    asm2 = AnthropicAdapter(EP).new_stream("m", {})
    for ev in iter_sse(ANTHROPIC_STREAM.splitlines()[:9]):
        asm2.feed(ev)
    with pytest.raises(MalformedResponse):
        asm2.result()
