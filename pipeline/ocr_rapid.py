"""RapidOCR (PP-OCR detection + recognition models on ONNX Runtime), words with boxes.

The models ship inside the ``rapidocr`` wheel (PP-OCRv6 small: Chinese, Japanese, Latin
scripts with accents, Greek), so nothing is downloaded at run time. ONNX Runtime's telemetry
is switched off by ``pipeline/__init__.py`` before anything imports it.
"""

from __future__ import annotations

import io
import re
import threading

from .errors import OCRError
from .ocr import OcrLine, OcrWord, line_of

# PP-OCR's recogniser often drops the space after an amount ("4,250.00EUR"); an amount with a
# decimal part followed straight by a word is put apart again.
_AMOUNT_WORD = re.compile(r"(?<![\w.,])(\d[\d,]*[.,]\d+)([A-Za-z]{2,})\b")
MIN_SCORE = 0.5  # RapidOCR's own default text_score: below it a box is noise
_ENGINES = threading.local()


def _engine():
    """One engine per thread: loading the models takes about a second and 100 MB, and a
    RapidOCR object is not documented as safe to share between threads. One ONNX thread each,
    as pages already run in parallel."""
    eng = getattr(_ENGINES, "engine", None)
    if eng is None:
        try:
            from rapidocr import RapidOCR
        except ImportError as e:  # a broken install: say what to do
            raise OCRError(f"RapidOCR is not installed ({e}); pip install rapidocr onnxruntime, "
                           "or choose --ocr-engine tesseract") from None
        eng = RapidOCR(params={
            "Global.log_level": "error",
            "Global.return_word_box": True,
            "Global.use_cls": False,  # pixtract.orientation turns whole pages instead
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
        _ENGINES.engine = eng
    return eng


def rapid_lines(image) -> list[OcrLine]:
    """Lines of an encoded image (bytes) or a PIL image, in reading order."""
    import numpy as np
    from PIL import Image

    if isinstance(image, (bytes, bytearray)):
        image = Image.open(io.BytesIO(image))
    arr = np.asarray(image.convert("RGB"))[:, :, ::-1]  # RapidOCR wants OpenCV's BGR
    try:
        # Explicit flags: RapidOCR keeps the last call's flags as its new defaults.
        out = _engine()(arr, use_det=True, use_cls=False, use_rec=True)
    except OCRError:
        raise
    except Exception as e:  # the engine's own failures (bad image, ONNX error): this page only
        raise OCRError(f"RapidOCR failed: {type(e).__name__}: {e}") from None
    if out.boxes is None or out.txts is None:
        return []
    segments = []
    word_sets = out.word_results if out.word_results else [None] * len(out.txts)
    for box, text, score, words in zip(out.boxes, out.txts, out.scores, word_sets):
        if not text.strip() or score < MIN_SCORE:
            continue
        segments.append(_segment(box, text, float(score), words))
    return group_lines(segments)


def recognise_score(crops: list) -> float:
    """Confident characters RapidOCR reads in cropped text images (no detection): how
    pixtract.orientation compares turns of a page cheaply."""
    import numpy as np

    total = 0.0
    eng = _engine()
    for crop in crops:
        arr = np.asarray(crop.convert("RGB"))[:, :, ::-1]
        try:
            out = eng(arr, use_det=False, use_cls=False, use_rec=True)
        except Exception:  # a crop the recogniser cannot take counts as unreadable
            continue
        for text, conf in zip(out.txts or (), out.scores or ()):
            if conf >= MIN_SCORE:
                total += float(conf) * len(text.strip())
    return total


def _segment(box, text: str, score: float, words) -> list[OcrWord]:
    """A detected text box as words (RapidOCR's word boxes when it has them)."""
    out = []
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    if max(ys) - min(ys) > 1.5 * (max(xs) - min(xs)):
        words = None  # a box of text running up or down: its word boxes are not page positions
    for w in words or ():
        wtext, wscore, wbox = w[0], w[1], w[2]
        if wtext.strip():
            out.append(_word(wbox, wtext, float(wscore)))
    joined = "".join(w.text for w in out)
    if not out or joined.replace(" ", "") != text.replace(" ", ""):
        out = [_word(box, text.strip(), score)]  # word boxes missing or not matching the line
    return out


def _word(box, text: str, conf: float) -> OcrWord:
    xs = [int(p[0]) for p in box]
    ys = [int(p[1]) for p in box]
    return OcrWord(text, min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), conf)


def group_lines(segments: list[list[OcrWord]]) -> list[OcrLine]:
    """Lines in reading order: column by column on a page set in columns of prose (see
    ``column_gutter``), else the whole page's boxes side by side as one line each."""
    gutter = column_gutter(segments)
    if gutter is None:
        return _rows(segments)
    left, right, out = [], [], []
    for seg in sorted(segments, key=lambda s: min(w.top for w in s)):
        x0, x1 = min(w.left for w in seg), max(w.left + w.width for w in seg)
        if x0 < gutter[1] and x1 > gutter[0]:  # a title or figure line across both columns
            out += _rows(left) + _rows(right) + _rows([seg])
            left, right = [], []
        elif x1 <= gutter[0]:
            left.append(seg)
        else:
            right.append(seg)
    return out + _rows(left) + _rows(right)


def column_gutter(segments: list[list[OcrWord]]) -> tuple[int, int] | None:
    """The blank strip between two columns of prose: an x range in the middle half of the text
    that few boxes narrower than the page cross, with wide boxes (lines of running text, not
    table cells or form fields) on both sides. None for anything else."""
    boxes = [(min(w.left for w in s), max(w.left + w.width for w in s), min(w.top for w in s),
              max(w.top + w.height for w in s)) for s in segments]
    if len(boxes) < 12:
        return None
    x_lo, x_hi = min(b[0] for b in boxes), max(b[1] for b in boxes)
    width = x_hi - x_lo
    boxes = [b for b in boxes if b[1] - b[0] <= 0.6 * width]  # lines across the page break the columns up
    if len(boxes) < 12:
        return None
    step = [0] * (width + 2)  # height of the boxes over each x, from a difference array
    for x0, x1, y0, y1 in boxes:
        step[x0 - x_lo] += y1 - y0
        step[x1 - x_lo + 1] -= y1 - y0
    cover, run = [], 0
    for d in step[:-1]:
        run += d
        cover.append(run)
    total_h = sum(b[3] - b[2] for b in boxes)
    quiet = [i for i in range(width // 4, 3 * width // 4) if cover[i] <= 0.1 * total_h]
    if not quiet:
        return None
    runs, start = [], quiet[0]
    for a, b in zip(quiet, quiet[1:] + [None]):
        if b != a + 1:
            runs.append((start, a))
            start = b
    g0, g1 = max(runs, key=lambda r: r[1] - r[0])
    if g1 - g0 < 0.015 * width:
        return None
    g0, g1 = g0 + x_lo, g1 + x_lo
    for side in ([b for b in boxes if b[1] <= g0], [b for b in boxes if b[0] >= g1]):
        if len(side) < 5:
            return None
        col = (max(b[1] for b in side) - min(b[0] for b in side)) or 1
        widths = sorted(b[1] - b[0] for b in side)
        if col < 0.25 * width or widths[len(widths) // 2] < 0.5 * col:
            return None
    return g0, g1


def _rows(segments: list[list[OcrWord]]) -> list[OcrLine]:
    """Text boxes side by side (table cells, columns of a form) as one line each, top to bottom.

    PP-OCR detects runs of text, not lines; the Markdown step needs lines. A box joins a line
    when their vertical extents overlap by more than half the smaller height. Boxes stay whole
    (their words are never interleaved with another box's), left to right.
    """
    rows: list[list[list[OcrWord]]] = []
    for seg in sorted(segments, key=lambda s: (min(w.top for w in s), min(w.left for w in s))):
        top, bottom = _extent(seg)
        for row in rows:
            r_top, r_bottom = _extent([w for s in row for w in s])
            overlap = min(bottom, r_bottom) - max(top, r_top)
            if overlap > 0.5 * min(bottom - top, r_bottom - r_top):
                row.append(seg)
                break
        else:
            rows.append([seg])
    lines = []
    for row in rows:
        row.sort(key=lambda s: min(w.left for w in s))
        words = [w for s in row for w in s]
        line = line_of(words)
        line.text = _AMOUNT_WORD.sub(r"\1 \2", " ".join(_sep(s).join(w.text for w in s) for s in row))
        lines.append(line)
    lines.sort(key=lambda ln: (ln.top, ln.left))
    return lines


def _extent(words: list[OcrWord]) -> tuple[int, int]:
    return min(w.top for w in words), max(w.top + w.height for w in words)


def _sep(words: list[OcrWord]) -> str:
    """Words of Chinese or Japanese text have no spaces between them."""
    cjk = sum(1 for w in words for c in w.text if "\u3040" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef")
    return "" if cjk > sum(len(w.text) for w in words) / 2 else " "
