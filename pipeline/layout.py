"""The layout JSON of a document (``<stem>.json``) and the page files it refers to.

While a run goes on, each rendered page leaves files under ``pages/`` in the output folder: the
page image the model saw (``<sha16>-p<N>.png`` or ``.jpg``), the full-resolution image the
report's viewer shows (``<sha16>-p<N>.full.png`` or ``.jpg``, unless ``review_dpi`` is 0) and
its words with boxes (``<sha16>-p<N>.words.json``: the text layer's, or OCR's). When a document is done,
its layout JSON is built from those and from its records: per page the size and rotation, the
blocks in reading order (the transcription's blocks where the page was transcribed, else the
text layer's blocks), tables with their cells, chart regions, and every answer with its
grounding (pipeline/grounding.py).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from .files import atomic_write
from .records import Page, PageWords, Record, RenderSettings

PAGES_DIR = "pages"
LAYOUT_VERSION = 1
_EXT = {"image/png": "png", "image/jpeg": "jpg"}
_log = logging.getLogger(__name__)


def _stem(sha256: str, page: int) -> str:
    return f"{PAGES_DIR}/{sha256[:16]}-p{int(page)}"


def page_image_name(sha256: str, page: int, mime: str) -> str:
    return f"{_stem(sha256, page)}.{_EXT.get(mime, 'png')}"


def review_image_name(sha256: str, page: int, mime: str) -> str:
    return f"{_stem(sha256, page)}.full.{_EXT.get(mime, 'png')}"


def words_name(sha256: str, page: int) -> str:
    return f"{_stem(sha256, page)}.words.json"


def save_page_image(out: str, page: Page) -> None:
    """The encoded page image, as sent to the model (written once; a rerun keeps it)."""
    path = os.path.join(out, page_image_name(page.document.sha256, page.number, page.mime))
    if not os.path.exists(path):
        atomic_write(path, page.image, durable=False)  # can be made again: no fsync


def save_review_image(out: str, page: Page, dpi: int, settings: RenderSettings, password: str | None,
                      quiet=lambda error: False) -> None:
    """The page at ``dpi`` for the report's viewer, made in a MuPDF worker like the page itself
    (pipeline/render.py ``review_image``); a rerun keeps the one it has. Optional: if it cannot
    be made, the viewer shows the model's image, and the page's answers go on (a warning says
    so, unless ``quiet(error)``: the run is stopping and its workers are being stopped)."""
    from .render import JPEG, review_image

    sha, n = page.document.sha256, page.number
    if dpi <= 0 or find_page_image(out, sha, n, review=True):
        return
    try:
        data, mime = review_image(page.document, n, dpi, page.mime == JPEG, settings, password)
    except Exception as e:  # noqa: BLE001 - a timeout, a crashed worker, an odd file: the answer matters more
        if not quiet(e):
            _log.warning("%s page %d: no full-resolution image for the report (%s)", page.document.path, n, e)
        return
    atomic_write(os.path.join(out, review_image_name(sha, n, mime)), data, durable=False)


def save_page_words(out: str, page: Page, words: PageWords | None) -> None:
    """A page's words; a page with none found this time keeps the words of an earlier run."""
    if words is None:
        return
    atomic_write(os.path.join(out, words_name(page.document.sha256, page.number)),
                 json.dumps(words.to_json(), ensure_ascii=False, separators=(",", ":")), durable=False)


def load_page_words(out: str, sha256: str, page: int) -> PageWords | None:
    try:
        with open(os.path.join(out, words_name(sha256, page)), encoding="utf-8") as f:
            return PageWords.from_json(json.load(f))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def find_page_image(out: str, sha256: str, page: int, review: bool = False) -> str | None:
    """The page image the model saw (or, with ``review``, the full-resolution one), if written."""
    for ext in ("png", "jpg"):
        name = f"{_stem(sha256, page)}{'.full' if review else ''}.{ext}"
        if os.path.exists(os.path.join(out, name)):
            return name
    return None


def text_blocks(words: PageWords) -> list[dict[str, Any]]:
    """The text layer's (or OCR's) blocks: their words' union box and text, top to bottom."""
    blocks: dict[int, dict[str, Any]] = {}
    for w in words.words:
        b = blocks.get(w.block)
        if b is None:
            blocks[w.block] = {"type": "text", "box": [w.x0, w.y0, w.x1, w.y1], "lines": {w.line: [w.text]}}
        else:
            box = b["box"]
            box[:] = [min(box[0], w.x0), min(box[1], w.y0), max(box[2], w.x1), max(box[3], w.y1)]
            b["lines"].setdefault(w.line, []).append(w.text)
    out = []
    for order, b in enumerate(sorted(blocks.values(), key=lambda b: (round(b["box"][1]), b["box"][0])), 1):
        text = "\n".join(" ".join(ws) for ws in b["lines"].values())
        out.append({"order": order, "type": b["type"], "box": [round(v, 1) for v in b["box"]], "text": text})
    return out


def answer_summary(r: Record) -> dict[str, Any]:
    """One record as the layout JSON shows it: what was asked, how it was answered, where it is."""
    d: dict[str, Any] = {"task": r.task, "page": r.page, "status": r.status, "route": r.route}
    for k in ("question", "region", "schema"):
        if getattr(r, k) is not None:
            d[k] = getattr(r, k)
    if r.scope == "document":
        d["scope"], d["pages"] = "document", r.pages
    if r.degraded:
        d["degraded"] = True
    if r.flags:
        d["flags"] = r.flags
    if r.agreement is not None:
        d["agreement"] = r.agreement
    if r.error is not None:
        d["error"] = {"type": r.error.type, "message": r.error.message}
    if r.grounding is not None:
        d["grounding"] = r.grounding
    return d


def document_layout(doc_path: str, sha256: str, pages: int, records: list[Record], out: str) -> dict[str, Any]:
    """The layout JSON of one document (see the module doc), from its records and page files."""
    by_page: dict[int, list[Record]] = {}
    for r in records:
        if r.page is not None:
            by_page.setdefault(r.page, []).append(r)
    page_list = []
    for n in range(1, pages + 1):
        words = load_page_words(out, sha256, n)
        recs = by_page.get(n, [])
        entry: dict[str, Any] = {"page": n}
        if words is not None:
            entry.update(width=round(words.width, 2), height=round(words.height, 2), unit=words.unit,
                         rotation=words.rotation, words_source=words.source if words.words else "none",
                         words=words_name(sha256, n))
        else:
            img = next((r.image for r in recs if r.image), None)
            if img:
                entry.update(width=img.get("width"), height=img.get("height"), unit="px", rotation=0,
                             words_source="none")
        image = find_page_image(out, sha256, n)
        if image:
            entry["image"] = image
        full = find_page_image(out, sha256, n, review=True)
        if full:
            entry["full_image"] = full
        entry.update(_page_content(recs, words))
        entry["answers"] = [answer_summary(r) for r in recs]
        page_list.append(entry)
    return {
        "pixtract_layout": LAYOUT_VERSION, "document": doc_path, "sha256": sha256, "pages": page_list,
        "document_answers": [answer_summary(r) for r in records if r.page is None],
    }


def _page_content(recs: list[Record], words: PageWords | None) -> dict[str, Any]:
    """Blocks, tables and figures of a page: from its transcription's grounding when there is
    one (blocks as the answer has them, located on the page; their whole text, which the
    grounding cuts at 300 characters), else from its words."""
    transcribed = next((r for r in recs if r.task == "transcribe" and r.grounding and r.grounding.get("items")), None)
    blocks: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    if transcribed is not None:
        from .grounding import WORDS_OCR_ENDPOINT, block_text, markdown_blocks

        g = transcribed.grounding
        full = {order: block_text(b) for order, b in enumerate(markdown_blocks(transcribed.answer or ""), 1)}
        for it in g["items"]:
            boxes = it.get("boxes") or []
            blocks.append({"order": it.get("order"), "type": it.get("type"), "located": it.get("located"),
                           "box": _union(boxes), "boxes": boxes,
                           "text": it.get("text") or (it.get("value") if g.get("words") == WORDS_OCR_ENDPOINT
                                                       else full.get(it.get("order"), it.get("value"))),
                           "score": it.get("score"),
                           **({"level": it["level"]} if "level" in it else {})})
        tables = g.get("tables") or []
        source = "transcription"
    elif words is not None and words.words:
        blocks, source = text_blocks(words), words.source
    else:
        source = "none"
    figures = [{"region": r.region, "box": r.grounding["region"]["box"], "task": r.task}
               for r in recs if r.task == "chart" and r.grounding and r.grounding.get("region")]
    return {"blocks_source": source, "blocks": blocks, "tables": tables, "figures": figures}


def _union(boxes: list[list[float]]) -> list[float] | None:
    from .grounding import union

    return union(boxes)
