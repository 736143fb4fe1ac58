"""Step 3: which requests a unit of work sends. The one planner of both the run and ``estimate``.

A unit (one page, one chart on a page, or a whole document; for one task and question) goes to
a model as one request, or, when a document has more than MAX_IMAGES_PER_REQUEST pages to show,
as one request per chunk of pages whose answers are then merged: in code for ``extract``, by one
more, text-only request for ``ask`` (``merge_request``). What a vision model is shown of a page
is decided here too: a blank page is not sent, a scan is turned upright, a chart goes as its
crop. The router sends what these functions build; ``estimate`` counts the same requests, built
from the same rendered inputs, without sending them. Only a merge request cannot be known in
advance (its text is the chunks' answers): ``estimate`` bounds it, ``merge_request`` with empty
answers plus every chunk answer at its ``max_tokens``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from . import prompts
from .blank import is_blank
from .config import RunConfig, TaskSpec
from .messages import ChatRequest, ImagePart
from .records import ROUTE_TEXT_FALLBACK, Document, Page

MAX_IMAGES_PER_REQUEST = 8  # Mistral's limit (model-apis.md §1.4); every dialect gets chunks this size
MERGE_PROMPT = ("Several partial answers to one question, each from a part of the same document, follow. "
                "Combine them into one final answer to the question, keeping exact figures.\n\n"
                "Question: {question}")


@dataclass(frozen=True)
class Part:
    """What one request of a unit carries: page images (none on the text rung) and the text
    that goes with them (the text layer as a hint, or the source on the text rung)."""

    pages: tuple[Page, ...]
    text: str


# -- what a model is shown of a page ------------------------------------------------------------
def nothing_to_send(page: Page) -> bool:
    """No text layer and no ink on the image: nothing to answer, nothing to pay for."""
    return not page.has_text_layer and is_blank(page.image)


def upright(page: Page, cfg: RunConfig) -> tuple[Page, int]:
    """A scan or photo turned upright before a vision model sees it (page scope): the page
    and the degrees it was turned clockwise."""
    from . import local
    from .render import turned

    turn = local.upright_turn(page, cfg.ocr)
    return (turned(page, turn, cfg.render), turn) if turn else (page, 0)


def chart_views(doc: Document, page: Page, regions: list, cfg: RunConfig) -> Iterator[tuple[object, Page]]:
    """Each chart region of a page with the image a model gets of it: the page itself for a
    chart image, else the region rendered on its own (one crop at a time)."""
    from . import charts

    for region in regions:
        yield region, (page if region.source == "whole-image" else
                       charts.render_region(doc, region, cfg.render, cfg.password))


# -- the parts of a unit --------------------------------------------------------------------------
def labelled_text(pages: Iterable[Page]) -> str:
    """The text layers of several pages, each under its page number (pages without one left out)."""
    return "\n\n".join(f"[page {p.number}]\n{p.text}" for p in pages if p.text.strip())


def page_part(page: Page) -> Part:
    """A page-scope unit (a page, or a chart crop): its image and its own text layer."""
    return Part((page,), page.text)


def text_part(text: str) -> Part:
    """A unit on the text rung: no image, the text is the source."""
    return Part((), text)


class Chunks:
    """A document's pages in, its parts out: one part per MAX_IMAGES_PER_REQUEST pages, handed
    out as soon as it is full, so a document streams through holding at most one chunk."""

    def __init__(self) -> None:
        self._pages: list[Page] = []
        self.count = 0  # parts handed out so far

    def add(self, page: Page) -> Part | None:
        self._pages.append(page)
        return self._emit() if len(self._pages) == MAX_IMAGES_PER_REQUEST else None

    def close(self) -> Part | None:
        return self._emit() if self._pages else None

    def _emit(self) -> Part:
        pages, self._pages = tuple(self._pages), []
        self.count += 1
        return Part(pages, labelled_text(pages))


def document_parts(pages: Iterable[Page]) -> Iterator[Part]:
    """The parts of a document-scope unit: chunks of at most MAX_IMAGES_PER_REQUEST pages."""
    chunks = Chunks()
    for page in pages:
        part = chunks.add(page)
        if part is not None:
            yield part
    last = chunks.close()
    if last is not None:
        yield last


# -- the requests -----------------------------------------------------------------------------------
def request(cfg: RunConfig, task: TaskSpec, part: Part, *, question: str | None = None, caption: str = "",
            model: str | None = None, mode: str = "json_schema") -> ChatRequest:
    """The request for one part of a unit; ``mode`` is how ``extract`` asks for JSON (the
    endpoint's JSON mode, pipeline/prompts.py)."""
    images = [ImagePart(p.image, p.mime, p.width, p.height) for p in part.pages]
    return prompts.build_request(cfg, task, images=images, text=part.text, question=question, caption=caption,
                                 model=model, mode=mode)


def pages_billed(req: ChatRequest) -> tuple[int, int]:
    """(pages, annotated pages) that a per-page API (the OCR route) bills for ``req``: each page
    image is a page, all of them annotated when the request asks for a JSON Schema (``extract``:
    the OCR endpoint's document annotation). The run's budget and ``estimate`` both count this."""
    pages = len(req.images)
    fmt = req.response_format
    return pages, pages if fmt is not None and fmt.type == "json_schema" else 0


def merges_by_request(task: TaskSpec) -> bool:
    """Chunk answers of ``extract`` are merged in code; the others by a merge request."""
    return task.kind != "extract"


def merge_request(cfg: RunConfig, task: TaskSpec, question: str | None, answers: list[str],
                  model: str | None) -> ChatRequest:
    """The text-only request that combines the chunk answers of one document-scope unit."""
    n = MAX_IMAGES_PER_REQUEST
    joined = "\n\n".join(f"Pages {i * n + 1}-{i * n + n}: {a}" for i, a in enumerate(answers))
    merge = TaskSpec(kind="ask", questions=[question or ""], prompt=MERGE_PROMPT, max_tokens=task.max_tokens)
    return prompts.build_request(cfg, merge, text=joined, question=question, model=model)


def merge_model(rungs: Iterable, asking_model: str | None) -> str | None:
    """The model a merge request goes to: the ladder's text model (the merge reads text only),
    else the model that answered the chunks. ``rungs``: anything with ``route`` and ``model``."""
    return next((r.model for r in rungs if r.route == ROUTE_TEXT_FALLBACK), None) or asking_model
