"""Upright pages: find a 90, 180 or 270 degree turn of a scan or photo from the OCR itself.

A page read the right way up gives long, confident lines. The test is cheap on a normal page
(no extra OCR): only when the first read has mostly tall, narrow text boxes (text running up or
down the page) or a low confidence are the other turns read too, and the best read wins when it
clearly beats the first one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .ocr import OcrLine

LOW_CONFIDENCE = 0.8  # mean confidence (weighted by characters) under which other turns are tried
TALL_SHARE = 0.5  # share of characters in boxes taller than wide that marks a sideways page
MIN_GAIN = 1.25  # a turn must score this much better than the page as it came
SIDEWAYS_GAIN = 0.9  # ...or, on a page whose text runs up or down, about as well


@dataclass
class UprightRead:
    lines: list[OcrLine]
    rotation: int  # degrees clockwise the page was turned to read it (0, 90, 180, 270)
    tried: tuple[int, ...] = (0,)


def score(lines: list[OcrLine]) -> float:
    """Confident characters read: sum of confidence x length over the words."""
    return sum(w.conf * len(w.text) for ln in lines for w in (ln.words or [ln]) if w.conf >= 0.5)


def mean_conf(lines: list[OcrLine]) -> float:
    chars = sum(len(ln.text) for ln in lines)
    return sum(ln.conf * len(ln.text) for ln in lines) / chars if chars else 0.0


def sideways(lines: list[OcrLine]) -> bool:
    """Most text sits in boxes much taller than wide: the lines run up or down the page."""
    tall = total = 0
    for ln in lines:
        for w in ln.words or [ln]:
            n = len(w.text)
            if n < 2:
                continue
            total += n
            if w.height > 1.5 * w.width:
                tall += n
    return total > 0 and tall / total >= TALL_SHARE


def read_upright(image, read: Callable[[object], list[OcrLine]],
                 recognise: Callable[[list], float] | None = None) -> UprightRead:
    """OCR a PIL image with ``read``, turned upright when it clearly came in turned.

    ``recognise`` (optional) scores a list of cropped text images without detection: with it,
    the turns are compared on a few sample boxes and only the winner is read in full (RapidOCR:
    a full read costs about 70 ms of CPU per text line here, a sample of 8 crops under a second).
    """
    first = read(image)
    if sideways(first):
        turns: tuple[int, ...] = (90, 270)
    elif not first or mean_conf(first) < LOW_CONFIDENCE:
        turns = (180, 90, 270)
    else:
        return UprightRead(first, 0)
    tried = (0, *turns)
    # Text that runs up or down the page is sideways whatever the first read made of it
    # (Tesseract reads such lines itself, but a vision model needs the page turned): then the
    # better of the two turns wins unless it reads clearly worse.
    gain = SIDEWAYS_GAIN if turns == (90, 270) else MIN_GAIN
    if recognise is not None and first:
        crops = sample_crops(image, first)
        base = recognise(crops)
        best, turn = max((recognise([c.rotate(-t, expand=True) for c in crops]), t) for t in turns)
        if best <= base * gain:
            return UprightRead(first, 0, tried)
        return UprightRead(read(image.rotate(-turn, expand=True)), turn, tried)
    best_read, need = UprightRead(first, 0, tried), score(first) * gain
    for turn in turns:
        # PIL rotates counter-clockwise: rotate(-turn) turns the page `turn` degrees clockwise.
        lines = read(image.rotate(-turn, expand=True))
        s = score(lines)
        if s > need:
            best_read, need = UprightRead(lines, turn, tried), s
    return best_read


def sample_crops(image, lines: list[OcrLine], count: int = 8) -> list:
    """The ``count`` largest word boxes of a read, cut out of the image (with a small margin)."""
    words = [w for ln in lines for w in (ln.words or [ln]) if len(w.text) >= 2]
    words.sort(key=lambda w: w.width * w.height, reverse=True)
    crops = []
    for w in words[:count]:
        m = max(2, min(w.width, w.height) // 8)
        box = (max(0, w.left - m), max(0, w.top - m),
               min(image.width, w.left + w.width + m), min(image.height, w.top + w.height + m))
        crops.append(image.crop(box))
    return crops


# --- a cheap look before any OCR: is the page plainly upright? ----------------------------------

GAP_SHARE = 0.1  # share of blank rows between the first and last inked row of upright text
UPSIDE_DOWN = 0.5  # ink above the x-height band / ink below it, under which a page may be upside down


def plainly_upright(image) -> bool:
    """True when the page's ink lies in horizontal lines with blank rows between them (not in
    columns: a sideways page) and more of it rises above the lines' x-height band than hangs
    below (ascenders and capitals outnumber descenders; upside down it is the reverse). A
    quick pixel test (tens of ms) that spares a page the OCR pass of ``read_upright``; pages it
    is unsure of (photos, skewed or non-Latin scans) get that pass."""
    from PIL import ImageOps

    grey = ImageOps.grayscale(image)
    grey.thumbnail((1024, 1024))
    ink = grey.point(lambda v: 1 if v < 140 else 0)
    rows, cols = _profile(ink), _profile(ink.transpose(2))  # 2: Image.Transpose.ROTATE_90
    gaps_rows, gaps_cols = _blank_share(rows), _blank_share(cols)
    if gaps_rows < GAP_SHARE or gaps_rows < 3 * gaps_cols:
        return False
    return _rise_over_drop(rows) >= UPSIDE_DOWN


def _profile(ink) -> list[int]:
    w, h = ink.size
    data = ink.tobytes()
    return [data[y * w:(y + 1) * w].count(1) for y in range(h)]


def _blank_share(profile: list[int]) -> float:
    """Share of near-empty lines between the first and the last inked one."""
    lo = max(profile, default=0) * 0.02
    inked = [i for i, v in enumerate(profile) if v > lo]
    if not inked:
        return 0.0
    span = profile[inked[0]:inked[-1] + 1]
    return sum(1 for v in span if v <= lo) / len(span)


def _rise_over_drop(rows: list[int]) -> float:
    """Over the page's text lines: ink above each line's dense core over the ink below it."""
    lo = max(rows, default=0) * 0.02
    above = below = 0
    y, n = 0, len(rows)
    while y < n:
        if rows[y] <= lo:
            y += 1
            continue
        start = y
        while y < n and rows[y] > lo:
            y += 1
        band = rows[start:y]
        if len(band) < 6:
            continue
        top = max(band)
        core = [i for i, v in enumerate(band) if v >= 0.5 * top]
        above += sum(band[:core[0]])
        below += sum(band[core[-1] + 1:])
    return above / max(below, 1)
