"""The writer's page accounting: every record counted once, by task, status and route; tokens
and cost (cached answers cost nothing again); document status; the ledger fed as it writes."""

import json
import os
from collections import Counter

from pixtract.outputs import OutputWriter, read_results
from pixtract.records import Document, ErrorInfo, Record

DOC = Document("in/a.pdf", "/x/in/a.pdf", "ab" * 32, "pdf", 1234, "PDF")


def rec(page, status="ok", task="transcribe", route="vision", usage=(10, 5), cost=0.5, cached=False, **kw):
    """A record; what this run paid for it is its cost, unless it came from the cache."""
    return Record(document=DOC.path, sha256=DOC.sha256, page=page, task=task, route=route if status == "ok" else None,
                  status=status, answer="text" if status == "ok" else None,
                  usage={"input_tokens": usage[0], "output_tokens": usage[1]}, cost_usd=cost, cached=cached,
                  paid_usd=0.0 if cached else cost,
                  error=ErrorInfo("render_error", f"page {page}: boom") if status == "failed" else None, **kw)


def test_counts_tokens_cost_and_cache_hits(tmp_path):
    w = OutputWriter(str(tmp_path))
    w.ledger.plan("transcribe", 4)
    w.ledger.plan("ask", 1)
    w.add_document(DOC, 4, [rec(1), rec(2, route="text-fallback", usage=(7, 3), cost=0.25),
                            rec(3, cached=True, cost=9.0), rec(4, "failed", usage=(1, 0), cost=0.125),
                            rec(1, task="ask", question="Q?", status="skipped", usage=(0, 0), cost=0.0)])
    s = w.summary()
    assert s["records"] == 5 == w.records
    assert s["by_status"] == {"ok": 3, "failed": 1, "skipped": 1}
    assert s["ok_by_route"] == {"vision": 2, "text-fallback": 1}
    assert s["by_task"] == {"transcribe": {"ok": {"vision": 2, "text-fallback": 1}, "failed": 1, "skipped": 0,
                                           "total": 4},
                            "ask": {"ok": {}, "failed": 0, "skipped": 1, "total": 1}}
    assert s["usage"] == {"input_tokens": 28, "output_tokens": 13}  # what the outputs hold
    assert s["usage_paid"] == {"input_tokens": 18, "output_tokens": 8}  # the cached answer's were paid earlier
    assert s["cost_usd"] == 9.875  # what the answers in the outputs cost
    assert s["paid_usd"] == 0.875  # what this run paid: the cached answer was paid for by an earlier run
    assert s["cached"] == 1
    assert (s["failed"], s["failed_by_type"], s["skipped_by_reason"], s["not_answered"]) == (
        1, {"render_error": 1}, {"unknown": 1}, 2)
    assert s["outcome"] == "incomplete" and s["exit_code"] == 1
    assert s["ledger"]["balanced"] is True
    assert s["ledger"]["tasks"]["transcribe"]["ok"] == {"vision": 2, "text-fallback": 1}
    assert w.counts == Counter({("transcribe", "ok", "vision"): 2, ("transcribe", "ok", "text-fallback"): 1,
                                ("transcribe", "failed", "none"): 1, ("ask", "skipped", "none"): 1})


def test_an_empty_run_has_zero_usage_and_a_balanced_ledger(tmp_path):
    s = OutputWriter(str(tmp_path)).summary()
    zero = {"input_tokens": 0, "output_tokens": 0}
    assert s == {"records": 0, "by_status": {}, "ok_by_route": {}, "by_task": {}, "planned_route": None,
                 "degraded": 0, "degraded_by_route": {}, "failed": 0, "failed_by_type": {},
                 "skipped_by_reason": {}, "not_answered": 0, "blank": 0, "usage": zero, "usage_paid": zero,
                 "cost_usd": 0.0, "paid_usd": 0.0, "cached": 0, "interrupted": None,
                 "ledger": {"balanced": True, "duplicates": 0, "tasks": {}}, "outcome": "complete", "exit_code": 0,
                 "headline": "COMPLETE: all 0 records answered on the planned route"}


def test_cost_is_rounded_to_micro_dollars(tmp_path):
    w = OutputWriter(str(tmp_path))
    w.add_document(DOC, 2, [rec(1, cost=0.1234564), rec(2, cost=0.0000002)])
    assert w.summary()["cost_usd"] == 0.123457 == w.summary()["paid_usd"]


def test_document_status_ok_partial_failed(tmp_path):
    w = OutputWriter(str(tmp_path))
    other = Document("in/b.pdf", "/x/in/b.pdf", "cd" * 32, "pdf", 9, "PDF")
    third = Document("in/c.png", "/x/in/c.png", "ef" * 32, "image", 7, "PNG")
    w.add_document(DOC, 2, [rec(1), rec(2)])
    w.add_document(other, 2, [rec(1, "failed"), rec(2)])
    w.add_document(third, 1, [rec(1, "failed")])
    assert [d["status"] for d in w.documents] == ["ok", "partial", "failed"]
    assert w.documents[0] == {"path": "in/a.pdf", "sha256": DOC.sha256, "kind": "pdf", "format": "PDF",
                              "bytes": 1234, "pages": 2, "markdown": "a.md", "layout": "a.json", "status": "ok"}
    assert [d["markdown"] for d in w.documents] == ["a.md", "b.md", "c.md"]
    assert (tmp_path / "a.md").read_text().startswith("<!-- page 1 -->")  # content only: no path heading
    assert json.loads((tmp_path / "a.json").read_text())["document"] == "in/a.pdf"


def test_a_failed_document_is_counted_without_markdown(tmp_path):
    w = OutputWriter(str(tmp_path))
    w.ledger.plan("transcribe", 1)
    w.ledger.plan("ask", 1)
    failed = [rec(None, "failed"), rec(None, "failed", task="ask", question="Q?")]
    w.add_failure(failed, kind="pdf")
    assert w.documents == [{"path": "in/a.pdf", "sha256": DOC.sha256, "kind": "pdf", "pages": None,
                            "status": "failed", "markdown": None, "error": "page None: boom"}]
    s = w.summary()
    assert s["by_status"] == {"failed": 2} and s["records"] == 2 and s["ledger"]["balanced"] is True
    assert list(tmp_path.glob("*.md")) == []
    w.add_failure([Record(document="z", sha256=None, page=None, task="transcribe", route=None, status="failed")])
    assert w.documents[-1]["error"] is None and w.documents[-1]["kind"] is None


def test_records_are_written_once_each_in_page_order(tmp_path):
    w = OutputWriter(str(tmp_path))
    w.add_document(DOC, 3, [rec(3), rec(1), rec(2, task="ask", question="b"), rec(2, task="ask", question="a"),
                            rec(2)])
    w.finish({"m": 1})
    got = [(r.page, r.task, r.question) for r in read_results(str(tmp_path))]
    assert got == [(1, "transcribe", None), (2, "ask", "a"), (2, "ask", "b"), (2, "transcribe", None),
                   (3, "transcribe", None)]
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"m": 1}


def test_chart_tables_are_written_and_linked(tmp_path):
    w = OutputWriter(str(tmp_path))
    rows = [["year", "n"], ["2024", "3"]]
    w.add_document(DOC, 1, [rec(1, task="chart", region=2, data={"rows": rows}),
                            rec(1, task="chart", region=1, status="failed", data={"rows": rows}),
                            rec(2, task="chart", data={"rows": []})])
    w.finish({})
    recs = {r.region: r for r in read_results(str(tmp_path))}
    assert recs[2].data == {"rows": rows, "csv": "charts/a-p1-c2.csv"}
    assert (tmp_path / "charts" / "a-p1-c2.csv").read_text() == "year,n\n2024,3\n"
    assert "csv" not in recs[1].data and recs[None].data == {"rows": []}
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == ["a-p1-c2.csv"]


def test_the_spool_is_where_a_live_report_reads_it_and_a_rerun_can_reopen_the_folder(tmp_path):
    from pixtract.report import _results_path

    w = OutputWriter(str(tmp_path))
    w.add_document(DOC, 1, [rec(1)])
    assert sorted(os.listdir(tmp_path)) == [".pixtract", "a.json", "a.md"]
    assert _results_path(str(tmp_path)) == w.spool_path
    assert os.path.dirname(w.spool_path) == str(tmp_path / ".pixtract")
    w.abort()
    again = OutputWriter(str(tmp_path))  # the rerun of a killed run: .pixtract/ is already there
    again.abort()


def test_non_ascii_stays_readable_in_results_and_manifest(tmp_path):
    w = OutputWriter(str(tmp_path))
    r = rec(1)
    r.answer = "Größe 42 €"
    w.add_document(DOC, 1, [r])
    assert "Größe 42 €" in open(w.spool_path, encoding="utf-8").read()
    w.finish({"title": "Größe", "n": [1]})
    assert (tmp_path / "results.jsonl").read_text(encoding="utf-8").count("Größe 42 €") == 1
    assert (tmp_path / "manifest.json").read_text(encoding="utf-8") == '{\n  "title": "Größe",\n  "n": [\n    1\n  ]\n}\n'


def test_the_layout_json_and_the_annotated_markdown_stay_readable_and_name_the_page_count(tmp_path):
    w = OutputWriter(str(tmp_path), annotated=True)
    doc = Document("in/Größe.pdf", "/x/in/Größe.pdf", "cd" * 32, "pdf", 1234, "PDF")
    r = rec(1)
    r.document, r.sha256, r.answer = doc.path, doc.sha256, "Größe 42 €"
    w.add_document(doc, 4, [r])
    layout = (tmp_path / "Größe.json").read_text(encoding="utf-8")
    assert '"in/Größe.pdf"' in layout  # readable as printed, not \u-escaped
    annotated = next(tmp_path.glob("*.annotated.md")).read_text(encoding="utf-8")
    assert "page 1 of 4" in annotated and "Größe 42 €" in annotated


def test_records_without_usage_count_as_zero_tokens(tmp_path):
    w = OutputWriter(str(tmp_path))
    r = rec(1)
    r.usage = {}
    w.add_document(DOC, 2, [r, rec(2, usage=(4, 2))])
    assert w.summary()["usage"] == {"input_tokens": 4, "output_tokens": 2}
    assert w.summary()["usage_paid"] == {"input_tokens": 4, "output_tokens": 2}


def test_blank_pages_degraded_answers_and_reasons_are_each_counted(tmp_path):
    """What the headline and exit status are made of: blank pages, answers off the planned route
    (by the route that gave them), failures by type and skips by reason, each record once."""
    w = OutputWriter(str(tmp_path))
    no_error = rec(7, "failed")
    no_error.error = None
    skipped = [rec(n, "skipped", usage=(0, 0), cost=0.0) for n in (8, 9)]
    for r in skipped:
        r.error = ErrorInfo("budget_exceeded", "over budget")
    unexplained = rec(10, "skipped", usage=(0, 0), cost=0.0)
    w.add_document(DOC, 10, [
        rec(1, planned_route=None), rec(2, planned_route="vision", blank=True), rec(3, blank=True, planned_route="text"),
        rec(4, route="text-fallback", degraded=True), rec(5, route="text-fallback", degraded=True),
        rec(6, "failed", degraded=True), no_error, *skipped, unexplained])
    w.add_document(DOC, 1, [rec(11, route=None, degraded=True), rec(12, "failed")])
    s = w.summary()
    assert s["blank"] == 2
    assert s["planned_route"] == "vision"  # the first record that says it
    assert (s["degraded"], s["degraded_by_route"]) == (3, {"text-fallback": 2, "none": 1})
    assert (s["failed"], s["failed_by_type"]) == (3, {"render_error": 2, "unknown": 1})
    assert s["skipped_by_reason"] == {"budget_exceeded": 2, "unknown": 1}
    assert s["outcome"] == "incomplete"


def test_routes_add_up_across_tasks_and_failures_across_routes(tmp_path):
    w = OutputWriter(str(tmp_path))
    odd = rec(3, "failed")
    odd.route = "vision"  # a failed record that names the rung it failed on still counts as failed
    w.add_document(DOC, 3, [rec(1), rec(1, task="ask", question="Q"), rec(2, "failed"), odd])
    s = w.summary()
    assert s["ok_by_route"] == {"vision": 2}
    assert s["by_task"]["transcribe"] == {"ok": {"vision": 1}, "failed": 2, "skipped": 0, "total": 3}


def test_a_chart_without_region_gets_table_one_and_other_tasks_never_write_tables(tmp_path):
    w = OutputWriter(str(tmp_path))
    rows = [["a", "b"], ["1", "2"]]
    w.add_document(DOC, 2, [rec(1, task="chart", data={"rows": rows}),
                            rec(2, task="extract", data={"rows": rows}, schema="s")])
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == ["a-p1-c1.csv"]
    w.finish({})
    extract = [r for r in read_results(str(tmp_path)) if r.task == "extract"][0]
    assert extract.data == {"rows": rows}


def test_records_are_sorted_document_level_first_then_question_then_region(tmp_path):
    w = OutputWriter(str(tmp_path))
    w.add_document(DOC, 1, [rec(1, task="ask", question="A"), rec(1, task="ask", question=None),
                            rec(None, task="transcribe"), rec(1, task="chart", region=1),
                            rec(1, task="chart", region=None)])
    w.finish({})
    got = [(r.page, r.task, r.question, r.region) for r in read_results(str(tmp_path))]
    assert got == [(None, "transcribe", None, None), (1, "ask", None, None), (1, "ask", "A", None),
                   (1, "chart", None, None), (1, "chart", None, 1)]


def test_same_stem_and_same_bytes_under_two_paths_get_their_own_markdown(tmp_path):
    w = OutputWriter(str(tmp_path))
    twin = Document("other/a.pdf", "/x/other/a.pdf", DOC.sha256, "pdf", 1234, "PDF")
    namesake = Document("third/a.pdf", "/x/third/a.pdf", "cd" * 32, "pdf", 9, "PDF")
    w.add_document(DOC, 2, [rec(1)])
    w.add_document(twin, 2, [rec(1)])
    w.add_document(namesake, 2, [rec(1)])
    assert [d["markdown"] for d in w.documents] == ["a.md", "a-abababab.md", "a-cdcdcdcd.md"]
    assert (tmp_path / "a.md").read_text().startswith("<!-- page 1 -->\n")
    assert [d["layout"] for d in w.documents] == ["a.json", "a-abababab.json", "a-cdcdcdcd.json"]


def test_pages_billed_by_a_per_page_api_are_counted_like_tokens(tmp_path):
    """The OCR route bills pages, not tokens: the summary adds them up, and a cached answer's
    pages were paid by the run that asked."""
    w = OutputWriter(str(tmp_path))
    w.ledger.plan("transcribe", 3)
    ocr = [rec(1, route="ocr", usage=(0, 0)), rec(2, route="ocr", usage=(0, 0)),
           rec(3, route="ocr", usage=(0, 0), cached=True)]
    for r in ocr:
        r.usage["pages"] = 1
    w.add_document(DOC, 3, ocr)
    s = w.summary()
    assert s["usage"]["pages"] == 3 and s["usage_paid"]["pages"] == 2
