"""The plain half of scheduled inbox runs (``flows/inbox.py`` holds the Prefect flows): the
index of documents already done, dated run folders, planning the parts a run fans out into,
and merging the parts' outputs into one run folder with one ledger.

``<out>/index.json`` maps the SHA-256 of each document's bytes to {path, status, run, updated};
a document whose last run did not succeed is retried by the next. Parts write their records
under ``<run>/.pixtract/parts/<NNN>/``; merge_parts writes them in input order through the
ordinary output writer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .batch import Slice
from .config import RunConfig
from .discover import DiscoveryFailure
from .errors import InputError, PixtractError, UsageError
from .files import atomic_write, locked
from .outcome import BATCH_PENDING
from .outputs import MANIFEST, WORK_DIR, OutputWriter, read_results
from .records import (
    BUDGET_EXCEEDED,
    INTERRUPTED,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    Document,
    ErrorInfo,
    Record,
)
from .render import count_pages
from .units import count_units, failed_document, units_of

INDEX = "index.json"
RUNS_DIR = "runs"
PARTS_DIR = "parts"  # under <run>/.pixtract/
CONFIG_SNAPSHOT = "config.json"  # <run>/.pixtract/config.json: the run's public configuration
PART_INFO = "part.json"  # which worker, host and process ran a part
PART_PROGRESS = "progress.json"
BUDGET_FILE = "budget.json"  # <run>/.pixtract/budget.json: the spend of every part (pipeline/guards.py)
DEFAULT_PAGES_PER_PART = 50

# index statuses; anything but "ok" is retried by the next run
INDEX_OK, INDEX_FAILED, INDEX_SKIPPED = STATUS_OK, STATUS_FAILED, STATUS_SKIPPED
INDEX_DEGRADED = "degraded"  # answered, some by a fallback: the next run retries the planned route
# never answered, so the next run selects the document again (a batch-mode unit: to collect it)
_NOT_ANSWERED = (BUDGET_EXCEEDED, INTERRUPTED, BATCH_PENDING)


class InboxError(PixtractError):
    type = "inbox_error"


# --------------------------------------------------------------------------- the index


def document_status(records: Iterable[Record]) -> str:
    """``failed`` if any record failed, ``skipped`` if any unit was never answered (budget,
    interrupted, waiting in a batch job), ``degraded`` if a fallback answered some, else ``ok``. A chart page with no
    chart is a final answer. Only ``ok`` documents are left alone by the next run."""
    status = INDEX_OK
    for r in records:
        if r.status == STATUS_FAILED:
            return INDEX_FAILED
        if r.status == STATUS_SKIPPED and r.error is not None and r.error.type in _NOT_ANSWERED:
            status = INDEX_SKIPPED
        elif r.status == STATUS_OK and r.degraded and status == INDEX_OK:
            status = INDEX_DEGRADED
    return status


def needs_run(entry: dict[str, Any] | None) -> bool:
    return entry is None or entry.get("status") != INDEX_OK


class InboxIndex:
    """``<root>/index.json``: sha256 -> {path, status, run, updated}.

    Updates are read-modify-write under an exclusive lock (``<root>/.pixtract/index.lock``) and
    land with an atomic rename, so a reader never sees a torn index and concurrent runs never
    lose each other's entries."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = os.path.join(root, INDEX)
        self.lock_path = os.path.join(root, WORK_DIR, "index.lock")

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise InboxError(f"cannot read the inbox index {self.path}: {e}") from None
        if not isinstance(data, dict):
            raise InboxError(f"the inbox index {self.path} is not a JSON object")
        return data

    def select(self, items: Iterable[Document | DiscoveryFailure]) -> tuple[list, list]:
        """(to process, unchanged): new or changed documents (a SHA-256 not in the index) and
        ones whose last run did not succeed are processed; the rest are left alone. A file that
        could not even be hashed is always tried (and fails, visibly)."""
        index = self.load()
        todo, unchanged = [], []
        for item in items:
            if item.sha256 is None or needs_run(index.get(item.sha256)):
                todo.append(item)
            else:
                unchanged.append(item)
        return todo, unchanged

    def update(self, entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Merge ``entries`` (sha256 -> entry) into the index, atomically; returns the new index."""
        with locked(self.lock_path):
            index = self.load()
            index.update(entries)
            atomic_write(self.path, json.dumps(index, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return index


def index_entries(documents: Iterable[tuple[str, str | None, list[Record]]], run: str,
                  when: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """Index entries for (path, sha256, records) of one run; the worse status wins when the
    same bytes sat under two names."""
    when = when or dt.datetime.now(dt.timezone.utc)
    rank = {INDEX_OK: 0, INDEX_DEGRADED: 1, INDEX_SKIPPED: 2, INDEX_FAILED: 3}
    out: dict[str, dict[str, Any]] = {}
    for path, sha, records in documents:
        if not sha:
            continue
        status = document_status(records)
        old = out.get(sha)
        if old is None or rank[status] > rank[old["status"]]:
            out[sha] = {"path": path, "status": status, "run": run, "updated": when.isoformat(timespec="seconds")}
    return out


@contextlib.contextmanager
def inbox_lock(root: str) -> Iterator[None]:
    """One run per inbox at a time (``<root>/.pixtract/inbox.lock``); a second run stops at once."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(locked(os.path.join(root, WORK_DIR, "inbox.lock"), wait=False))
        except BlockingIOError:
            raise InboxError(f"another run of the inbox {root} is in progress") from None
        yield


# --------------------------------------------------------------------------- run folders and parts


def run_name(when: dt.datetime) -> str:
    """The dated run folder's name, in UTC: ``2026-11-22T020000Z``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")


def claim_run_dir(root: str, name: str, owner: str) -> str:
    """``<root>/runs/<name>``, made for ``owner`` (a flow run id). The same owner gets the same
    folder back (a retried run resumes); another owner gets ``<name>-2``, ``-3``, ..."""
    base = os.path.join(root, RUNS_DIR)
    os.makedirs(base, exist_ok=True)
    for i in range(1, 1000):
        path = os.path.join(base, name if i == 1 else f"{name}-{i}")
        marker = os.path.join(path, WORK_DIR, "owner")
        try:
            os.mkdir(path)
        except FileExistsError:
            try:
                with open(marker, encoding="utf-8") as f:
                    if f.read().strip() == owner:
                        return path
            except OSError:
                pass
            continue
        atomic_write(marker, owner + "\n")
        return path
    raise InboxError(f"too many runs named {name} under {base}")


@dataclass
class PartSpec:
    """One child run: whole documents packed up to a page budget, or pages ``first``..``last``
    of one big document. ``documents`` holds {"path", "sha256", "pages"} (pages None: the
    document could not be opened here; its part reports why)."""

    part: str
    documents: list[dict[str, Any]]
    first: int | None = None
    last: int | None = None
    doc_units: bool = True

    @property
    def slice(self) -> Slice:
        return Slice(self.first, self.last, self.doc_units)

    @property
    def chunk(self) -> bool:
        return self.first is not None

    def page_count(self) -> int:
        """Pages this part answers (a document that cannot be opened counts as one)."""
        if self.chunk:
            return len(self.slice.pages(self.documents[0]["pages"]))
        return sum(d["pages"] or 1 for d in self.documents)

    def label(self) -> str:
        first = os.path.basename(self.documents[0]["path"])
        if self.chunk:
            return f"{first} p{self.first}-{self.last}"
        return first + (f" +{len(self.documents) - 1}" if len(self.documents) > 1 else "")


def plan_parts(items: Iterable[Document | DiscoveryFailure], pages_per_part: int,
               password: str | None = None) -> list[PartSpec]:
    """Parts for the selected documents, in input order: consecutive documents are packed into
    one part up to ``pages_per_part`` pages (each part is a process on some worker, which costs
    seconds to start), and a longer document is split into chunks of ``pages_per_part`` pages,
    the first carrying its document-scope units."""
    if pages_per_part < 1:
        raise UsageError("pages_per_part must be at least 1")
    raw: list[tuple[list[dict[str, Any]], int | None, int | None, bool]] = []
    pack: list[dict[str, Any]] = []
    packed = 0

    def flush() -> None:
        nonlocal pack, packed
        if pack:
            raw.append((pack, None, None, True))
        pack, packed = [], 0

    for item in items:
        pages = None
        if isinstance(item, Document):
            try:
                pages = count_pages(item, password)
            except InputError:
                pages = None  # the part reports why, as failed records
        doc = {"path": item.path, "sha256": item.sha256, "pages": pages}
        if pages is not None and pages > pages_per_part:
            flush()
            for first in range(1, pages + 1, pages_per_part):
                raw.append(([doc], first, min(pages, first + pages_per_part - 1), first == 1))
            continue
        if pack and packed + (pages or 1) > pages_per_part:
            flush()
        pack.append(doc)
        packed += pages or 1
    flush()
    width = max(3, len(str(len(raw))))
    return [PartSpec(f"{i + 1:0{width}d}", *r) for i, r in enumerate(raw)]


def part_dir(run_dir: str, part: str) -> str:
    return os.path.join(run_dir, WORK_DIR, PARTS_DIR, part)


def part_done(run_dir: str, part: str) -> bool:
    return os.path.exists(os.path.join(part_dir(run_dir, part), MANIFEST))


def part_progress(run_dir: str, spec: PartSpec) -> int:
    """Pages a part has answered so far (from its progress file)."""
    if part_done(run_dir, spec.part):
        return spec.page_count()
    try:
        with open(os.path.join(part_dir(run_dir, spec.part), PART_PROGRESS), encoding="utf-8") as f:
            return min(int(json.load(f).get("done", 0)), spec.page_count())
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


# --------------------------------------------------------------------------- merging


def _part_output(run_dir: str, spec: PartSpec) -> tuple[dict[str, dict], dict[str, list[Record]]] | None:
    """(manifest entry by document path, records by document path) of a finished part, or None."""
    folder = part_dir(run_dir, spec.part)
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
        records = read_results(folder)
    except (OSError, ValueError):
        return None
    entries = {e["path"]: e for e in manifest.get("inputs") or [] if isinstance(e, dict) and "path" in e}
    by_doc: dict[str, list[Record]] = {}
    for r in records:
        by_doc.setdefault(r.document, []).append(r)
    return entries, by_doc


def _missing_records(cfg: RunConfig, doc: dict[str, Any], spec: PartSpec, message: str) -> list[Record]:
    """Failed records for every unit of a chunk whose part never finished."""
    err, pages = ErrorInfo(PartFailed.type, message), doc["pages"]
    scopes = ("page", "document") if spec.doc_units else ("page",)
    return [u.failed(err, **({"pages": list(range(1, pages + 1))} if u.page is None else {}))
            for u in units_of(cfg, doc["path"], doc["sha256"], spec.slice.pages(pages), scopes=scopes)]


class PartFailed(PixtractError):
    type = "part_failed"


def merge_parts(writer: OutputWriter, cfg: RunConfig, run_dir: str, specs: list[PartSpec],
                why: dict[str, str] | None = None) -> list[tuple[str, str | None, list[Record]]]:
    """Write every part's documents into ``writer`` in input order, with one ledger for the
    run; a part that never finished becomes failed records (``why[part]`` says what happened).
    Returns (path, sha256, records) per document, for the index."""
    why = why or {}
    outputs = {spec.part: _part_output(run_dir, spec) for spec in specs}
    slots: dict[tuple[str, str | None], list[PartSpec]] = {}  # a document's parts, in input order
    for spec in specs:
        for d in spec.documents:
            slots.setdefault((d["path"], d["sha256"]), []).append(spec)
    done: list[tuple[str, str | None, list[Record]]] = []
    for (path, sha), pieces in slots.items():
        doc = next(d for d in pieces[0].documents if d["path"] == path)
        got = []  # (spec, entry or None, records)
        for spec in pieces:
            out = outputs[spec.part]
            got.append((spec, out[0].get(path) if out else None, out[1].get(path, []) if out else []))
        entry_ok = [(e, recs) for _, e, recs in got if e is not None and e.get("pages") is not None]
        unreadable = next(((e, recs) for _, e, recs in got if e is not None and e.get("pages") is None), None)
        if unreadable is not None or not entry_ok:
            if unreadable is not None:  # could not be read: one failed record per task unit
                entry, records = unreadable
                kind = entry.get("kind")
            else:
                spec = pieces[0]
                msg = f"{path}: part {spec.part} did not finish ({why.get(spec.part, 'no output')})"
                records, kind = failed_document(cfg, path, sha, PartFailed(msg)), None
            for task_kind, n in count_units(cfg, None).items():
                writer.ledger.plan(task_kind, n)
            writer.add_failure(records, kind)
            done.append((path, records[0].sha256 if records else sha, records))
            continue
        entry = entry_ok[0][0]
        pages = int(entry["pages"])
        records: list[Record] = []
        for spec, e, recs in got:
            if e is None:
                msg = f"{path}: part {spec.part} did not finish ({why.get(spec.part, 'no output')})"
                records += _missing_records(cfg, {**doc, "pages": pages}, spec, msg)
            else:
                records += recs
        document = Document(path=path, abspath=os.path.abspath(path), sha256=entry["sha256"],
                            kind=entry.get("kind") or "pdf", size=int(entry.get("bytes") or 0),
                            fmt=entry.get("format") or "")
        for task_kind, n in count_units(cfg, pages).items():
            writer.ledger.plan(task_kind, n)
        writer.add_document(document, pages, records)
        done.append((path, document.sha256, records))
    return done


class _PartProgress:
    """Writes ``progress.json`` (pages done of pages planned) in a part folder as pages finish,
    for the parent's progress artifact."""

    def __init__(self, folder: str, every: float = 0.5) -> None:
        self.path = os.path.join(folder, PART_PROGRESS)
        self.total = self.done = 0
        self.every, self._last = every, 0.0
        self._pages: set = set()

    def document(self, path: str, pages: int) -> None:
        self.total += pages

    def record(self, rec: Record) -> None:
        if rec.page is not None and (rec.document, rec.page) not in self._pages:
            self._pages.add((rec.document, rec.page))
            self.done += 1
            if time.monotonic() - self._last >= self.every or self.done >= self.total:
                self._last = time.monotonic()
                with contextlib.suppress(OSError):
                    atomic_write(self.path, json.dumps({"done": self.done, "total": self.total}))


def load_snapshot(run_dir: str) -> dict[str, Any]:
    with open(os.path.join(run_dir, WORK_DIR, CONFIG_SNAPSHOT), encoding="utf-8") as f:
        return json.load(f)
