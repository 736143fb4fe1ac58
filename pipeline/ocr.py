"""Tesseract OCR of a page image (the ``tesseract`` command, no Python binding).

Returns text lines with their boxes, in Tesseract's reading order, so that the Markdown step
can rebuild paragraphs, list items and headings from the geometry.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from dataclasses import dataclass

from .errors import OCRError

INSTALL_HINT = "install Tesseract (Debian/Ubuntu: apt-get install tesseract-ocr; macOS: brew install tesseract)"
MIN_CONFIDENCE = 0  # tesseract marks non-text boxes with -1


@dataclass
class OcrLine:
    text: str
    left: int
    top: int
    width: int
    height: int
    block: int

    @property
    def bottom(self) -> int:
        return self.top + self.height


def tesseract_path() -> str | None:
    return shutil.which(os.environ.get("PIXTRACT_TESSERACT", "tesseract"))


def run_tesseract(image: bytes, *extra: str, lang: str = "eng", timeout: float = 120.0) -> str:
    exe = tesseract_path()
    if exe is None:
        raise OCRError(f"tesseract not found on PATH: {INSTALL_HINT}")
    # One thread per page: we run pages in parallel, and OpenMP threads fight each other
    # (measured here: 17 s wall for a 300-dpi page with the default, 3 s with 1 thread).
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    try:
        proc = subprocess.run(
            [exe, "stdin", "stdout", "-l", lang, "--psm", "3", *extra],
            input=image, capture_output=True, timeout=timeout, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        raise OCRError(f"tesseract took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OCRError(f"tesseract failed (exit {proc.returncode}): {msg[-1] if msg else 'no message'}")
    return proc.stdout.decode("utf-8", "replace")


def ocr_lines(image: bytes, lang: str = "eng", timeout: float = 120.0) -> list[OcrLine]:
    """Recognised lines of an encoded image, in reading order."""
    tsv = run_tesseract(image, "tsv", lang=lang, timeout=timeout)
    lines: dict[tuple[int, int, int], list[tuple[int, int, int, int, str]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5":
            continue
        text = (row.get("text") or "").strip()
        if not text or float(row.get("conf") or -1) < MIN_CONFIDENCE:
            continue
        key = (int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
        box = (int(row["left"]), int(row["top"]), int(row["width"]), int(row["height"]))
        lines.setdefault(key, []).append((*box, text))
    out = []
    for (block, _par, _line), words in lines.items():  # dict keeps Tesseract's order
        left = min(w[0] for w in words)
        top = min(w[1] for w in words)
        right = max(w[0] + w[2] for w in words)
        bottom = max(w[1] + w[3] for w in words)
        out.append(OcrLine(" ".join(w[4] for w in words), left, top, right - left, bottom - top, block))
    return out
