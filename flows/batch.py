"""The batch flow: a Prefect task per chunk of pages (render + answer every page-scope task,
PAGES_PER_TASK pages at a time, across document boundaries) and per document-scope unit.

Chunks share one bounded window of in-flight tasks; their pages run on the router's worker
threads. Documents are written in input order as soon as all their records are in, so memory
does not grow with the batch.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import os
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pixtract import mupdf
from pixtract.config import RunConfig, TaskSpec
from pixtract.discover import DiscoveryFailure, discover
from pixtract.errors import InputError, UsageError
from pixtract.ledger import format_ledger
from pixtract.manifest import build_manifest
from pixtract.outputs import OutputWriter
from pixtract.records import Record
from pixtract.plan import DocumentPlan, plan_document
from pixtract.preflight import PreflightReport, preflight
from pixtract.report import build_report
from pixtract.prefetch import router_for_run
from pixtract.route import Router, failed_record
from pixtract.batch import (  # noqa: F401 - PAGES_PER_TASK and the slice helpers are used from here too
    CHUNKS_AHEAD,
    PAGES_PER_TASK,
    STOP_GRACE_S,
    WHOLE,
    Slice,
    _Open,
    chunk_label,
    document_failures,
    expected_units,
    slice_units,
)
from pixtract.workers import WorkerSettings, sigterm_unwinds, start_workers

from . import progress
from .apiwatch import ApiWatch
from .localrun import LocalRun

# Secrets never travel as flow parameters (Prefect stores those in plain text). A deployment's
# worker gets the PDF password from this environment variable; an in-process run hands it over
# in _IN_PROCESS_SECRETS, so it is not left in os.environ for later runs or child processes.
PASSWORD_ENV = "PIXTRACT_PDF_PASSWORD"
_IN_PROCESS_SECRETS: dict[str, str] = {}


def pdf_password() -> str | None:
    return _IN_PROCESS_SECRETS.get("password") or os.environ.get(PASSWORD_ENV)


@task(name="answer-pages", cache_policy=NO_CACHE, task_run_name="{label}")
def answer_pages_task(router: Router, pages: list[tuple[DocumentPlan, int]], label: str) -> list[list[Record]]:
    """Render and answer a chunk of pages (possibly of several documents), concurrently."""
    return router.answer_pages(pages)


@task(name="answer-document", cache_policy=NO_CACHE, task_run_name="{spec.kind} document")
def answer_document_task(router: Router, plan: DocumentPlan, spec: TaskSpec, question: str | None) -> Record:
    rec = router.answer_document(plan, spec, question)
    router.done[(plan.document.path, (spec.kind, question))] = rec
    return rec


_LOCAL_RUN: contextvars.ContextVar[LocalRun | None] = contextvars.ContextVar("pixtract_local_run", default=None)


@flow(name="extract-batch", log_prints=True)
def extract_batch(config: dict[str, Any]):
    """Read every input, answer every page, write the output files; the run summary is the
    result, and the flow run's state says the outcome (``flow_state``)."""
    cfg = RunConfig.from_public(config, password=pdf_password()).validate()
    return flow_state(extract_into(cfg))


def flow_state(summary: dict[str, Any]):
    """The flow run's final state for a run's outcome, so that whoever watches the Prefect UI
    sees it: Completed; Completed named "Degraded"; Failed ("Incomplete"); Cancelled
    ("Interrupted"). The message is the summary's first line; the data is the summary."""
    from prefect.states import Cancelled, Completed, Failed

    outcome, message = summary["outcome"], summary["headline"]
    if outcome == "complete":
        return Completed(data=summary, message=message)
    if outcome == "degraded":
        return Completed(data=summary, message=message, name="Degraded")
    if outcome == "interrupted":
        return Cancelled(data=summary, message=message, name="Interrupted")
    return Failed(data=summary, message=message, name="Incomplete")


def extract_into(cfg: RunConfig, *, part: Slice = WHOLE, report: bool = True, thumbs_dir: str | None = None,
                 artifacts: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of the batch flow (call it inside a flow run): answer ``cfg.inputs`` (only the
    pages of ``part``) and write results.jsonl, Markdown, manifest.json (and report.html) to
    ``cfg.out``; thumbnails go to ``thumbs_dir`` (default ``cfg.out``)."""
    log = get_run_logger()
    started = dt.datetime.now(dt.timezone.utc)
    local = _LOCAL_RUN.get() or LocalRun()
    thumbs_root = thumbs_dir or cfg.out
    router = local.router or router_for_run(cfg, local.stop, thumbs_root)
    try:
        checked = local.preflight or (preflight(cfg) if cfg.endpoint.remote else PreflightReport())
    except BaseException:
        router.close()
        raise
    router.apply_preflight(checked)
    problems = checked.notes
    for p in problems:
        log.warning("%s", p)
        progress.note(p)
    for t in cfg.tasks:
        if not router.serving(t):
            router.close()
            raise UsageError(f"no route can serve task {t.kind!r}: " + "; ".join(problems))
    watch = ApiWatch.for_current_api(local.api_lost).__enter__()
    art = RunArtifacts(f"pages answered, {os.path.basename(cfg.out.rstrip(os.sep)) or cfg.out}",
                       alive=lambda: not local.api_lost.is_set()) if artifacts else None
    unsubscribe = progress.subscribe(art) if art else (lambda: None)
    writer = OutputWriter(cfg.out, cfg.page_marker, cfg.annotated_markdown)
    workers = router.page_threads
    window = -(-workers // PAGES_PER_TASK) + CHUNKS_AHEAD  # chunk tasks in flight
    pending: deque = deque()  # (items, future) in submission order; an item is (open doc, page or unit)
    open_docs: deque[_Open] = deque()  # documents in input order, waiting for their records
    chunk: list[tuple[_Open, int]] = []  # pages not yet submitted
    stop_workers = start_workers(WorkerSettings.for_run(cfg, workers))  # MuPDF runs in killable processes

    def records_of(od: _Open, unit, result) -> list[Record]:
        """A unit's records: from its task's result, from the router's finished units (a stopped
        run does not wait for the task to report), or ``interrupted``."""
        if isinstance(unit, int):  # a page: its list of records, or failures if the task raised
            kept = router.done.pop((od.plan.document.path, unit), None)
            if isinstance(result, list):
                return result
            if isinstance(result, BaseException) and not local.stop.is_set():
                return router.page_failures(od.plan, unit, result)
            return kept or router.interrupted(od.plan, unit, [t for t in cfg.tasks if t.scope == "page"])
        spec, question = unit  # a document-scope unit
        kept = router.done.pop((od.plan.document.path, (spec.kind, question)), None)
        if isinstance(result, Record):
            return [result]
        if isinstance(result, BaseException) and not local.stop.is_set():
            return [failed_record(od.plan, None, spec, result, question=question)]
        return [kept or router._interrupted_record(od.plan.document, None, spec, question, "document")]

    def settle(items, result) -> None:
        for i, (od, unit) in enumerate(items):
            recs = records_of(od, unit, result[i] if isinstance(result, list) and isinstance(unit, int)
                              else result)
            od.records.extend(recs)
            od.waiting -= 1
            for r in recs:
                progress.emit(r)
        flush_done()

    def settle_oldest() -> None:
        items, fut = pending.popleft()
        while not local.stop.is_set() and not _wait(fut, 0.2):
            pass
        if local.stop.is_set():
            pending.appendleft((items, fut))
            raise _Stopped()
        settle(items, fut.result(raise_on_failure=False))

    def drain() -> None:
        """Stopped: answers in flight get STOP_GRACE_S; every planned unit gets its record."""
        deadline = time.monotonic() + STOP_GRACE_S
        while pending:
            items, fut = pending.popleft()
            done = _wait(fut, max(0.0, deadline - time.monotonic()))
            settle(items, fut.result(raise_on_failure=False) if done else None)
        if chunk:
            settle(chunk.copy(), None)
            chunk.clear()

    def flush_done() -> None:
        while open_docs and open_docs[0].waiting == 0:
            od = open_docs.popleft()
            writer.add_document(od.plan.document, od.plan.pages, od.records)
            mupdf.forget(od.plan.document)

    def submit(items: list, future) -> None:
        pending.append((items, future))
        while len(pending) > window:
            settle_oldest()

    def submit_chunk() -> None:
        items = chunk.copy()
        chunk.clear()
        submit(items, answer_pages_task.submit(router, [(od.plan, n) for od, n in items], chunk_label(items)))

    try:
        try:
            for item in discover(cfg.inputs, exclude=[cfg.out]):
                if local.stop.is_set():
                    raise _Stopped()
                if isinstance(item, DiscoveryFailure):
                    _fail_document(writer, document_failures(item.path, item.sha256, cfg, item.error), None, log, cfg)
                    continue
                try:
                    plan = plan_document(item, cfg)
                except Exception as e:  # noqa: BLE001 - an unreadable document is a record, not a crash
                    err = e if isinstance(e, InputError) else InputError(f"{item.path}: {type(e).__name__}: {e}")
                    _fail_document(writer, document_failures(item.path, item.sha256, cfg, err), item.kind, log, cfg)
                    continue
                numbers = part.pages(plan.pages)
                for task_kind, n in slice_units(cfg, len(numbers), part.doc_units).items():
                    writer.ledger.plan(task_kind, n)
                progress.document(plan.document.path, len(numbers))
                page_tasks = any(t.scope == "page" for t in cfg.tasks)
                doc_units = [(t, q) for t in cfg.tasks if t.scope == "document" for q in t.units()] \
                    if part.doc_units else []
                od = _Open(plan, waiting=(len(numbers) if page_tasks else 0) + len(doc_units))
                open_docs.append(od)
                for spec, question in doc_units:
                    submit([(od, (spec, question))], answer_document_task.submit(router, plan, spec, question))
                if page_tasks:
                    for number in numbers:
                        chunk.append((od, number))
                        if len(chunk) >= PAGES_PER_TASK:
                            submit_chunk()
                flush_done()  # a document with nothing to answer (zero pages) is written now
            if chunk:
                submit_chunk()
            while pending:
                settle_oldest()
            flush_done()
        except _Stopped:
            unsubscribe()  # no more Prefect API calls: the API may be gone with the signal
            drain()
            flush_done()
    except BaseException:
        stop_workers()  # first: a page thread waiting on a frozen worker returns at once
        writer.abort()
        router.close(wait=False)
        unsubscribe()
        watch.__exit__()
        raise
    watch.__exit__()
    stopped = local.stop.is_set()
    router.close(wait=not stopped)
    if not stopped:  # a stopped run's process ends soon; its workers die with it (PDEATHSIG)
        stop_workers()
        unsubscribe()
    summary = writer.summary(interrupted=(local.signal or "stop") if stopped else None)
    finished = dt.datetime.now(dt.timezone.utc)
    ledger = summary["ledger"]
    writer.finish(build_manifest(
        config=cfg.public(), documents=writer.documents, summary=summary, started=started, finished=finished,
        extra={"outcome": summary["outcome"], "headline": summary["headline"], "ledger": ledger,
               "model_problems": problems,
               "budget": {"limit_usd": cfg.budget_usd, "spent_usd": round(router.budget.spent, 6),
                          "refused_requests": router.budget.refused}, **(extra or {})}))
    if report and not stopped:  # the report can wait for the rerun when the user asked to stop
        build_report(cfg.out)
    local.summary = summary
    local.written.set()
    if stopped:
        return summary
    if art:
        art.finish(cfg.out, summary, [d.get("markdown") for d in writer.documents])
    log.info("%s", summary["headline"])
    log.info("%s", format_ledger(ledger))
    log.info("wrote %d records for %d inputs to %s", summary["records"], len(writer.documents), cfg.out)
    return summary


class _Stopped(Exception):
    """The run's stop signal was set: no new work; write what is done."""


def _wait(fut, timeout: float) -> bool:
    """Wait for a Prefect future up to ``timeout`` seconds; True when it has finished."""
    fut.wait(timeout)
    return fut.wrapped_future.done()


# --- Prefect artifacts: progress, pages per route and status, a summary linking the outputs ----


def _artifact_call(fn, *args, **kw):
    """Artifacts are for people watching; a failure to write one never fails the run."""
    try:
        return fn(*args, **kw)
    except Exception as e:  # noqa: BLE001
        try:
            get_run_logger().warning("could not write a Prefect artifact: %s", type(e).__name__)
        except Exception:  # noqa: BLE001
            pass
        return None


class RunArtifacts:
    """The artifacts of one flow run: a progress artifact (pages answered of pages planned,
    updated at most every ``every`` seconds), then a table of records per task, route and
    status with their cost, and a Markdown summary linking the output files.

    Listens to :mod:`pixtract.flows.progress` (``document``/``record``) or is fed by hand (``set_progress``,
    ``add``)."""

    def __init__(self, description: str, every: float = 1.0, alive=lambda: True) -> None:
        """``alive()`` says whether the Prefect API is still there: once it is not, nothing more
        is written (each call would wait on retries)."""
        from prefect.artifacts import create_progress_artifact

        self.alive = alive
        self._updates = ThreadPoolExecutor(1, thread_name_prefix="pixtract-artifacts")
        self._want, self._queued = 0.0, False
        self.total = 0
        self.done = 0
        self.every = every
        self.rows: Counter = Counter()
        self.cost: Counter = Counter()
        self._pages: set = set()
        self._last = 0.0
        self._shown = -1.0
        self.id = _artifact_call(create_progress_artifact, progress=0.0, description=description)

    # pixtract.flows.progress listener
    def document(self, path: str, pages: int) -> None:
        self.total += pages

    def record(self, rec: Record) -> None:
        self.add(rec)
        if rec.page is not None and (rec.document, rec.page) not in self._pages:
            self._pages.add((rec.document, rec.page))
            self.done += 1
            self.set_progress(self.done, self.total)

    def add(self, rec: Record) -> None:
        key = (rec.task, rec.route or "-", rec.status)
        self.rows[key] += 1
        if not rec.cached:
            self.cost[key] += rec.cost_usd

    def set_progress(self, done: int, total: int, force: bool = False) -> None:
        pct = 100.0 * done / total if total else 100.0
        now = time.monotonic()
        if self.id is None or pct == self._shown or (not force and pct < 100 and now - self._last < self.every):
            return
        self._last, self._shown = now, pct
        # Off the flow's thread (a slow or vanished API must not hold up the pages), and only
        # the newest value: updates queued behind a slow call are merged into one.
        self._want = pct
        if self.alive() and not self._queued:
            self._queued = True
            self._updates.submit(self._push)

    def _push(self) -> None:
        from prefect.artifacts import update_progress_artifact

        self._queued = False
        if self.alive():
            _artifact_call(update_progress_artifact, artifact_id=self.id, progress=round(self._want, 2))

    def table(self) -> list[dict[str, Any]]:
        return [{"task": t, "route": r, "status": s, "records": n, "cost_usd": round(self.cost[(t, r, s)], 6)}
                for (t, r, s), n in sorted(self.rows.items())]

    def finish(self, out: str, summary: dict[str, Any], markdown_files, *, title: str = "pixtract run",
               more: str = "", links: list[tuple[str, str]] | None = None) -> None:
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        self.set_progress(1, 1, force=True)
        self._updates.shutdown(wait=self.alive())
        if not self.alive():
            return
        rows = self.table() or [{"task": "-", "route": "-", "status": "-", "records": 0, "cost_usd": 0.0}]
        _artifact_call(create_table_artifact, key="pixtract-pages", table=rows,
                       description="records per task, route and status, with their cost (USD)")
        _artifact_call(create_markdown_artifact, key="pixtract-summary",
                       markdown=summary_markdown(out, summary, markdown_files, title=title, more=more, links=links),
                       description="where the outputs are")


MAX_LINKED_MARKDOWN = 100  # the summary artifact stays small for big batches


def _file_link(path: str) -> str:
    from pathlib import Path

    return Path(os.path.abspath(path)).as_uri()


def summary_markdown(out: str, summary: dict[str, Any], markdown_files, *, title: str = "pixtract run",
                     more: str = "", links: list[tuple[str, str]] | None = None) -> str:
    """A short Markdown summary of a run, linking its output files."""
    by_status = summary.get("by_status", {})
    ledger = summary.get("ledger") or {}
    lines = [f"# {title}: {summary.get('outcome', 'done').upper()}", "",
             f"**{summary.get('headline', '')}**", "",
             f"* output folder: [{out}]({_file_link(out)})",
             f"* records: {summary.get('records', 0)} ({by_status.get('ok', 0)} ok, "
             f"{by_status.get('failed', 0)} failed, {by_status.get('skipped', 0)} skipped; "
             f"{summary.get('degraded', 0)} degraded; {summary.get('cached', 0)} from cache)",
             f"* cost: paid ${summary.get('paid_usd', 0):.4f} in this run; the outputs cost "
             f"${summary.get('cost_usd', 0):.4f} in all",
             f"* ledger: {'balanced' if ledger.get('balanced', True) else 'MISMATCH'}"]
    if more:
        lines.append(more)
    lines += ["", "## Files", ""]
    files = [(name, os.path.join(out, name)) for name in ("report.html", "results.jsonl", "manifest.json")]
    files += list(links or [])
    md = [m for m in markdown_files if m]
    files += [(m, os.path.join(out, m)) for m in md[:MAX_LINKED_MARKDOWN]]
    lines += [f"* [{name}]({_file_link(path)})" for name, path in files]
    if len(md) > MAX_LINKED_MARKDOWN:
        lines.append(f"* ... and {len(md) - MAX_LINKED_MARKDOWN} more Markdown files in the output folder")
    return "\n".join(lines) + "\n"


def _fail_document(writer: OutputWriter, recs: list[Record], kind: str | None, log, cfg: RunConfig) -> None:
    log.warning("%s", recs[0].error.message if recs[0].error else recs[0].document)
    for task_kind, n in expected_units(cfg, None).items():
        writer.ledger.plan(task_kind, n)
    writer.add_failure(recs, kind)
    for r in recs:
        progress.emit(r)


def run_batch(cfg: RunConfig, local: LocalRun | None = None) -> dict[str, Any]:
    """Run the flow in this process (Prefect's ephemeral API unless PREFECT_API_URL is set);
    returns the run summary whatever the outcome, and raises what stopped the run early."""
    cfg.validate()
    if cfg.password:
        _IN_PROCESS_SECRETS["password"] = cfg.password
    runner = ThreadPoolTaskRunner(max_workers=cfg.concurrency)
    token = _LOCAL_RUN.set(local)
    try:
        with sigterm_unwinds():  # a no-op on the CLI's flow thread: there flows/interrupt.py decides
            state = extract_batch.with_options(task_runner=runner)(cfg.public(), return_state=True)
    finally:
        _LOCAL_RUN.reset(token)
        _IN_PROCESS_SECRETS.pop("password", None)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result
