"""`pixtract estimate` against what a run is billed: the same inputs go through `estimate`, then
through a real run against the emulator, which bills each request's prompt tokens with
mistral_common. Every request known in advance must be counted exactly; the merge request of a
document-scope ask over more than 8 pages (its text is the chunk answers) at an upper bound."""

import json

import pymupdf
import pytest

from pixtract.flows.cli import EXIT_OK, main
from pixtract.outputs import read_results
from tests.emulator.helpers import FAKE_KEY

pytestmark = pytest.mark.prefect

TEXT_MODEL = "mistral-large-2411"


@pytest.fixture(autouse=True)
def fresh(emu, monkeypatch):
    emu.reset()
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory):
    """11 pages with text and one blank page among them: two chunks (8 + 3) of pages to show."""
    pdf = pymupdf.open()
    for i in range(12):
        page = pdf.new_page()
        if i != 5:
            page.insert_text((72, 72), f"Section {i + 1}: revenue was {100 + i} million euros.")
    path = tmp_path_factory.mktemp("long") / "long.pdf"
    pdf.save(path)
    return path


def estimate_then_run(emu, tmp_path, capsys, *args):
    """The estimate (which must send nothing), then the run: (estimate, billed requests, records)."""
    common = [*map(str, args), "--profile", "mistral", "--base-url", emu.base_url("mistral")]
    assert main(["estimate", *common, "--json"]) == EXIT_OK
    est = json.loads(capsys.readouterr().out)
    assert [r for r in emu.requests if "/chat/" in r.get("path", "")] == []
    assert main(["run", *common, "--out", str(tmp_path / "out"), "--no-progress", "--no-cache"]) == EXIT_OK
    billed = [r for r in emu.requests if r.get("path", "").endswith("/chat/completions") and r["status"] == 200]
    capsys.readouterr()  # the run's summary
    recs = read_results(str(tmp_path / "out"))
    assert all(r.route in ("vision", None) for r in recs), "a fallback rung answered: the run sent unplanned requests"
    return est, billed, recs


def assert_exact(est, billed):
    assert est["total"]["requests"] == len(billed)
    assert est["total"]["input_tokens"] == sum(r["prompt_tokens"] for r in billed)
    assert est["total"]["merge_requests"] == 0
    assert sum(d.get("input_tokens", 0) for d in est["documents"]) == est["total"]["input_tokens"]


def test_transcribe_estimate_is_what_the_run_is_billed(emu, tmp_path, capsys, samples, real, long_pdf):
    # a born-digital report, a scan, an image, a multi-frame TIFF, a sideways receipt (sent
    # upright) and a document with a blank page (not sent)
    est, billed, recs = estimate_then_run(emu, tmp_path, capsys, samples / "report.pdf", samples / "scanned.pdf",
                                          samples / "chart.png", samples / "multi.tiff", real / "zerox_0019.png",
                                          long_pdf)
    assert_exact(est, billed)
    assert len(billed) == 3 + 1 + 1 + 2 + 1 + 11 and sum(1 for r in recs if r.blank) == 1


def test_ask_per_page_estimate_is_what_the_run_is_billed(emu, tmp_path, capsys, samples):
    est, billed, recs = estimate_then_run(emu, tmp_path, capsys, samples / "report.pdf", "--task", "ask",
                                          "--question", "What is the title?", "--question", "Who wrote it?")
    assert_exact(est, billed)
    assert len(billed) == 6 and {r.status for r in recs} == {"ok"}


def test_ask_per_document_over_8_pages_counts_the_merge_at_its_upper_bound(emu, tmp_path, capsys, samples,
                                                                          long_pdf):
    est, billed, recs = estimate_then_run(emu, tmp_path, capsys, long_pdf, samples / "report.pdf", "--task", "ask",
                                          "--scope", "document", "--question", "What was revenue in section 12?")
    # long.pdf: chunks of 8 and 3 pages, then the merge (to the text model); report.pdf: one request
    merges = [r for r in billed if r["model"] == TEXT_MODEL]
    chunks = [r for r in billed if r["model"] != TEXT_MODEL]
    assert len(merges) == 1 and len(chunks) == 3 and {r.status for r in recs} == {"ok"}
    t = est["total"]
    assert t["requests"] == len(billed) and t["merge_requests"] == 1
    assert t["input_tokens"] - t["merge_input_tokens_max"] == sum(r["prompt_tokens"] for r in chunks)
    assert merges[0]["prompt_tokens"] <= t["merge_input_tokens_max"]
    # the bound is the merge prompt with each of the 2 chunk answers at max_tokens (1024), no looser
    assert t["merge_input_tokens_max"] - merges[0]["prompt_tokens"] <= 2 * (1024 + 2)
    [long_est] = [d for d in est["documents"] if d["document"].endswith("long.pdf")]
    assert long_est["requests"] == 3 and long_est["merge_requests"] == 1


def test_extract_estimate_is_what_the_run_is_billed(emu, tmp_path, capsys, samples, long_pdf):
    schema = tmp_path / "report.schema.json"
    schema.write_text(json.dumps({"title": "Report", "type": "object", "required": ["title"],
                                  "properties": {"title": {"type": "string"}, "total": {"type": "string"}}}))
    est, billed, recs = estimate_then_run(emu, tmp_path, capsys, samples / "report.pdf", "--task", "extract",
                                          "--schema", schema)
    assert_exact(est, billed)
    assert len(billed) == 3 and all(r["body"]["response_format"]["type"] == "json_schema" for r in billed)
    # per document over 8 pages: the chunks' objects are merged in code, so no merge request
    emu.reset()
    est, billed, recs = estimate_then_run(emu, tmp_path / "doc", capsys, long_pdf, "--task", "extract",
                                          "--schema", schema, "--scope", "document")
    assert_exact(est, billed)
    assert len(billed) == 2 and [r.status for r in recs] == ["ok"]


def test_chart_estimate_counts_the_crops_and_skips_pages_without_a_chart(emu, tmp_path, capsys, samples):
    est, billed, recs = estimate_then_run(emu, tmp_path, capsys, samples / "chart_page.pdf", samples / "chart.png",
                                          samples / "report.pdf", "--task", "chart")
    assert_exact(est, billed)
    assert len(billed) == 2  # one vector chart (as its crop) and one chart image; report.pdf has none
    assert sorted(r.status for r in recs) == ["ok", "ok", "skipped", "skipped", "skipped"]
    [report] = [d for d in est["documents"] if d["document"].endswith("report.pdf")]
    assert report["requests"] == 0 and report["input_tokens"] == 0


def test_estimate_holds_at_most_one_chunk_of_a_document_s_pages(tmp_path, monkeypatch, capsys):
    import gc
    import weakref

    from pixtract import estimate as est_mod

    pdf = pymupdf.open()
    for i in range(30):
        pdf.new_page().insert_text((72, 72), f"Page {i + 1} of a long report.")
    path = tmp_path / "thirty.pdf"
    pdf.save(path)
    alive, most = [], [0]
    render = est_mod.render_page

    def counted(*a, **kw):
        gc.collect()
        alive[:] = [r for r in alive if r() is not None]
        most[0] = max(most[0], len(alive))
        page = render(*a, **kw)
        alive.append(weakref.ref(page))
        return page

    monkeypatch.setattr(est_mod, "render_page", counted)
    assert main(["estimate", str(path), "--profile", "mistral", "--task", "ask", "--scope", "document",
                 "--question", "What is it about?", "--json"]) == EXIT_OK
    est = json.loads(capsys.readouterr().out)
    assert est["total"]["requests"] == 4 + 1 and est["total"]["merge_requests"] == 1  # 8+8+8+6 pages, a merge
    assert most[0] <= 8  # a chunk of pages waits for its request, never the whole document (30)
