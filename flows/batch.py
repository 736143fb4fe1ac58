"""The batch flow: a Prefect task per document (plan) and per page (render + answer).

Pages of all documents share one bounded window of in-flight tasks; documents are written in
input order as soon as all their pages are in, so memory does not grow with the batch.
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

from pipeline import local, mupdf
from pipeline.config import RunConfig
from pipeline.discover import DiscoveryFailure, discover
from pipeline.errors import InputError, OCRError
from pipeline.manifest import build_manifest
from pipeline.outputs import OutputWriter
from pipeline.records import Document, Record, document_failure
from pipeline.render import count_pages
from pipeline.route import DocumentPlan, answer_page, failed_record

from . import progress

PASSWORD_ENV = "PIXTRACT_PDF_PASSWORD"  # secrets reach the flow by environment, never as parameters


def _transient(task, task_run, state) -> bool:
    """Retry a page only for errors that may pass (OCR time-outs, later: provider errors)."""
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
        running = local.document_running_lines(doc, cfg.password) if cfg.task == "transcribe" else set()
    except InputError as e:
        return e
    return DocumentPlan(doc, pages, running)


@task(
    name="answer-page",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=_transient,
    task_run_name="page {number}",
)
def answer_page_task(plan: DocumentPlan, number: int, cfg: RunConfig) -> Record:
    return answer_page(plan, number, cfg)


@dataclass
class _Open:
    plan: DocumentPlan
    records: list[Record] = field(default_factory=list)


@flow(name="extract-batch", log_prints=True)
def extract_batch(config: dict[str, Any]) -> dict[str, Any]:
    """Read every input, answer every page, write the output files; returns the run summary."""
    cfg = RunConfig.from_public(config, password=os.environ.get(PASSWORD_ENV)).validate()
    log = get_run_logger()
    started = dt.datetime.now(dt.timezone.utc)
    writer = OutputWriter(cfg.out)
    window = max(2, cfg.concurrency * 2)
    pending: deque = deque()  # (open document, page number, future), in submission order
    open_docs: deque[_Open] = deque()  # documents in input order, waiting for their pages

    def settle_oldest() -> None:
        od, number, fut = pending.popleft()
        result = fut.result(raise_on_failure=False)
        rec = result if isinstance(result, Record) else failed_record(od.plan, number, cfg, result)
        od.records.append(rec)
        progress.emit(rec)
        flush_done()

    def flush_done() -> None:
        while open_docs and len(open_docs[0].records) == open_docs[0].plan.pages:
            od = open_docs.popleft()
            writer.add_document(od.plan.document, od.plan.pages, od.records)
            mupdf.forget(od.plan.document)

    try:
        for item in discover(cfg.inputs):
            if isinstance(item, DiscoveryFailure):
                rec = document_failure(item.path, item.sha256, cfg.task, item.error)
                _settle_failure(writer, rec, None, log)
                continue
            plan = plan_document(item, cfg, return_state=True).result(raise_on_failure=False)
            if not isinstance(plan, DocumentPlan):
                err = plan if isinstance(plan, InputError) else InputError(f"{item.path}: {plan!r}")
                _settle_failure(writer, document_failure(item.path, item.sha256, cfg.task, err), item.kind, log)
                continue
            progress.document(plan.document.path, plan.pages)
            od = _Open(plan)
            open_docs.append(od)
            for number in range(1, plan.pages + 1):
                while len(pending) >= window:
                    settle_oldest()
                pending.append((od, number, answer_page_task.submit(plan, number, cfg)))
        while pending:
            settle_oldest()
        flush_done()
    except BaseException:
        writer.abort()
        raise
    summary = writer.summary()
    finished = dt.datetime.now(dt.timezone.utc)
    writer.finish(build_manifest(config=cfg.public(), documents=writer.documents, summary=summary,
                                 started=started, finished=finished))
    log.info("wrote %d records for %d inputs to %s", summary["records"], len(writer.documents), cfg.out)
    return summary


def _settle_failure(writer: OutputWriter, rec: Record, kind: str | None, log) -> None:
    log.warning("%s", rec.error.message if rec.error else rec.document)
    writer.add_failure(rec, kind)
    progress.emit(rec)


def run_batch(cfg: RunConfig) -> dict[str, Any]:
    """Run the flow in this process (Prefect's ephemeral API unless PREFECT_API_URL is set)."""
    cfg.validate()
    if cfg.password:
        os.environ[PASSWORD_ENV] = cfg.password
    runner = ThreadPoolTaskRunner(max_workers=cfg.concurrency)
    return extract_batch.with_options(task_runner=runner)(cfg.public())
