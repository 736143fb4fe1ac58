"""Text-layer helpers: is there real text, and which lines are running headers/footers."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

_WORDISH = re.compile(r"[^\W_]{2,}", re.UNICODE)
MIN_REAL_CHARS = 16


def has_real_text(text: str) -> bool:
    """True when a text layer holds readable words, not nothing or unmapped-glyph garbage."""
    if not text or not text.strip():
        return False
    letters = sum(len(w) for w in _WORDISH.findall(text))
    if letters < MIN_REAL_CHARS:
        return False
    visible = [c for c in text if not c.isspace()]
    # Fonts without a ToUnicode map come out as control or private-use characters.
    junk = sum(1 for c in visible if unicodedata.category(c) in ("Cc", "Co", "Cn") or c == "\ufffd")
    return junk / max(len(visible), 1) < 0.1


def normalise_line(line: str) -> str:
    """Key for a running line: digits folded, so 'Page 3 of 9' matches 'Page 4 of 9'."""
    return re.sub(r"\d+", "#", " ".join(line.split())).casefold()


def running_lines(pages_lines: Iterable[list[str]], edge: int = 2, min_share: float = 0.6) -> set[str]:
    """Lines that recur at the top or bottom of most pages of a document (normalised keys).

    ``pages_lines`` gives each page's non-empty text lines in reading order. Needs at least
    two pages; a document of one page has no running header to speak of.
    """
    pages = [p for p in pages_lines]
    if len(pages) < 2:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        edges = {normalise_line(x) for x in lines[:edge] + lines[-edge:] if x.strip()}
        counts.update(edges)
    need = max(2, int(min_share * len(pages) + 0.999))
    return {k for k, n in counts.items() if n >= need and k.strip("#").strip()}
