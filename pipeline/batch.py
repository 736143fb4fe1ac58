"""A whole batch run without Prefect: discover, plan, answer pages in chunks, write documents
in input order, then the ledger, manifest and report. ``flows/batch.py`` runs this same code
inside a Prefect flow, and the Python API (pipeline/api.py) on a thread pool.

Pages are answered PAGES_PER_TASK at a time, across document boundaries; chunks share one
bounded window of in-flight futures and their pages run on the router's worker threads.
Documents are written as soon as all their records are in, so memory does not grow with the
batch.

The executor is handed in: ``submit_pages(router, pages, label)`` and ``submit_document(router,
plan, spec, question)`` start :func:`answer_pages` / :func:`answer_document` and return a
future with ``concurrent.futures.Future``'s ``exception(timeout)`` and ``result(timeout)``
(the flow wraps Prefect task futures; the default is a ``ThreadPoolExecutor``). Nothing here
needs an event loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from . import mupdf
from .config import RunConfig, TaskSpec
from .discover import DiscoveryFailure, discover
from .errors import InputError, PixtractError, UsageError
from .ledger import format_ledger
from .manifest import build_manifest
from .outputs import OutputWriter
from .plan import DocumentPlan, plan_document
from .prefetch import router_for_run
from .preflight import PreflightReport, preflight
from .progress import Listener
from .records import Record
from .runcontext import RunContext
from .units import count_units, failed_document
from .report import build_report
from .route import failed_record
from .workers import WorkerSettings, start_workers

PAGES_PER_TASK = 16  # one Prefect task run per this many pages: a task run costs ~7-10 ms of CPU
CHUNKS_AHEAD = 1  # chunk tasks queued beyond those needed to keep every page thread busy
STOP_GRACE_S = 2.0  # how long a stopped run waits for answers already in flight (exit within 5 s)


@dataclass
class _Open:
    plan: DocumentPlan
    waiting: int
    records: list[Record] = field(default_factory=list)


def chunk_label(items: list[tuple["_Open", int]]) -> str:
    """A task-run name for a chunk: ``report.pdf p1-16`` or ``a.png p1 + 15 pages of 7 more documents``."""
    first = items[0][0].plan.document.path
    numbers = [n for od, n in items if od.plan.document.path == first]
    name = os.path.basename(first) or first
    head = f"{name} p{numbers[0]}" + (f"-{numbers[-1]}" if len(numbers) > 1 else "")
    rest = len(items) - len(numbers)
    if rest:
        docs = len({od.plan.document.path for od, _ in items}) - 1
        head += f" + {rest} page{'s' * (rest > 1)} of {docs} more document{'s' * (docs > 1)}"
    return head


@dataclass(frozen=True)
class Slice:
    """The share of a document one child run answers (flows/inbox.py fans a batch out):
    pages ``first``..``last`` (None: from the start / to the end) and, with ``doc_units``,
    the document-scope units (whole-document ask/extract), which go with exactly one slice."""

    first: int | None = None
    last: int | None = None
    doc_units: bool = True

    def pages(self, total: int) -> range:
        return range(max(1, self.first or 1), min(total, self.last or total) + 1)


WHOLE = Slice()


@dataclass
class RunControl:
    """What a caller hands a run besides its configuration, and reads back while it goes: the
    stop signal (set it from any thread: no new work, answers in flight get STOP_GRACE_S, what
    is done is written), the preflight and the router it already made, and the outputs once
    they are on disk. Not configuration: it is not data."""

    stop: threading.Event = field(default_factory=threading.Event)
    signal: str | None = None  # SIGINT or SIGTERM, once stop is set by a signal
    preflight: PreflightReport | None = None
    # The run's context, when the caller made it first (to listen before the run starts); the
    # router the caller made (to answer the first pages early) is made with it.
    context: RunContext | None = None
    router: Any = None
    written: threading.Event = field(default_factory=threading.Event)  # outputs are on disk
    summary: dict[str, Any] | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)  # the manifest's documents, once written


def answer_pages(router, pages: list[tuple[DocumentPlan, int]], label: str) -> list[list[Record]]:
    """Render and answer a chunk of pages (possibly of several documents), concurrently;
    ``label`` names the chunk (a Prefect task run's name)."""
    return router.answer_pages(pages)


def answer_document(router, plan: DocumentPlan, spec: TaskSpec, question: str | None) -> Record:
    """Answer one document-scope unit; the router keeps it, so a stopped run still has it."""
    rec = router.answer_document(plan, spec, question)
    router.done[(plan.document.path, (spec.kind, question))] = rec
    return rec


def run(cfg: RunConfig, *, submit_pages: Callable | None = None, submit_document: Callable | None = None,
        listener: Listener | None = None, control: RunControl | None = None, part: Slice = WHOLE,
        report: bool = True, thumbs_dir: str | None = None, extra: dict[str, Any] | None = None,
        log: logging.Logger | logging.LoggerAdapter | None = None) -> dict[str, Any]:
    """Answer ``cfg.inputs`` (only the pages of ``part``) and write results.jsonl, Markdown,
    manifest.json (and report.html) to ``cfg.out``; thumbnails go to ``thumbs_dir`` (default
    ``cfg.out``). Returns the run summary; raises UsageError when no route can serve a task.

    Without ``submit_pages``/``submit_document`` the work runs on a thread pool of
    ``cfg.concurrency`` threads. ``listener`` hears this run's progress besides the listeners
    already in ``control.context``."""
    control = control or RunControl()
    pool = None
    if submit_pages is None or submit_document is None:
        pool = ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="pixtract-batch")
        submit_pages = submit_pages or partial(pool.submit, answer_pages)
        submit_document = submit_document or partial(pool.submit, answer_document)
    control.context = (control.router.context if control.router is not None
                       else control.context or RunContext.for_run(cfg))
    unlisten = control.context.listeners.add(listener) if listener is not None else None
    try:
        return _run(cfg, submit_pages, submit_document, control, part, report,
                    thumbs_dir or cfg.out, extra or {}, log or logging.getLogger(__name__))
    finally:
        if unlisten is not None:
            unlisten()
        if pool is not None:
            pool.shutdown(wait=not control.stop.is_set(), cancel_futures=True)


def _run(cfg: RunConfig, submit_pages, submit_document, control: RunControl,
         part: Slice, report: bool, thumbs_root: str, extra: dict[str, Any], log) -> dict[str, Any]:
    started = dt.datetime.now(dt.timezone.utc)
    router = control.router or router_for_run(cfg, control.stop, thumbs_root, control.context)
    listener = control.context.listeners
    problems = _ready(cfg, router, control, listener, log)
    writer = OutputWriter(cfg.out, cfg.page_marker, cfg.annotated_markdown)
    stop_workers = start_workers(WorkerSettings.for_run(cfg, router.page_threads))  # MuPDF runs in killable processes
    batch = _Batch(cfg, router, writer, listener, control.stop, submit_pages, submit_document, log)
    try:
        batch.feed(part)
    except BaseException:
        stop_workers()  # first: a page thread waiting on a frozen worker returns at once
        writer.abort()
        router.close(wait=False)
        raise
    stopped = control.stop.is_set()
    router.close(wait=not stopped)
    if not stopped:  # a stopped run stops them once its outputs are written (below)
        stop_workers()
    batch_jobs = _submit_batch(router, log)
    if batch_jobs is not None:
        extra = {**extra, "batch": batch_jobs}
    summary = writer.summary(interrupted=(control.signal or "stop") if stopped else None)
    finished = dt.datetime.now(dt.timezone.utc)
    ledger = summary["ledger"]
    writer.finish(build_manifest(
        config=cfg.public(), documents=writer.documents, summary=summary, started=started, finished=finished,
        extra={"outcome": summary["outcome"], "headline": summary["headline"], "ledger": ledger,
               "model_problems": problems,
               "budget": {"limit_usd": cfg.budget_usd, "spent_usd": round(router.budget.spent, 6),
                          "refused_requests": router.budget.refused}, **extra}))
    if report and not stopped:  # the report can wait for the rerun when the user asked to stop
        build_report(cfg.out)
    control.summary, control.documents = summary, writer.documents
    control.written.set()
    if stopped:  # after the outputs: the command line exits meanwhile, a library caller goes on
        stop_workers()
        return summary
    log.info("%s", summary["headline"])
    log.info("%s", format_ledger(ledger))
    log.info("wrote %d records for %d inputs to %s", summary["records"], len(writer.documents), cfg.out)
    return summary


def _submit_batch(router, log) -> dict[str, Any] | None:
    """Batch mode: this run's new requests go in a batch job (stored first, then uploaded); the
    manifest's ``batch`` says what every job of the folder holds. None for a live run. A failed
    upload leaves the job stored as planned: the next run uploads it."""
    batch = getattr(router, "batch", None)
    if batch is None:
        return None
    problem = None
    try:
        for entry in batch.submit():
            log.info("batch job %s: %d requests submitted; run the same command later to collect them",
                     entry.job_id, entry.items)
    except PixtractError as e:
        problem = f"the new batch job is stored but not submitted ({e}); the next run submits it"
        log.warning("%s", problem)
    finally:
        batch.close()
    return {**batch.summary(), "problem": problem}


def _ready(cfg: RunConfig, router, control: RunControl, listener, log) -> list[str]:
    """Apply the endpoints' preflight to the router; its notes, or UsageError when a task has
    no route left."""
    try:
        checked = control.preflight or (preflight(cfg) if cfg.endpoint.remote else PreflightReport())
    except BaseException:
        router.close()
        raise
    router.apply_preflight(checked)
    problems = checked.notes
    for p in problems:
        log.warning("%s", p)
        listener.note(p)
    for t in cfg.tasks:
        if not router.serving(t):
            router.close()
            raise UsageError(f"no route can serve task {t.kind!r}: " + "; ".join(problems))
    return problems


class _Stopped(Exception):
    """The run's stop signal was set: no new work; write what is done."""


class _Batch:
    """The ordered window of one run: chunks of pages and document-scope units in flight (at
    most ``window`` futures), documents in input order waiting for their records, each written
    as soon as it has them all."""

    def __init__(self, cfg: RunConfig, router, writer: OutputWriter, listener: Listener, stop: threading.Event,
                 submit_pages, submit_document, log) -> None:
        self.cfg, self.router, self.writer, self.listener = cfg, router, writer, listener
        self.stop, self.log = stop, log
        self.submit_pages, self.submit_document = submit_pages, submit_document
        self.window = -(-router.page_threads // PAGES_PER_TASK) + CHUNKS_AHEAD  # chunks in flight
        self.pending: deque = deque()  # (items, future) in submission order; an item is (open doc, page or unit)
        self.open_docs: deque[_Open] = deque()  # documents in input order, waiting for their records
        self.chunk: list[tuple[_Open, int]] = []  # pages not yet submitted

    def feed(self, part: Slice) -> None:
        """Every input, planned and submitted, until all are written or the run is stopped."""
        try:
            for item in discover(self.cfg.inputs, exclude=[self.cfg.out]):
                if self.stop.is_set():
                    raise _Stopped()
                self.add(item, part)
            if self.chunk:
                self.submit_chunk()
            while self.pending:
                self.settle_oldest()
            self.flush_done()
        except _Stopped:
            self.drain()
            self.flush_done()

    def add(self, item, part: Slice) -> None:
        """Plan one discovered input and submit its units (a failed record when it is unreadable)."""
        cfg = self.cfg
        if isinstance(item, DiscoveryFailure):
            self.fail_document(failed_document(cfg, item.path, item.sha256, item.error), None)
            return
        try:
            plan = plan_document(item, cfg)
        except Exception as e:  # noqa: BLE001 - an unreadable document is a record, not a crash
            err = e if isinstance(e, InputError) else InputError(f"{item.path}: {type(e).__name__}: {e}")
            self.fail_document(failed_document(cfg, item.path, item.sha256, err), item.kind)
            return
        numbers = part.pages(plan.pages)
        for task_kind, n in count_units(cfg, len(numbers), document_units=part.doc_units).items():
            self.writer.ledger.plan(task_kind, n)
        self.listener.document(plan.document.path, len(numbers))
        page_tasks = any(t.scope == "page" for t in cfg.tasks)
        doc_units = [(t, q) for t in cfg.tasks if t.scope == "document" for q in t.units()] \
            if part.doc_units else []
        od = _Open(plan, waiting=(len(numbers) if page_tasks else 0) + len(doc_units))
        self.open_docs.append(od)
        for spec, question in doc_units:
            self.submit([(od, (spec, question))], self.submit_document(self.router, plan, spec, question))
        if page_tasks:
            for number in numbers:
                self.chunk.append((od, number))
                if len(self.chunk) >= PAGES_PER_TASK:
                    self.submit_chunk()
        self.flush_done()  # a document with nothing to answer (zero pages) is written now

    def fail_document(self, recs: list[Record], kind: str | None) -> None:
        self.log.warning("%s", recs[0].error.message if recs[0].error else recs[0].document)
        for task_kind, n in count_units(self.cfg, None).items():
            self.writer.ledger.plan(task_kind, n)
        self.writer.add_failure(recs, kind)
        for r in recs:
            self.listener.record(r)

    def submit_chunk(self) -> None:
        items = self.chunk.copy()
        self.chunk.clear()
        self.submit(items, self.submit_pages(self.router, [(od.plan, n) for od, n in items], chunk_label(items)))

    def submit(self, items: list, future) -> None:
        self.pending.append((items, future))
        while len(self.pending) > self.window:
            self.settle_oldest()

    def settle_oldest(self) -> None:
        items, fut = self.pending.popleft()
        while not self.stop.is_set() and not _wait(fut, 0.2):
            pass
        if self.stop.is_set():
            self.pending.appendleft((items, fut))
            raise _Stopped()
        self.settle(items, _outcome(fut))

    def drain(self) -> None:
        """Stopped: answers in flight get STOP_GRACE_S; every planned unit gets its record."""
        deadline = time.monotonic() + STOP_GRACE_S
        while self.pending:
            items, fut = self.pending.popleft()
            done = _wait(fut, max(0.0, deadline - time.monotonic()))
            self.settle(items, _outcome(fut) if done else None)
        if self.chunk:
            self.settle(self.chunk.copy(), None)
            self.chunk.clear()

    def settle(self, items, result) -> None:
        for i, (od, unit) in enumerate(items):
            recs = self.records_of(od, unit, result[i] if isinstance(result, list) and isinstance(unit, int)
                                   else result)
            od.records.extend(recs)
            od.waiting -= 1
            for r in recs:
                self.listener.record(r)
        self.flush_done()

    def records_of(self, od: _Open, unit, result) -> list[Record]:
        """A unit's records: from its future's result, from the router's finished units (a
        stopped run does not wait for the future), or ``interrupted``."""
        router, stopped = self.router, self.stop.is_set()
        if isinstance(unit, int):  # a page: its list of records, or failures if the task raised
            kept = router.done.pop((od.plan.document.path, unit), None)
            if isinstance(result, list):
                return result
            if isinstance(result, BaseException) and not stopped:
                return router.page_failures(od.plan, unit, result)
            return kept or router.interrupted(od.plan, unit, [t for t in self.cfg.tasks if t.scope == "page"])
        spec, question = unit  # a document-scope unit
        kept = router.done.pop((od.plan.document.path, (spec.kind, question)), None)
        if isinstance(result, Record):
            return [result]
        if isinstance(result, BaseException) and not stopped:
            return [failed_record(od.plan, None, spec, result, question=question)]
        return [kept or router.interrupted_record(od.plan.document, None, spec, question)]

    def flush_done(self) -> None:
        while self.open_docs and self.open_docs[0].waiting == 0:
            od = self.open_docs.popleft()
            self.writer.add_document(od.plan.document, od.plan.pages, od.records)
            mupdf.forget(od.plan.document)


def _wait(fut, timeout: float) -> bool:
    """Wait for a future up to ``timeout`` seconds; True when it has finished."""
    try:
        fut.exception(timeout=timeout)
    except TimeoutError:
        return False
    except CancelledError:
        return True
    return True


def _outcome(fut) -> Any:
    """A finished future's value, or the exception it ended with."""
    try:
        return fut.result(timeout=0)
    except BaseException as e:  # noqa: BLE001 - the records say what went wrong
        return e
