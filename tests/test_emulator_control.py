"""Emulator: control in-process and cross-process, fault selection, scripting, load, log."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import jsonschema
import pytest

from pixtract.messages import ChatRequest, Message, ResponseFormat, Tool
from pixtract.providers import make_client
from tests.emulator import RemoteEmulator
from tests.emulator.helpers import FAKE_KEY, endpoint_for, png

REQ = ChatRequest([Message.user("<text_layer>Hello page</text_layer>", png())])


@pytest.fixture(autouse=True)
def fresh(emu):
    emu.reset()


def test_log_records_requests_without_secrets(emu):
    with make_client(endpoint_for(emu, "modelslab")) as c:
        c.complete(REQ)
    (rec,) = emu.requests
    assert rec["dialect"] == "modelslab" and rec["model"] == "mistralai-pixtral-large-2411"
    assert rec["status"] == 200 and rec["outcome"] == "ok" and rec["method"] == "POST"
    assert rec["body"]["key"] == "***" and FAKE_KEY not in json.dumps(emu.requests)
    emu.configure(log_secrets=True)
    with make_client(endpoint_for(emu, "modelslab")) as c:
        c.complete(REQ)
    assert emu.requests[-1]["body"]["key"] == FAKE_KEY  # only with the explicit flag


def test_answer_never_contains_the_key(emu):
    with make_client(endpoint_for(emu, "openai")) as c:
        r = c.complete(ChatRequest([Message("user", f"<t>my key is {FAKE_KEY}</t>")]))
    assert FAKE_KEY not in r.text and "***" in r.text


def test_fault_by_header_and_by_rate(emu):
    with make_client(endpoint_for(emu, "openrouter", headers={"X-Emulator-Fault": "402"})) as c:
        with pytest.raises(Exception) as info:
            c.complete(REQ)
    assert info.value.type == "payment_required"
    emu.configure(seed=1)
    emu.inject("503", rate=0.3)
    with make_client(endpoint_for(emu, "openrouter", max_retries=10)) as c:
        for _ in range(20):
            c.complete(REQ)
    outcomes = [r["outcome"] for r in emu.requests]
    assert outcomes.count("ok") == 20 and 2 <= outcomes.count("503") <= 20


def test_fault_filters_by_dialect_and_model(emu):
    emu.inject("401", dialect="mistral")
    with make_client(endpoint_for(emu, "openrouter")) as c:
        c.complete(REQ)
    emu.inject("429", count=1, model="local-text", retry_after=0)
    with make_client(endpoint_for(emu, "openai")) as c:
        assert c.complete(REQ).attempts == 1  # vision model: not matched
        assert c.complete(ChatRequest([Message("user", "hi")])).attempts == 2


def test_unknown_fault_rejected(emu):
    with pytest.raises(ValueError):
        emu.inject("418")


def test_scripted_answers_and_callable(emu):
    emu.script("pixtral-large-2411", "first", {"content": "second", "finish_reason": "length"})
    emu.script("*", {"tool_calls": [{"name": "f", "arguments": {"a": 1}}]})
    with make_client(endpoint_for(emu, "mistral")) as c:
        assert c.complete(REQ).text == "first"
        r = c.complete(REQ)
        assert (r.text, r.finish_reason) == ("second", "length")
        r = c.complete(REQ)
        assert r.tool_calls[0].args() == {"a": 1} and r.finish_reason == "tool_calls"
        emu.responder = lambda req, model: f"{model}: {len(req.images)} image(s)"
        assert c.complete(REQ).text == "pixtral-large-2411: 1 image(s)"


def test_schema_answers_validate_and_tools_multiturn(emu):
    schema = {"type": "object", "required": ["items", "date", "kind", "n"], "additionalProperties": False,
              "properties": {"items": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/item"}},
                             "date": {"type": "string", "format": "date"}, "kind": {"enum": ["a", "b"]},
                             "n": {"type": ["integer", "null"], "minimum": 3}},
              "$defs": {"item": {"type": "object", "properties": {"name": {"type": "string", "minLength": 2}}}}}
    tool = Tool("lookup", {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]})
    with make_client(endpoint_for(emu, "mistral")) as c:
        r = c.complete(ChatRequest([Message("user", "x")], response_format=ResponseFormat("json_schema", schema, "s", True)))
        jsonschema.validate(r.json(), schema)
        first = c.complete(ChatRequest([Message("user", "<q>invoice 7</q>")], tools=[tool], tool_choice="auto"))
        call = first.tool_calls[0]
        assert call.name == "lookup" and call.args() == {"q": "invoice 7"}
        convo = [Message("user", "<q>invoice 7</q>"), Message("assistant", "", tool_calls=[call]),
                 Message("tool", "total 42", tool_call_id=call.id, name="lookup")]
        second = c.complete(ChatRequest(convo, tools=[tool]))
        assert second.text == "The tool returned: total 42" and second.finish_reason == "stop"


def test_stop_and_max_tokens_shape_the_answer(emu):
    with make_client(endpoint_for(emu, "openrouter")) as c:
        r = c.complete(ChatRequest([Message("user", "<t>alpha beta ### gamma</t>")], stop=["###"]))
        assert r.text.strip() == "alpha beta" and r.finish_reason == "stop"
        r = c.complete(ChatRequest([Message("user", "<t>" + "word " * 50 + "</t>")], max_tokens=5))
        assert r.finish_reason == "length" and r.usage.completion_tokens <= 5


def test_unknown_and_retired_models(emu):
    emu.configure(retired_models=["pixtral-large-2411"])
    with make_client(endpoint_for(emu, "mistral")) as c:
        rep = c.check_models()
        assert "pixtral-large-2411" in rep.retired and "Mistral Medium 3.5" in rep.retired["pixtral-large-2411"]
        assert rep.available == ["mistral-large-2411"] and not rep.ok
        rep = c.check_models(["nope-1"])
        assert rep.unknown == ["nope-1"] and "UNKNOWN nope-1" in rep.summary()
    with make_client(endpoint_for(emu, "mistral", vision_model="nope-1")) as c, pytest.raises(Exception) as info:
        c.complete(REQ)
    assert info.value.type == "model_gone" and "nope-1" in str(info.value)


def test_latency_and_64_concurrent_slow_requests(emu):
    emu.configure(latency=[0.2, 0.3])
    ep = endpoint_for(emu, "openai", concurrency=64)
    results = []
    with make_client(ep) as c:
        t0 = time.monotonic()
        threads = [threading.Thread(target=lambda: results.append(c.complete(REQ).text)) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
    # one by one they would take at least 64 x 0.2 = 12.8 s; side by side well under half that,
    # even on a loaded machine
    assert len(results) == 64 and elapsed < 6.4
    assert all(0.2 <= r["duration"] < 2 for r in emu.requests)


def test_streams_are_token_by_token_with_delay(emu):
    emu.configure(token_delay=0.02)
    stamps = []
    with make_client(endpoint_for(emu, "mistral")) as c:
        c.complete(ChatRequest([Message("user", "<t>one two three four</t>")]),
                   on_token=lambda t: stamps.append(time.monotonic()))
    assert len(stamps) == 4 and stamps[-1] - stamps[0] >= 0.04


def test_admin_http_endpoints(emu):
    remote = RemoteEmulator(emu.url)
    remote.configure(latency=0.0, retired_models=["mistral-large-2411"])
    remote.inject("503", count=1)
    remote.script("*", "scripted over http")
    with make_client(endpoint_for(emu, "openrouter")) as c:
        assert c.complete(REQ).text == "scripted over http"
    log = remote.requests
    assert [r["outcome"] for r in log] == ["503", "ok"]
    assert httpx.get(emu.url + "/_emulator/requests?since=1").json()[0]["seq"] == 2
    assert httpx.get(emu.url + "/_emulator/config").json()["retired_models"] == ["mistral-large-2411"]
    remote.reset()
    assert remote.requests == [] and remote.base_url("mistral") == emu.base_url("mistral")
    assert httpx.post(emu.url + "/_emulator/faults", json={"fault": "nope"}).status_code == 400
    remote.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_standalone_process():
    port = _free_port()
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulator.emulator", "--port", str(port),
                             "--config", '{"latency": 0.01}'], cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    try:
        remote = RemoteEmulator(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=0.5).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.1)
        remote.inject("429", count=1, retry_after=0.05)

        class Shim:  # endpoint_for only needs base_url()
            base_url = staticmethod(remote.base_url)

        with make_client(endpoint_for(Shim, "modelslab-anthropic")) as c:
            r = c.complete(REQ)
        assert r.text == "Hello page" and r.attempts == 2
        assert [x["outcome"] for x in remote.requests] == ["429", "ok"]
        remote.close()
    finally:
        proc.terminate()
        proc.wait(10)
