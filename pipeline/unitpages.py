"""What one unit of work is answered from: its rendered pages (a page, a chart's crop, or a
document's inked pages), their text for the text rung (OCR'd only when that rung needs it),
and their words for grounding the answer.

The page worker (pipeline/route.py) fills a ``UnitPages``; the ladder walk (pipeline/walk.py)
and the rung callers (pipeline/callers.py) read it. It lives apart from both so that neither
imports the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import local
from .config import RunConfig
from .errors import OCRError
from .records import Page
from .request_plan import nothing_to_send


class Lazy:
    """A value computed on first use (OCR text is only needed by the text rung)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn, self.done, self.value = fn, False, None

    def get(self):
        if not self.done:
            self.value, self.done = self.fn(), True
        return self.value


def ocr_text(cfg: RunConfig, page: Page, words: "Words | None" = None) -> str:
    """The page's text layer, or the local engine's text of it (its OCR words go to ``words``)."""
    if page.has_text_layer:
        return page.text
    ans = local.transcribe(page, cfg.render, None, cfg.password, options=cfg.ocr)
    if words is not None:
        words.offer(page.number, ans.words)
    return ans.markdown


class Words:
    """The words of the pages a unit is answered from: the text layer's where it is real; else
    OCR's, once a step of the ladder has OCRed the page (the local engine, the text rung), or
    when the job asks for OCR just to ground answers (``grounding_ocr``)."""

    def __init__(self, cfg: RunConfig, pages: list[Page]) -> None:
        self.cfg, self.pages = cfg, pages
        self.turn = 0  # degrees the page was turned before a model saw it (page scope; OCR boxes are read on it)
        force = cfg.ocr.force
        self.found: dict[int, Any] = {p.number: p.words if p.has_text_layer and not force else None for p in pages}

    def offer(self, number: int, words) -> None:
        if words is not None and self.found.get(number) is None:
            self.found[number] = words

    def get(self) -> dict[int, Any]:
        if self.cfg.grounding_ocr:
            for p in self.pages:
                if self.found.get(p.number) is None and not nothing_to_send(p):
                    try:
                        ocr_text(self.cfg, _as_scan(p), self)
                    except OCRError:
                        continue
        return self.found


def _as_scan(page: Page) -> Page:
    """The page as the local engine sees a page without a text layer (so it OCRs it)."""
    return page if not page.has_text_layer else dataclasses.replace(page, text="")


@dataclass
class UnitPages:
    """The pages one unit is answered from. ``text``: their text for the text rung (a Lazy);
    ``words``: for grounding (None: not grounded); ``caption``, ``region`` and ``region_box``
    (page coordinates) for a chart's crop; ``running_lines``: the document's running heads the
    local engine leaves out."""

    pages: list[Page]
    text: Lazy
    words: Words | None = None
    caption: str = ""
    region: int | None = None
    region_box: list[float] | None = None
    running_lines: set[str] = field(default_factory=set)
