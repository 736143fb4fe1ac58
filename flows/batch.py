"""The batch flow: pipeline/batch.py's run inside the ``extract-batch`` flow, with a Prefect
task per chunk of pages (``answer-pages``: render + answer every page-scope task,
PAGES_PER_TASK pages at a time, across document boundaries) and per document-scope unit
(``answer-document``); progress artifacts and the flow run's final state for the Prefect UI.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pixtract import batch
from pixtract.batch import (  # noqa: F401 - PAGES_PER_TASK and the slice helpers are used from here too
    PAGES_PER_TASK,
    WHOLE,
    Slice,
)
from pixtract.config import RunConfig, TaskSpec
from pixtract.plan import DocumentPlan
from pixtract.records import Record
from pixtract.route import Router
from pixtract.workers import sigterm_unwinds

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
    return batch.answer_pages(router, pages, label)


@task(name="answer-document", cache_policy=NO_CACHE, task_run_name="{spec.kind} document")
def answer_document_task(router: Router, plan: DocumentPlan, spec: TaskSpec, question: str | None) -> Record:
    return batch.answer_document(router, plan, spec, question)


_LOCAL_RUN: contextvars.ContextVar[LocalRun | None] = contextvars.ContextVar("pixtract_local_run", default=None)


@flow(name="extract-batch", log_prints=True)
def extract_batch(config: dict[str, Any]):
    """Read every input, answer every page, write the output files; the run summary is the
    result, and the flow run's state says the outcome (``flow_state``)."""
    cfg = RunConfig.from_public(config, password=pdf_password()).validate()
    return flow_state(extract_into(cfg))


def flow_state(summary: dict[str, Any]):
    """The flow run's final state for a run's outcome, so that whoever watches the Prefect UI
    sees it: Completed; Completed named "Degraded" or "Batch pending"; Failed ("Incomplete"); Cancelled
    ("Interrupted"). The message is the summary's first line; the data is the summary."""
    from prefect.states import Cancelled, Completed, Failed

    outcome, message = summary["outcome"], summary["headline"]
    if outcome == "complete":
        return Completed(data=summary, message=message)
    if outcome == "degraded":
        return Completed(data=summary, message=message, name="Degraded")
    if outcome == "pending":  # the flow run did its part: the batch job is submitted; a later run collects
        return Completed(data=summary, message=message, name="Batch pending")
    if outcome == "interrupted":
        return Cancelled(data=summary, message=message, name="Interrupted")
    return Failed(data=summary, message=message, name="Incomplete")


def extract_into(cfg: RunConfig, *, part: Slice = WHOLE, report: bool = True, thumbs_dir: str | None = None,
                 artifacts: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of the batch flow (call it inside a flow run): pipeline/batch.py's run, with
    Prefect tasks as its executor, the flow run's logger, progress artifacts, and the Prefect
    API watched (see flows/apiwatch.py)."""
    local = _LOCAL_RUN.get() or LocalRun()
    # Once stopped or once the API is gone, no more Prefect API calls: it may be gone with the signal.
    art = RunArtifacts(f"pages answered, {os.path.basename(cfg.out.rstrip(os.sep)) or cfg.out}",
                       alive=lambda: not (local.api_lost.is_set() or local.stop.is_set())) if artifacts else None
    unsubscribe = progress.subscribe(art) if art else (lambda: None)
    watch = ApiWatch.for_current_api(local.api_lost).__enter__()
    try:
        try:
            summary = batch.run(cfg, submit_pages=_submit_pages, submit_document=_submit_document,
                                listener=progress.EVERYONE, control=local, part=part, report=report,
                                thumbs_dir=thumbs_dir, extra=extra, log=get_run_logger())
        finally:
            unsubscribe()
        # Still watched: a server lost now would hold the final artifacts in Prefect's retries.
        if art and not local.stop.is_set():
            art.finish(cfg.out, summary, [d.get("markdown") for d in local.documents])
    finally:
        watch.__exit__()
    return summary


class _TaskFuture:
    """A Prefect task future seen through the two calls pipeline/batch.py makes on a
    ``concurrent.futures.Future``."""

    def __init__(self, future) -> None:
        self._future = future

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._future.wait(timeout)
        if not self._future.wrapped_future.done():
            raise TimeoutError
        result = self._future.result(raise_on_failure=False)
        return result if isinstance(result, BaseException) else None

    def result(self, timeout: float | None = None) -> Any:
        error = self.exception(timeout)
        if error is not None:
            raise error
        return self._future.result(raise_on_failure=False)


def _submit_pages(router: Router, pages: list[tuple[DocumentPlan, int]], label: str) -> _TaskFuture:
    return _TaskFuture(answer_pages_task.submit(router, pages, label))


def _submit_document(router: Router, plan: DocumentPlan, spec: TaskSpec, question: str | None) -> _TaskFuture:
    return _TaskFuture(answer_document_task.submit(router, plan, spec, question))


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
