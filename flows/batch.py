"""The batch flow: a Prefect task per document (plan, and document-scope answers) and per page
(render + answer every page-scope task).

Pages of all documents share one bounded window of in-flight tasks; documents are written in
input order as soon as all their records are in, so memory does not grow with the batch.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline import local, mupdf, tokens
from pipeline.config import RunConfig, TaskSpec
from pipeline.discover import DiscoveryFailure, discover
from pipeline.errors import InputError, OCRError, UsageError
from pipeline.ledger import format_ledger
from pipeline.manifest import build_manifest
from pipeline.outputs import OutputWriter
from pipeline.records import STATUS_FAILED, Document, ErrorInfo, Record
from pipeline.render import count_pages
from pipeline.report import build_report, write_thumbnail
from pipeline.route import DocumentPlan, Router, failed_record

from . import progress

PASSWORD_ENV = "PIXTRACT_PDF_PASSWORD"  # secrets reach the flow by environment, never as parameters


def _transient(task, task_run, state) -> bool:
    """Retry a page only for errors that may pass (an OCR time-out); model errors are handled
    by the client's retries and the fallback ladder."""
    try:
        state.result()
    except OCRError:
        return True
    except Exception:
        return False
    return False


@task(name="plan-document", cache_policy=NO_CACHE, task_run_name="plan {doc.path}")
def plan_document(doc: Document, cfg: RunConfig) -> DocumentPlan | InputError:
    """Count pages and find running headers; an unreadable document is a result, not a crash."""
    try:
        pages = count_pages(doc, cfg.password)
        transcribing = any(t.kind == "transcribe" for t in cfg.tasks)
        running = local.document_running_lines(doc, cfg.password) if transcribing else set()
    except InputError as e:
        return e
    return DocumentPlan(doc, pages, running)


@task(name="answer-page", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1,
      retry_condition_fn=_transient, task_run_name="page {number}")
def answer_page_task(router: Router, plan: DocumentPlan, number: int) -> list[Record]:
    return router.answer_page(plan, number)


@task(name="answer-document", cache_policy=NO_CACHE, task_run_name="{spec.kind} document")
def answer_document_task(router: Router, plan: DocumentPlan, spec: TaskSpec, question: str | None) -> Record:
    return router.answer_document(plan, spec, question)


@dataclass
class _Open:
    plan: DocumentPlan
    waiting: int
    records: list[Record] = field(default_factory=list)


def expected_units(cfg: RunConfig, pages: int | None) -> dict[str, int]:
    """Records a document must end with, per task (the ledger's "pages in")."""
    out: dict[str, int] = {}
    for t in cfg.tasks:
        n = len(t.units())
        out[t.kind] = out.get(t.kind, 0) + (n if (pages is None or t.scope == "document") else n * pages)
    return out


def document_failures(path: str, sha256: str | None, cfg: RunConfig, exc: BaseException) -> list[Record]:
    """One failed record per task unit for a document that could not be read at all."""
    err = ErrorInfo.from_exception(exc)
    return [Record(document=path, sha256=sha256, page=None, task=t.kind, question=q, route=None,
                   status=STATUS_FAILED, error=err, schema=t.schema_name, scope=t.scope)
            for t in cfg.tasks for q in t.units()]


@flow(name="extract-batch", log_prints=True)
def extract_batch(config: dict[str, Any]) -> dict[str, Any]:
    """Read every input, answer every page, write the output files; returns the run summary."""
    cfg = RunConfig.from_public(config, password=os.environ.get(PASSWORD_ENV)).validate()
    log = get_run_logger()
    started = dt.datetime.now(dt.timezone.utc)
    if cfg.prices:
        tokens.register_prices(cfg.prices)
    router = Router(cfg, on_render=lambda page: write_thumbnail(
        cfg.out, page.document.sha256, page.number, page.image))
    problems = router.check_models() if cfg.endpoint.remote else []
    for p in problems:
        log.warning("%s", p)
        progress.note(p)
    for t in cfg.tasks:
        if not router.serving(t):
            router.close()
            raise UsageError(f"no route can serve task {t.kind!r}: " + "; ".join(problems))
    writer = OutputWriter(cfg.out)
    window = max(2, cfg.concurrency * 2)
    pending: deque = deque()  # (open document, page number or None, future), in submission order
    open_docs: deque[_Open] = deque()  # documents in input order, waiting for their records

    def settle_oldest() -> None:
        od, number, fut = pending.popleft()
        result = fut.result(raise_on_failure=False)
        if isinstance(result, Record):
            recs = [result]
        elif isinstance(result, list):
            recs = result
        else:  # the task itself raised: one failed record per unit of this page
            recs = [failed_record(od.plan, number, t, result) for t in cfg.tasks if t.scope == "page"
                    for _ in t.units()]
        od.records.extend(recs)
        od.waiting -= 1
        for r in recs:
            progress.emit(r)
        flush_done()

    def flush_done() -> None:
        while open_docs and open_docs[0].waiting == 0:
            od = open_docs.popleft()
            writer.add_document(od.plan.document, od.plan.pages, od.records)
            mupdf.forget(od.plan.document)

    def submit(od: _Open, number: int | None, future) -> None:
        while len(pending) >= window:
            settle_oldest()
        pending.append((od, number, future))

    try:
        for item in discover(cfg.inputs):
            if isinstance(item, DiscoveryFailure):
                _fail_document(writer, document_failures(item.path, item.sha256, cfg, item.error), None, log, cfg)
                continue
            plan = plan_document(item, cfg, return_state=True).result(raise_on_failure=False)
            if not isinstance(plan, DocumentPlan):
                err = plan if isinstance(plan, InputError) else InputError(f"{item.path}: {plan!r}")
                _fail_document(writer, document_failures(item.path, item.sha256, cfg, err), item.kind, log, cfg)
                continue
            for task_kind, n in expected_units(cfg, plan.pages).items():
                writer.ledger.plan(task_kind, n)
            progress.document(plan.document.path, plan.pages)
            page_tasks = any(t.scope == "page" for t in cfg.tasks)
            doc_units = [(t, q) for t in cfg.tasks if t.scope == "document" for q in t.units()]
            od = _Open(plan, waiting=(plan.pages if page_tasks else 0) + len(doc_units))
            open_docs.append(od)
            for spec, question in doc_units:
                submit(od, None, answer_document_task.submit(router, plan, spec, question))
            if page_tasks:
                for number in range(1, plan.pages + 1):
                    submit(od, number, answer_page_task.submit(router, plan, number))
        while pending:
            settle_oldest()
        flush_done()
    except BaseException:
        writer.abort()
        router.close()
        raise
    router.close()
    summary = writer.summary()
    finished = dt.datetime.now(dt.timezone.utc)
    ledger = summary["ledger"]
    writer.finish(build_manifest(
        config=cfg.public(), documents=writer.documents, summary=summary, started=started, finished=finished,
        extra={"ledger": ledger, "model_problems": problems,
               "budget": {"limit_usd": cfg.budget_usd, "spent_usd": round(router.budget.spent, 6),
                          "refused_requests": router.budget.refused}}))
    build_report(cfg.out)
    log.info("%s", format_ledger(ledger))
    log.info("wrote %d records for %d inputs to %s", summary["records"], len(writer.documents), cfg.out)
    return summary


def _fail_document(writer: OutputWriter, recs: list[Record], kind: str | None, log, cfg: RunConfig) -> None:
    log.warning("%s", recs[0].error.message if recs[0].error else recs[0].document)
    for task_kind, n in expected_units(cfg, None).items():
        writer.ledger.plan(task_kind, n)
    writer.add_failure(recs, kind)
    for r in recs:
        progress.emit(r)


def run_batch(cfg: RunConfig) -> dict[str, Any]:
    """Run the flow in this process (Prefect's ephemeral API unless PREFECT_API_URL is set)."""
    cfg.validate()
    if cfg.password:
        os.environ[PASSWORD_ENV] = cfg.password
    runner = ThreadPoolTaskRunner(max_workers=cfg.concurrency)
    return extract_batch.with_options(task_runner=runner)(cfg.public())
