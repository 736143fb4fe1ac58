"""Scheduled inbox runs, fanned out over Prefect workers.

A job file names an input folder (``inputs``) and an output root (``out``). Each run of the
``inbox-batch`` flow:

1. finds the documents that are new or changed since earlier runs, or failed last time, by the
   SHA-256 of their bytes, against ``<out>/index.json`` (sha256 -> {path, status, run, updated});
2. splits them into parts (one document, or a chunk of ``pages_per_part`` pages of a big one)
   and runs each part as its own ``extract-part`` flow run: on the work pool through the part
   deployment (``run_deployment(..., timeout=0)``, so any worker on any machine picks it up), or
   in this process when there is no part deployment;
3. waits for the parts, which write their records under ``<run>/.pixtract/parts/<NNN>/`` on the
   shared filesystem, and merges them with the ordinary output writer into one dated run folder
   ``<out>/runs/<YYYY-MM-DDTHHMMSSZ>/``: results.jsonl, one Markdown file per document,
   manifest.json with ONE ledger, report.html; thumbnails are shared under ``thumbs/``;
4. updates the index atomically: a document with any failed record is retried by the next run,
   one that succeeded is never sent again.

API keys never travel as parameters: a part reads them from its worker's environment, or from
the Prefect ``Secret`` block the job file names (``[endpoint] api_key_secret = "mistral-key"``),
resolved inside the part's own process into a process environment variable.

The index logic at the top of this module is plain Python (tests/test_inbox.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from prefect import flow, get_run_logger

from pixtract.flows import progress
from pixtract.flows.batch import (
    pdf_password,
    RunArtifacts,
    Slice,
    document_failures,
    expected_units,
    extract_into,
    flow_state,
)
from pixtract.config import RunConfig, build_config, env_layer, load_job
from pixtract.discover import DiscoveryFailure, discover
from pixtract.errors import InputError, PixtractError, UsageError
from pixtract.guards import read_shared_spend
from pixtract.ledger import format_ledger
from pixtract.manifest import build_manifest
from pixtract.outputs import (
    MANIFEST,
    WORK_DIR,
    OutputWriter,
    atomic_write,
    read_results,
)
from pixtract.records import (
    BUDGET_EXCEEDED,
    INTERRUPTED,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    Document,
    ErrorInfo,
    Record,
)
from pixtract.render import count_pages
from pixtract.units import units_of
from pixtract.report import build_report
from pixtract.workers import WorkerSettings, running_workers

INDEX = "index.json"
RUNS_DIR = "runs"
PARTS_DIR = "parts"  # under <run>/.pixtract/
CONFIG_SNAPSHOT = "config.json"  # <run>/.pixtract/config.json: the run's public configuration
PART_INFO = "part.json"  # which worker, host and process ran a part
PART_PROGRESS = "progress.json"
BUDGET_FILE = "budget.json"  # <run>/.pixtract/budget.json: the spend of every part (pipeline/guards.py)
DEFAULT_PAGES_PER_PART = 50
PARENT_FLOW, PART_FLOW = "inbox-batch", "extract-part"

# index statuses; anything but "ok" is retried by the next run
INDEX_OK, INDEX_FAILED, INDEX_SKIPPED = STATUS_OK, STATUS_FAILED, STATUS_SKIPPED
INDEX_DEGRADED = "degraded"  # answered, some by a fallback: the next run retries the planned route
_NOT_ANSWERED = (BUDGET_EXCEEDED, INTERRUPTED)


class InboxError(PixtractError):
    type = "inbox_error"


# --------------------------------------------------------------------------- the index


def document_status(records: Iterable[Record]) -> str:
    """``failed`` if any record failed, ``skipped`` if any unit was never answered (budget,
    interrupted), ``degraded`` if a fallback answered some, else ``ok``. A chart page with no
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

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        import fcntl

        os.makedirs(os.path.dirname(self.lock_path), exist_ok=True)
        with open(self.lock_path, "a") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def update(self, entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Merge ``entries`` (sha256 -> entry) into the index, atomically; returns the new index."""
        with self.locked():
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
    import fcntl

    path = os.path.join(root, WORK_DIR, "inbox.lock")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InboxError(f"another run of the inbox {root} is in progress") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


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
                records, kind = document_failures(path, sha, cfg, PartFailed(msg)), None
            for task_kind, n in expected_units(cfg, None).items():
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
        for task_kind, n in expected_units(cfg, pages).items():
            writer.ledger.plan(task_kind, n)
        writer.add_document(document, pages, records)
        done.append((path, document.sha256, records))
    return done


# --------------------------------------------------------------------------- secrets


def resolve_secrets(cfg: RunConfig) -> list[str]:
    """Load the Prefect Secret blocks the job names into process environment variables of
    this process and point the endpoints at them; the values go nowhere else. Returns the
    variables set."""
    set_vars = []
    for label, spec in (("ENDPOINT", cfg.endpoint), ("VISION_ALT", cfg.vision_alt)):
        if spec is None or not spec.remote or not spec.api_key_secret:
            continue
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(spec.api_key_secret).get()
        except Exception as e:  # noqa: BLE001 - the block is missing or unreadable
            raise UsageError(f"cannot load the Prefect Secret block {spec.api_key_secret!r}: "
                             f"{type(e).__name__}") from None
        var = f"PIXTRACT_SECRET_{label}"
        os.environ[var] = str(value)
        spec.api_key_env = var
        set_vars.append(var)
    return set_vars


def check_secret_blocks(cfg: RunConfig) -> None:
    """Fail before fanning out when a named Secret block does not exist (its value is not read)."""
    for spec in (cfg.endpoint, cfg.vision_alt):
        if spec is not None and spec.remote and spec.api_key_secret:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                try:
                    client.read_block_document_by_name(spec.api_key_secret, "secret", include_secrets=False)
                except Exception as e:  # noqa: BLE001
                    raise UsageError(f"the job names the Prefect Secret block {spec.api_key_secret!r}, "
                                     f"which cannot be read ({type(e).__name__}); create it with "
                                     f"Secret(value=...).save({spec.api_key_secret!r})") from None


# --------------------------------------------------------------------------- the flows


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


@flow(name=PART_FLOW, log_prints=False, retries=1, retry_delay_seconds=5)
def extract_part(run_dir: str, part: str, documents: list[str], first_page: int | None = None,
                 last_page: int | None = None, doc_units: bool = True) -> dict[str, Any]:
    """One part of an inbox run: ``documents`` (of one document, only pages ``first_page``..
    ``last_page``), with the run's configuration, into ``<run_dir>/.pixtract/parts/<part>/``."""
    log = get_run_logger()
    cfg = RunConfig.from_public(load_snapshot(run_dir), password=pdf_password())
    folder = part_dir(run_dir, part)
    cfg.inputs, cfg.out = list(documents), folder
    cfg.validate()
    secret_vars = resolve_secrets(cfg)
    who = {"part": part, "worker": os.environ.get("PREFECT__WORKER_NAME") or os.environ.get("PIXTRACT_WORKER"),
           "host": socket.gethostname(), "pid": os.getpid(), "flow_run_id": _flow_run_id(),
           "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    os.makedirs(folder, exist_ok=True)
    atomic_write(os.path.join(folder, PART_INFO), json.dumps(who, indent=2) + "\n")
    log.info("part %s: %d document(s)%s on %s (worker %s, pid %s)", part, len(documents),
             f", pages {first_page}-{last_page} of {documents[0]}" if first_page else "", who["host"], who["worker"],
             who["pid"])
    listener = _PartProgress(folder)
    unsubscribe = progress.subscribe(listener)
    try:
        summary = extract_into(cfg, part=Slice(first_page, last_page, doc_units), report=False,
                               thumbs_dir=run_dir, extra={"part": who})
    finally:
        unsubscribe()
        for var in secret_vars:  # in-process parts share the parent's environment
            os.environ.pop(var, None)
    return {"part": part, "records": summary["records"], "by_status": summary["by_status"],
            "worker": who["worker"], "host": who["host"], "pid": who["pid"]}


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.get_id()) if flow_run.get_id() else None


def _scheduled_time() -> dt.datetime:
    from prefect.runtime import flow_run

    try:
        when = flow_run.get_scheduled_start_time()
        return dt.datetime.fromisoformat(when.isoformat())
    except Exception:  # noqa: BLE001
        return dt.datetime.now(dt.timezone.utc)


def job_config(job: str) -> RunConfig:
    """The job file with the environment over it (``PIXTRACT_*``); raises UsageError."""
    return build_config(load_job(job), env_layer()).validate()


@flow(name=PARENT_FLOW, log_prints=False)
def inbox_batch(job: str, part_deployment: str | None = None, pages_per_part: int = DEFAULT_PAGES_PER_PART,
                wait_hours: float = 24.0, poll_seconds: float = 2.0) -> dict[str, Any]:
    """One scheduled run of the inbox the job file ``job`` describes (see the module doc).

    ``part_deployment`` (``extract-part/<name>``) sends every part to the work pool; without
    it the parts run one after another in this process."""
    log = get_run_logger()
    started = dt.datetime.now(dt.timezone.utc)
    cfg = job_config(job)
    root = os.path.abspath(cfg.out)
    with inbox_lock(root):
        summary = _inbox_run(log, cfg, root, started, part_deployment, pages_per_part, wait_hours, poll_seconds)
    # The night's outcome on the flow run itself: Completed, "Degraded" or "Incomplete".
    return flow_state(summary) if summary.get("outcome") else summary


def _inbox_run(log, cfg: RunConfig, root: str, started: dt.datetime, part_deployment: str | None,
               pages_per_part: int, wait_hours: float, poll_seconds: float) -> dict[str, Any]:
    index = InboxIndex(root)
    todo, unchanged = index.select(discover(cfg.inputs))
    art = RunArtifacts(f"pages answered in this inbox run ({len(todo)} documents)")
    inbox_info = {"root": root, "index": index.path, "selected": len(todo), "unchanged": len(unchanged)}
    if not todo:
        log.info("inbox %s: nothing new (%d documents unchanged)", root, len(unchanged))
        art.set_progress(1, 1, force=True)
        _nothing_new(root, index.path, len(unchanged))
        return {"run": None, "run_dir": None, "records": 0, "by_status": {}, "inbox": inbox_info}
    check_secret_blocks(cfg)
    owner = _flow_run_id() or f"local-{os.getpid()}-{time.time_ns()}"
    name = run_name(_scheduled_time())
    run_dir = claim_run_dir(root, name, owner)
    name = os.path.basename(run_dir)
    snapshot = cfg.public()
    snapshot.update(out=run_dir, cache_dir=os.path.abspath(cfg.cache_path()))
    if cfg.budget_usd is not None:  # one limit for the whole run: every part reserves against it
        snapshot["budget_file"] = os.path.join(run_dir, WORK_DIR, BUDGET_FILE)
    atomic_write(os.path.join(run_dir, WORK_DIR, CONFIG_SNAPSHOT), json.dumps(snapshot, indent=2) + "\n")
    plan_path = os.path.join(run_dir, WORK_DIR, "parts.json")
    if os.path.exists(plan_path):  # a retried run keeps its plan (and its finished parts)
        with open(plan_path, encoding="utf-8") as f:
            specs = [PartSpec(**d) for d in json.load(f)]
    else:
        with running_workers(WorkerSettings.for_run(cfg, 1)):  # counting pages opens every document
            specs = plan_parts(todo, pages_per_part, cfg.password)
        atomic_write(plan_path, json.dumps([asdict(s) for s in specs], indent=2) + "\n")
    total_pages = sum(s.page_count() for s in specs)
    log.info("inbox %s: %d new, changed or retried documents (%d unchanged) in %d parts, %d pages -> %s",
             root, len(todo), len(unchanged), len(specs), total_pages, run_dir)
    why = _run_parts(log, art, run_dir, specs, total_pages, part_deployment, wait_hours, poll_seconds)

    run_cfg = RunConfig.from_public(snapshot, password=cfg.password)
    writer = OutputWriter(run_dir, cfg.page_marker, cfg.annotated_markdown)
    try:
        documents = merge_parts(writer, run_cfg, run_dir, specs, why)
    except BaseException:
        writer.abort()
        raise
    summary = writer.summary()
    parts_info, problems, spent, refused = _parts_info(run_dir, specs, why)
    if snapshot.get("budget_file") and os.path.exists(snapshot["budget_file"]):
        # the shared spend also counts what parts spent in attempts that crashed
        spent = sum(e["spent"] for e in read_shared_spend(snapshot["budget_file"]).values())
    finished = dt.datetime.now(dt.timezone.utc)
    inbox_info.update(run=name, parts=len(specs), pages_per_part=pages_per_part)
    writer.finish(build_manifest(
        config=snapshot, documents=writer.documents, summary=summary, started=started, finished=finished,
        extra={"outcome": summary["outcome"], "headline": summary["headline"],
               "ledger": summary["ledger"], "model_problems": problems,
               "budget": {"limit_usd": cfg.budget_usd, "spent_usd": round(spent, 6), "refused_requests": refused,
                          "per": "run"},
               "inbox": inbox_info, "parts": parts_info}))
    build_report(run_dir)
    index.update(index_entries(documents, name, finished))
    for _, _, recs in documents:
        for r in recs:
            art.add(r)
    workers = sorted({p["worker"] or p["host"] for p in parts_info if p.get("host")})
    retried = sum(1 for _, _, recs in documents if document_status(recs) != INDEX_OK)
    art.finish(run_dir, summary, [d.get("markdown") for d in writer.documents], title=f"inbox run {name}",
               more=f"* inbox: {len(todo)} documents new, changed or retried; {len(unchanged)} unchanged; "
                    f"{retried} to retry next run\n* parts: {len(specs)} on {', '.join(workers) or 'no worker'}",
               links=[("index.json", index.path)])
    log.info("%s", summary["headline"])
    log.info("%s", format_ledger(summary["ledger"]))
    log.info("inbox run %s: %d records for %d documents", name, summary["records"], len(documents))
    return {**summary, "run": name, "run_dir": run_dir, "inbox": inbox_info, "workers": workers}


def _nothing_new(root: str, index_path: str, unchanged: int) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from pixtract.flows.batch import _artifact_call, _file_link

    _artifact_call(create_table_artifact, key="pixtract-pages", description="records per task, route and status",
                   table=[{"task": "-", "route": "-", "status": "-", "records": 0, "cost_usd": 0.0}])
    _artifact_call(create_markdown_artifact, key="pixtract-summary", description="where the outputs are",
                   markdown=f"# inbox run: nothing new\n\n* inbox: [{root}]({_file_link(root)})\n"
                            f"* {unchanged} documents unchanged since earlier runs\n"
                            f"* [index.json]({_file_link(index_path)})\n")


def _run_parts(log, art: RunArtifacts, run_dir: str, specs: list[PartSpec], total_pages: int,
               part_deployment: str | None, wait_hours: float, poll_seconds: float) -> dict[str, str]:
    """Run every unfinished part; returns {part: what happened} for parts that did not complete."""
    why: dict[str, str] = {}
    todo = [s for s in specs if not part_done(run_dir, s.part)]  # a retried run keeps finished parts
    params = {s.part: {"run_dir": run_dir, "part": s.part, "documents": [d["path"] for d in s.documents],
                       "first_page": s.first, "last_page": s.last, "doc_units": s.doc_units} for s in todo}

    def show() -> None:
        art.set_progress(sum(part_progress(run_dir, s) for s in specs), total_pages)

    if not part_deployment:
        for s in todo:
            state = extract_part(**params[s.part], return_state=True)
            if not state.is_completed():
                why[s.part] = f"{state.type.value.lower()}: {state.message or ''}".strip()
            show()
        return why

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    parent = f"{_flow_run_id() or 'local'}:{flow_run.get_run_count()}"  # a retried run starts new parts
    waiting = {}
    for s in todo:
        fr = run_deployment(name=part_deployment, parameters=params[s.part], timeout=0,
                            flow_run_name=f"part {s.part}: {s.label()}",
                            idempotency_key=f"{parent}:{s.part}")
        waiting[fr.id] = s.part
    log.info("submitted %d parts to %s", len(waiting), part_deployment)
    deadline = time.monotonic() + wait_hours * 3600
    with get_client(sync_client=True) as client:
        while waiting and time.monotonic() < deadline:
            time.sleep(poll_seconds)
            ids = list(waiting)
            for i in range(0, len(ids), 200):
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids[i:i + 200])),
                                             limit=200)
                for r in runs:
                    if r.state is not None and r.state.is_final():
                        part = waiting.pop(r.id)
                        if not r.state.is_completed():
                            why[part] = f"{r.state.type.value.lower()}: {r.state.message or ''}".strip()
                            log.warning("part %s ended %s", part, r.state.type.value)
            show()
    for part in waiting.values():
        why[part] = f"not finished after {wait_hours} h"
        log.warning("part %s: %s", part, why[part])
    return why


def _parts_info(run_dir: str, specs: list[PartSpec], why: dict[str, str]):
    info, problems, spent, refused = [], [], 0.0, 0
    for s in specs:
        folder = part_dir(run_dir, s.part)
        row: dict[str, Any] = {"part": s.part, "documents": [d["path"] for d in s.documents],
                               "first_page": s.first, "last_page": s.last}
        try:
            with open(os.path.join(folder, PART_INFO), encoding="utf-8") as f:
                row.update({k: v for k, v in json.load(f).items() if k in ("worker", "host", "pid", "flow_run_id")})
        except (OSError, ValueError):
            pass
        try:
            with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
                m = json.load(f)
            row["seconds"] = m.get("seconds")
            problems += [p for p in m.get("model_problems") or [] if p not in problems]
            spent += float((m.get("budget") or {}).get("spent_usd") or 0)
            refused += int((m.get("budget") or {}).get("refused_requests") or 0)
        except (OSError, ValueError):
            pass
        row["status"] = "completed" if s.part not in why else why[s.part]
        info.append(row)
    return info, problems, spent, refused


__all__ = [
    "INDEX", "InboxIndex", "PartSpec", "claim_run_dir", "document_status", "extract_part", "inbox_batch",
    "index_entries", "merge_parts", "plan_parts", "run_name",
]
