"""Request bodies match the vendor schemas / documented shapes; emulator bodies
are accepted by the official SDK types and round-trip through the client."""
import json
from pathlib import Path

import httpx
import jsonschema
import pytest

from pixtract.messages import ChatRequest, ImagePart, Message, ResponseFormat, TextPart, Tool, ToolCall
from pixtract.providers import ADAPTERS, Endpoint, make_client
from pixtract.providers.mistral import mistral_tool_id
from tests.emulator import Emulator
from tests.emulator.helpers import FAKE_KEY, PROFILES, endpoint_for, png

API = Path(__file__).resolve().parents[1] / "fixtures" / "api"
SCHEMA = {"type": "object", "properties": {"total": {"type": "number"}, "currency": {"type": "string"}},
          "required": ["total", "currency"], "additionalProperties": False}


def vendor(vendor_name, root):
    doc = json.loads((API / f"{vendor_name}_schemas.json").read_text())
    return jsonschema.Draft202012Validator({"$defs": doc["$defs"], "$ref": f"#/$defs/{root}"})


def full_request(**kw) -> ChatRequest:
    msgs = [Message("system", "You extract receipts."),
            Message("user", [TextPart("Total? <text_layer>Total 42.10 EUR</text_layer>"), ImagePart(png(), "image/png")]),
            Message("assistant", "", tool_calls=[ToolCall("call_98660886", "get_total", '{"total": 1}')]),
            Message("tool", '{"ok": true}', tool_call_id="call_98660886", name="get_total"),
            Message("user", "Now answer.")]
    base = dict(temperature=0.2, top_p=0.9, frequency_penalty=0.1, presence_penalty=0.1, max_tokens=256, seed=42,
                stop=["</a>", "###"], response_format=ResponseFormat("json_schema", SCHEMA, "receipt", True),
                tools=[Tool("get_total", {"type": "object", "properties": {"total": {"type": "number"}}}, "d")],
                tool_choice="required", structured_outputs=True)
    base.update(kw)
    return ChatRequest(msgs, **base)


def body_for(profile, req=None, stream=False):
    ep = Endpoint(profile=profile, base_url="http://x", api_key=FAKE_KEY, vision_model="v", text_model="t").resolved()
    return ADAPTERS[ep.dialect](ep).build_body(req or full_request(), "pixtral-large-2411", stream)


@pytest.mark.parametrize("stream", [False, True])
def test_mistral_body_validates_and_uses_mistral_names(stream):
    body = body_for("mistral", stream=stream)
    vendor("mistral", "ChatCompletionRequest").validate(body)
    assert body["random_seed"] == 42 and "seed" not in body  # §1.9
    assert "max_completion_tokens" not in body and body["max_tokens"] == 256
    assert body["tool_choice"] == "any" and "stream_options" not in body and "safe_prompt" not in body
    img = body["messages"][1]["content"][1]
    assert isinstance(img["image_url"], str) and img["image_url"].startswith("data:image/png;base64,")
    assert body["messages"][2]["tool_calls"][0]["id"] == body["messages"][3]["tool_call_id"]
    assert len(body["messages"][3]["tool_call_id"]) == 9  # §1.7
    assert body["response_format"]["json_schema"]["strict"] is True


def test_mistral_safe_prompt_only_when_true():
    assert body_for("mistral", full_request(safe_prompt=True))["safe_prompt"] is True


@pytest.mark.parametrize("stream", [False, True])
def test_openrouter_body_validates(stream):
    body = body_for("openrouter", stream=stream)
    vendor("openrouter", "ChatRequest").validate(body)
    assert body["seed"] == 42 and body["max_completion_tokens"] == 256 and body["tool_choice"] == "required"
    assert body["messages"][1]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert body["provider"] == {"require_parameters": True}  # structured_outputs=True


def test_openai_and_modelslab_documented_shapes():
    body = body_for("openai", stream=True)
    assert body["seed"] == 42 and body["tool_choice"] == "required" and body["stream_options"]["include_usage"]
    ml = body_for("modelslab")
    assert ml["key"] == FAKE_KEY and ml["model_id"] == "pixtral-large-2411" and "model" not in ml  # §3.2
    assert ml["messages"][1]["content"][1]["image_url"]["url"].startswith("data:")


def test_anthropic_documented_shape():
    body = body_for("modelslab-anthropic")
    assert body["system"] == "You extract receipts." and body["max_tokens"] == 256
    img = body["messages"][0]["content"][1]
    assert img["type"] == "image" and img["source"]["type"] == "base64" and not img["source"]["data"].startswith("data:")
    assert body["stop_sequences"] == ["</a>", "###"] and body["tool_choice"] == {"type": "any"}
    assert {m["role"] for m in body["messages"]} <= {"user", "assistant"}
    assert body["messages"][2]["content"][0]["type"] == "tool_result"
    from anthropic.types.message_create_params import MessageCreateParamsBase  # the SDK's TypedDict keys
    # temperature/top_p: documented by ModelsLab (§3.5) though this SDK version dropped them
    assert set(body) <= set(MessageCreateParamsBase.__annotations__) | {"stream", "temperature", "top_p"}


def test_stop_limit_and_mistral_tool_id_mapping():
    from pixtract.providers.errors import ClientLimitError

    ep = Endpoint(profile="openrouter", base_url="http://x", api_key="k").resolved()
    with pytest.raises(ClientLimitError):
        ADAPTERS["openrouter"](ep).check_limits(ChatRequest([Message("user", "x")], stop=list("abcde")), "m")
    assert mistral_tool_id("TX92Jm8Zi") == "TX92Jm8Zi" and len(mistral_tool_id("call_1")) == 9


# -- emulator bodies vs official SDK types and vendor response schemas --------------

@pytest.fixture(scope="module")
def emu():
    with Emulator() as e:
        yield e


def raw_call(emu, profile, stream=False, req=None):
    ep = endpoint_for(emu, profile).resolved()
    ad = ADAPTERS[ep.dialect](ep)
    model = ep.vision_model
    body = ad.build_body(req or ChatRequest([Message.user("Hi <t>Total 42 EUR</t>", png())], max_tokens=50),
                         model, stream)
    r = httpx.post(ep.base_url + ad.chat_path, json=body, headers=ad.headers())
    if not stream:
        return r.status_code, r.json()
    events = [ln[6:] for ln in r.text.splitlines() if ln.startswith("data: ")]
    return r.status_code, [json.loads(e) for e in events if e != "[DONE]"]


def test_sdk_types_accept_openai_family_bodies(emu):
    try:
        from mistralai.client.models import ChatCompletionResponse, CompletionChunk
    except ImportError:  # mistralai 1.x layout
        from mistralai.models import ChatCompletionResponse, CompletionChunk
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    for profile in ("mistral", "openrouter", "modelslab", "openai"):
        status, body = raw_call(emu, profile)
        assert status == 200, body
        ChatCompletion.model_validate(body)
        status, chunks = raw_call(emu, profile, stream=True)
        for c in chunks:
            ChatCompletionChunk.model_validate(c)
    _, body = raw_call(emu, "mistral")
    ChatCompletionResponse.model_validate(body)
    # The spec's allOf requires a "data" field that no real response carries (model-apis.md §1.5 example).
    errs = [e.message for e in vendor("mistral", "ChatCompletionResponse").iter_errors(body)]
    assert errs in ([], ["'data' is a required property"]), errs
    _, chunks = raw_call(emu, "mistral", stream=True)
    for c in chunks:
        CompletionChunk.model_validate(c)
        vendor("mistral", "CompletionChunk").validate(c)
    assert "usage" in chunks[-1] and chunks[-1]["choices"][0]["finish_reason"] == "stop"  # §1.6
    _, body = raw_call(emu, "openrouter")
    vendor("openrouter", "ChatResult").validate(body)
    _, chunks = raw_call(emu, "openrouter", stream=True)
    for c in chunks:
        vendor("openrouter", "ChatStreamChunk").validate(c)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["cost"] > 0  # §2.5


def test_sdk_types_accept_anthropic_bodies(emu):
    import anthropic.types as at
    from pydantic import TypeAdapter

    status, body = raw_call(emu, "modelslab-anthropic")
    assert status == 200
    at.Message.model_validate(body)
    _, events = raw_call(emu, "modelslab-anthropic", stream=True)
    ta = TypeAdapter(at.RawMessageStreamEvent)
    for ev in events:
        if ev["type"] != "ping":
            ta.validate_python(ev)
    req = ChatRequest([Message.user("<t>42</t>")], max_tokens=50, tools=[Tool("f", {"type": "object", "properties": {
        "n": {"type": "integer"}}})], tool_choice="required")
    _, body = raw_call(emu, "modelslab-anthropic", req=req)
    msg = at.Message.model_validate(body)
    assert msg.stop_reason == "tool_use" and msg.content[0].input == {"n": 42}


def test_mistral_emulator_rejects_seed_with_real_422(emu):
    ep = endpoint_for(emu, "mistral").resolved()
    r = httpx.post(ep.base_url + "/chat/completions", headers={"Authorization": f"Bearer {FAKE_KEY}"},
                   json={"model": "pixtral-large-2411", "messages": [{"role": "user", "content": "hi"}], "seed": 1})
    assert r.status_code == 422
    d = r.json()["message"]["detail"][0]
    assert d["type"] == "extra_forbidden" and d["loc"] == ["body", "seed"]  # §1.9
    r = httpx.post(ep.base_url + "/chat/completions", headers={"Authorization": f"Bearer {FAKE_KEY}"},
                   json={"model": "pixtral-large-2411", "messages": [{"role": "user", "content": "hi", "name": "x"}]})
    assert r.status_code == 422 and r.json()["message"]["detail"][0]["loc"][-1] == "name"


def test_anthropic_emulator_rejects_data_url_prefix(emu):
    ep = endpoint_for(emu, "modelslab-anthropic").resolved()
    r = httpx.post(ep.base_url + "/v1/messages", headers={"x-api-key": FAKE_KEY}, json={
        "model": "mistralai-pixtral-large-2411", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "data:image/png;base64,AAAA"}}]}]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("profile", PROFILES)
def test_roundtrip_same_neutral_result_stream_and_not(emu, profile):
    req = ChatRequest(
        [Message("system", "Transcribe."), Message.user("Page: <text_layer>Invoice 7 total 42.10 EUR</text_layer>", png()),
         Message("assistant", "Sure."), Message("user", "Go: <text_layer>Invoice 7 total 42.10 EUR</text_layer>")],
        temperature=0.1, top_p=0.9, max_tokens=200, seed=7, stop=["###"])
    with make_client(endpoint_for(emu, profile)) as c:
        a = c.complete(req)
        toks = []
        b = c.complete(req, on_token=toks.append)
        j = c.complete(ChatRequest(req.messages, response_format=ResponseFormat("json_schema", SCHEMA, "receipt", True)))
        k = c.complete(ChatRequest(req.messages, response_format=ResponseFormat("json_object")))
    assert a.text == b.text == "".join(toks) == "Invoice 7 total 42.10 EUR"
    assert a.finish_reason == b.finish_reason == "stop"
    assert a.usage.prompt_tokens == b.usage.prompt_tokens > 0 and a.usage.completion_tokens == b.usage.completion_tokens
    jsonschema.validate(j.json(), SCHEMA)
    # the emulator's model fills a number with the first number of the page text, a string with the text
    # (tests/emulator/model.py, from_schema): every dialect must carry exactly that back
    assert j.json() == {"total": 7.0, "currency": "Invoice 7 total 42.10 EUR"}
    if profile == "modelslab-anthropic":  # json_object maps to a forced tool with an open object schema
        assert isinstance(k.json(), dict)
    else:
        assert k.json() == {"text": "Invoice 7 total 42.10 EUR"}
