"""The unit of work: one answer a run owes, and the records that settle it.

A unit is a task (with its question, for ``ask``) on one page, or on a whole document for a
document-scope task. Every input page ends as exactly one record per page-scope unit, and
every readable document as one record per document-scope unit; the ledger (pipeline/ledger.py)
checks that. So every place that plans units, counts them or writes a record for one that
failed, was skipped or was lost with its part asks this module, and a record is built for a
unit in one place (``Unit.record``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .config import RunConfig, TaskSpec
from .records import STATUS_FAILED, STATUS_SKIPPED, ErrorInfo, Record


@dataclass(frozen=True)
class Unit:
    document: str
    sha256: str | None
    page: int | None  # None: the whole document (a document-scope task, or a document never read)
    task: TaskSpec
    question: str | None = None

    @property
    def key(self) -> tuple:
        """What the ledger counts: the same tuple as ``ledger.unit_key`` of the unit's record."""
        return (self.document, self.sha256, self.page, self.task.kind, self.question)

    def record(self, **fields) -> Record:
        """The unit's record; ``fields`` say how it was settled (status, route, answer, ...)."""
        fields.setdefault("route", None)
        fields.setdefault("scope", self.task.scope)
        fields.setdefault("schema", self.task.schema_name)
        return Record(document=self.document, sha256=self.sha256, page=self.page, task=self.task.kind,
                      question=self.question, **fields)

    def failed(self, error: ErrorInfo | BaseException, **fields) -> Record:
        err = error if isinstance(error, ErrorInfo) else ErrorInfo.from_exception(error)
        return self.record(status=STATUS_FAILED, error=err, **fields)

    def skipped(self, error: ErrorInfo, **fields) -> Record:
        return self.record(status=STATUS_SKIPPED, error=error, **fields)


def units_of(cfg: RunConfig, document: str, sha256: str | None, pages: Iterable[int] | None, *,
             scopes: Iterable[str] = ("page", "document")) -> Iterator[Unit]:
    """The units a document owes for ``pages`` (page-scope tasks: one per page and question)
    and for the document itself (document-scope tasks), limited to ``scopes``. With ``pages``
    None the document could not be read: every task owes one unit for the whole document."""
    scopes = set(scopes)
    for task in cfg.tasks:
        if task.scope not in scopes:
            continue
        for q in task.units():
            if pages is None or task.scope == "document":
                yield Unit(document, sha256, None, task, q)
            else:
                yield from (Unit(document, sha256, n, task, q) for n in pages)


def count_units(cfg: RunConfig, pages: int | None, *, document_units: bool = True) -> dict[str, int]:
    """Records a document (``pages`` None: unreadable) or a slice of ``pages`` pages must end
    with, per task: the ledger's "planned" column."""
    out: dict[str, int] = {}
    scopes = ("page", "document") if document_units else ("page",)
    for unit in units_of(cfg, "", None, None if pages is None else range(pages), scopes=scopes):
        out[unit.task.kind] = out.get(unit.task.kind, 0) + 1
    return out


def failed_document(cfg: RunConfig, document: str, sha256: str | None, error: ErrorInfo | BaseException) -> list[Record]:
    """One failed record per unit of a document that could not be read at all."""
    return [u.failed(error) for u in units_of(cfg, document, sha256, None)]
