"""Text-layer helpers: is there real text, can it be trusted, and which lines are running
headers/footers."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

_WORDISH = re.compile(r"[^\W_]{2,}", re.UNICODE)
MIN_REAL_CHARS = 16


def has_real_text(text: str) -> bool:
    """True when a text layer holds readable words, not nothing or unmapped-glyph garbage."""
    if not text or not text.strip():
        return False
    letters = sum(len(w) for w in _WORDISH.findall(text))
    if letters < MIN_REAL_CHARS:
        return False
    visible = "".join(text.split())  # split() drops exactly the characters isspace() is true for
    # Fonts without a ToUnicode map come out as control or private-use characters.
    return _junk(visible) / max(len(visible), 1) < 0.1


def _junk(visible: str) -> int:
    """Characters of unmapped glyphs (control, private-use, unassigned, U+FFFD). Printable text
    has none of the first three, so only U+FFFD is counted there; otherwise each distinct
    character is looked up once (this runs on every page: a few thousand characters)."""
    if visible.isprintable():
        return visible.count("\ufffd")
    return sum(n for c, n in Counter(visible).items() if unicodedata.category(c) in ("Cc", "Co", "Cn") or c == "\ufffd")


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


# --- is the text layer trustworthy? ----------------------------------------------------------

LAYER_OK = ""
UNKNOWN_GLYPHS, INTERLEAVED, INVISIBLE, HIDDEN = "unknown-glyphs", "interleaved", "invisible", "hidden-under-image"


@dataclass
class LayerFacts:
    """What a page's text layer looks like, gathered in one MuPDF pass (pixtract.local)."""

    text: str  # the layer's characters, in content order
    lines: list[tuple[float, int]] = field(default_factory=list)  # (baseline y, chars) per line, in content order
    text_area: float = 0.0  # area of the text drawn, visible or not
    invisible_area: float = 0.0  # drawn in render mode 3 (an OCR layer)
    hidden_area: float = 0.0  # drawn, then covered by an image painted over it
    image_share: float = 0.0  # share of the page under images


def layer_problem(facts: LayerFacts) -> str:
    """Why the text layer should not be trusted ("" when it can be): unknown glyphs (no
    Unicode map, or UTF-16 read the wrong way round), two lines interleaved character by
    character, text that is invisible over a scan, or text hidden under an image. A page whose
    layer has one of these is read by OCR instead."""
    visible = [c for c in facts.text if not c.isspace()]
    if len(visible) < MIN_REAL_CHARS:
        return LAYER_OK
    junk = sum(1 for c in visible if unicodedata.category(c) in ("Cc", "Co", "Cn") or c == "\ufffd")
    if junk / len(visible) >= 0.1 or _byte_swapped(visible) / len(visible) >= 0.3:  # 0.1: as has_real_text
        return UNKNOWN_GLYPHS
    if _zigzag_share(facts.lines) >= 0.3:
        return INTERLEAVED
    if facts.text_area > 0:
        if facts.hidden_area >= 0.5 * facts.text_area:
            return HIDDEN
        if facts.invisible_area >= 0.8 * facts.text_area and facts.image_share >= 0.5:
            return INVISIBLE
    return LAYER_OK


def _byte_swapped(chars: list[str]) -> int:
    """Characters U+XX00 with XX a printable ASCII code: 'Multicolor' read as big-endian
    UTF-16 of a little-endian string comes out as '䴀甀氀琀椀挀漀氀漀爀'."""
    return sum(1 for c in chars if ord(c) & 0xFF == 0 and 0x20 < ord(c) >> 8 < 0x7F)


def _zigzag_share(lines: list[tuple[float, int]]) -> float:
    """Share of the layer's characters in short lines that jump to another baseline and back
    (A, B, A): what two lines written one character at a time each look like."""
    total = sum(n for _, n in lines) or 1
    zig = 0
    for (ya, _), (yb, nb), (yc, _) in zip(lines, lines[1:], lines[2:]):
        if nb <= 3 and abs(yb - ya) > 2 and abs(yc - ya) <= 1:
            zig += nb
    return zig / total


# --- what the text layer's geometry says about its words -------------------------------------

Glyph = tuple[str, float, float, float]  # character, x0, x1, font size


@dataclass
class LayerFixes:
    """Corrections for a page's Markdown found from its glyphs (pixtract.textclean applies them)."""

    splits: dict[str, str] = field(default_factory=dict)  # "CompositionofthePretraining" -> "Composition of the Pretraining"
    drop_caps: list[tuple[str, str]] = field(default_factory=list)  # ("T", "he committee"): the cap and its line's start
    words: set[str] = field(default_factory=set)  # the page's words, for cells cut mid-word


def lost_spaces(line: list[Glyph]) -> dict[str, str]:
    """Words of one line of glyphs that hold a gap as wide as a space but no space character
    (tightly set captions lose their spaces that way), mapped to the words re-split there. A
    gap counts when it is at least 0.08 em (MuPDF itself puts a space from about 0.15 em), three
    times the line's letter-gap jitter, and between glyphs of one size."""
    out: dict[str, str] = {}
    gaps = [abs(b[1] - a[2]) for a, b in zip(line, line[1:]) if not a[0].isspace() and not b[0].isspace()]
    if len(gaps) < 4:
        return out
    usual = sorted(gaps)[3 * len(gaps) // 4]  # letter-gap jitter (font metrics that do not match the glyphs)
    word, split = "", ""
    for i, g in enumerate(line):
        ch = g[0]
        if ch.isspace():
            if split != word:
                out[word] = split
            word = split = ""
            continue
        if word:
            gap = g[1] - line[i - 1][2]
            prev = line[i - 1][0]
            same_size = abs(g[3] - line[i - 1][3]) <= 0.1 * g[3]  # not a footnote mark
            if (gap >= 0.08 * g[3] and gap >= 3 * usual + 0.01 * g[3] and same_size
                    and (prev.isalnum() or prev in ".,;:!?)]") and ch.isalnum()):
                split += " "
        word += ch
        split += ch
    if word and split != word:
        out[word] = split
    return out


def drop_cap(cap: list[Glyph], cap_top: float, lines: list[tuple[float, float, str]]) -> tuple[str, str] | None:
    """A drop cap: one big capital letter whose neighbour line to the right (top within the
    cap's height, starting with a lower-case letter) carries the rest of its word. ``lines``
    are (x0, top, text) of the page's other lines; returns (letter, start of that line)."""
    if len(cap) != 1 or not cap[0][0].isupper():
        return None
    letter, _, x1, size = cap[0]
    beside = [ln for ln in lines if ln[0] >= x1 - 1 and abs(ln[1] - cap_top) <= 0.5 * size and ln[2][:1].islower()]
    if not beside:
        return None
    start = " ".join(min(beside, key=lambda ln: ln[0])[2].split()[:2])
    return letter, start
