"""Step 1b: what the page steps need to know about a document before its pages go out."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import local
from .config import RunConfig
from .errors import WORKER_FAILURES
from .records import Document
from .render import count_pages


@dataclass
class DocumentPlan:
    """A readable document, its page count and its running header/footer lines."""

    document: Document
    pages: int
    running_lines: set[str] = field(default_factory=set)


def plan_document(doc: Document, cfg: RunConfig) -> DocumentPlan:
    """Count pages and find running headers (only transcripts drop them); raises InputError
    for a document that cannot be read."""
    pages = count_pages(doc, cfg.password)
    transcribing = any(t.kind == "transcribe" for t in cfg.tasks)
    try:
        running = local.document_running_lines(doc, cfg.password) if transcribing else set()
    except WORKER_FAILURES:
        running = set()  # a sampled page stalled its worker: it fails on its own when rendered
    return DocumentPlan(doc, pages, running)
