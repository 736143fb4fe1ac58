"""Honest outcomes (issue 12): through the CLI against the emulator, a run that did not give the
user what they asked for never looks like success, and says why."""

import io
import json
import os
import re

import pytest
from PIL import Image

from pixtract.flows.cli import EXIT_DEGRADED, EXIT_FAILURES, EXIT_OK, EXIT_USAGE, main
from pixtract.outputs import read_results
from tests.emulator.helpers import FAKE_KEY

pytestmark = pytest.mark.prefect


@pytest.fixture(autouse=True)
def fresh(emu, monkeypatch):
    emu.reset()
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def chats(emu):
    return [r for r in emu.requests if r.get("path", "").endswith("/chat/completions")]


def run(emu, *args, out, profile="mistral", extra=()):
    return main(["run", *map(str, args), "--out", str(out), "--no-progress", "--profile", profile,
                 "--base-url", emu.base_url(profile), *map(str, extra)])


def manifest(out):
    return json.loads((out / "manifest.json").read_text())


def first_line(capsys) -> str:
    return capsys.readouterr().out.splitlines()[0]


# --- preflight ------------------------------------------------------------------------------


def test_a_refused_key_stops_the_run_before_any_page(emu, tmp_path, samples, monkeypatch, capsys):
    emu.configure(api_keys=["the-right-key"])
    out = tmp_path / "out"
    assert run(emu, samples / "report.pdf", out=out) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "the key was refused by" in err and "(401" in err and "MISTRAL_API_KEY" in err
    assert FAKE_KEY not in err
    assert chats(emu) == [] and not out.exists()


def test_an_unreachable_endpoint_stops_the_run_before_any_page(tmp_path, samples, capsys):
    out = tmp_path / "out"
    code = main(["run", str(samples / "report.pdf"), "--out", str(out), "--no-progress", "--profile", "mistral",
                 "--base-url", "http://127.0.0.1:9/v1", "--max-retries", "0"])
    assert code == EXIT_USAGE
    assert "cannot reach http://127.0.0.1:9/v1" in capsys.readouterr().err
    assert not out.exists()


def test_a_chosen_model_the_endpoint_does_not_list_stops_the_run(emu, tmp_path, samples, capsys):
    code = run(emu, samples / "report.pdf", out=tmp_path / "o", profile="openai", extra=["--vision-model", "llava:13b"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "llava:13b" in err and "local-vision" in err and "--vision-model" in err
    assert "Mistral Medium" not in err  # the replacement hint is for the retired Mistral IDs only
    assert chats(emu) == []


def test_retired_models_stop_cleanly_and_a_corrected_rerun_is_not_blocked(emu, tmp_path, samples, capsys):
    emu.configure(retired_models=["pixtral-large-2411", "mistral-large-2411"],
                  models={"mistral": ["pixtral-large-2411", "mistral-large-2411", "mistral-medium-3.5"]})
    out = tmp_path / "out"
    assert run(emu, samples / "report.pdf", out=out) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "retired" in err and "Mistral Medium 3.5" in err and "Traceback" not in err
    assert chats(emu) == []
    # The same --out, now with a current vision model: the retired text model only leaves its rung.
    assert run(emu, samples / "report.pdf", out=out, extra=["--vision-model", "mistral-medium-3.5"]) == EXIT_OK
    assert "text-fallback: model mistral-large-2411 is retired" in capsys.readouterr().err
    assert {r.route for r in read_results(str(out))} == {"vision"}


def test_a_retired_default_vision_model_leaves_every_page_degraded(emu, tmp_path, samples, capsys):
    emu.configure(retired_models=["pixtral-large-2411"])
    assert run(emu, samples / "report.pdf", out=tmp_path) == EXIT_DEGRADED
    recs = read_results(str(tmp_path))
    assert {(r.route, r.degraded, r.planned_route) for r in recs} == {("text-fallback", True, "vision")}
    assert first_line(capsys).startswith("pixtract: DEGRADED: all 3 records answered")


# --- ranks, cache and cost ------------------------------------------------------------------


def test_degraded_answers_are_retried_on_the_planned_route_and_only_they_are_paid(emu, tmp_path, samples, capsys):
    emu.inject("500", count=1, model="pixtral-large-2411")
    out = tmp_path / "out"
    first = run(emu, samples / "report.pdf", out=out, extra=["--max-retries", "0"])
    assert first == EXIT_DEGRADED
    recs = read_results(str(out))
    degraded = [r for r in recs if r.degraded]
    assert len(degraded) == 1 and degraded[0].route == "text-fallback" and "vision" in degraded[0].fallback_reason
    m = manifest(out)
    assert m["outcome"] == "degraded" and m["counts"]["degraded"] == 1
    assert first_line(capsys).startswith("pixtract: DEGRADED")
    first_cost = sum(r.cost_usd for r in recs)

    emu.clear_requests()
    assert run(emu, samples / "report.pdf", out=out) == EXIT_OK
    sent = chats(emu)
    assert len(sent) == 1 and sent[0]["model"] == "pixtral-large-2411"  # the degraded page only
    recs2 = read_results(str(out))
    assert all(r.route == "vision" and not r.degraded for r in recs2)
    assert sum(r.cached for r in recs2) == 2
    m2 = manifest(out)
    paid = [r.paid_usd for r in recs2 if not r.cached]
    assert len(paid) == 1 and paid[0] > 0
    assert m2["counts"]["paid_usd"] == pytest.approx(sum(r.paid_usd for r in recs2), abs=1e-6)
    assert m2["counts"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in recs2), abs=1e-6)
    assert m2["counts"]["paid_usd"] < m2["counts"]["cost_usd"] < first_cost + m2["counts"]["paid_usd"] + 1e-9


def test_a_degraded_answer_stays_when_the_planned_route_fails_again(emu, tmp_path, samples):
    emu.inject("500", count=1, model="pixtral-large-2411")
    out = tmp_path / "out"
    assert run(emu, samples / "report.pdf", out=out, extra=["--max-retries", "0"]) == EXIT_DEGRADED
    emu.clear_requests()
    emu.inject("500", count=1, model="pixtral-large-2411")
    assert run(emu, samples / "report.pdf", out=out, extra=["--max-retries", "0"]) == EXIT_DEGRADED
    assert [r["model"] for r in chats(emu)] == ["pixtral-large-2411"]  # not the text model again
    [kept] = [r for r in read_results(str(out)) if r.degraded]
    assert kept.cached and kept.route == "text-fallback" and kept.paid_usd == 0


def test_accept_degraded_keeps_fallback_answers_final(emu, tmp_path, samples):
    emu.inject("500", count=1, model="pixtral-large-2411")
    out = tmp_path / "out"
    assert run(emu, samples / "report.pdf", out=out, extra=["--max-retries", "0"]) == EXIT_DEGRADED
    emu.clear_requests()
    assert run(emu, samples / "report.pdf", out=out, extra=["--accept-degraded"]) == EXIT_DEGRADED
    assert chats(emu) == []


def test_a_fully_cached_rerun_says_what_it_paid_and_what_the_outputs_cost(emu, tmp_path, samples, capsys):
    out = tmp_path / "out"
    assert run(emu, samples / "report.pdf", out=out) == EXIT_OK
    capsys.readouterr()
    assert run(emu, samples / "report.pdf", out=out) == EXIT_OK
    text = capsys.readouterr().out
    m = manifest(out)
    recs = read_results(str(out))
    assert m["counts"]["paid_usd"] == 0 and m["counts"]["usage_paid"]["input_tokens"] == 0
    assert m["counts"]["cost_usd"] > 0
    assert m["counts"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in recs), abs=1e-6)
    assert m["counts"]["usage"]["input_tokens"] == sum(r.usage["input_tokens"] for r in recs) > 0
    assert "this run paid $0.0000" in text and f"${m['counts']['cost_usd']:.4f} in all" in text


# --- prices and budget ----------------------------------------------------------------------


def test_a_budget_over_a_model_without_a_price_is_refused_before_anything_is_sent(emu, tmp_path, samples, capsys):
    args = ["--vision-model", "local-vision", "--budget-usd", "0.000001"]
    assert run(emu, samples / "report.pdf", out=tmp_path / "o", profile="openai", extra=args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no price for model local-vision" in err and "--price" in err and "[prices]" in err
    assert emu.requests == []
    # With a price it runs, and the budget holds.
    code = run(emu, samples / "report.pdf", out=tmp_path / "o", profile="openai",
               extra=args[:2] + ["--budget-usd", "1", "--price", "local-vision=2,6"])
    assert code == EXIT_OK
    assert sum(r.cost_usd for r in read_results(str(tmp_path / "o"))) > 0


def test_an_estimate_over_a_model_without_a_price_is_refused(emu, capsys, samples):
    code = main(["estimate", str(samples / "report.pdf"), "--profile", "openai", "--base-url",
                 emu.base_url("openai"), "--vision-model", "vis"])
    assert code == EXIT_USAGE and "no price for model vis" in capsys.readouterr().err


def test_a_budget_that_stops_pages_is_not_success(emu, tmp_path, samples, capsys):
    assert run(emu, samples / "report.pdf", out=tmp_path, extra=["--budget-usd", "0.001"]) == EXIT_FAILURES
    line = first_line(capsys)
    assert line.startswith("pixtract: INCOMPLETE") and "budget reached: 3" in line
    recs = read_results(str(tmp_path))
    assert {r.status for r in recs} == {"skipped"} and {r.error.type for r in recs} == {"budget_exceeded"}
    assert chats(emu) == []


# --- inputs and usage -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["empty folder", "glob", "text files", "missing"])
def test_no_documents_is_a_usage_error_and_creates_nothing(tmp_path, capsys, kind):
    src = tmp_path / "in"
    src.mkdir()
    if kind == "text files":
        (src / "a.txt").write_text("hello")
    target = {"empty folder": str(src), "glob": str(src / "*.pdf"), "text files": str(src),
              "missing": str(tmp_path / "reprot.pdf")}[kind]
    out = tmp_path / "out"
    assert main(["run", target, "--out", str(out), "--no-progress"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert ("no such file or folder" if kind == "missing" else "no documents found in") in err
    assert not out.exists()


def test_the_output_folder_is_never_an_input(tmp_path, samples):
    src = tmp_path / "in"
    src.mkdir()
    (src / "report.pdf").write_bytes((samples / "report.pdf").read_bytes())
    out = src / "out"
    for _ in range(2):
        assert main(["run", str(src), "--out", str(out), "--no-progress"]) == EXIT_OK
        recs = read_results(str(out))
        assert len(recs) == 3 and {r.document for r in recs} == {str(src / "report.pdf")}


def test_every_task_given_runs(emu, tmp_path, samples):
    code = run(emu, samples / "report.pdf", out=tmp_path,
               extra=["--task", "transcribe", "--task", "ask", "--question", "Who?"])
    assert code == EXIT_OK
    assert sorted({r.task for r in read_results(str(tmp_path))}) == ["ask", "transcribe"]
    assert main(["run", str(samples / "report.pdf"), "--out", str(tmp_path / "x"), "--task", "ask",
                 "--task", "chart", "--prompt", "p", "--profile", "mistral"]) == EXIT_USAGE


def test_literal_braces_in_a_prompt_work_and_unknown_placeholders_are_refused(emu, tmp_path, samples, capsys):
    prompt = 'Output JSON like {"title": "..."} for: {question}'
    code = run(emu, samples / "chart.png", out=tmp_path, extra=["--task", "ask", "--question", "What?",
                                                               "--prompt", prompt])
    assert code == EXIT_OK
    [sent] = chats(emu)
    texts = [p.get("text", "") for m in sent["body"]["messages"] if isinstance(m["content"], list)
             for p in m["content"]]
    assert any(t.startswith('Output JSON like {"title": "..."} for: What?') for t in texts)
    code = run(emu, samples / "chart.png", out=tmp_path / "b", extra=["--task", "ask", "--question", "What?",
                                                                     "--prompt", "Say {qestion}"])
    assert code == EXIT_USAGE and "{qestion}" in capsys.readouterr().err


@pytest.mark.parametrize("args, env, needle", [
    (["--concurrency", "0"], {}, "--concurrency"),
    ([], {"PIXTRACT_MAX_EDGE": "abc"}, "PIXTRACT_MAX_EDGE"),
    ([], {"PIXTRACT_CONCURRENCY": "0"}, "PIXTRACT_CONCURRENCY"),
    (["--budget-usd", "-1"], {}, "--budget-usd"),
])
def test_bad_values_are_usage_errors_naming_their_source(tmp_path, samples, capsys, monkeypatch, args, env, needle):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    try:
        code = main(["run", str(samples / "report.pdf"), "--out", str(tmp_path / "o"), *args])
    except SystemExit as e:  # argparse's own usage error
        code = e.code
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert needle in err and "invalid literal" not in err
    assert not (tmp_path / "o").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and re.fullmatch(r"pixtract \d+\.\d+\.\d+\n", capsys.readouterr().out)


# --- blank pages and loops ------------------------------------------------------------------


def _png(color, size=(600, 800), ink: tuple | None = None) -> bytes:
    img = Image.new("L", size, color)
    if ink:
        from PIL import ImageDraw

        ImageDraw.Draw(img).text(ink, "Total 1,234.56 EUR", fill=0)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_a_blank_page_is_ok_empty_says_why_and_is_not_sent(emu, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "blank.png").write_bytes(_png(255))
    (src / "grey.png").write_bytes(_png(200))
    (src / "ink.png").write_bytes(_png(255, ink=(40, 300)))
    assert run(emu, src, out=tmp_path / "out") == EXIT_OK
    recs = {os.path.basename(r.document): r for r in read_results(str(tmp_path / "out"))}
    for name in ("blank.png", "grey.png"):
        assert recs[name].status == "ok" and recs[name].blank and recs[name].answer == ""
    assert not recs["ink.png"].blank and recs["ink.png"].answer
    assert len(chats(emu)) == 1  # only the page with ink


def test_an_empty_local_answer_on_a_page_with_ink_is_not_ok(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    img = Image.new("L", (600, 800), 255)
    from PIL import ImageDraw

    ImageDraw.Draw(img).rectangle((100, 100, 500, 700), fill=0)  # ink, but no text
    img.save(src / "box.png")
    assert main(["run", str(src), "--out", str(tmp_path / "out"), "--no-progress"]) == EXIT_FAILURES
    [rec] = read_results(str(tmp_path / "out"))
    assert rec.status == "failed" and rec.error.type == "no_text_found" and "box.png" in rec.error.message


LOOP = "| 1,200 | 1,350 | 1,480 |\n" * 300


def test_a_looping_answer_is_asked_again_with_other_sampling(emu, tmp_path, samples):
    emu.script("pixtral-large-2411", {"content": LOOP, "finish_reason": "length"}, "# Page\n\nFine text.")
    assert run(emu, samples / "chart.png", out=tmp_path) == EXIT_OK
    sent = chats(emu)
    assert len(sent) == 2 and sent[1]["body"]["temperature"] != sent[0]["body"]["temperature"]
    [rec] = read_results(str(tmp_path))
    assert rec.route == "vision" and rec.answer == "# Page\n\nFine text."


def test_an_answer_that_loops_twice_falls_down_the_ladder(emu, tmp_path, samples):
    emu.script("pixtral-large-2411", LOOP, LOOP)
    assert run(emu, samples / "report.pdf", out=tmp_path, extra=["--concurrency", "1"]) == EXIT_DEGRADED
    recs = read_results(str(tmp_path))
    [bad] = [r for r in recs if r.degraded]
    assert bad.route == "text-fallback" and "degenerate_answer" in bad.fallback_reason


def test_a_run_stopped_before_any_answer_does_not_block_the_corrected_rerun(emu, tmp_path, samples):
    out = tmp_path / "out"
    (out / ".pixtract").mkdir(parents=True)
    (out / ".pixtract" / "fingerprint").write_text("another-job")  # what a stopped run leaves
    assert run(emu, samples / "report.pdf", out=out) == EXIT_OK
    (out / ".pixtract" / "fingerprint").write_text("another-job")  # now with answers: it blocks
    assert run(emu, samples / "chart.png", out=out) == EXIT_USAGE


def test_the_prefect_flow_run_says_the_outcome(emu, tmp_path, samples):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    emu.inject("500", count=1, model="pixtral-large-2411")
    assert run(emu, samples / "report.pdf", out=tmp_path, extra=["--max-retries", "0"]) == EXIT_DEGRADED
    with get_client(sync_client=True) as client:
        [latest] = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
        arts = client.read_artifacts()
    assert latest.state.type.value == "COMPLETED" and latest.state.name == "Degraded"
    assert latest.state.message.startswith("DEGRADED: all 3 records answered")
    summary = [a for a in arts if a.key == "pixtract-summary" and a.flow_run_id == latest.id]
    assert summary and "DEGRADED" in summary[0].data
