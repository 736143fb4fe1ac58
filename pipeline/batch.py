"""A whole batch run without Prefect: discover, plan, answer pages in chunks, write documents
in input order. ``flows/batch.py`` runs the same code inside a Prefect flow.

Pages are answered PAGES_PER_TASK at a time, across document boundaries; chunks share one
bounded window of in-flight futures and their pages run on the router's worker threads.
Documents are written as soon as all their records are in, so memory does not grow with the
batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .config import RunConfig
from .records import STATUS_FAILED, ErrorInfo, Record
from .plan import DocumentPlan

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


def slice_units(cfg: RunConfig, pages: int, doc_units: bool = True) -> dict[str, int]:
    """Records a slice of ``pages`` pages of a readable document must end with, per task."""
    out: dict[str, int] = {}
    for t in cfg.tasks:
        if t.scope == "document" and not doc_units:
            continue
        n = len(t.units())
        out[t.kind] = out.get(t.kind, 0) + (n if t.scope == "document" else n * pages)
    return out
