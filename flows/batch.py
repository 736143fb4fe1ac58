"""The batch flow: pipeline/batch.py's run inside the ``extract-batch`` flow, with a Prefect
task per chunk of pages (``answer-pages``: render + answer every page-scope task,
PAGES_PER_TASK pages at a time, across document boundaries) and per document-scope unit
(``answer-document``); progress artifacts and the flow run's final state for the Prefect UI.
"""

from __future__ import annotations

import contextvars
import os
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
from pixtract.progress import Listener, Listeners
from pixtract.records import Record
from pixtract.route import Router
from pixtract.workers import sigterm_unwinds

from .apiwatch import ApiWatch
from .artifacts import RunArtifacts
from .localrun import LocalRun

# Secrets never travel as flow parameters (Prefect stores those in plain text). A deployment's
# worker gets the PDF password from this environment variable; an in-process run hands it over
# on its LocalRun, so it is not left in os.environ for later runs or child processes.
PASSWORD_ENV = "PIXTRACT_PDF_PASSWORD"


def pdf_password() -> str | None:
    local = _LOCAL_RUN.get()
    return (local.password if local is not None else None) or os.environ.get(PASSWORD_ENV)


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
                 artifacts: bool = True, extra: dict[str, Any] | None = None,
                 listener: Listener | None = None) -> dict[str, Any]:
    """The body of the batch flow (call it inside a flow run): pipeline/batch.py's run, with
    Prefect tasks as its executor, the flow run's logger, progress artifacts, and the Prefect
    API watched (see flows/apiwatch.py). ``listener`` hears the run's progress too, besides
    those an in-process caller put in its run's context (the command line's progress bar)."""
    local = _LOCAL_RUN.get() or LocalRun()
    # Once stopped or once the API is gone, no more Prefect API calls: it may be gone with the signal.
    art = RunArtifacts(f"pages answered, {os.path.basename(cfg.out.rstrip(os.sep)) or cfg.out}",
                       alive=lambda: not (local.api_lost.is_set() or local.stop.is_set())) if artifacts else None
    heard = Listeners(*(x for x in (art, listener) if x is not None))
    watch = ApiWatch.for_current_api(local.api_lost).__enter__()
    try:
        summary = batch.run(cfg, submit_pages=_submit_pages, submit_document=_submit_document,
                            listener=heard, control=local, part=part, report=report,
                            thumbs_dir=thumbs_dir, extra=extra, log=get_run_logger())
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


def run_batch(cfg: RunConfig, local: LocalRun | None = None) -> dict[str, Any]:
    """Run the flow in this process (Prefect's ephemeral API unless PREFECT_API_URL is set);
    returns the run summary whatever the outcome, and raises what stopped the run early."""
    cfg.validate()
    local = local or LocalRun()
    local.password = cfg.password
    runner = ThreadPoolTaskRunner(max_workers=cfg.concurrency)
    token = _LOCAL_RUN.set(local)
    try:
        with sigterm_unwinds():  # a no-op on the CLI's flow thread: there flows/interrupt.py decides
            state = extract_batch.with_options(task_runner=runner)(cfg.public(), return_state=True)
    finally:
        _LOCAL_RUN.reset(token)
        local.password = None
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result
