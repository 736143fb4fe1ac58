"""Shared access to MuPDF: one lock, a small cache of open documents.

MuPDF is not thread-safe, even across different documents, so every PyMuPDF call in pixtract
runs under ``LOCK``. Rendering a page takes milliseconds; OCR and model calls run outside it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from collections.abc import Iterator

import pymupdf

from .errors import UnreadableFile
from .records import Document

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
    """Refuse a page whose drawing would explode (see pipeline.complexity)."""
    from .complexity import TooComplex, form_invocations
    from .errors import RenderError

    try:
        form_invocations(pdf, page)
    except TooComplex as e:
        raise RenderError(f"{where}: page too complex to draw safely: {e} (a possible PDF bomb)") from None
    except Exception as e:  # MuPDF cannot even read the page's content streams
        raise RenderError(f"{where}: cannot read the page content ({_short(e)})") from None


def page_text(page: pymupdf.Page) -> str:
    """A page's text layer, its blocks in reading order (top to bottom, then left to right)."""
    return page_text_and_images(page)[0]


def page_text_and_images(page: pymupdf.Page) -> tuple[str, float]:
    """A page's text layer in reading order and the share of its area covered by images (a
    scan is close to 1), from one pass over the page's content.

    Sorting MuPDF's own blocks costs about 1 ms a page, where ``get_text(sort=True)`` costs
    about 11 ms (bench/README.md) and, working in unrotated coordinates, scrambles pages with
    /Rotate set; here the blocks are placed in the rotated page's coordinates."""
    m, rect = page.rotation_matrix, page.rect
    blocks, covered = [], 0.0
    flags = pymupdf.TEXTFLAGS_BLOCKS | pymupdf.TEXT_PRESERVE_IMAGES
    for x0, y0, x1, y1, text, _no, kind in page.get_text("blocks", flags=flags):
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
