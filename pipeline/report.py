"""The review report: ``report.html`` in an output folder, one self-contained page.

For every page it shows the page's thumbnail beside the answer (Markdown rendered safely),
route and status badges, the fallback reason, agreement and flags, tokens and cost; chart
tables and extracted data; where each part of the answer is on the page, and what was not found
(pipeline/report_view.py: boxes, a zooming page viewer, keyboard navigation); totals at the
top; and filters for failed, fallen-back, flagged and not-found pages. The page loads nothing from the network: CSS and the one small script are inline, and
a strict Content-Security-Policy (script allowed by hash only) keeps model output inert even
if escaping ever failed. Model output is never emitted as HTML: every string is escaped first
and only this module's own tags are added around it.

Thumbnails come either as bytes (embedded as data URIs) or as files ``thumbs/<sha16>-p<N>.jpg``
in the output folder, referenced relatively (the batch writes ``Page.thumbnail`` with
``save_thumbnail`` while it runs). The report reads ``results.jsonl`` twice, keeping only
byte offsets in between, so thousands of pages cost little memory.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import html
import io
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from . import report_view
from .layout import PAGES_DIR, page_image_name, review_image_name
from .files import atomic_file, atomic_write
from .outputs import MANIFEST, RESULTS, WORK_DIR
from .report_view import CardGrounding
from .records import (
    ROUTE_LOCAL_OCR,
    ROUTE_LOCAL_TEXT,
    ROUTE_TEXT_FALLBACK,
    ROUTE_VISION_ALT,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
)

REPORT = "report.html"
THUMBS_DIR = "thumbs"
THUMB_MAX_EDGE = 320
CHART_ROWS_SHOWN = 500  # a longer chart table is cut here (the CSV file has all of it)
DATA_CHARS_SHOWN = 200_000  # extracted JSON longer than this is cut in the page

_TASK_ORDER = {"transcribe": 0, "ask": 1, "extract": 2, "chart": 3}
_FALLBACK_ROUTES = {ROUTE_VISION_ALT, ROUTE_TEXT_FALLBACK}
_LOCAL_ROUTES = {ROUTE_LOCAL_TEXT, ROUTE_LOCAL_OCR}


# --------------------------------------------------------------------------- thumbnails

def thumbnail_name(sha256: str, page: int) -> str:
    """Where a page's thumbnail lives, relative to the output folder."""
    return f"{THUMBS_DIR}/{sha256[:16]}-p{int(page)}.jpg"


def make_thumbnail(image_bytes: bytes, max_edge: int = THUMB_MAX_EDGE) -> bytes:
    """A JPEG no larger than ``max_edge`` on its long side (never enlarged)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(image_bytes)) as src:
        src.draft("RGB", (max_edge, max_edge))  # JPEG: decode at a reduced scale, cheaply
        im = ImageOps.exif_transpose(src)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.new("RGB", rgba.size, "white")
            im.paste(rgba, mask=rgba.getchannel("A"))
        elif im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        im.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80, optimize=True)
        return buf.getvalue()


def save_thumbnail(out_dir: str, sha256: str, page: int, jpeg: bytes) -> str:
    """Write a ready thumbnail (``Page.thumbnail``) atomically under ``thumbs/``; returns its path."""
    path = os.path.join(out_dir, thumbnail_name(sha256, page))
    atomic_write(path, jpeg, durable=False)  # a lost thumbnail shows a placeholder, nothing more
    return path


def _image_mime(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


# --------------------------------------------------------------------------- safe Markdown

_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_HR = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST = re.compile(r"^( *)([-*+]|\d{1,9}[.)])( +|$)(.*)$")
_QUOTE = re.compile(r"^ {0,3}&gt; ?")
_DELIM = re.compile(r"^ *\|? *:?-+:? *(?:\| *:?-+:? *)*\|? *$")
_LANG = re.compile(r"[A-Za-z0-9_+-]{1,32}")
_MAX_DEPTH = 16  # nested lists/quotes deeper than this are shown as plain text

_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_BACKSLASH = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~])")
_STRONG = (re.compile(r"\*\*(?=\S)(.{1,500}?)(?<=\S)\*\*", re.S),
           re.compile(r"(?<!\w)__(?=\S)(.{1,500}?)(?<=\S)__(?!\w)", re.S))
_EM = (re.compile(r"\*(?=[^\s*])(.{1,500}?)(?<=[^\s*])\*", re.S),
       re.compile(r"(?<!\w)_(?=[^\s_])(.{1,500}?)(?<=[^\s_])_(?!\w)", re.S))
_DEL = re.compile(r"~~(?=\S)(.{1,500}?)(?<=\S)~~", re.S)
_SLOT = re.compile(r"\x00(\d+)\x00")


def render_markdown(text: str | None) -> str:
    """Markdown to HTML that can carry no markup of its own.

    The whole text is HTML-escaped first; only then are Markdown constructs recognised, and
    each becomes one of a fixed set of tags (headings, paragraphs, strong/em/del, code spans,
    fenced code, lists, block quotes, rules and pipe tables) with no attributes taken from the
    text. Links, images and raw HTML are shown as the literal text they are.
    """
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CTRL.sub("\ufffd", text).expandtabs(4)
    out: list[str] = []
    _blocks(html.escape(text, quote=True).split("\n"), out, 0)
    return "".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dedent(line: str, n: int) -> str:
    return line[min(n, _indent(line)):]


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    return bool(_FENCE.match(line) or _ATX.match(line) or _HR.match(line) or _QUOTE.match(line)
                or _is_table(lines, i))


def _is_table(lines: list[str], i: int) -> bool:
    return ("|" in lines[i] and i + 1 < len(lines) and "-" in lines[i + 1]
            and bool(_DELIM.match(lines[i + 1]))
            and ("|" in lines[i + 1] or lines[i].strip().startswith("|")))


def _blocks(lines: list[str], out: list[str], depth: int) -> None:
    i, n = 0, len(lines)
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{_paragraph(para)}</p>\n")
            para.clear()

    while i < n:
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
            continue
        m = _FENCE.match(line)
        if m:
            flush()
            i = _fenced(lines, i, m, out)
            continue
        m = _ATX.match(line)
        if m:
            flush()
            level = len(m.group(1))
            out.append(f"<h{level}>{_inline(m.group(2) or '')}</h{level}>\n")
            i += 1
            continue
        if _HR.match(line):
            flush()
            out.append("<hr>\n")
            i += 1
            continue
        if _is_table(lines, i):
            flush()
            i = _table(lines, i, out)
            continue
        m = _LIST.match(line)
        if m and depth < _MAX_DEPTH and m.group(4).strip() and (
                not para or not m.group(2)[0].isdigit() or m.group(2)[:-1] == "1"):
            flush()
            i = _list(lines, i, out, depth)
            continue
        if _QUOTE.match(line) and depth < _MAX_DEPTH:
            flush()
            inner: list[str] = []
            while i < n and lines[i].strip():
                q = _QUOTE.match(lines[i])
                if not q and (_starts_block(lines, i) or _LIST.match(lines[i])):
                    break
                inner.append(lines[i][q.end():] if q else lines[i])
                i += 1
            out.append("<blockquote>\n")
            _blocks(inner, out, depth + 1)
            out.append("</blockquote>\n")
            continue
        para.append(line)
        i += 1
    flush()


def _paragraph(lines: list[str]) -> str:
    parts = []
    for k, line in enumerate(lines):
        last = k == len(lines) - 1
        hard = not last and (line.endswith("  ") or line.endswith("\\"))
        line = line.strip()
        if hard and line.endswith("\\"):
            line = line[:-1]
        parts.append(line + ("\x01" if hard else ""))
    return _inline("\n".join(parts)).replace("\x01", "<br>")


def _fenced(lines: list[str], i: int, m: re.Match, out: list[str]) -> int:
    indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
    if fence[0] == "`" and "`" in info:  # not a fence (CommonMark): a paragraph line
        out.append(f"<p>{_inline(lines[i].strip())}</p>\n")
        return i + 1
    body = []
    i += 1
    close = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
    while i < len(lines) and not close.match(lines[i]):
        body.append(_dedent(lines[i], indent))
        i += 1
    lang = _LANG.match(info.split(" ")[0]) if info else None
    cls = f' class="lang-{lang.group(0)}"' if lang else ""
    out.append(f"<pre><code{cls}>" + "\n".join(body) + "</code></pre>\n")
    return i + 1


def _split_row(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", s)]


def _table(lines: list[str], i: int, out: list[str]) -> int:
    head = _split_row(lines[i])
    aligns = []
    for d in _split_row(lines[i + 1]):
        left, right = d.startswith(":"), d.endswith(":")
        aligns.append(' class="a-c"' if left and right else ' class="a-r"' if right
                      else ' class="a-l"' if left else "")
    aligns += [""] * (len(head) - len(aligns))
    out.append('<div class="tbl"><table>\n<thead><tr>')
    out.extend(f"<th{aligns[k]}>{_inline(c)}</th>" for k, c in enumerate(head))
    out.append("</tr></thead>\n<tbody>\n")
    i += 2
    while i < len(lines) and lines[i].strip() and "|" in lines[i]:
        cells = _split_row(lines[i])[: len(head)]
        cells += [""] * (len(head) - len(cells))
        out.append("<tr>" + "".join(f"<td{aligns[k]}>{_inline(c)}</td>" for k, c in enumerate(cells))
                   + "</tr>\n")
        i += 1
    out.append("</tbody></table></div>\n")
    return i


def _list(lines: list[str], i: int, out: list[str], depth: int) -> int:
    first = _LIST.match(lines[i])
    base = len(first.group(1))
    ordered = first.group(2)[0].isdigit()
    if ordered:
        start = int(first.group(2)[:-1])
        out.append("<ol>\n" if start == 1 else f'<ol start="{start}">\n')
    else:
        out.append("<ul>\n")
    items: list[tuple[list[str], list[str]]] = []
    content = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        m = _LIST.match(line)
        if (m and m.group(4).strip() and abs(len(m.group(1)) - base) <= 1
                and m.group(2)[0].isdigit() == ordered):
            content = len(m.group(1)) + len(m.group(2)) + min(len(m.group(3)), 4)
            items.append(([m.group(4)], []))
            i += 1
            continue
        text, sub = items[-1]
        if not line.strip():
            j = i + 1
            while j < n and not lines[j].strip():
                j += 1
            if j < n and _indent(lines[j]) >= content:
                sub.extend([""] * (j - i))
                i = j
                continue
            nxt = _LIST.match(lines[j]) if j < n else None
            if (nxt and nxt.group(4).strip() and abs(len(nxt.group(1)) - base) <= 1
                    and nxt.group(2)[0].isdigit() == ordered):
                i = j  # the list goes on after a blank line
                continue
            break
        if _indent(line) >= content:
            (sub if sub or _LIST.match(_dedent(line, content)) or _starts_block(lines, i) else text
             ).append(_dedent(line, content))
            i += 1
            continue
        if not sub and not m and not _starts_block(lines, i):  # lazy continuation line
            text.append(line)
            i += 1
            continue
        break
    for text, sub in items:
        body = _paragraph(text)
        if body.startswith("[ ] ") or body.startswith("[x] ") or body.startswith("[X] "):
            body = ("\u2610 " if body[1] == " " else "\u2611 ") + body[4:]
        out.append(f"<li>{body}")
        if sub:
            out.append("\n")
            _blocks(sub, out, depth + 1)
        out.append("</li>\n")
    out.append("</ol>\n" if ordered else "</ul>\n")
    return i


def _inline(s: str) -> str:
    """Inline Markdown on already-escaped text."""
    slots: list[str] = []

    def keep(fragment: str) -> str:
        slots.append(fragment)
        return f"\x00{len(slots) - 1}\x00"

    def code(m: re.Match) -> str:
        body = m.group(2).replace("\n", " ")
        if body.startswith(" ") and body.endswith(" ") and body.strip():
            body = body[1:-1]
        return keep(f"<code>{body}</code>")

    s = _CODE_SPAN.sub(code, s)
    s = _BACKSLASH.sub(lambda m: keep(m.group(1)), s)
    for rx in _STRONG:
        s = rx.sub(r"<strong>\1</strong>", s)
    for rx in _EM:
        s = rx.sub(r"<em>\1</em>", s)
    s = _DEL.sub(r"<del>\1</del>", s)
    return _SLOT.sub(lambda m: slots[int(m.group(1))], s)


# --------------------------------------------------------------------------- reading

def _results_path(out_dir: str) -> str | None:
    for p in (os.path.join(out_dir, RESULTS), os.path.join(out_dir, WORK_DIR, RESULTS + ".part")):
        if os.path.isfile(p):
            return p
    return None


def _read_manifest(out_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(out_dir, MANIFEST), encoding="utf-8") as f:
            m = json.load(f)
        return m if isinstance(m, dict) else {}
    except (OSError, ValueError):
        return {}


def _is_fallback(r: dict[str, Any], local_profile: bool) -> bool:
    route = r.get("route")
    return bool(r.get("fallback_reason")) or route in _FALLBACK_ROUTES or (
        not local_profile and route in _LOCAL_ROUTES)


def _num(v: Any) -> float:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


class _Scan:
    """Pass one over results.jsonl: totals, and per document the offsets of its records."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.docs: dict[tuple[str, str | None], list[tuple[int, int, int, int]]] = {}
        self.status: Counter[str] = Counter()
        self.routes: Counter[str] = Counter()
        self.tasks: Counter[str] = Counter()
        self.tokens = Counter({"input_tokens": 0, "output_tokens": 0})
        self.cost = 0.0
        self.latency_ms = 0.0
        self.records = 0
        self.bad_lines = 0
        self.pages: set[tuple[str, str | None, int]] = set()
        self.routes_seen: set[str] = set()
        if path:
            self._scan(path)

    def _scan(self, path: str) -> None:
        offset = 0
        with open(path, "rb") as f:
            for line in f:
                here, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    if not isinstance(r, dict):
                        raise ValueError("not an object")
                except ValueError:
                    self.bad_lines += 1
                    continue
                doc = (str(r.get("document") or "?"), r.get("sha256"))
                page = r.get("page") if isinstance(r.get("page"), int) else None
                region = r.get("region") if isinstance(r.get("region"), int) else 0
                self.docs.setdefault(doc, []).append(
                    (page if page is not None else -1, _TASK_ORDER.get(r.get("task"), 9), region, here))
                if page is not None:
                    self.pages.add((*doc, page))
                self.records += 1
                self.status[str(r.get("status"))] += 1
                self.routes[str(r.get("route") or "none")] += 1
                self.tasks[str(r.get("task"))] += 1
                if r.get("route"):
                    self.routes_seen.add(r["route"])
                usage = r.get("usage") if isinstance(r.get("usage"), dict) else {}
                for k in ("input_tokens", "output_tokens", "pages"):
                    self.tokens[k] += int(_num(usage.get(k)))
                self.cost += _num(r.get("cost_usd"))
                self.latency_ms += _num(r.get("latency_ms"))

    def records_of(self, f, doc) -> Iterator[tuple[int | None, list[dict[str, Any]]]]:
        """(page, records) for one document, pages in order (the document-level entry first)."""
        entries = sorted(self.docs[doc])
        k = 0
        while k < len(entries):
            page = entries[k][0]
            group = []
            while k < len(entries) and entries[k][0] == page:
                f.seek(entries[k][3])
                group.append(json.loads(f.readline()))
                k += 1
            yield (None if page == -1 else page), group


# --------------------------------------------------------------------------- HTML pieces

def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _rel_href(name: Any) -> str | None:
    """A relative link inside the output folder, or None."""
    if not isinstance(name, str) or not name or name.startswith(("/", "\\")):
        return None
    parts = name.replace("\\", "/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return quote(name.replace("\\", "/"), safe="/")


def _fmt_int(n: Any) -> str:
    return f"{int(_num(n)):,}"


def _fmt_cost(c: Any) -> str:
    c = _num(c)
    if c == 0:
        return "$0"
    return f"${c:.4f}" if c >= 0.01 else f"${c:.6f}".rstrip("0")


def _fmt_ms(ms: Any) -> str:
    ms = _num(ms)
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)} min {int(s % 60)} s"


def _fmt_bytes(n: Any) -> str:
    n = _num(n)
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB" if n >= 1e3 else f"{int(n)} B"


def _badge(text: Any, cls: str, title: str | None = None) -> str:
    t = f' title="{_e(title)}"' if title else ""
    return f'<span class="b {cls}"{t}>{_e(text)}</span>'


def _chips(counter: dict[str, int] | Counter, cls_of=lambda k: "") -> str:
    return " ".join(_badge(f"{k} {_fmt_int(v)}", cls_of(k)) for k, v in
                    sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _status_cls(status: Any) -> str:
    return {STATUS_OK: "s-ok", STATUS_FAILED: "s-failed", STATUS_SKIPPED: "s-skipped",
            "partial": "s-partial"}.get(status, "s-other")


def _route_cls(route: Any, fallback: bool) -> str:
    if fallback:
        return "r-fallback"
    return "r-none" if not route else "r-local" if route in _LOCAL_ROUTES else "r-vision"


def _chart_table(data: dict[str, Any]) -> str:
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        return ""
    rows = [r if isinstance(r, list) else [r] for r in rows]
    width = max(len(r) for r in rows[: CHART_ROWS_SHOWN + 1])
    out = ['<div class="tbl"><table class="chart">']
    head, body = (rows[0], rows[1:]) if len(rows) > 1 else (None, rows)
    if head is not None:
        out.append("<thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in head)
                   + "<th></th>" * (width - len(head)) + "</tr></thead>")
    out.append("<tbody>")
    for r in body[:CHART_ROWS_SHOWN]:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r)
                   + "<td></td>" * (width - len(r)) + "</tr>")
    out.append("</tbody></table></div>")
    if len(body) > CHART_ROWS_SHOWN:
        out.append(f'<p class="muted">{len(body) - CHART_ROWS_SHOWN:,} more rows in the CSV file.</p>')
    return "".join(out)


def _json_block(data: Any) -> str:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    cut = ""
    if len(text) > DATA_CHARS_SHOWN:
        cut = f'<p class="muted">Cut at {DATA_CHARS_SHOWN:,} characters; results.jsonl has all of it.</p>'
        text = text[:DATA_CHARS_SHOWN]
    return f'<pre class="json">{_e(text)}</pre>{cut}'


def _record_html(r: dict[str, Any], local_profile: bool, cg: CardGrounding | None = None) -> str:
    """One record in its page's card: badges, figures, notes, the answer, and where it is."""
    status = r.get("status")
    fb = _is_fallback(r, local_profile)
    flags = [f for f in (r.get("flags") or []) if f] if isinstance(r.get("flags"), list) else []
    classes = ["rec", f"st-{status}" if status in (STATUS_OK, STATUS_FAILED, STATUS_SKIPPED) else "st-other"] + (["is-fallback"] if fb else []) + (["is-flagged"] if flags else [])
    grounded = cg.items_html(r) if cg is not None else ""
    return "".join([f'<div class="{" ".join(classes)}">', _record_badges(r, fb, flags), _record_meta(r),
                    _record_notes(r, flags), _record_answer(r), grounded, "</div>"])


def _record_badges(r: dict[str, Any], fb: bool, flags: list) -> str:
    status, route = r.get("status"), r.get("route")
    o = ['<div class="badges">', _badge(r.get("task") or "task?", "t")]
    if isinstance(r.get("region"), int):
        o.append(_badge(f"chart {r['region']}", "t"))
    o.append(_badge(status or "?", _status_cls(status)))
    o.append(_badge(route or "no route", _route_cls(route, fb),
                    "fallen back" if fb else None))
    if r.get("cached"):
        o.append(_badge("cached", "r-none"))
    if isinstance(r.get("agreement"), (int, float)):
        a = float(r["agreement"])
        o.append(_badge(f"agreement {a:.0%}", "ag-good" if a >= 0.9 else "ag-warn" if a >= 0.75 else "ag-bad",
                        "vision answer vs the page's text layer"))
    if flags:
        o.append(_badge(f"{len(flags)} flag" + ("s" if len(flags) > 1 else ""), "flag"))
    g = r.get("grounding") if isinstance(r.get("grounding"), dict) else {}
    missing = int(_num(g.get("total"))) - int(_num(g.get("located")))
    if missing > 0 and g.get("words") != "none":
        o.append(_badge(f"{missing} not found on the page", "ul-badge"))
    o.append("</div>")
    return "".join(o)


def _record_meta(r: dict[str, Any]) -> str:
    usage = r.get("usage") if isinstance(r.get("usage"), dict) else {}
    meta = []
    if r.get("model"):
        meta.append(f'<span class="model">{_e(r.get("model"))}'
                    + (f' <span class="muted">({_e(r.get("provider"))})</span>' if r.get("provider") else "")
                    + "</span>")
    meta.append(f'{_fmt_int(usage.get("input_tokens"))} in / {_fmt_int(usage.get("output_tokens"))} out tokens')
    meta.append(_fmt_cost(r.get("cost_usd")))
    meta.append(_fmt_ms(r.get("latency_ms")))
    if _num(r.get("attempts")) > 1:
        meta.append(f"{_fmt_int(r.get('attempts'))} attempts")
    img = r.get("image") if isinstance(r.get("image"), dict) else None
    if img:
        mime = str(img.get("mime") or "").replace("image/", "")
        meta.append(f"{_fmt_int(img.get('width'))}\u00d7{_fmt_int(img.get('height'))} {_e(mime)}"
                    f" {_fmt_bytes(img.get('bytes'))}")
    if r.get("scope") == "document" and isinstance(r.get("pages"), list):
        meta.append("pages " + _e(", ".join(str(p) for p in r["pages"][:50])
                                  + (" \u2026" if len(r["pages"]) > 50 else "")))
    return '<div class="meta">' + " \u00b7 ".join(meta) + "</div>"


def _record_notes(r: dict[str, Any], flags: list) -> str:
    o = []
    if r.get("fallback_reason"):
        o.append(f'<div class="note fb"><b>Fallback:</b> {_e(r["fallback_reason"])}</div>')
    for t in (r.get("tried") or [])[:10] if isinstance(r.get("tried"), list) else []:
        if isinstance(t, dict):
            err = t.get("error") if isinstance(t.get("error"), dict) else {}
            o.append(f'<div class="note tried"><b>Tried {_e(t.get("route"))}:</b> '
                     f'{_e(err.get("type"))} {_e(err.get("message"))}</div>')
    err = r.get("error")
    if isinstance(err, dict) and (err.get("type") or err.get("message")):
        o.append(f'<div class="note err"><b>{_e(err.get("type") or "error")}:</b> {_e(err.get("message"))}</div>')
    if flags:
        o.append('<ul class="flags">' + "".join(f"<li>{_e(f)}</li>" for f in flags) + "</ul>")
    if r.get("question"):
        o.append(f'<div class="q"><b>Question:</b> {_e(r["question"])}</div>')
    return "".join(o)


def _record_answer(r: dict[str, Any]) -> str:
    """The answer as Markdown, its data (chart table or JSON) and the schema check."""
    o = []
    answer = r.get("answer")
    if isinstance(answer, str) and answer.strip():
        o.append(f'<div class="md">{render_markdown(answer)}</div>')
    elif r.get("status") == STATUS_OK:
        o.append('<div class="md muted"><em>(blank page)</em></div>')
    data = r.get("data")
    if r.get("task") == "chart" and isinstance(data, dict):
        href = _rel_href(data.get("csv"))
        if href:
            o.append(f'<div class="meta">Table: <a href="{href}">{_e(data.get("csv"))}</a></div>')
        o.append(_chart_table(data))
    elif data is not None:
        if r.get("schema"):
            o.append(f'<div class="meta">Schema: {_e(r["schema"])}</div>')
        o.append(_json_block(data))
    valid = r.get("valid")
    if isinstance(valid, dict):
        if valid.get("ok"):
            o.append('<div class="note ok">Valid against the schema.</div>')
        else:
            errs = valid.get("errors") if isinstance(valid.get("errors"), list) else []
            o.append('<div class="note err"><b>Not valid against the schema</b>'
                     + ("<ul>" + "".join(f"<li>{_e(x)}</li>" for x in errs[:50]) + "</ul>" if errs else "")
                     + "</div>")
    return "".join(o)


# --------------------------------------------------------------------------- the page

_CSS = """
*{box-sizing:border-box}
[hidden]{display:none!important}
:root{--fg:#1d2330;--muted:#667085;--line:#d9dee7;--bg:#f5f7fa;--card:#fff}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header.top{background:#1d2a44;color:#fff;padding:16px 24px}
header.top h1{margin:0 0 4px;font-size:20px}
header.top .sub{color:#c8d1e3;font-size:13px}
.totals{display:flex;flex-wrap:wrap;gap:10px;padding:14px 24px;background:#fff;border-bottom:1px solid var(--line)}
.tot{min-width:120px;padding:6px 12px;border:1px solid var(--line);border-radius:8px;background:#fafbfd}
.tot .k{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.tot .v{font-size:18px;font-weight:600}
.tot.wide{flex:1 1 280px}
.tot.wide .v{font-size:13px;font-weight:400;line-height:2}
.filters{position:sticky;top:0;z-index:5;display:flex;flex-wrap:wrap;align-items:center;gap:8px 18px;padding:10px 24px;background:#eef2f8;border-bottom:1px solid var(--line)}
.filters label{display:inline-flex;align-items:center;gap:6px;cursor:pointer;padding:3px 10px;border:1px solid var(--line);border-radius:16px;background:#fff}
.filters label:has(input:checked){background:#dfe9ff;border-color:#7d9be0}
.filters button{font:inherit;padding:3px 12px;border:1px solid var(--line);border-radius:16px;background:#fff;cursor:pointer}
#visible-count{color:var(--muted);margin-left:auto}
main{padding:8px 24px 40px}
.doc{margin:18px 0;background:var(--card);border:1px solid var(--line);border-radius:10px;overflow:hidden}
.doc>header{padding:10px 16px;background:#f0f3f8;border-bottom:1px solid var(--line)}
.doc>header h2{margin:0;font-size:16px;word-break:break-all}
.doc>header .meta{margin:2px 0 0}
.page{content-visibility:auto;contain-intrinsic-size:auto 420px;display:grid;grid-template-columns:minmax(120px,max-content) minmax(0,1fr);gap:20px;padding:14px 16px;border-top:1px solid var(--line)}
.doc>header+.page{border-top:0}
.page.is-failed{background:#fff8f8}
.thumb{margin:0;max-width:322px}
.thumb img{display:block;max-width:100%;height:auto;border:1px solid var(--line);box-shadow:0 1px 3px rgba(0,0,0,.12);background:#fff}
.thumb .ph{display:flex;align-items:center;justify-content:center;width:240px;aspect-ratio:3/4;max-height:320px;border:1px dashed #b7bfcc;color:var(--muted);background:#fafbfd;font-size:13px}
.thumb .ph-doc{aspect-ratio:auto;height:90px}
.thumb figcaption{margin-top:4px;font-size:12px;color:var(--muted)}
.thumb figcaption b{color:var(--fg)}
.rec+.rec{margin-top:14px;padding-top:14px;border-top:1px dashed var(--line)}
.badges{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:4px}
.b{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;line-height:20px;background:#e7ebf2;color:#344054;white-space:nowrap}
.s-ok{background:#dcfae6;color:#085d3a}.s-failed{background:#fee4e2;color:#912018}
.s-skipped{background:#eaecf0;color:#475467}.s-partial{background:#fef0c7;color:#93370d}
.r-local{background:#e0f2fe;color:#065986}.r-vision{background:#ebe9fe;color:#4a1fb8}
.r-fallback{background:#ffead5;color:#9c2a10}.r-none{background:#eaecf0;color:#475467}
.t{background:#f2f4f7;color:#344054;font-weight:500}
.ag-good{background:#dcfae6;color:#085d3a}.ag-warn{background:#fef0c7;color:#93370d}.ag-bad{background:#fee4e2;color:#912018}
.flag{background:#fef0c7;color:#93370d}
.meta{color:var(--muted);font-size:12px;margin:2px 0 6px}
.meta .model{color:#344054}
.muted{color:var(--muted)}
.note{margin:6px 0;padding:6px 10px;border-radius:6px;font-size:13px;border-left:4px solid}
.note.fb{background:#fff6ed;border-color:#f79009}
.note.err{background:#fef3f2;border-color:#d92d20}
.note.tried{background:#f9fafb;border-color:#98a2b3}
.note.ok{background:#ecfdf3;border-color:#12b76a}
.flags{margin:6px 0;padding:6px 10px 6px 28px;background:#fffaeb;border-left:4px solid #fdb022;border-radius:6px;font-size:13px}
.q{margin:6px 0;font-size:13px}
.md{overflow-wrap:anywhere}
.md h1,.md h2,.md h3,.md h4,.md h5,.md h6{margin:.8em 0 .3em;line-height:1.25}
.md h1{font-size:1.35em}.md h2{font-size:1.2em}.md h3{font-size:1.08em}.md h4,.md h5,.md h6{font-size:1em}
.md p{margin:.45em 0}
.md ul,.md ol{margin:.4em 0;padding-left:1.6em}
.md blockquote{margin:.5em 0;padding:0 .8em;border-left:3px solid var(--line);color:#475467}
.md hr{border:0;border-top:1px solid var(--line)}
code{font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;background:#f2f4f7;padding:1px 4px;border-radius:4px}
pre{margin:.5em 0;padding:8px 10px;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;overflow:auto;max-height:480px}
pre code{padding:0;background:none}
pre.json{font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
.tbl{overflow:auto;max-width:100%;margin:.5em 0}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid var(--line);padding:3px 8px;vertical-align:top}
th{background:#f2f4f7;text-align:left}
.a-l{text-align:left}.a-c{text-align:center}.a-r{text-align:right}
table.chart td{font-variant-numeric:tabular-nums}
.empty{padding:40px;text-align:center;color:var(--muted)}
@media (max-width:800px){.page{grid-template-columns:1fr}}
""" + report_view.CSS + """
@media print{.filters{display:none}.page{break-inside:avoid}}
"""

# The page's one script. It is allowed by its hash in the Content-Security-Policy; keep it
# static (no data in it): everything it needs is in data-* attributes of the page cards.
_FILTER_SCRIPT = """
(function () {
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[data-filter]'));
  var pages = Array.prototype.slice.call(document.querySelectorAll('.page'));
  var docs = Array.prototype.slice.call(document.querySelectorAll('.doc'));
  var counter = document.getElementById('visible-count');
  function apply() {
    var on = boxes.filter(function (b) { return b.checked; })
                  .map(function (b) { return 'data-' + b.getAttribute('data-filter'); });
    var shown = 0;
    pages.forEach(function (p) {
      var ok = on.length === 0 || on.some(function (a) { return p.hasAttribute(a); });
      p.hidden = !ok;
      if (ok) { shown++; }
    });
    docs.forEach(function (d) {
      d.hidden = on.length > 0 && !d.querySelector('.page:not([hidden])');
    });
    if (counter) { counter.textContent = shown + ' of ' + pages.length + ' shown'; }
    document.body.setAttribute('data-filtering', on.length ? 'yes' : 'no');
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  var clear = document.getElementById('f-clear');
  if (clear) {
    clear.addEventListener('click', function () {
      boxes.forEach(function (b) { b.checked = false; });
      apply();
    });
  }
  apply();
})();
"""
_SCRIPT = _FILTER_SCRIPT + report_view.SCRIPT
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
CSP = ("default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; "
       f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'")


def _when(iso: Any) -> str:
    try:
        return dt.datetime.fromisoformat(str(iso)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return _e(iso)


def _tot(label: str, value: str, cls: str = "tot") -> str:
    return f'<div class="{cls}"><div class="k">{_e(label)}</div><div class="v">{value}</div></div>'


class _Thumbs:
    def __init__(self, out_dir: str, given: dict[tuple[str, int], bytes] | None) -> None:
        self.given = given
        self.files: set[str] = set()
        if given is None:
            try:
                self.files = {n for n in os.listdir(os.path.join(out_dir, THUMBS_DIR)) if n.endswith(".jpg")}
            except OSError:
                pass
        try:
            self.pages = set(os.listdir(os.path.join(out_dir, PAGES_DIR)))
        except OSError:
            self.pages = set()

    def full(self, sha: Any, page: int | None, mime: Any) -> str | None:
        """The image the viewer shows, written under pages/ by the run: the full-resolution one
        (``review_dpi``), else the one the model saw."""
        if not (isinstance(sha, str) and sha and page is not None):
            return None
        for name_of in (review_image_name, page_image_name):
            for m in (mime, "image/png", "image/jpeg"):
                name = name_of(sha, page, str(m))
                if name.split("/", 1)[1] in self.pages:
                    return quote(name, safe="/")
        return None

    def html(self, sha: Any, page: int | None, img: dict[str, Any] | None, label: str, overlay: str = "") -> str:
        src = None
        if isinstance(sha, str) and sha and page is not None:
            if self.given is not None:
                data = self.given.get((sha, page))
                mime = _image_mime(data) if data else None
                if mime:
                    src = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
            else:
                name = thumbnail_name(sha, page)
                if name.split("/", 1)[1] in self.files:
                    src = quote(name, safe="/")
        if not src:
            return ('<div class="ph">no thumbnail</div>' if page is not None
                    else '<div class="ph ph-doc">whole document</div>')
        size = ""
        if img and _num(img.get("width")) > 0 and _num(img.get("height")) > 0:
            w, h = float(img["width"]), float(img["height"])
            scale = min(1.0, THUMB_MAX_EDGE / max(w, h))
            size = f' width="{max(1, round(w * scale))}" height="{max(1, round(h * scale))}"'
        return (f'<div class="sheet"><img src="{src}"{size} loading="lazy" decoding="async" alt="{_e(label)}">'
                f'{overlay}</div>')


def build_report(out_dir: str, thumbnails: dict[tuple[str, int], bytes] | None = None) -> str:
    """Write ``report.html`` in ``out_dir`` from its results.jsonl and manifest.json.

    ``thumbnails`` maps (sha256, page) to JPEG/PNG bytes, embedded as data URIs; when it is
    None, thumbnails are the files ``thumbs/<sha256[:16]>-p<page>.jpg`` found in ``out_dir``,
    linked relatively. A page without one shows a placeholder. Returns the report's path.
    """
    manifest = _read_manifest(out_dir)
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    scan = _Scan(_results_path(out_dir))
    profile = config.get("profile")
    if profile is None:  # no manifest yet: local unless some answer came from a model route
        local_profile = not (scan.routes_seen - _LOCAL_ROUTES)
    else:
        local_profile = profile == "local"
    info, order = _documents(manifest, scan)
    # The page cards are spooled to a temporary file: the report of a 100,000-page run is
    # written without holding it in memory (the totals above them are known only at the end).
    body = tempfile.TemporaryFile("w+", encoding="utf-8")
    counts, thumbs = _Counts(), _Thumbs(out_dir, thumbnails)
    with open(scan.path, "rb") if scan.path else contextlib.nullcontext() as f:
        for di, key in enumerate(order):
            _write_document(body, di, key, info.get(key, {}), scan, f, thumbs, local_profile, counts)
    if not order:
        body.write('<div class="empty">No records yet.</div>')

    title = f"pixtract report \u2013 {os.path.basename(os.path.abspath(out_dir))}"
    head = _page_head(title, _subtitle(manifest, config, scan), _totals(manifest, scan, len(order), local_profile),
                      _filters(counts))
    path = os.path.join(out_dir, REPORT)
    with body, atomic_file(path) as out:
        out.write(head)
        body.seek(0)
        shutil.copyfileobj(body, out)
        out.write(f"</main>\n{report_view.VIEWER}\n<script>{_SCRIPT}</script>\n</body></html>\n")
    return path


@dataclasses.dataclass
class _Counts:
    """Page cards in the report, and how many of them each filter shows."""

    cards: int = 0
    failed: int = 0
    fallback: int = 0
    flagged: int = 0
    unlocated: int = 0


def _documents(manifest: dict[str, Any], scan: "_Scan") -> tuple[dict, list]:
    """The documents in input order (the manifest's), then any only the records name."""
    info: dict[tuple[str, str | None], dict[str, Any]] = {}
    order: list[tuple[str, str | None]] = []
    for d in manifest.get("inputs") or []:
        if isinstance(d, dict):
            key = (str(d.get("path") or "?"), d.get("sha256"))
            if key not in info:
                info[key] = d
                order.append(key)
    return info, order + [k for k in scan.docs if k not in info]


def _doc_header(di: int, path: str, sha: str | None, d: dict[str, Any]) -> str:
    bits = []
    if d.get("status"):
        bits.append(_badge(d["status"], _status_cls(d["status"])))
    if d.get("kind"):
        bits.append(_e(d.get("format") or d["kind"]))
    if isinstance(d.get("pages"), int):
        bits.append(f"{d['pages']:,} page" + ("s" if d["pages"] != 1 else ""))
    if isinstance(d.get("bytes"), int):
        bits.append(_fmt_bytes(d["bytes"]))
    if sha:
        bits.append(f'<span title="{_e(sha)}">sha256 {_e(str(sha)[:12])}\u2026</span>')
    for out_file in ("markdown", "layout", "annotated"):
        href = _rel_href(d.get(out_file))
        if href:
            bits.append(f'<a href="{href}">{_e(d[out_file])}</a>')
    return (f'<section class="doc" id="doc-{di + 1}" data-doc="{_e(path)}"><header><h2>{_e(path)}</h2>'
            f'<div class="meta">' + " \u00b7 ".join(bits) + "</div></header>")


def _write_document(body, di: int, key: tuple, d: dict[str, Any], scan: "_Scan", f, thumbs: "_Thumbs",
                    local_profile: bool, counts: _Counts) -> None:
    """A document's section: its header and a card per page (or one card saying why none)."""
    path, sha = key
    body.write(_doc_header(di, path, sha, d))
    if key not in scan.docs:
        msg = d.get("error") or "no records for this document"
        body.write(f'<article class="page is-failed" id="d{di + 1}-doc" data-page="" data-failed="">'
                   f'<figure class="thumb"><div class="ph ph-doc">no pages</div></figure><div class="recs">'
                   f'<div class="note err">{_e(msg)}</div></div></article>\n')
        counts.cards += 1
        counts.failed += 1
    else:
        for page, recs in scan.records_of(f, key):
            body.write(_page_card(di, path, sha, d, page, recs, thumbs, local_profile, counts))
    body.write("</section>\n")


def _page_card(di: int, path: str, sha: str | None, d: dict[str, Any], page: int | None, recs: list[dict],
               thumbs: "_Thumbs", local_profile: bool, counts: _Counts) -> str:
    """One page (or the whole document's) card: the image with the answers' boxes, and its records."""
    counts.cards += 1
    failed = any(r.get("status") == STATUS_FAILED for r in recs)
    fallback = any(_is_fallback(r, local_profile) for r in recs)
    flagged = any(isinstance(r.get("flags"), list) and any(r["flags"]) for r in recs)
    counts.failed += failed
    counts.fallback += fallback
    counts.flagged += flagged
    attrs = f' data-page="{page if page is not None else ""}"'
    attrs += ' data-failed=""' if failed else ""
    attrs += ' data-fallback=""' if fallback else ""
    attrs += ' data-flagged=""' if flagged else ""
    cls = "page" + (" is-failed" if failed else "")
    anchor = f' id="d{di + 1}-p{page}"' if page is not None else f' id="d{di + 1}-doc"'
    label = f"Page {page}" if page is not None else "Whole document"
    img = next((r.get("image") for r in recs if isinstance(r.get("image"), dict)), None)
    cg = CardGrounding(f"d{di + 1}-" + (f"p{page}" if page is not None else "doc"), page)
    recs_html = "".join(_record_html(r, local_profile, cg) for r in recs)
    if cg.unlocated:
        attrs += ' data-unlocated=""'
        counts.unlocated += 1
    if img and _num(img.get("width")) > 0 and _num(img.get("height")) > 0:
        attrs += f' data-ratio="{_num(img["width"]) / _num(img["height"]):.4f}"'
    full = thumbs.full(sha, page, (img or {}).get("mime"))
    return (f'<article class="{cls}"{anchor}{attrs}><figure class="thumb"'
            + (f' data-full="{full}"' if full else "") + ">"
            + thumbs.html(sha, page, img, f"{path}, {label.lower()}", cg.overlay())
            + f"<figcaption><b>{label}</b>"
            + (f" of {d['pages']:,}" if page is not None and isinstance(d.get("pages"), int) else "")
            + '</figcaption></figure><div class="recs">' + recs_html
            + "</div></article>\n")


def _subtitle(manifest: dict[str, Any], config: dict[str, Any], scan: "_Scan") -> list[str]:
    sub = []
    if manifest.get("started"):
        sub.append(f"run {_when(manifest['started'])} \u2192 {_when(manifest.get('finished'))}")
    if config.get("profile"):
        sub.append(f"profile <b>{_e(config['profile'])}</b>")
    tasks = config.get("tasks") if isinstance(config.get("tasks"), list) else []
    kinds = [t.get("kind") for t in tasks if isinstance(t, dict) and t.get("kind")]
    if kinds:
        sub.append("task " + _e(", ".join(kinds)))
    versions = manifest.get("versions") if isinstance(manifest.get("versions"), dict) else {}
    if versions.get("pixtract"):
        sub.append(f"pixtract {_e(versions['pixtract'])}")
    if scan.bad_lines:
        sub.append(f"{scan.bad_lines} unreadable line(s) in results.jsonl")
    if not manifest:
        sub.append("no manifest.json (run not finished?)")
    return sub


def _totals(manifest: dict[str, Any], scan: "_Scan", n_docs: int, local_profile: bool) -> list[str]:
    seconds = manifest.get("seconds")
    run_time = _fmt_ms(seconds * 1000) if isinstance(seconds, (int, float)) else "\u2013"
    totals = [
        _tot("documents", _fmt_int(n_docs)),
        _tot("pages", _fmt_int(len(scan.pages))),
        _tot("records", _fmt_int(scan.records)),
        _tot("tokens in / out", f"{_fmt_int(scan.tokens['input_tokens'])} / {_fmt_int(scan.tokens['output_tokens'])}"),
        *([_tot("OCR pages billed", _fmt_int(scan.tokens["pages"]))] if scan.tokens["pages"] else []),
        _tot("cost", _fmt_cost(scan.cost)),
        _tot("run time", run_time + f' <span class="muted" style="font-size:12px">'
             f'({_fmt_ms(scan.latency_ms)} page time)</span>'),
        _tot("by status", _chips(scan.status, _status_cls) or "\u2013", "tot wide"),
        _tot("by route", _chips(scan.routes, lambda k: _route_cls(
            None if k == "none" else k, k in _FALLBACK_ROUTES or (not local_profile and k in _LOCAL_ROUTES)))
             or "\u2013", "tot wide"),
    ]
    if len(scan.tasks) > 1:
        totals.append(_tot("by task", _chips(scan.tasks, lambda k: "t"), "tot wide"))
    return totals


def _filters(c: _Counts) -> str:
    return ('<nav class="filters" aria-label="filters"><b>Show only:</b>'
            f'<label><input type="checkbox" id="f-failed" data-filter="failed"> failed ({c.failed:,})</label>'
            f'<label><input type="checkbox" id="f-fallback" data-filter="fallback"> fallen back ({c.fallback:,})</label>'
            f'<label><input type="checkbox" id="f-flagged" data-filter="flagged"> flagged ({c.flagged:,})</label>'
            f'<label><input type="checkbox" id="f-unlocated" data-filter="unlocated"> not found on the page '
            f'({c.unlocated:,})</label>'
            '<button type="button" id="f-clear">show all</button>'
            f'<span id="visible-count">{c.cards:,} of {c.cards:,} shown</span></nav>')


_SEP = " \u00b7 "


def _page_head(title: str, sub: list[str], totals: list[str], filters: str) -> str:
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n',
        '<meta name="referrer" content="no-referrer">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
        f'<header class="top"><h1>{_e(title)}</h1><div class="sub">{_SEP.join(sub)}</div></header>\n',
        f'<section class="totals">{"".join(totals)}</section>\n',
        filters, "\n<main>\n",
    ])
