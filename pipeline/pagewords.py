"""OCR words in page coordinates: what the grounding step needs on a page without a real text layer.

OCR reads a page image of its own (300 DPI for PDFs, maybe turned upright first); its word boxes
are turned back and scaled to the page's coordinates (PDF points, or pixels of the page image
for image inputs), so they sit where the text layer's words would.
"""

from __future__ import annotations

from .ocr import OcrLine
from .records import WORDS_OCR, Page, PageWords, Word


def page_frame(page: Page) -> tuple[float, float, str, int]:
    """(width, height, unit, rotation) of the page's coordinates."""
    if page.words is not None:
        return page.words.width, page.words.height, page.words.unit, page.words.rotation
    return float(page.width), float(page.height), "px", 0


def ocr_words(page: Page, lines: list[OcrLine], rotation: int, image_size: tuple[int, int]) -> PageWords:
    """OCR lines read from an image of ``image_size`` (before it was turned ``rotation`` degrees
    clockwise) as the page's words."""
    width, height, unit, page_rotation = page_frame(page)
    w_img, h_img = image_size
    sx, sy = width / max(w_img, 1), height / max(h_img, 1)
    words = []
    for n, line in enumerate(lines):
        for w in line.words or []:
            x0, y0, x1, y1 = _unturn(w.left, w.top, w.left + w.width, w.top + w.height, rotation, w_img, h_img)
            words.append(Word(w.text, x0 * sx, y0 * sy, x1 * sx, y1 * sy, line.block, n, float(w.conf)))
    return PageWords(width, height, unit, page_rotation, WORDS_OCR, words)


def _unturn(x0: float, y0: float, x1: float, y1: float, turn: int, w: int, h: int) -> tuple[float, ...]:
    """A box in an image turned ``turn`` degrees clockwise, back in the unturned image (w x h)."""
    if turn == 90:  # turned (u, v) = (h - y, x)
        return y0, h - x1, y1, h - x0
    if turn == 180:
        return w - x1, h - y1, w - x0, h - y0
    if turn == 270:  # turned (u, v) = (y, w - x)
        return w - y1, x0, w - y0, x1
    return x0, y0, x1, y1
