"""Recognisable keys for every profile, runs through faults and errors (including error bodies
that echo the request's headers and body), then every output file, log line, exception text and
Prefect artifact is scanned for them. The keys have several shapes, and only one starts with
"sk-": the others are removed only because pixtract registered them."""

import asyncio
import json
import logging

import pytest

from pixtract.flows.cli import main
from pixtract.config import EndpointSpec, RunConfig, TaskSpec
from pixtract.discover import identify
from pixtract.providers import Endpoint, ProviderError, make_client
from pixtract.messages import ChatRequest, Message
from pixtract.render import count_pages
from pixtract.route import DocumentPlan, Router
from tests.emulator.helpers import PROFILES

pytestmark = pytest.mark.prefect

KEYS = {
    "MISTRAL_API_KEY": "mCANARY7f3a9cQ2wX5tR8",  # a bare token
    "OPENROUTER_API_KEY": "or+CANARY/51be02+Zq==",  # base64-like: + / =
    "MODELSLAB_API_KEY": "CANARYc0ffee77ModelsLab",  # ModelsLab's bare token (sent in the body)
    "OPENAI_API_KEY": "sk-openai-CANARY-9d9d9d",
}


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    for var, key in KEYS.items():
        monkeypatch.setenv(var, key)


def leaks(text: str) -> list[str]:
    return [k for k in KEYS.values() if k in text]


def test_request_log_of_modelslab_has_no_in_body_key(emu, caplog):
    """ModelsLab sends its key in the JSON body: any logged request must have it redacted."""
    emu.reset()
    caplog.set_level(logging.DEBUG)
    ep = Endpoint(profile="modelslab", base_url=emu.base_url("modelslab"), max_retries=1, backoff_base=0.01)
    emu.inject("401_echo", count=1)
    emu.inject("500", count=1)
    with make_client(ep) as client:
        with pytest.raises(ProviderError) as e:
            client.complete(ChatRequest([Message("user", "hello")]))
        resp = client.complete(ChatRequest([Message("user", "hello again")]))
    assert resp.text
    body_sent = [q for q in emu.requests if q.get("body")][-1]["body"]
    assert body_sent.get("key") == "***"  # the emulator's own log redacts too
    text = str(e.value) + repr(e.value) + json.dumps(getattr(e.value, "body", None), default=str) + caplog.text
    assert leaks(text) == []


@pytest.mark.parametrize("fault,status,kind", [("401_echo", 401, "authentication"), ("echo", 400, "invalid_request")])
@pytest.mark.parametrize("profile", PROFILES)
def test_401_that_echoes_the_request_leaks_nothing(emu, profile, fault, status, kind, caplog, tmp_path, samples):
    emu.reset()
    caplog.set_level(logging.DEBUG)
    emu.inject(fault)
    models = dict(vision_model="v", text_model="t") if profile == "openai" else {}
    cfg = RunConfig(inputs=["x"], out=str(tmp_path), profile=profile, tasks=[TaskSpec("ask", questions=["Q?"])],
                    endpoint=EndpointSpec(profile=profile, base_url=emu.base_url(profile), max_retries=1,
                                          backoff_base=0.01, **models))
    doc = identify(str(samples / "report.pdf"))
    router = Router(cfg)
    [rec] = router.answer_page(DocumentPlan(doc, count_pages(doc)), 1)
    router.close()
    assert rec.status == "failed"
    assert rec.error.type == kind and f"HTTP {status}" in rec.error.message
    echoed = [q for q in emu.requests if q.get("status") == status]
    assert echoed, "the fault did not fire"
    said = json.dumps(rec.to_json()) + caplog.text
    assert leaks(said) == []
    if (fault, profile) != ("401_echo", "mistral"):  # Mistral's own 401 body is a bare "Unauthorized"
        assert "***" in said  # the key was echoed, and removed


def test_whole_runs_through_faults_leak_nothing(emu, tmp_path, samples, capfd):
    """Every profile, faults on: scan outputs, stdout/stderr, and Prefect's artifacts and logs."""
    emu.reset()
    for dialect in ("mistral", "openrouter", "modelslab", "anthropic", "openai"):  # an echo for each, surely
        emu.inject("echo", count=1, status=502, dialect=dialect)  # retried: each attempt's error is logged
        emu.inject("echo", count=1, status=400, dialect=dialect)
    for fault in ("401_echo", "429", "500", "truncated_json", "drop"):
        emu.inject(fault, rate=0.1)
    outs = []
    for profile in PROFILES:
        out = tmp_path / profile
        extra = ["--vision-model", "local-vision", "--text-model", "local-text"] if profile == "openai" else []
        main(["run", str(samples / "rotated.pdf"), str(samples / "chart.png"), "--out", str(out), "--profile",
              profile, "--base-url", emu.base_url(profile), "--max-retries", "1", "--no-progress",
              "--no-local-fallback", *extra])
        outs.append(out)
    blob = b""
    for out in outs:
        for path in out.rglob("*"):
            if path.is_file():
                blob += path.read_bytes()
    assert leaks(blob.decode("utf-8", "replace")) == []
    captured = capfd.readouterr()
    assert leaks(captured.out + captured.err) == []
    assert leaks(json.dumps(_prefect_records(), default=str)) == []
    echoes = [(q["dialect"], q["status"]) for q in emu.requests if q["outcome"] == "echo"]
    assert len(echoes) == 10, echoes  # the echoes did fire


def _prefect_records() -> dict:
    """Everything the (ephemeral) Prefect API stored: flow-run parameters, logs, artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    async def read():
        async with get_client() as client:
            runs = await client.read_flow_runs()
            logs = await client.read_logs(log_filter=LogFilter())
            artifacts = await client.read_artifacts()
            return {"parameters": [r.parameters for r in runs], "logs": [x.message for x in logs],
                    "artifacts": [a.model_dump(mode="json") for a in artifacts]}

    return asyncio.run(read())
