"""Step 4: a page to its answer record, through the routes the profile allows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import local
from .config import RunConfig
from .errors import InputError, OCRError
from .records import STATUS_FAILED, STATUS_OK, Document, ErrorInfo, Page, Record
from .render import render_page


@dataclass
class DocumentPlan:
    """What the page steps need to know about their document."""

    document: Document
    pages: int
    running_lines: set[str] = field(default_factory=set)


def image_info(page: Page) -> dict:
    return {"width": page.width, "height": page.height, "bytes": len(page.image), "mime": page.mime}


def answer_page(plan: DocumentPlan, number: int, cfg: RunConfig) -> Record:
    """Render one page and answer it. Input problems become a failed record; transient
    problems (e.g. an OCR time-out) raise, so the caller may retry the page."""
    doc = plan.document
    t0 = time.perf_counter()
    base = dict(document=doc.path, sha256=doc.sha256, page=number, task=cfg.task)
    try:
        page = render_page(doc, number, cfg.render, cfg.password)
    except InputError as e:
        return Record(**base, route=None, status=STATUS_FAILED, error=ErrorInfo.from_exception(e))
    try:
        ans = local.transcribe(page, cfg.render, plan.running_lines, cfg.password)
    except OCRError as e:
        raise OCRError(f"{doc.path} page {number}: {e}") from None
    return Record(
        **base,
        route=ans.route,
        status=STATUS_OK,
        answer=ans.markdown,
        model=ans.model,
        provider="local",
        latency_ms=round((time.perf_counter() - t0) * 1000, 1),
        attempts=1,
        image=image_info(page),
    )


def failed_record(plan: DocumentPlan, number: int, cfg: RunConfig, exc: BaseException) -> Record:
    """The record for a page whose every attempt raised."""
    doc = plan.document
    return Record(
        document=doc.path,
        sha256=doc.sha256,
        page=number,
        task=cfg.task,
        route=None,
        status=STATUS_FAILED,
        error=ErrorInfo.from_exception(exc),
    )
