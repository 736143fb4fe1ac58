"""Markdown clean-up shared by the local engine: hyphenation, paragraphs, running lines."""

from __future__ import annotations

import re

from .textlayer import normalise_line

# "manu-\nfacturing" -> "manufacturing"; a capital after the break ("Anglo-\nSaxon") keeps the hyphen.
_HYPHEN_BREAK = re.compile(r"(\w)[-\u00ad]\s*\n\s*([a-z])")
_MD_DECORATION = re.compile(r"^[#>\-*\s]+|[*_`]+")


def dehyphenate(text: str) -> str:
    return _HYPHEN_BREAK.sub(r"\1\2", text)


# Tesseract reads bullet glyphs as one of these.
_BULLET = re.compile(r"^(?:[\u2022\u25cf\u25aa\u25a0\u00a2\u00a9\u00ab\u00b7*\-\u2013]|[eo0](?=\s+[A-Z]))\s+")


def ocr_to_markdown(lines: list) -> str:
    """OCR lines (pixtract.ocr.OcrLine, in reading order) to Markdown.

    Consecutive lines join into a paragraph when the gap between them is under about one line
    height; a line opening with a bullet starts a list item; a paragraph of lines much taller
    than the page's median becomes a heading. Hyphenated line breaks are joined.
    """
    if not lines:
        return ""
    heights = sorted(ln.height for ln in lines)
    median = heights[len(heights) // 2] or 1
    paras: list[dict] = []
    prev = None
    for ln in lines:
        text = ln.text.strip()
        bullet = _BULLET.match(text)
        if bullet:
            text = text[bullet.end():]
        gap = ln.top - prev.bottom if prev else None
        joins = (
            prev is not None and not bullet and gap is not None
            and -0.2 * median <= gap <= 0.9 * median
            and ln.left >= paras[-1]["left"] - 2 * median
        )
        if joins:
            paras[-1]["lines"].append(text)
            paras[-1]["tall"] = paras[-1]["tall"] and ln.height > 1.5 * median
        else:
            paras.append({"lines": [text], "bullet": bool(bullet), "left": ln.left,
                          "tall": ln.height > 1.5 * median})
        prev = ln
    out = []
    for p in paras:
        body = dehyphenate("\n".join(p["lines"])).replace("\n", " ")
        if p["bullet"]:
            out.append(f"- {body}")
        elif p["tall"] and len(body) < 120:
            out.append(f"## {body}")
        else:
            out.append(body)
    # List items stay together; everything else is separated by blank lines.
    text = ""
    for i, block in enumerate(out):
        if i:
            text += "\n" if block.startswith("- ") and out[i - 1].startswith("- ") else "\n\n"
        text += block
    return text + "\n"


def strip_markup(line: str) -> str:
    return _MD_DECORATION.sub("", line).strip()


def drop_running_lines(markdown: str, keys: set[str]) -> str:
    """Remove lines whose text (without Markdown decoration) is a running header or footer."""
    if not keys:
        return markdown
    kept = [ln for ln in markdown.splitlines() if normalise_line(strip_markup(ln)) not in keys]
    if not any(ln.strip() for ln in kept):
        return markdown  # the page is nothing but lines that repeat on every page: they are its content
    return "\n".join(kept)


def tidy(markdown: str) -> str:
    """Collapse runs of blank lines and trailing spaces."""
    lines = [ln.rstrip() for ln in markdown.splitlines()]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return out + "\n" if out else ""
