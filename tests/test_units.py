"""The unit of work (pipeline/units.py): what a document owes, counted and settled in one place."""

from __future__ import annotations

from pixtract.config import RunConfig, TaskSpec
from pixtract.ledger import Ledger, unit_key
from pixtract.records import STATUS_FAILED, STATUS_SKIPPED, ErrorInfo
from pixtract.units import Unit, count_units, units_of

SCHEMA = {"title": "Invoice", "type": "object"}


def _cfg() -> RunConfig:
    return RunConfig(inputs=["x"], out="o", tasks=[
        TaskSpec("transcribe"), TaskSpec("ask", questions=["who?", "when?"]),
        TaskSpec("extract", schema=SCHEMA, scope="document")])


def test_a_readable_document_owes_each_page_each_page_task_and_itself_each_document_task():
    units = list(units_of(_cfg(), "a.pdf", "s", range(1, 4)))
    assert [(u.page, u.task.kind, u.question) for u in units] == (
        [(n, "transcribe", None) for n in (1, 2, 3)]
        + [(n, "ask", "who?") for n in (1, 2, 3)] + [(n, "ask", "when?") for n in (1, 2, 3)]
        + [(None, "extract", None)])
    assert count_units(_cfg(), 3) == {"transcribe": 3, "ask": 6, "extract": 1}
    assert count_units(_cfg(), 3, document_units=False) == {"transcribe": 3, "ask": 6}
    assert count_units(_cfg(), 0) == {"extract": 1}


def test_an_unreadable_document_owes_one_unit_per_task_and_question():
    units = list(units_of(_cfg(), "bad.pdf", None, None))
    assert [(u.page, u.task.kind, u.question) for u in units] == [
        (None, "transcribe", None), (None, "ask", "who?"), (None, "ask", "when?"), (None, "extract", None)]
    assert count_units(_cfg(), None) == {"transcribe": 1, "ask": 2, "extract": 1}


def test_a_units_records_carry_its_identity_scope_and_schema_and_balance_the_ledger():
    cfg = _cfg()
    units = list(units_of(cfg, "a.pdf", "s", [1, 2]))
    err = ErrorInfo("budget_exceeded", "budget reached")
    records = [u.skipped(err) if u.task.kind == "ask" else u.failed(ValueError("boom")) for u in units]
    assert [unit_key(r) for r in records] == [u.key for u in units]
    doc = records[-1]
    assert (doc.scope, doc.schema, doc.status, doc.error.type, doc.route) == (
        "document", "Invoice", STATUS_FAILED, "ValueError", None)
    assert records[2].status == STATUS_SKIPPED and records[2].error is err and records[2].question == "who?"
    ledger = Ledger()
    for kind, n in count_units(cfg, 2).items():
        ledger.plan(kind, n)
    ledger.add(records)
    assert ledger.check()["balanced"] and ledger.duplicates == 0


def test_record_fields_override_the_units_defaults():
    u = Unit("a.pdf", "s", 4, TaskSpec("transcribe"))
    r = u.record(status="ok", route="vision", answer="text", scope="page")
    assert (r.document, r.sha256, r.page, r.task, r.route, r.answer, r.schema) == (
        "a.pdf", "s", 4, "transcribe", "vision", "text", None)
