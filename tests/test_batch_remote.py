"""Whole runs through the Prefect flow and the CLI, against the emulator."""

import json

import pytest

from pixtract.flows.cli import EXIT_DEGRADED, EXIT_FAILURES, EXIT_OK, EXIT_USAGE, main
from pixtract import outputs
from pixtract.outputs import read_results
from tests.emulator.helpers import FAKE_KEY

pytestmark = pytest.mark.prefect


@pytest.fixture(autouse=True)
def fresh(emu, monkeypatch):
    emu.reset()
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)


def chats(emu):
    return [r for r in emu.requests if r.get("path", "").endswith("/chat/completions")]


def run(emu, *args, out, extra=()):
    return main(["run", *map(str, args), "--out", str(out), "--no-progress", "--profile", "mistral",
                 "--base-url", emu.base_url("mistral"), *extra])


def test_vision_records_for_every_page_with_tokens_and_cost(emu, tmp_path, samples):
    files = [samples / "report.pdf", samples / "scanned.pdf", samples / "chart.png", samples / "multi.tiff"]
    assert run(emu, *files, out=tmp_path) == EXIT_OK
    recs = read_results(str(tmp_path))
    assert len(recs) == 3 + 1 + 1 + 2
    for r in recs:
        assert r.route == "vision" and r.status == "ok" and r.provider == "mistral"
        assert r.usage["input_tokens"] > 0 and r.usage["output_tokens"] > 0 and r.cost_usd > 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["counts"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in recs), abs=1e-6)
    assert m["ledger"]["balanced"] and m["ledger"]["tasks"]["transcribe"]["ok"] == {"vision": 7}
    assert (tmp_path / "report.html").exists() and len(list((tmp_path / "thumbs").glob("*.jpg"))) == 7
    blob = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert FAKE_KEY.encode() not in blob


def test_job_file_with_two_tasks_and_flags_overriding_it(emu, tmp_path, samples):
    schema = tmp_path / "totals.schema.json"
    schema.write_text(json.dumps({"title": "Totals", "type": "object",
                                  "properties": {"total": {"type": "string"}}}))
    job = tmp_path / "job.toml"
    job.write_text(f"""
inputs = ["{samples / 'report.pdf'}"]
out = "job-out"
profile = "mistral"

[endpoint]
base_url = "{emu.base_url('mistral')}"

[render]
max_edge = 800

[[tasks]]
kind = "ask"
questions = ["What is the title?", "Which region is largest?"]
scope = "document"

[[tasks]]
kind = "extract"
schema = "totals.schema.json"
""")
    code = main(["run", "--job", str(job), "--no-progress", "--max-edge", "640"])
    assert code == EXIT_OK
    out = tmp_path / "job-out"  # relative to the job file
    recs = read_results(str(out))
    asks = [r for r in recs if r.task == "ask"]
    extracts = [r for r in recs if r.task == "extract"]
    assert [r.question for r in asks] == ["What is the title?", "Which region is largest?"]
    assert all(r.page is None and r.pages == [1, 2, 3] for r in asks)
    assert [r.page for r in extracts] == [1, 2, 3] and all(r.valid["ok"] for r in extracts)
    assert all(r.schema == "Totals" for r in extracts)
    m = json.loads((out / "manifest.json").read_text())
    assert m["config"]["render"]["max_edge"] == 640  # the flag beat the job file
    assert max(r.image["width"], r.image["height"]) == 640 if (r := extracts[0]).image else True
    assert m["ledger"]["tasks"]["ask"]["pages_in"] == 2 and m["ledger"]["tasks"]["extract"]["pages_in"] == 3


def test_chart_task_writes_csv_next_to_results(emu, tmp_path, samples):
    emu.script("*", "```csv\nmonth,revenue\nJan,12\nFeb,18\n```\nRevenue grows.")
    assert run(emu, samples / "chart.png", out=tmp_path, extra=["--task", "chart"]) == EXIT_OK
    [rec] = read_results(str(tmp_path))
    assert rec.data["csv"] == "charts/chart-p1-c1.csv"
    assert (tmp_path / rec.data["csv"]).read_text() == "month,revenue\nJan,12\nFeb,18\n"


def test_ledger_catches_a_dropped_record(emu, tmp_path, samples, monkeypatch, capsys):
    real_append = outputs.OutputWriter._append

    def drop_page_two(self, records):
        real_append(self, [r for r in records if r.page != 2])

    monkeypatch.setattr(outputs.OutputWriter, "_append", drop_page_two)
    assert run(emu, samples / "report.pdf", out=tmp_path) == EXIT_FAILURES
    assert "LEDGER MISMATCH" in capsys.readouterr().err
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["ledger"]["balanced"] is False
    assert m["ledger"]["tasks"]["transcribe"]["pages_in"] == 3
    assert m["ledger"]["tasks"]["transcribe"]["accounted"] == 2


def test_budget_skips_pages_and_says_so(emu, tmp_path, samples, capsys):
    assert run(emu, samples / "report.pdf", out=tmp_path, extra=["--budget-usd", "0.04"]) == EXIT_FAILURES
    recs = read_results(str(tmp_path))
    skipped = [r for r in recs if r.status == "skipped"]
    assert skipped and all("budget" in r.fallback_reason and r.error.type == "budget_exceeded" for r in skipped)
    assert len(skipped) < len(recs)
    assert len(chats(emu)) == len(recs) - len(skipped)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("pixtract: INCOMPLETE") and f"budget reached: {len(skipped)}" in first


def test_retired_model_reported_and_rung_skipped(emu, tmp_path, samples, capsys):
    emu.configure(retired_models=["pixtral-large-2411"])
    assert run(emu, samples / "report.pdf", out=tmp_path) == EXIT_DEGRADED
    err = capsys.readouterr().err
    assert "pixtral-large-2411" in err and "retired" in err and "Mistral Medium 3.5" in err
    assert {r.route for r in read_results(str(tmp_path))} == {"text-fallback"}


def test_no_rung_can_serve_stops_the_run(emu, tmp_path, samples, capsys):
    emu.configure(retired_models=["pixtral-large-2411", "mistral-large-2411"])
    code = run(emu, samples / "report.pdf", out=tmp_path, extra=["--task", "ask", "--question", "Q?"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no model of this job can be used" in err and "--vision-model" in err
    assert chats(emu) == []


def test_missing_key_is_a_usage_error(tmp_path, samples, monkeypatch, capsys):
    monkeypatch.delenv("MISTRAL_API_KEY")
    assert main(["run", str(samples / "report.pdf"), "--out", str(tmp_path), "--profile", "mistral"]) == EXIT_USAGE
    assert "MISTRAL_API_KEY" in capsys.readouterr().err


def test_estimate_counts_exact_tokens_and_sends_nothing(emu, tmp_path, samples, capsys):
    from pixtract import prompts, tokens
    from pixtract.config import RunConfig
    from pixtract.discover import identify
    from pixtract.messages import ImagePart
    from pixtract.render import render_page

    assert main(["estimate", str(samples / "report.pdf"), "--profile", "mistral", "--json"]) == EXIT_OK
    est = json.loads(capsys.readouterr().out)
    cfg = RunConfig(inputs=["x"], out="x", profile="mistral")
    want = 0
    for n in (1, 2, 3):
        p = render_page(identify(str(samples / "report.pdf")), n, cfg.render)
        req = prompts.build_request(cfg, cfg.tasks[0], images=[ImagePart(p.image, p.mime, p.width, p.height)],
                                    text=p.text, model="pixtral-large-2411")
        want += tokens.estimate_prompt_tokens(req, "pixtral-large-2411")
    assert est["total"]["input_tokens"] == want
    assert est["total"]["cost_usd_min"] == pytest.approx(want * 2e-6)
    assert est["total"]["cost_usd_max"] == pytest.approx(want * 2e-6 + 3 * 4096 * 6e-6)
    assert emu.requests == []


def test_models_command(emu, capsys):
    emu.configure(retired_models=["pixtral-large-2411"])
    code = main(["models", "--profile", "mistral", "--base-url", emu.base_url("mistral")])
    out = capsys.readouterr().out
    assert code == EXIT_FAILURES and "mistral-large-2411" in out and "RETIRED pixtral-large-2411" in out
