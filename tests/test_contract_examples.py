"""The recorded example bodies in fixtures/api/examples still match the vendor
schemas / SDK types and parse through the adapters."""
import json
from pathlib import Path

import jsonschema
import pytest

from pixtract.providers import ADAPTERS, Endpoint
from pixtract.providers.sse import iter_sse

EX = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "examples"
API = EX.parent


def vendor(name, root):
    doc = json.loads((API / f"{name}_schemas.json").read_text())
    return jsonschema.Draft202012Validator({"$defs": doc["$defs"], "$ref": f"#/$defs/{root}"})


def load(name):
    return json.loads((EX / name).read_text())


def test_recorded_requests_match_vendor_schemas():
    for suffix in ("", "_stream"):
        vendor("mistral", "ChatCompletionRequest").validate(load(f"mistral_request{suffix}.json"))
        vendor("openrouter", "ChatRequest").validate(load(f"openrouter_request{suffix}.json"))
    assert load("modelslab_request.json")["key"] == "YOUR_API_KEY"  # placeholder, never a real key


@pytest.mark.parametrize("dialect", ["mistral", "openrouter", "modelslab", "anthropic", "openai"])
def test_recorded_responses_parse(dialect):
    ep = Endpoint(profile="openai", base_url="http://x/v1", text_model="m", dialect=dialect).resolved()
    ad = ADAPTERS[dialect](ep)
    r = ad.parse_response(load(f"{dialect}_response.json"), {})
    asm = ad.new_stream("m", {})
    for ev in iter_sse((EX / f"{dialect}_response_stream.sse").read_text().splitlines()):
        asm.feed(ev)
    s = asm.result()
    assert json.loads(r.text) == json.loads(s.text) == {"total": 42.1, "currency": "Total 42.10 EUR"}
    assert r.usage.prompt_tokens == s.usage.prompt_tokens > 0
