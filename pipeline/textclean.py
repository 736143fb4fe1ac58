"""Clean-up of text-layer and OCR text: what PDF producers and TeX leave in a page's text.

- Unicode NFC, with TeX's spacing accents put back on their letters (``J´an Min´aˇc`` ->
  ``Ján Mináč``: TeX draws an accent as a separate glyph before the letter);
- TeX quotes (````...''``, ``‘‘...’’``) and typographic ligatures (``ﬁ``, ``ﬂ``...) normalised;
- Kangxi radicals that some Japanese and Chinese PDF fonts map their glyphs to (``⾒`` U+2F92)
  replaced by the ideographs they stand for (``見``), so the text can be searched;
- running headers and footers of a page found by pattern, so that a single-page document loses
  its page number or "Revision: 2.4" line too (the document-wide check needs two pages);
- for text-layer Markdown, what the page's glyphs show (pixtract.textlayer.LayerFixes): words
  re-split where the layer lost its spaces, a drop cap put back on its word, table cells cut
  mid-word joined.
"""

from __future__ import annotations

import re
import unicodedata

# Spacing accent -> combining accent.
_ACCENTS = {
    "\u00b4": "\u0301", "\u02dd": "\u030b", "\u02c7": "\u030c", "\u00a8": "\u0308", "\u02dc": "\u0303",
    "\u02c6": "\u0302", "\u00b8": "\u0327", "\u02d8": "\u0306", "\u02da": "\u030a", "\u02d9": "\u0307",
    "\u00af": "\u0304", "\u02db": "\u0328",
}
_ACCENT_BEFORE = re.compile("([" + "".join(_ACCENTS) + "])([A-Za-z\u0131])")
# Letters each accent goes on in the languages that use it: an acute before "s" in "it´s" is an
# apostrophe, not "ś".
_VOWELS = "aeiouyAEIOUY\u0131"
_TAKES = {"\u02c7": "cdenrstzCDENRSTZ" + "aeiouAEIOU", "\u00b8": "cgklnrstCGKLNRST", "\u02db": "aeiuAEIU",
          "\u02d9": "cegzCEGZI"}
_ACCENT_AFTER = re.compile("([A-Za-z\u0131])([" + "".join(_ACCENTS) + "])(?![A-Za-z])")
_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
              "\ufb05": "st", "\ufb06": "st"}
_TEX_QUOTES = [("\u2018\u2018", "\u201c"), ("\u2019\u2019", "\u201d"), ("``", "\u201c"), ("''", "\u201d"),
               (",,", "\u201e")]


def _compose(letter: str, accent: str) -> str | None:
    """The precomposed letter, or None when Unicode has none or the accent does not go on that
    letter in any language that uses it (then the text stays as it was)."""
    if letter not in _TAKES.get(accent, _VOWELS):
        return None
    base = "i" if letter == "\u0131" else letter  # TeX accents a dotless i
    composed = unicodedata.normalize("NFC", base + _ACCENTS[accent])
    return composed if len(composed) == 1 else None


def compose_accents(text: str) -> str:
    def before(m: re.Match) -> str:
        return _compose(m.group(2), m.group(1)) or m.group(0)

    def after(m: re.Match) -> str:
        return _compose(m.group(1), m.group(2)) or m.group(0)

    text = _ACCENT_BEFORE.sub(before, text)
    text = _ACCENT_AFTER.sub(after, text)
    return unicodedata.normalize("NFC", text)


def normalise_quotes_and_ligatures(text: str) -> str:
    for lig, plain in _LIGATURES.items():
        text = text.replace(lig, plain)
    for tex, quote in _TEX_QUOTES:
        if tex in ("``", "''"):
            # Backticks are Markdown code; only pairs around words (``word'') are TeX quotes.
            text = re.sub(r"``(?=\w)(.+?)''", "\u201c\\1\u201d", text)
            continue
        text = text.replace(tex, quote)
    return text


_KANGXI = re.compile("[\u2f00-\u2fd5]")


def kangxi_to_ideographs(text: str) -> str:
    return _KANGXI.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)


def clean_text(text: str) -> str:
    """All of the character-level clean-up above (the running-line check is separate)."""
    return kangxi_to_ideographs(normalise_quotes_and_ligatures(compose_accents(text)))


# A page's first or last lines that are page furniture whatever the document: page numbers,
# revision and version stamps, print dates.
_RUNNING_PATTERNS = [
    re.compile(r"^(?:page|p\.|seite|página|pagina)?\s*[-\u2013\u2014]?\s*\d{1,4}\s*[-\u2013\u2014]?$", re.I),
    re.compile(r"^(?:page|seite|página|pagina)\s+\d{1,4}\s*(?:of|/|von|de|di)\s*\d{1,4}$", re.I),
    re.compile(r"^\d{1,4}\s*(?:/|of)\s*\d{1,4}$", re.I),
    re.compile(r"^(?:rev(?:ision)?|version|ver\.?|v)\.?\s*:?\s*\d+(?:\.\d+)*[a-z]?$", re.I),
    re.compile(r"^(?:printed|generated|created|last (?:updated|modified)|date)\s*:?\s*"
               r"(?:\d{1,4}[-./]\d{1,2}[-./]\d{1,4}|\d{1,2}\s+\w+\s+\d{4}|\w+\s+\d{1,2},?\s+\d{4})$", re.I),
]
_MD_DECORATION = re.compile(r"^[#>\-*\s]+|[*_`]+")


def is_running_line(line: str) -> bool:
    plain = _MD_DECORATION.sub("", line).strip()
    return bool(plain) and any(p.match(plain) for p in _RUNNING_PATTERNS)


def drop_page_furniture(markdown: str, edge: int = 2) -> str:
    """Remove page numbers and revision or date stamps among a page's first and last ``edge``
    non-empty lines (a line alone in its block only: never a table row or list text)."""
    lines = markdown.splitlines()
    idx = [i for i, ln in enumerate(lines) if ln.strip()]
    if len(idx) < 3:
        return markdown  # a page that is nothing but a number keeps it
    drop = {i for i in idx[:edge] + idx[-edge:] if not lines[i].lstrip().startswith("|") and is_running_line(lines[i])}
    return "\n".join(ln for i, ln in enumerate(lines) if i not in drop)


def apply_layer_fixes(md: str, fixes) -> str:
    """Apply what a page's glyphs showed (``textlayer.LayerFixes``): words re-split where the
    layer lost their spaces, a drop cap put back on its word, and table cells cut mid-word
    joined (``|Proced|ure ...|`` when "Procedure" is one word on the page)."""
    for joined, split in sorted(fixes.splits.items(), key=lambda kv: -len(kv[0])):
        md = re.sub(r"(?<!\w)" + re.escape(joined) + r"(?!\w)", split, md)
    for letter, start in fixes.drop_caps:
        rest = re.search(r"(?<!\w)" + re.escape(start), md)
        stray = re.search(r"(?:(?<=\s)|^)(?:#+\s+)?" + re.escape(letter) + r"(?=\s|$)", md, re.M)
        if rest and stray:
            md = md[: rest.start()] + letter + md[rest.start():]
            stray = re.search(r"(?:(?<=\s)|^)(?:#+\s+)?" + re.escape(letter) + r"(?=\s|$)", md, re.M)
            if stray:
                md = md[: stray.start()] + md[stray.end():].lstrip(" ")
    if fixes.words and "|" in md:
        md = "\n".join(_join_cut_cells(line, fixes.words) if line.startswith("|") else line
                       for line in md.split("\n"))
    return md


def _join_cut_cells(row: str, words: set[str]) -> str:
    """``|Proced|ure of work|`` -> ``|Procedure|of work|`` when "Procedure" is a word of the
    page and neither piece is."""
    cells = row.split("|")
    for i in range(1, len(cells) - 2):
        left, right = cells[i], cells[i + 1]
        if not left or not right or left[-1:].isspace() or right[:1].isspace():
            continue
        head, _, tail_rest = left.rpartition(" ")
        first, sep, rest = right.partition(" ")
        bold = tail_rest.endswith("**") and first.startswith("**")
        a, b = tail_rest.strip("*"), first.strip("*").rstrip(".,;:")
        if not (a.isalpha() and b[:1].isalpha()):
            continue
        if a + b in words and a not in words and b not in words:
            joined = tail_rest[:-2] + first[2:] if bold else tail_rest + first
            cells[i] = (head + " " if head else "") + joined
            cells[i + 1] = rest
    return "|".join(cells)
