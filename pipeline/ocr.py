"""OCR of a page image: words with boxes and confidences, grouped into lines in reading order.

Two engines, both offline: RapidOCR (PP-OCR models run by ONNX Runtime; the weights ship inside
the ``rapidocr`` wheel, nothing is downloaded) and Tesseract (the ``tesseract`` command, no
Python binding). RapidOCR is the default because it reads scans and photos far better (see
bench/README.md, "Local OCR"); Tesseract stays selectable, and takes over for scripts the
bundled PP-OCR model does not cover (Korean, Cyrillic, Arabic, Indic...). The Markdown step
rebuilds paragraphs, list items and headings from the line geometry.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from .errors import OCRError, UsageError

INSTALL_HINT = "install Tesseract (Debian/Ubuntu: apt-get install tesseract-ocr; macOS: brew install tesseract)"
MIN_CONFIDENCE = 0  # tesseract marks non-text boxes with -1

ENGINE_RAPIDOCR = "rapidocr"
ENGINE_TESSERACT = "tesseract"
ENGINES = (ENGINE_RAPIDOCR, ENGINE_TESSERACT)
DEFAULT_ENGINE = ENGINE_TESSERACT  # RapidOCR reads better but costs ~4x the CPU (bench/README.md, 7)
DEFAULT_LANG = "eng"
# Tesseract language codes whose scripts the bundled PP-OCR model reads (Latin with accents,
# Chinese, Japanese kana and kanji, Greek); any other code sends the page to Tesseract.
RAPIDOCR_LANGS = frozenset({
    "eng", "chi_sim", "chi_tra", "jpn", "ell", "fra", "deu", "spa", "ita", "por", "nld", "dan",
    "nor", "swe", "fin", "pol", "ces", "slk", "slv", "hrv", "hun", "ron", "tur", "cat", "lat",
    "est", "lav", "lit", "isl", "gle", "ind", "msa", "vie",
})


@dataclass(frozen=True)
class OcrOptions:
    """How the local engine reads pages. Part of the answer cache key (see ``key``)."""

    engine: str = DEFAULT_ENGINE  # "rapidocr" | "tesseract"
    lang: str = DEFAULT_LANG  # Tesseract codes joined by "+", e.g. "eng+chi_sim"
    force: bool = False  # OCR even pages with a text layer
    upright: bool = True  # detect 90/180/270 degree rotation before OCR

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UsageError(f"unknown OCR engine {self.engine!r} (choose from {', '.join(ENGINES)})")
        if not self.lang or any(not p.replace("_", "").isalnum() for p in self.lang.split("+")):
            raise UsageError(f"bad OCR language {self.lang!r} (Tesseract codes joined by '+', e.g. eng+chi_sim)")

    @property
    def effective_engine(self) -> str:
        """The engine that actually runs: RapidOCR only for scripts its bundled model reads."""
        if self.engine == ENGINE_RAPIDOCR and not set(self.lang.split("+")) <= RAPIDOCR_LANGS:
            return ENGINE_TESSERACT
        return self.engine

    def key(self) -> str:
        return f"{self.effective_engine}:{self.lang}:force={int(self.force)}:upright={int(self.upright)}"


@dataclass
class OcrWord:
    text: str
    left: int
    top: int
    width: int
    height: int
    conf: float  # 0..1


@dataclass
class OcrLine:
    text: str
    left: int
    top: int
    width: int
    height: int
    block: int
    conf: float = 1.0  # 0..1, mean of the words'
    words: list[OcrWord] = field(default_factory=list)

    @property
    def bottom(self) -> int:
        return self.top + self.height


def tesseract_path() -> str | None:
    return shutil.which(os.environ.get("PIXTRACT_TESSERACT", "tesseract"))


def run_tesseract(image: bytes, *extra: str, lang: str = DEFAULT_LANG, timeout: float = 120.0,
                  psm: str = "3") -> str:
    exe = tesseract_path()
    if exe is None:
        raise OCRError(f"tesseract not found on PATH: {INSTALL_HINT}")
    # One thread per page: we run pages in parallel, and OpenMP threads fight each other
    # (measured here: 17 s wall for a 300-dpi page with the default, 3 s with 1 thread).
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    try:
        proc = subprocess.run(
            [exe, "stdin", "stdout", "-l", lang, "--psm", psm, *extra],
            input=image, capture_output=True, timeout=timeout, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        raise OCRError(f"tesseract took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        hint = ""
        if any("traineddata" in m or "language" in m.lower() for m in msg):
            hint = f" (language data for {lang!r} missing? Debian: make ocr-langs OCR_LANGS={lang.replace('+', ',')})"
        raise OCRError(f"tesseract failed (exit {proc.returncode}): {msg[-1] if msg else 'no message'}{hint}")
    return proc.stdout.decode("utf-8", "replace")


def ocr_lines(image: bytes, lang: str = DEFAULT_LANG, timeout: float = 120.0, *,
              engine: str = ENGINE_TESSERACT) -> list[OcrLine]:
    """Recognised lines of an encoded image, in reading order, by the given engine."""
    if engine == ENGINE_RAPIDOCR:
        from .ocr_rapid import rapid_lines

        return rapid_lines(image)
    return tesseract_lines(image, lang=lang, timeout=timeout)


def tesseract_lines(image: bytes, lang: str = DEFAULT_LANG, timeout: float = 120.0) -> list[OcrLine]:
    tsv = run_tesseract(image, "tsv", lang=lang, timeout=timeout)
    lines: dict[tuple[int, int, int], list[OcrWord]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5":
            continue
        text = (row.get("text") or "").strip()
        conf = float(row.get("conf") or -1)
        if not text or conf < MIN_CONFIDENCE:
            continue
        key = (int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
        word = OcrWord(text, int(row["left"]), int(row["top"]), int(row["width"]), int(row["height"]), conf / 100)
        lines.setdefault(key, []).append(word)
    # CJK text comes out one character per "word"; joining those with spaces would break words.
    sep = "" if any(p in ("chi_sim", "chi_tra", "jpn") for p in lang.split("+")) and "eng" not in lang else " "
    return [line_of(words, block, sep) for (block, _par, _line), words in lines.items()]  # Tesseract's order


def line_of(words: list[OcrWord], block: int = 0, sep: str = " ") -> OcrLine:
    """A line from its words: the union box, texts joined, mean confidence."""
    left = min(w.left for w in words)
    top = min(w.top for w in words)
    right = max(w.left + w.width for w in words)
    bottom = max(w.top + w.height for w in words)
    conf = sum(w.conf for w in words) / len(words)
    return OcrLine(sep.join(w.text for w in words), left, top, right - left, bottom - top, block, conf, words)
