"""Shared access to MuPDF: one lock, a small cache of open documents.

MuPDF is not thread-safe, even across different documents, so every PyMuPDF call in pixtract
runs under ``LOCK``. Rendering a page takes milliseconds; OCR and model calls run outside it.
During a run these calls happen in worker processes (pipeline/workers.py), which the run kills
when MuPDF does not return; the cookie below stops a slow page without losing the worker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from collections.abc import Iterator

import pymupdf

from .errors import RenderTimeout, UnreadableFile
from .records import Document, Word

LOCK = threading.RLock()
_CACHE: "OrderedDict[tuple[str, str], pymupdf.Document]" = OrderedDict()
_CACHE_SIZE = 4

pymupdf.TOOLS.mupdf_display_errors(False)  # errors surface as exceptions and records instead


def _open(doc: Document, password: str | None) -> pymupdf.Document:
    try:
        if _encodable(doc.abspath):
            pdf = pymupdf.open(doc.abspath, filetype="pdf")
        else:  # a file name that is not valid UTF-8: MuPDF cannot take it as a path
            with open(doc.abspath, "rb") as f:
                pdf = pymupdf.open(stream=f.read(), filetype="pdf")
    except Exception as e:  # MuPDF raises its own FzError family and RuntimeError
        raise UnreadableFile(f"{doc.path}: not a readable PDF ({_short(e)})") from None
    try:
        if pdf.needs_pass:
            if not password or not pdf.authenticate(password):
                what = "wrong password" if password else "no password given (use --password)"
                raise UnreadableFile(f"{doc.path}: encrypted PDF, {what}")
        count = pdf.page_count  # reads the page tree, which may be broken or cyclic
    except UnreadableFile:
        pdf.close()
        raise
    except Exception as e:
        pdf.close()
        raise UnreadableFile(f"{doc.path}: broken PDF page tree ({_short(e)})") from None
    if count == 0:
        pdf.close()
        raise UnreadableFile(f"{doc.path}: PDF has no pages")
    return pdf


def _encodable(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextmanager
def open_pdf(doc: Document, password: str | None = None) -> Iterator[pymupdf.Document]:
    """Yield an open PDF under the MuPDF lock; keeps a few documents open for page-by-page use."""
    key = (doc.abspath, doc.sha256)
    with LOCK:
        pdf = _CACHE.pop(key, None)
        if pdf is None:
            pdf = _open(doc, password)
        _CACHE[key] = pdf
        while len(_CACHE) > _CACHE_SIZE:
            _, old = _CACHE.popitem(last=False)
            old.close()
        yield pdf


def forget(doc: Document) -> None:
    """Close a document once all its pages are done, to keep memory flat."""
    with LOCK:
        pdf = _CACHE.pop((doc.abspath, doc.sha256), None)
        if pdf is not None:
            pdf.close()


def check_complexity(pdf: pymupdf.Document, page: pymupdf.Page, where: str) -> None:
    """Refuse a page whose drawing would explode (see pixtract.complexity)."""
    from .complexity import TooComplex, form_invocations
    from .errors import RenderError

    try:
        form_invocations(pdf, page)
    except TooComplex as e:
        raise RenderError(f"{where}: page too complex to draw safely: {e} (a possible PDF bomb)") from None
    except Exception as e:  # MuPDF cannot even read the page's content streams
        raise RenderError(f"{where}: cannot read the page content ({_short(e)})") from None


PAGE_TIME_LIMIT = 60.0  # seconds of MuPDF work on one page (interpreting, then drawing)
_TEXT_FLAGS = pymupdf.TEXTFLAGS_BLOCKS | pymupdf.TEXT_PRESERVE_IMAGES


@contextmanager
def _deadline(where: str, limit: float | None) -> Iterator:
    """A MuPDF cookie that a timer aborts after ``limit`` seconds; MuPDF then stops at its next
    check and the page fails with RenderTimeout (MuPDF releases the GIL while it works)."""
    limit = PAGE_TIME_LIMIT if limit is None else limit
    cookie = pymupdf.mupdf.FzCookie()
    timer = threading.Timer(limit, _abort, (cookie,))
    timer.daemon = True
    timer.start()
    try:
        yield cookie
    finally:
        timer.cancel()
    if cookie.m_internal.abort:
        raise RenderTimeout(f"{where}: stopped after {limit:g} s of rendering (the per-page time limit)")


def _abort(cookie) -> None:
    cookie.m_internal.abort = 1


def display_list(page: pymupdf.Page, where: str, limit: float | None = None) -> pymupdf.DisplayList:
    """The page's content (annotations included) interpreted once, within the page time limit;
    drawing it and reading its text then skip the content streams."""
    m = pymupdf.mupdf
    with _deadline(where, limit) as cookie:
        dl = m.FzDisplayList(m.fz_bound_page(page.this))
        dev = m.fz_new_list_device(dl)
        try:
            m.fz_run_page(page.this, dev, m.FzMatrix(), cookie)
        finally:
            m.fz_close_device(dev)
    return pymupdf.DisplayList(dl)


def draw(dl: pymupdf.DisplayList, zoom: float, where: str, gray: bool = False,
         limit: float | None = None) -> pymupdf.Pixmap:
    """Rasterize a display list at ``zoom`` (no alpha, white background) within the time limit."""
    m = pymupdf.mupdf
    ctm = m.FzMatrix(zoom, 0, 0, zoom, 0, 0)
    cs = m.FzColorspace(m.FzColorspace.Fixed_GRAY if gray else m.FzColorspace.Fixed_RGB)
    bbox = m.fz_round_rect(m.fz_transform_rect(m.fz_bound_display_list(dl.this), ctm))
    with _deadline(where, limit) as cookie:
        pix = m.fz_new_pixmap_with_bbox(cs, bbox, m.FzSeparations(), 0)
        m.fz_clear_pixmap_with_value(pix, 0xFF)
        dev = m.fz_new_draw_device(ctm, pix)
        try:
            m.fz_run_display_list(dl.this, dev, m.FzMatrix(), m.FzRect(m.FzRect.Fixed_INFINITE), cookie)
        finally:
            m.fz_close_device(dev)
    return pymupdf.Pixmap("raw", pix)


def text_images_words(dl: pymupdf.DisplayList) -> tuple[str, float, list[Word]]:
    """Like ``page_text_and_images``, from a display list (already in rotated page coordinates),
    plus the page's words with their boxes from the same text page (MuPDF's ``get_text("words")``)."""
    tp = pymupdf.TextPage(dl.get_textpage(_TEXT_FLAGS))
    text, share = _blocks_text(tp.extractBLOCKS(), pymupdf.Identity, dl.rect)
    ox, oy = dl.rect.x0, dl.rect.y0
    lines: dict[tuple[int, int], int] = {}
    words = []
    for x0, y0, x1, y1, w, block, line, _n in tp.extractWORDS():
        n = lines.setdefault((block, line), len(lines))
        words.append(Word(w, x0 - ox, y0 - oy, x1 - ox, y1 - oy, block, n, 1.0))
    return text, share, words


def page_text(page: pymupdf.Page) -> str:
    """A page's text layer, its blocks in reading order (top to bottom, then left to right)."""
    return page_text_and_images(page)[0]


def page_text_and_images(page: pymupdf.Page) -> tuple[str, float]:
    """A page's text layer in reading order and the share of its area covered by images (a
    scan is close to 1), from one pass over the page's content.

    Sorting MuPDF's own blocks costs about 1 ms a page, where ``get_text(sort=True)`` costs
    about 11 ms (bench/README.md) and, working in unrotated coordinates, scrambles pages with
    /Rotate set; here the blocks are placed in the rotated page's coordinates."""
    return _blocks_text(page.get_text("blocks", flags=_TEXT_FLAGS), page.rotation_matrix, page.rect)


def _blocks_text(raw_blocks, m: pymupdf.Matrix, rect: pymupdf.Rect) -> tuple[str, float]:
    blocks, covered = [], 0.0
    for x0, y0, x1, y1, text, _no, kind in raw_blocks:
        r = pymupdf.Rect(x0, y0, x1, y1) * m
        if kind == 0:
            blocks.append((round(r.y0), r.x0, text))
        else:
            covered += abs(r & rect)
    text = "".join(t if t.endswith("\n") else t + "\n" for _, _, t in sorted(blocks))
    return text, min(covered / (abs(rect) or 1.0), 1.0)


def _short(e: BaseException) -> str:
    """A one-line message for a MuPDF error (whose repr is a SWIG proxy, useless to a user)."""
    text = (str(e).strip() if not str(e).startswith("<") else "") or type(e).__name__
    return text.splitlines()[0][:200]
