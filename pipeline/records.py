"""Records that cross module lines: documents, pages and the output record."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Routes a page answer can come from (DESIGN.md, "The record").
ROUTE_LOCAL_TEXT = "local-text"
ROUTE_LOCAL_OCR = "local-ocr"
ROUTE_VISION = "vision"
ROUTE_VISION_ALT = "vision-alt"
ROUTE_TEXT_FALLBACK = "text-fallback"
ROUTE_OCR = "ocr"  # Mistral's OCR endpoint (--route ocr)

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"

# Error types of skipped records (a skipped record always says why).
BUDGET_EXCEEDED = "budget_exceeded"
NO_CHART = "no_chart"
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Document:
    """One input file, identified by the SHA-256 of its bytes."""

    path: str  # as given (or as found under a given folder)
    abspath: str
    sha256: str
    kind: str  # "pdf" or "image"
    size: int
    fmt: str = ""  # detected format, e.g. "PDF", "PNG", "TIFF"

    @property
    def stem(self) -> str:
        import os

        return os.path.splitext(os.path.basename(self.path))[0]


@dataclass(frozen=True)
class RenderSettings:
    """How pages become model-ready images. Part of every cache key."""

    max_edge: int = 1024  # Pixtral's native long edge (model-apis.md §5)
    dpi_cap: int = 200  # never render a PDF page above this DPI
    jpeg_quality: int = 90
    max_pixels: int = 89_478_485  # Pillow's own default bomb threshold
    image_format: str = "auto"  # "auto" | "png" | "jpeg" (see render.choose_format)


class Word(NamedTuple):
    """One word on a page, its box in page coordinates (see ``PageWords.unit``), origin top left."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    block: int = 0  # text block (text layer) or OCR line group
    line: int = 0  # line within the page: words of one printed line share it
    conf: float = 1.0  # 0..1; 1 for the text layer, the recogniser's confidence for OCR


WORDS_TEXT_LAYER = "text-layer"
WORDS_OCR = "ocr"


@dataclass
class PageWords:
    """The words of one page with their boxes: the text layer's where it is real, else OCR's.

    Coordinates are PDF points of the page as displayed (``/Rotate`` applied) for PDFs, and
    pixels of the page image for image inputs; ``width`` and ``height`` are the page's size in
    the same unit, so a box divided by them is a share of the page whatever the unit."""

    width: float
    height: float
    unit: str  # "pt" or "px"
    rotation: int = 0  # the PDF page's /Rotate (degrees), already applied to the coordinates
    source: str = WORDS_TEXT_LAYER  # "text-layer" or "ocr"
    words: list[Word] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"width": round(self.width, 2), "height": round(self.height, 2), "unit": self.unit,
                "rotation": self.rotation, "source": self.source,
                "words": [[w.text, round(w.x0, 1), round(w.y0, 1), round(w.x1, 1), round(w.y1, 1), w.block, w.line,
                           round(w.conf, 3)] for w in self.words]}

    def __getstate__(self) -> tuple:
        """Compact for the pipe from a MuPDF worker: one string and three arrays, not a
        thousand tuples (pickling those cost more than extracting them)."""
        from array import array

        w = self.words
        return (self.width, self.height, self.unit, self.rotation, self.source, "\x1f".join(x.text.replace("\x1f", " ") for x in w),
                array("d", [v for x in w for v in (x.x0, x.y0, x.x1, x.y1)]).tobytes(),
                array("i", [v for x in w for v in (x.block, x.line)]).tobytes(), array("d", [x.conf for x in w]).tobytes())

    def __setstate__(self, state: tuple) -> None:
        from array import array

        self.width, self.height, self.unit, self.rotation, self.source, texts, boxes, ids, conf = state
        b, i, c = array("d"), array("i"), array("d")
        b.frombytes(boxes)
        i.frombytes(ids)
        c.frombytes(conf)
        names = texts.split("\x1f") if c else []
        self.words = list(map(Word._make, zip(names, b[0::4], b[1::4], b[2::4], b[3::4], i[0::2], i[1::2], c)))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "PageWords":
        words = [Word(str(w[0]), *map(float, w[1:5]), int(w[5]), int(w[6]), float(w[7])) for w in d.get("words", [])]
        return cls(float(d["width"]), float(d["height"]), str(d["unit"]), int(d.get("rotation", 0)),
                   str(d.get("source", WORDS_TEXT_LAYER)), words)


@dataclass
class Page:
    """A rendered page: the encoded image, its size and the page's text layer."""

    document: Document
    number: int  # 1-based
    image: bytes
    mime: str
    width: int
    height: int
    text: str  # text layer ("" for images and scans)
    render_ms: float = 0.0
    source_dpi: float | None = None
    thumbnail: bytes | None = None  # a small JPEG for the report, when asked for
    words: PageWords | None = None  # the text layer's words with boxes (PDFs; OCR words come later)

    @functools.cached_property
    def has_text_layer(self) -> bool:
        from .textlayer import has_real_text

        return has_real_text(self.text)


@dataclass
class ErrorInfo:
    type: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> "ErrorInfo":
        return cls(type=getattr(exc, "type", None) or type(exc).__name__, message=str(exc))


@dataclass
class Record:
    """One line of results.jsonl: one (document, page, task)."""

    document: str
    sha256: str | None
    page: int | None
    task: str
    route: str | None
    status: str
    answer: str | None = None
    model: str | None = None
    provider: str | None = None
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 0, "output_tokens": 0})
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    error: ErrorInfo | None = None
    attempts: int = 0
    fallback_reason: str | None = None
    flags: list[str] = field(default_factory=list)
    image: dict[str, Any] | None = None  # {"width", "height", "bytes", "mime"}
    question: str | None = None  # ask
    schema: str | None = None  # extract: the schema's name
    data: Any = None  # extract: the parsed object; chart: {"csv": file name, "rows": [...]}
    valid: dict[str, Any] | None = None  # extract: {"ok": bool, "errors": [...]}
    agreement: float | None = None  # 0..1, vision answer vs the page's text layer
    scope: str = "page"  # "page" or "document" (then ``pages`` lists the pages sent)
    pages: list[int] | None = None
    region: int | None = None  # chart: 1-based chart index on the page
    cached: bool = False  # answered from the resume cache, no request sent
    tried: list[dict[str, Any]] = field(default_factory=list)  # [{"route", "error": {...}}] rungs that failed
    planned_route: str | None = None  # the rung the job planned for this unit (the ladder's first)
    degraded: bool = False  # ok, but answered by a later rung than the planned one (why: fallback_reason)
    paid_usd: float = 0.0  # what this run paid for this record (0 for an answer from the cache)
    blank: bool = False  # the page has no ink: an empty answer that is correct, and nothing was sent
    grounding: dict[str, Any] | None = None  # where the answer is on the page(s): pipeline/grounding.py

    @property
    def nothing_to_answer(self) -> bool:
        """A skipped record that is the true answer (a page with no chart for the chart task)."""
        return self.status == STATUS_SKIPPED and self.error is not None and self.error.type == NO_CHART

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data, for writing out: nested lists and dicts are the record's
        own, not copies (``dataclasses.asdict`` deep-copied a grounding's boxes, ~1 ms a record,
        twice a page: results.jsonl and the cache)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.error is not None:
            d["error"] = dataclasses.asdict(self.error)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Record":
        d = dict(d)
        err = d.get("error")
        d["error"] = ErrorInfo(**err) if err else None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
