"""Grounding: where on the page each part of an answer is printed.

After a page is answered, the answer is looked up in the page's words (``PageWords``: the text
layer's, or OCR's): a transcription block by block (split with markdown-it-py), an extraction
value by value (dates and amounts also in the forms they are printed in), an answer by the
figures, dates, quotations and sentences in it, a chart by its axis labels and printed values
inside the chart's region. Each item gets its page, boxes (one per printed line it covers), the
page text it matched and a score; an item not found is marked ``located: false``, and the
record's ``share`` is located / all.

Everything here is pure and local: matching uses rapidfuzz (C++), no request is sent. Text is
compared after NFKC, case folding and removing punctuation inside words, so "$1,234.50" on the
page matches an answer's "1234.50" and "Inc.," matches "Inc".
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from .records import PageWords, Record, Word

MIN_SCORE = 0.9  # a value or line counts as located from this fuzzy score (0..1)
MIN_BLOCK_SCORE = 0.6  # a transcription block: this share of its text found on the page
MIN_SENTENCE_SCORE = 0.8  # an answer's sentence, as printed (answers paraphrase; most will not be)
MIN_FUZZY_CHARS = 6  # shorter values must match whole words exactly
MAX_ITEMS = 2000  # items kept per record (a huge extraction is cut, and says so)
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d+)?|\d{1,3}(?:,\d{3})+(?:\.\d+)?)$")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")
_FIGURE = re.compile(r"[$€£]?\d[\d,.]*%?")
_QUOTED = re.compile(r"[\"“”'‘’]([^\"“”'‘’]{4,200})[\"“”'‘’]")


@dataclass
class PageIndex:
    """A page's words as one normalised string, with where each word starts in it."""

    page: int
    words: list[Word]
    text: str = ""
    starts: list[int] = field(default_factory=list)  # start offset of each kept word in ``text``
    ends: list[int] = field(default_factory=list)  # end offset of each kept word in ``text``
    keep: list[int] = field(default_factory=list)  # index into ``words`` of each kept word

    @classmethod
    def of(cls, page: int, pw: PageWords) -> "PageIndex":
        idx = cls(page, pw.words)
        parts, pos = [], 0
        for i, w in enumerate(pw.words):
            n = norm(w.text)
            if not n:
                continue
            idx.starts.append(pos)
            idx.ends.append(pos + len(n))
            idx.keep.append(i)
            parts.append(n)
            pos += len(n) + 1
        idx.text = " ".join(parts)
        return idx

    def words_in(self, start: int, end: int) -> list[Word]:
        """The words whose normalised text overlaps ``text[start:end]``."""
        import bisect

        lo = max(0, bisect.bisect_right(self.starts, start) - 1)
        hi = bisect.bisect_left(self.starts, end)
        return [self.words[self.keep[k]] for k in range(lo, hi) if self.starts[k] < end and self.ends[k] > start]


def norm(text: str) -> str:
    """Compare form: NFKC, case folded, punctuation dropped, spaces collapsed."""
    if text.isascii():  # most words: the same result from C string methods (a few hundred calls a page)
        return " ".join(text.lower().translate(_ASCII_PUNCT).split())
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c if c.isalnum() or c.isspace() else ("" if c in _DROPPED else " ") for c in text)
    return " ".join(text.split())


_DROPPED = "'’.,-"  # punctuation inside words ("Inc.," -> "inc"); any other becomes a space
# NFKC leaves ASCII as it is and casefold() lowers it, so this table is norm's character rule on ASCII.
_ASCII_PUNCT = {c: "" if chr(c) in _DROPPED else " " for c in range(128) if not (chr(c).isalnum() or chr(c).isspace())}


@dataclass
class Match:
    page: int
    words: list[Word]
    score: float  # 0..1


def find(value: str, pages: list[PageIndex], min_score: float = MIN_SCORE, near: Match | None = None) -> Match | None:
    """The best place of ``value`` on the pages: whole-word exact matches first (the one
    nearest ``near`` when given, else the first), then rapidfuzz's best partial alignment."""
    q = norm(value)
    if not q:
        return None
    exact = exact_matches(q, pages)
    if exact:
        if near is not None:
            return min(exact, key=lambda m: _distance(m, near))
        return exact[0]
    if len(q) < MIN_FUZZY_CHARS:
        return None
    best: Match | None = None
    for p in pages:
        if len(p.text) < len(q) * 0.5:
            continue
        al = fuzz.partial_ratio_alignment(q, p.text, score_cutoff=min_score * 100)
        if al is None:
            continue
        score = al.score / 100
        if best is None or score > best.score:
            words = p.words_in(al.dest_start, al.dest_end)
            if words:
                best = Match(p.page, words, score)
    return best


def exact_matches(q: str, pages: list[PageIndex], limit: int = 50) -> list[Match]:
    """Every whole-word occurrence of the normalised text ``q`` (at most ``limit``)."""
    out: list[Match] = []
    for p in pages:
        hay = f" {p.text} "
        at = hay.find(f" {q} ")
        while at >= 0 and len(out) < limit:
            out.append(Match(p.page, p.words_in(at, at + len(q)), 1.0))
            at = hay.find(f" {q} ", at + 1)
    return out


def _distance(m: Match, ref: Match) -> float:
    """How far ``m`` is from where reading goes on after ``ref``: text before it (above it,
    or to its left on its line) comes after everything that follows it."""
    if m.page != ref.page:
        return 1e9 + abs(m.page - ref.page)
    a, b = m.words[0], ref.words[-1]
    before = a.y1 <= b.y0 or (abs(a.y0 - b.y0) < 0.5 * (b.y1 - b.y0) and a.x0 < b.x0)
    return (1e6 if before else 0.0) + abs(a.y0 - b.y0) * 4 + abs(a.x0 - b.x1)


def line_boxes(words: list[Word]) -> list[list[float]]:
    """One box per printed line the words cover, in reading order."""
    lines: dict[int, list[float]] = {}
    for w in words:
        b = lines.get(w.line)
        if b is None:
            lines[w.line] = [w.x0, w.y0, w.x1, w.y1]
        else:
            b[0], b[1], b[2], b[3] = min(b[0], w.x0), min(b[1], w.y0), max(b[2], w.x1), max(b[3], w.y1)
    return [[round(v, 1) for v in b] for b in lines.values()]


def union(boxes: list[list[float]]) -> list[float] | None:
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def _item(kind: str, value: str, m: Match | None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": kind, **extra, "value": value[:300]}
    if m is None:
        item.update(located=False, page=None, boxes=[], match=None, score=0.0)
    else:
        item.update(located=True, page=m.page, boxes=line_boxes(m.words),
                    match=" ".join(w.text for w in m.words)[:300], score=round(m.score, 3))
    return item


# --------------------------------------------------------------------------- printed forms

def printed_forms(value: Any) -> list[str]:
    """The forms a normalised value may be printed in: the value itself, and for an ISO date or
    a number the usual ways of writing it ("2019-03-15": "March 15, 2019", "15th day of March,
    2019", "03/15/2019"...; 1234.5: "1,234.50", "1234.50")."""
    if isinstance(value, bool) or value is None:
        return []
    text = str(value).strip()
    forms = [text]
    m = _ISO_DATE.match(text)
    if m:
        try:
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return forms
        forms += _date_forms(d)
    elif isinstance(value, (int, float)) or _NUMBER.match(text):
        forms += _number_forms(text)
    return list(dict.fromkeys(forms))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _date_forms(d: dt.date) -> list[str]:
    month, short = _MONTHS[d.month - 1], _MONTHS[d.month - 1][:3]
    day, o, y = d.day, _ordinal(d.day), d.year
    return [
        f"{month} {day}, {y}", f"{day} {month} {y}", f"{month} {o}, {y}", f"{o} {month} {y}",
        f"{o} day of {month}, {y}", f"{o} day of {month} {y}", f"{short} {day}, {y}", f"{day} {short} {y}",
        f"{d.month}/{day}/{y}", f"{d.month:02d}/{day:02d}/{y}", f"{day}/{d.month}/{y}", f"{day:02d}/{d.month:02d}/{y}",
        f"{day}.{d.month}.{y}", f"{day:02d}.{d.month:02d}.{y}", f"{d.month}/{day}/{y % 100:02d}",
        f"{month} {day}", f"{month} {o}",  # a date whose year is printed apart
    ]


def _number_forms(text: str) -> list[str]:
    try:
        x = float(text.replace(",", ""))
    except ValueError:
        return []
    if x != x or x in (float("inf"), float("-inf")):
        return []
    out = [f"{x:,.2f}", f"{x:.2f}"]
    if x == int(x):
        out += [f"{int(x):,}", str(int(x))]
    else:
        out += [f"{x:,}", f"{x:g}"]
    return out


def locate_value(value: Any, pages: list[PageIndex]) -> Match | None:
    """The best match of any printed form of ``value``; the value as given wins a tie."""
    best: Match | None = None
    for form in printed_forms(value):
        m = find(form, pages)
        if m is not None and (best is None or m.score > best.score):
            best = m
            if m.score >= 1.0:
                break
    return best


# --------------------------------------------------------------------------- per task

def leaves(data: Any, path: str = "$") -> list[tuple[str, Any]]:
    """(JSON path, value) of every leaf of an extraction, in document order."""
    if isinstance(data, dict):
        return [leaf for k, v in data.items() for leaf in leaves(v, f"{path}.{k}")]
    if isinstance(data, list):
        return [leaf for i, v in enumerate(data) for leaf in leaves(v, f"{path}[{i}]")]
    return [(path, data)]


def ground_extract(data: Any, pages: list[PageIndex]) -> list[dict[str, Any]]:
    """One item per leaf value (nulls, booleans and empty strings have nothing to find)."""
    out = []
    for path, value in leaves(data):
        if value is None or isinstance(value, bool) or str(value).strip() == "":
            continue
        out.append(_item("field", str(value), locate_value(value, pages), path=path))
    return out


def markdown_blocks(md: str) -> list[dict[str, Any]]:
    """A transcription's top-level blocks: type (heading, paragraph, list, table, code, quote,
    caption), their text lines and, for a table, its rows of cells."""
    tokens = _block_parser().parse(md)
    lines = md.splitlines()
    blocks: list[dict[str, Any]] = []
    kinds = {"heading_open": "heading", "paragraph_open": "paragraph", "bullet_list_open": "list",
             "ordered_list_open": "list", "table_open": "table", "fence": "code", "code_block": "code",
             "blockquote_open": "quote", "hr": None, "html_block": "html"}
    for i, t in enumerate(tokens):
        if t.level != 0 or t.type not in kinds or kinds[t.type] is None or t.map is None:
            continue
        kind = kinds[t.type]
        src = lines[t.map[0]:t.map[1]]
        block: dict[str, Any] = {"type": kind, "lines": [ln for ln in src if ln.strip()]}
        if kind == "paragraph" and re.match(r"^\s*[*_]*(figure|fig\.|table|chart|source)\b", " ".join(src), re.I):
            block["type"] = "caption"
        if kind == "table":
            block["rows"] = _table_rows(tokens, i)
        if kind == "heading":
            block["level"] = int(t.tag[1:])
        blocks.append(block)
    return blocks


_PARSERS = threading.local()


def _block_parser():
    """markdown-it's block parse only, one parser per thread: the blocks need the block tokens
    and their source text (``content``), not inline parsing, which took half of each parse,
    nor a new parser per call (twice a page: grounding and the layout JSON)."""
    md = getattr(_PARSERS, "md", None)
    if md is None:
        from markdown_it import MarkdownIt

        md = _PARSERS.md = MarkdownIt("commonmark").enable("table").disable(["inline", "text_join"])
    return md


def _table_rows(tokens: list, start: int) -> list[list[str]]:
    rows: list[list[str]] = []
    for t in tokens[start + 1:]:
        if t.type == "table_close":
            break
        if t.type == "tr_open":
            rows.append([])
        elif t.type == "inline" and rows:
            rows[-1].append(t.content.strip())
    return rows


def ground_transcription(md: str, pages: list[PageIndex]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Blocks of a transcription with their boxes, and the tables' cells (row, column, box).

    A block is looked up line by line (a table cell by cell, each near the previous one), so
    a block whose lines the layout put elsewhere than the answer's order is still found; its
    score is the share of its characters found."""
    items, tables = [], []
    for order, b in enumerate(markdown_blocks(md), 1):
        parts: list[str] = []
        if b["type"] == "table":
            cells, prev, used = [], None, set()
            texts = [[_strip_md(cell) for cell in row] for row in b["rows"]]
            area = _table_area(texts, pages)
            for r, row in enumerate(texts):
                for c, cell in enumerate(row):
                    if not norm(cell):
                        continue
                    m = _cell_match(cell, pages, area, prev, used)
                    prev = m or prev
                    if m is not None:
                        used.add(_printed(m))
                    cells.append({"row": r, "col": c, "row_span": 1, "col_span": 1, "text": cell[:300],
                                  "page": m.page if m else None, "box": union(line_boxes(m.words)) if m else None,
                                  "_at": _printed(m) if m else None})
                    parts.append(cell)
            cells = _spans(cells, lambda text: len(exact_matches(norm(text), pages, limit=2)) == 1)
            matched = [c for c in cells if c["box"]]
            found = sum(len(norm(c["text"])) for c in matched)
            total = sum(len(norm(c["text"])) for c in cells) or 1
            page = _most(c["page"] for c in matched)
            boxes = [c["box"] for c in matched if c["page"] == page]
            tables.append({"order": order, "page": page, "box": union(boxes), "rows": len(b["rows"]),
                           "cols": max((len(r) for r in b["rows"]), default=0), "cells": cells})
            items.append(_block_item(b["type"], " | ".join(parts), order, page, boxes, found / total))
            continue
        found = total = 0
        page_boxes: dict[int, list[list[float]]] = {}
        prev = None
        for line in b["lines"]:
            text = _strip_md(line)
            n = len(norm(text))
            if not n:
                continue
            total += n
            parts.append(text)
            m = find(text, pages, near=prev)
            if m is not None:
                prev = m
                found += n * m.score
                page_boxes.setdefault(m.page, []).extend(line_boxes(m.words))
        page = max(page_boxes, key=lambda p: len(page_boxes[p])) if page_boxes else None
        item = _block_item(b["type"], " ".join(parts), order, page, page_boxes.get(page, []),
                           found / total if total else 0.0)
        if "level" in b:
            item["level"] = b["level"]
        items.append(item)
    return items, tables


def block_text(block: dict[str, Any]) -> str:
    """A block's text without Markdown decoration (a table's cells joined by " | ")."""
    if block["type"] == "table":
        return " | ".join(c for row in block["rows"] for c in (_strip_md(x) for x in row) if c)
    return " ".join(t for t in (_strip_md(ln) for ln in block["lines"]) if t)


def _table_area(rows: list[list[str]], pages: list[PageIndex]) -> tuple[int, list[float]] | None:
    """Where a table is printed: the page and union box of its cells that occur only once on
    the pages (a header word like "Region" may also be in the text above the table)."""
    anchors: list[Match] = []
    for row in rows:
        for cell in row:
            q = norm(cell)
            if q and len(q) >= 2:
                found = exact_matches(q, pages, limit=2)
                if len(found) == 1:
                    anchors.append(found[0])
    page = _most(m.page for m in anchors)
    boxes = [b for m in anchors if m.page == page for b in line_boxes(m.words)]
    return (page, union(boxes)) if boxes else None


def _cell_match(cell: str, pages: list[PageIndex], area: tuple[int, list[float]] | None,
                prev: Match | None, used: set = frozenset()) -> Match | None:
    """A table cell's place: of its whole-word occurrences, the one inside (or nearest) the
    table's area and not yet taken by another cell, then nearest the previous cell; else the
    best fuzzy match. (A value printed twice gets both places; one printed once but given in
    several cells keeps its one place: a spanning cell, see ``_spans``.)"""
    found = exact_matches(norm(cell), pages)
    if not found:
        return find(cell, pages, near=prev)
    if area is None:
        return min(found, key=lambda m: (_printed(m) in used, _distance(m, prev) if prev else 0.0))
    page, (x0, y0, x1, y1) = area

    def key(m: Match) -> tuple:
        w = m.words[0]
        cx, cy = (w.x0 + w.x1) / 2, (w.y0 + w.y1) / 2
        outside = round(max(0.0, x0 - cx, cx - x1) + max(0.0, y0 - cy, cy - y1))
        return (m.page != page, outside > 0, _printed(m) in used, outside, _distance(m, prev) if prev else 0.0)

    return min(found, key=key)


def _printed(m: Match) -> tuple:
    """Where a match is printed: its page and words (the same place for the same print)."""
    return (m.page, tuple(m.words))


def _spans(cells: list[dict[str, Any]], printed_once: Callable[[str], bool]) -> list[dict[str, Any]]:
    """Cells that repeat one printed text across neighbouring grid positions become one cell
    with a span. Markdown has no spans: pymupdf's ``fill_empty`` and some models repeat a
    spanning cell's text in each position it covers, so the same printed words placed
    in the next column (row) means the cell spans it, if that text is printed only once on the
    page (a value printed several times, such as "10" or "NA", may have been given one place
    twice; on the ICDAR tables all such merges were wrong). An empty position is never counted
    as spanned: the local engine writes a merged cell once beside empty positions, and gets no
    spans."""
    at = {(c["row"], c["col"]): c for c in cells}
    merged: set[int] = set()
    for c in cells:  # row by row, left to right: extend to the right
        if id(c) in merged or c["_at"] is None:
            continue
        while ((n := at.get((c["row"], c["col"] + c["col_span"]))) is not None and n["_at"] == c["_at"]
               and printed_once(c["text"])):
            c["col_span"] += 1
            merged.add(id(n))
    kept = [c for c in cells if id(c) not in merged]
    top = {(c["row"], c["col"]): c for c in kept}
    for c in kept:  # then downwards, for a cell of the same width
        if id(c) in merged or c["_at"] is None:
            continue
        while ((n := top.get((c["row"] + c["row_span"], c["col"]))) is not None and n["_at"] == c["_at"]
               and n["col_span"] == c["col_span"] and printed_once(c["text"])):
            c["row_span"] += 1
            merged.add(id(n))
    out = [c for c in kept if id(c) not in merged]
    for c in out:
        del c["_at"]
    return out


def _block_item(kind: str, text: str, order: int, page: int | None, boxes: list[list[float]],
                score: float) -> dict[str, Any]:
    located = page is not None and score >= MIN_BLOCK_SCORE
    return {"kind": "block", "type": kind, "order": order, "value": text[:300], "located": located,
            "page": page if located else None, "boxes": _merge_boxes(boxes) if located else [],
            "match": None, "score": round(score, 3)}


def _merge_boxes(boxes: list[list[float]]) -> list[list[float]]:
    """Line boxes of one block, duplicates removed, top to bottom."""
    seen = {tuple(b) for b in boxes}
    return [list(b) for b in sorted(seen, key=lambda b: (b[1], b[0]))]


def _most(values) -> Any:
    counts: dict[Any, int] = {}
    for v in values:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    return max(counts, key=counts.get) if counts else None


_MD_INLINE = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d{1,9}[.)]\s+|>\s*)+|[*_`~]+|\[([^\]]*)\]\([^)]*\)")


def _strip_md(line: str) -> str:
    return _MD_INLINE.sub(lambda m: m.group(1) or " ", line).strip()


def ground_answer(answer: str, pages: list[PageIndex]) -> list[dict[str, Any]]:
    """The spans that support a free answer: its figures and dates, its quotations, and its
    sentences where they are printed as such."""
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for q in _QUOTED.findall(answer):
        if norm(q) not in seen:
            seen.add(norm(q))
            items.append(_item("span", q, find(q, pages)))
    for fig in _FIGURE.findall(answer):
        fig = fig.rstrip(".,")
        if len(norm(fig)) >= 2 and norm(fig) not in seen:
            seen.add(norm(fig))
            items.append(_item("figure", fig, locate_value(fig.strip("$€£%"), pages)))
    for s in _SENTENCE.split(_strip_md(answer)):
        s = s.strip()
        if len(norm(s)) >= 12 and norm(s) not in seen:
            seen.add(norm(s))
            m = find(s, pages, min_score=MIN_SENTENCE_SCORE)
            if m is not None:  # a paraphrase is not an error: only sentences printed as such count
                items.append(_item("span", s, m))
    return items


def ground_chart(rows: list[list[Any]], pages: list[PageIndex], region: list[float] | None) -> list[dict[str, Any]]:
    """Axis labels and values of a chart's table that are printed inside its region (values
    read off bars without labels are not printed anywhere: they stay unlocated)."""
    inside = pages
    if region is not None:
        x0, y0, x1, y1 = region
        pad = 0.05 * max(x1 - x0, y1 - y0)
        inside = []
        for p in pages:
            words = [w for w in p.words if w.x1 >= x0 - pad and w.x0 <= x1 + pad and w.y1 >= y0 - pad
                     and w.y0 <= y1 + pad]
            inside.append(PageIndex.of(p.page, PageWords(0, 0, "", words=words)))
    items = []
    for r, row in enumerate(rows or []):
        for c, cell in enumerate(row if isinstance(row, list) else [row]):
            if str(cell).strip():
                kind = "label" if r == 0 or c == 0 else "value"
                items.append(_item(kind, str(cell), locate_value(cell, inside), row=r, col=c))
    return items


# --------------------------------------------------------------------------- the record

def ground_record(rec: Record, words: dict[int, PageWords], region: list[float] | None = None) -> dict[str, Any] | None:
    """The grounding of one answered record over the pages it was answered from (``words``:
    page number -> PageWords); None for a record with nothing to ground (failed, skipped,
    blank). A record whose pages have no words says so (``words: "none"``), every item unlocated."""
    if rec.status != "ok" or rec.blank:
        return None
    pages = [PageIndex.of(n, pw) for n, pw in sorted(words.items()) if pw is not None]
    have_words = any(p.words for p in pages)
    tables: list[dict[str, Any]] = []
    if rec.task == "extract":
        items = ground_extract(rec.data, pages)
    elif rec.task == "chart":
        items = ground_chart((rec.data or {}).get("rows") or [], pages, region)
    elif rec.task == "ask":
        items = ground_answer(rec.answer or "", pages)
    else:
        items, tables = ground_transcription(rec.answer or "", pages)
    cut = len(items) > MAX_ITEMS
    items = items[:MAX_ITEMS]
    located = sum(1 for i in items if i["located"])
    g: dict[str, Any] = {
        "located": located, "total": len(items), "share": round(located / len(items), 3) if items else None,
        "words": (next((pw.source for pw in words.values() if pw is not None and pw.words), "none")
                  if have_words else "none"),
        "unit": next((pw.unit for pw in words.values() if pw is not None), None),
        "sizes": {str(n): [round(pw.width, 2), round(pw.height, 2)] for n, pw in sorted(words.items()) if pw},
        "items": items,
    }
    if tables:
        g["tables"] = tables
    if region is not None:
        g["region"] = {"page": rec.page, "box": [round(v, 1) for v in region]}
    if cut:
        g["cut"] = True
    return g



# --------------------------------------------------------------------------- the OCR endpoint's blocks

WORDS_OCR_ENDPOINT = "ocr-endpoint"  # grounding from the OCR endpoint's own blocks (--route ocr)
# OCR block types (OCRPageObject.blocks) as the block types of a transcription's grounding
OCR_BLOCK_TYPES = {"text": "paragraph", "title": "heading", "list": "list", "table": "table", "caption": "caption",
                   "code": "code", "image": "figure", "equation": "equation", "references": "list",
                   "aside_text": "paragraph", "header": "header", "footer": "footer", "signature": "signature"}


def ground_ocr(body: dict[str, Any], page: int, frame: tuple[float, float, str], turn: int = 0) -> dict[str, Any] | None:
    """A transcription's grounding from the OCR endpoint's answer (``body``: OCRResponse for one
    page image): each block where the service read it, in reading order. Its box, in pixels of
    the image sent (turned ``turn`` degrees clockwise first), is turned back and scaled to the
    page's coordinates (``frame``: width, height, unit); its score is the page's mean confidence
    when the service gives one. None when no page has blocks (a model before OCR 4): the answer
    is then located in the page's words like any other."""
    from .pagewords import _unturn

    pages = [p for p in body.get("pages") or [] if isinstance(p, dict)]
    blocks = [b for p in pages[:1] for b in p.get("blocks") or [] if isinstance(b, dict)]
    if not blocks:
        return None
    dims = pages[0].get("dimensions") or {}
    w_img, h_img = int(dims.get("width") or 0), int(dims.get("height") or 0)
    if w_img <= 0 or h_img <= 0:
        return None
    if turn in (90, 270):
        w_img, h_img = h_img, w_img  # the unturned image
    width, height, unit = frame
    sx, sy = width / w_img, height / h_img
    conf = (pages[0].get("confidence_scores") or {}).get("average_page_confidence_score")
    items = []
    for order, b in enumerate(blocks, 1):
        x0, y0, x1, y1 = _unturn(b["top_left_x"], b["top_left_y"], b["bottom_right_x"], b["bottom_right_y"], turn,
                                 w_img, h_img)
        content = str(b.get("content") or "")
        item = {"kind": "block", "type": OCR_BLOCK_TYPES.get(b.get("type"), b.get("type") or "paragraph"),
                "order": order, "value": content[:300], "located": True, "page": page,
                "boxes": [[round(x0 * sx, 1), round(y0 * sy, 1), round(x1 * sx, 1), round(y1 * sy, 1)]],
                "match": None, "score": round(float(conf), 3) if conf is not None else 1.0}
        if len(content) > 300:
            item["text"] = content  # the layout JSON shows a block's whole text
        items.append(item)
    return {"located": len(items), "total": len(items), "share": 1.0, "words": WORDS_OCR_ENDPOINT, "unit": unit,
            "sizes": {str(page): [round(width, 2), round(height, 2)]}, "items": items}
