"""Step 6: records to files: results.jsonl, per document a clean Markdown file and a layout
JSON (and, when asked, an annotated Markdown file), manifest.json.

Every file appears whole or not at all: each is written to a temporary file in the same
folder, flushed to disk and renamed over its final name. results.jsonl grows in a spool file
under ``.pixtract/`` while the run goes on and is renamed into place at the end.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from typing import Any

from .files import atomic_write
from .records import NO_CHART, STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, Document, Record

RESULTS = "results.jsonl"
MANIFEST = "manifest.json"
WORK_DIR = ".pixtract"


def safe_name(name: str, fallback: str = "document") -> str:
    """A file name that stays inside the output folder: no separators, NUL, dots-only or controls."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = re.sub(r"[\\/:*?\"<>|]+", "_", name).strip(" .")
    return name[:150] or fallback


RESERVED_STEMS = {"manifest"}  # <stem>.json must not replace the run's manifest.json


class MarkdownNames:
    """Gives each input its own ``<stem>.md`` (and so ``<stem>.json``): a stem already taken by
    another input, or one of the run's own file names, gets the document's hash appended, and
    a counter if that is taken too (same bytes, two paths)."""

    def __init__(self) -> None:
        self._owner: dict[str, str] = {}  # file name (casefolded) -> input path

    def name_for(self, stem: str, sha256: str | None, path: str | None = None) -> str:
        base = safe_name(stem)
        owner = path or sha256 or ""
        candidates = [f"{base}.md", f"{base}-{(sha256 or 'nohash')[:8]}.md"]
        candidates += (f"{base}-{(sha256 or 'nohash')[:8]}-{i}.md" for i in range(2, 10_000))
        for name in candidates:
            if name[:-3].casefold() in RESERVED_STEMS:
                continue
            key = name.casefold()
            if self._owner.setdefault(key, owner) == owner:
                return name
        raise RuntimeError("unreachable")  # pragma: no cover


def _content_block(r: Record) -> str:
    """One record's answer as clean Markdown: the content only ("" for a record without one)."""
    if r.status != STATUS_OK:
        return ""
    if r.task == "extract":
        return f"```json\n{json.dumps(r.data, indent=2, ensure_ascii=False)}\n```\n"
    if r.task == "transcribe" or r.task == "ask":
        text = (r.answer or "").strip()
        if r.task == "ask":
            return f"**Q:** {r.question}\n\n**A:** {text}\n"
        return text + "\n" if text else ""
    return _answer_block(r)


def _answer_block(r: Record) -> str:
    """One record's answer as annotated Markdown."""
    if r.status != STATUS_OK:
        err = f"{r.error.type}: {r.error.message}" if r.error else (r.fallback_reason or r.status)
        label = f"page {r.page}" if r.page else "document"
        return f"> **{r.task} {label} {r.status.upper()}:** {err}\n"
    if r.task == "ask":
        return f"**Q:** {r.question}\n\n**A:** {(r.answer or '').strip()}\n"
    if r.task == "extract":
        valid = "valid" if (r.valid or {}).get("ok") else f"INVALID: {'; '.join((r.valid or {}).get('errors', []))}"
        return f"```json\n{json.dumps(r.data, indent=2, ensure_ascii=False)}\n```\n_schema {r.schema}: {valid}_\n"
    if r.task == "chart":
        rows = (r.data or {}).get("rows") or []
        table = ""
        if rows:
            head, *body = rows
            table = "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
            table += "".join("| " + " | ".join(row) + " |\n" for row in body)
        csv_name = (r.data or {}).get("csv")
        link = f"\n[data: {csv_name}]({csv_name})\n" if csv_name else ""
        return f"**Chart {r.region or ''}**\n\n{table}\n{(r.answer or '').strip()}\n{link}"
    text = (r.answer or "").strip()
    return text + "\n" if text else "_(blank page)_\n"


def _notes(r: Record) -> str:
    notes = []
    if r.fallback_reason and r.status == STATUS_OK:
        notes.append(f"> answered by `{r.route}` after: {r.fallback_reason}")
    if r.agreement is not None and (r.flags or r.agreement < 1):
        notes.append(f"> agreement with the text layer: {r.agreement:.2f}")
    for f in r.flags:
        notes.append(f"> ⚑ {f}")
    g = r.grounding
    if g and g.get("total"):
        missing = [i["value"] for i in g["items"] if not i["located"]]
        notes.append(f"> located on the page: {g['located']} of {g['total']} ({g['words']} words)")
        if missing and g.get("words") != "none":
            shown = "; ".join(m[:60] for m in missing[:8]) + ("; ..." if len(missing) > 8 else "")
            notes.append(f"> not found on the page: {shown}")
    return "\n".join(notes) + "\n" if notes else ""


def _by_page(records: list[Record]) -> dict[int, list[Record]]:
    by_page: dict[int, list[Record]] = {}
    for r in records:
        if r.page is not None:
            by_page.setdefault(r.page, []).append(r)
    return {p: sorted(rs, key=lambda r: (r.task != "transcribe", r.task, r.question or "", r.region or 0))
            for p, rs in sorted(by_page.items())}


def clean_markdown(records: list[Record], page_marker: str = "<!-- page {page} -->") -> str:
    """The content of one document and nothing else: document-scope answers, then each page's
    answers after ``page_marker`` (``{page}`` is the page number; "" for no marker). Routes,
    flags and agreement are in the layout JSON, the report and the annotated Markdown."""
    parts = [b for b in (_content_block(r) for r in records if r.page is None) if b]
    for page, recs in _by_page(records).items():
        blocks = [b for b in (_content_block(r) for r in recs) if b]
        marker = page_marker.replace("{page}", str(page)) if page_marker else ""
        parts.append("\n".join(([marker + "\n"] if marker else []) + blocks))
    return "\n".join(p.rstrip("\n") + "\n" for p in parts if p)


def document_markdown(doc_path: str, records: list[Record], total_pages: int) -> str:
    """The annotated Markdown of one document: document-level answers, then every page with a
    visible marker, its answers, and any fallback, cross-check and grounding notes."""
    parts = [f"# {doc_path}\n"]
    doc_level = [r for r in records if r.page is None]
    if doc_level:
        parts.append("## Whole document\n")
        parts += [_answer_block(r) + _notes(r) for r in doc_level]
    for page, recs in _by_page(records).items():
        where = ", ".join(sorted({f"{r.route or 'no route'}, {r.status}" for r in recs}))
        parts.append(f"<!-- pixtract page {page} of {total_pages}: {where} -->\n## Page {page}\n")
        for r in recs:
            parts.append(_answer_block(r) + _notes(r))
    return "\n".join(parts)


class OutputWriter:
    """Collects records as documents finish and writes the output files."""

    def __init__(self, out: str, page_marker: str = "<!-- page {page} -->", annotated: bool = False) -> None:
        from .ledger import Ledger

        self.out = out
        self.page_marker = page_marker
        self.annotated = annotated
        os.makedirs(os.path.join(out, WORK_DIR), exist_ok=True)
        self.spool_path = os.path.join(out, WORK_DIR, RESULTS + ".part")
        self._spool = open(self.spool_path, "w", encoding="utf-8")
        self.names = MarkdownNames()
        self.ledger = Ledger()
        self.documents: list[dict[str, Any]] = []
        self.counts: Counter[tuple[str, str, str]] = Counter()  # (task, status, route)
        self.tokens = Counter()
        self.tokens_paid = Counter()
        self.cost_usd = 0.0  # what the answers in the outputs cost, whichever run paid
        self.paid_usd = 0.0  # what this run paid
        self.records = 0
        self.cached = 0
        self.degraded: Counter[str] = Counter()  # route -> answers by a fallback rung
        self.failed: Counter[str] = Counter()  # error type -> failed records
        self.skipped: Counter[str] = Counter()  # reason -> skipped records
        self.blank = 0
        self.planned_route: str | None = None

    def _append(self, records: list[Record]) -> None:
        for r in records:
            self._spool.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
            self.counts[(r.task, r.status, r.route or "none")] += 1
            for k in ("input_tokens", "output_tokens", "pages"):
                self.tokens[k] += r.usage.get(k, 0)
                if not r.cached:
                    self.tokens_paid[k] += r.usage.get(k, 0)
            self.cost_usd += r.cost_usd
            self.paid_usd += r.paid_usd
            self.cached += r.cached
            self.records += 1
            self.blank += r.blank
            self.planned_route = self.planned_route or r.planned_route
            if r.status == STATUS_OK and r.degraded:
                self.degraded[r.route or "none"] += 1
            elif r.status == STATUS_FAILED:
                self.failed[r.error.type if r.error else "unknown"] += 1
            elif r.status == STATUS_SKIPPED:
                self.skipped[r.error.type if r.error else "unknown"] += 1
        self._spool.flush()
        self.ledger.add(records)

    def add_failure(self, records: list[Record], kind: str | None = None) -> None:
        """A document that could not be read: one record per task unit, no Markdown file."""
        self._append(records)
        first = records[0]
        self.documents.append(
            {"path": first.document, "sha256": first.sha256, "kind": kind, "pages": None,
             "status": STATUS_FAILED, "markdown": None,
             "error": first.error.message if first.error else None}
        )

    def add_document(self, doc: Document, pages: int, records: list[Record]) -> None:
        records = sorted(records, key=lambda r: (r.page or 0, r.task, r.question or "", r.region or 0))
        name = self.names.name_for(doc.stem, doc.sha256, doc.path)
        self._write_chart_tables(name[:-3], records)
        self._append(records)
        from .layout import document_layout

        stem = name[:-3]
        atomic_write(os.path.join(self.out, name), clean_markdown(records, self.page_marker))
        layout = document_layout(doc.path, doc.sha256, pages, records, self.out)
        atomic_write(os.path.join(self.out, stem + ".json"), json.dumps(layout, ensure_ascii=False) + "\n")
        entry = {"path": doc.path, "sha256": doc.sha256, "kind": doc.kind, "format": doc.fmt,
                 "bytes": doc.size, "pages": pages, "markdown": name, "layout": stem + ".json"}
        if self.annotated:
            atomic_write(os.path.join(self.out, stem + ".annotated.md"), document_markdown(doc.path, records, pages))
            entry["annotated"] = stem + ".annotated.md"
        failed = sum(r.status == STATUS_FAILED for r in records)
        entry["status"] = STATUS_OK if not failed else ("partial" if failed < len(records) else STATUS_FAILED)
        self.documents.append(entry)

    def _write_chart_tables(self, stem: str, records: list[Record]) -> None:
        from .answers import rows_to_csv

        for r in records:
            rows = (r.data or {}).get("rows") if r.task == "chart" and isinstance(r.data, dict) else None
            if r.status == STATUS_OK and rows:
                name = f"charts/{stem}-p{r.page}-c{r.region or 1}.csv"
                atomic_write(os.path.join(self.out, name), rows_to_csv(rows))
                r.data = {**r.data, "csv": name}

    def summary(self, interrupted: str | None = None) -> dict[str, Any]:
        """Counts, money and the ledger; ``outcome`` and ``headline`` say what they add up to
        (pipeline/outcome.py)."""
        from . import outcome

        by_status: Counter[str] = Counter()
        by_route: Counter[str] = Counter()
        for (task, status, route), n in self.counts.items():
            by_status[status] += n
            if status == STATUS_OK:
                by_route[route] += n
        not_answered = sum(self.failed.values()) + sum(n for k, n in self.skipped.items() if k != NO_CHART)
        summary = {
            "records": self.records,
            "by_status": dict(by_status),
            "ok_by_route": dict(by_route),
            "by_task": _by_task(self.counts),
            "planned_route": self.planned_route,
            "degraded": sum(self.degraded.values()),
            "degraded_by_route": dict(self.degraded),
            "failed": sum(self.failed.values()),
            "failed_by_type": dict(self.failed),
            "skipped_by_reason": dict(self.skipped),
            "not_answered": not_answered,
            "blank": self.blank,
            "usage": _usage(self.tokens),
            "usage_paid": _usage(self.tokens_paid),
            "cost_usd": round(self.cost_usd, 6),
            "paid_usd": round(self.paid_usd, 6),
            "cached": self.cached,
            "interrupted": interrupted,
            "ledger": self.ledger.check(),
        }
        summary["outcome"] = outcome.decide(summary)
        summary["exit_code"] = outcome.exit_code(summary)
        summary["headline"] = outcome.headline(summary)
        return summary

    def finish(self, manifest: dict[str, Any]) -> None:
        """Put results.jsonl in place and write manifest.json (last, so it marks a whole run)."""
        self._spool.close()
        with open(self.spool_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self.spool_path, os.path.join(self.out, RESULTS))
        atomic_write(os.path.join(self.out, MANIFEST), json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")

    def abort(self) -> None:
        self._spool.close()


def _by_task(counts: Counter) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (task, status, route), n in counts.items():
        t = out.setdefault(task, {"ok": {}, "failed": 0, "skipped": 0, "total": 0})
        t["total"] += n
        if status == STATUS_OK:
            t["ok"][route] = t["ok"].get(route, 0) + n
        else:
            t[status] = t.get(status, 0) + n
    return out


OWN_DIRS = ("thumbs", "charts", "pages", WORK_DIR)
OWN_FILES = (RESULTS, MANIFEST, "report.html")


def check_out_dir(out: str, fingerprint: str, overwrite: bool = False) -> None:
    """Refuse to write over another run's outputs (or a folder that is not pixtract's) unless
    ``overwrite``; then remove the earlier run's files first. A rerun of the same job (same
    fingerprint) may write into its own folder: that is how resume works."""
    from .errors import UsageError

    stamp = os.path.join(out, WORK_DIR, "fingerprint")
    if not os.path.isdir(out) or not os.listdir(out):
        atomic_write(stamp, fingerprint)  # marks the folder as this job's, even if the run is killed
        return
    try:
        with open(os.path.join(out, MANIFEST), encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = None
    try:
        with open(stamp, encoding="utf-8") as f:
            started = f.read().strip()
    except OSError:
        started = None
    if fingerprint in ((old or {}).get("config_fingerprint"), started):
        return
    ours = old is not None or os.path.isdir(os.path.join(out, WORK_DIR))
    if ours and old is None and not _answered_anything(out):
        atomic_write(stamp, fingerprint)  # a run that stopped before any answer blocks nothing
        return
    if not overwrite:
        if ours:
            raise UsageError(f"{out} holds the outputs of a different run (other inputs, tasks or models); "
                             f"use another --out, or --overwrite to replace them")
        raise UsageError(f"{out} is not empty and is not a pixtract output folder; choose an empty or new --out")
    if not ours:
        raise UsageError(f"{out} is not a pixtract output folder; --overwrite only replaces pixtract outputs")
    import shutil

    for doc in (old or {}).get("inputs", []):
        for key in ("markdown", "layout", "annotated"):
            if doc.get(key):
                _remove(os.path.join(out, safe_name(doc[key])))
    for name in OWN_FILES:
        _remove(os.path.join(out, name))
    for name in OWN_DIRS:
        shutil.rmtree(os.path.join(out, name), ignore_errors=True)
    atomic_write(stamp, fingerprint)


def _answered_anything(out: str) -> bool:
    """Did an earlier run in ``out`` write any output or cached answer?"""
    if any(os.path.exists(os.path.join(out, name)) for name in OWN_FILES):
        return True
    for root, _, files in os.walk(os.path.join(out, WORK_DIR)):
        if any(f != "fingerprint" for f in files):
            return True
    return any(not name.startswith(".") and name not in OWN_DIRS for name in os.listdir(out))


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_results(out: str) -> list[Record]:
    with open(os.path.join(out, RESULTS), encoding="utf-8") as f:
        return [Record.from_json(json.loads(line)) for line in f if line.strip()]


def _usage(counts: Counter) -> dict[str, int]:
    """Tokens in and out, and the pages a per-page API billed when there are any (the OCR route)."""
    usage = {k: counts[k] for k in ("input_tokens", "output_tokens")}
    if counts["pages"]:
        usage["pages"] = counts["pages"]
    return usage
