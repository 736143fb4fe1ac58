"""Prefect artifacts of a run: progress (pages answered of pages planned), pages per task, route
and status with their cost, and a summary linking the output files, for whoever watches the
Prefect UI. Writing one never fails the run.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import get_run_logger

from pixtract.records import Record


def artifact_call(fn, *args, **kw):
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

    A listener of the run's progress (``document``/``record``, pixtract.progress) or fed by hand
    (``set_progress``, ``add``)."""

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
        self.id = artifact_call(create_progress_artifact, progress=0.0, description=description)

    # a listener of the run's progress (pixtract.progress)
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
            artifact_call(update_progress_artifact, artifact_id=self.id, progress=round(self._want, 2))

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
        artifact_call(create_table_artifact, key="pixtract-pages", table=rows,
                       description="records per task, route and status, with their cost (USD)")
        artifact_call(create_markdown_artifact, key="pixtract-summary",
                       markdown=summary_markdown(out, summary, markdown_files, title=title, more=more, links=links),
                       description="where the outputs are")


MAX_LINKED_MARKDOWN = 100  # the summary artifact stays small for big batches


def file_link(path: str) -> str:
    from pathlib import Path

    return Path(os.path.abspath(path)).as_uri()


def summary_markdown(out: str, summary: dict[str, Any], markdown_files, *, title: str = "pixtract run",
                     more: str = "", links: list[tuple[str, str]] | None = None) -> str:
    """A short Markdown summary of a run, linking its output files."""
    by_status = summary.get("by_status", {})
    ledger = summary.get("ledger") or {}
    lines = [f"# {title}: {summary.get('outcome', 'done').upper()}", "",
             f"**{summary.get('headline', '')}**", "",
             f"* output folder: [{out}]({file_link(out)})",
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
    lines += [f"* [{name}]({file_link(path)})" for name, path in files]
    if len(md) > MAX_LINKED_MARKDOWN:
        lines.append(f"* ... and {len(md) - MAX_LINKED_MARKDOWN} more Markdown files in the output folder")
    return "\n".join(lines) + "\n"
