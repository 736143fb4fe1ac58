"""A guard against PDF pages that would take MuPDF minutes to draw.

A few kilobytes of nested form XObjects, each drawing the next eight times, make a page of
16 million drawing calls (a "PDF bomb"); MuPDF has no time limit, so such a page would hold
the render lock for minutes. Before rendering, the page's XObject graph is walked and the
number of form invocations it implies is estimated from the ``Do`` operators in each content
stream; a page over the limit is refused with a clear error instead of being drawn.
"""

from __future__ import annotations

import re

import pymupdf

from .errors import PixtractError

MAX_FORM_INVOCATIONS = 200_000
MAX_DEPTH = 40
_DO = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s+Do\b")
_XOBJ_DICT = re.compile(r"/XObject\s*<<(.*?)>>", re.S)
_XOBJ_REF = re.compile(r"/([^\s/\[\]()<>{}%]+)\s+(\d+)\s+0\s+R")


class TooComplex(PixtractError):
    type = "too_complex"


def _uses(content: bytes) -> dict[bytes, int]:
    counts: dict[bytes, int] = {}
    for name in _DO.findall(content):
        counts[name] = counts.get(name, 0) + 1
    return counts


def _xobjects(pdf: pymupdf.Document, xref: int) -> dict[bytes, int]:
    """Names -> xrefs of the form XObjects in an object's resources (direct or referenced)."""
    obj = pdf.xref_object(xref, compressed=True)
    res = re.search(r"/Resources\s+(\d+)\s+0\s+R", obj)
    if res:
        obj = pdf.xref_object(int(res.group(1)), compressed=True)
    m = _XOBJ_DICT.search(obj)
    if not m:
        ref = re.search(r"/XObject\s+(\d+)\s+0\s+R", obj)
        if not ref:
            return {}
        body = pdf.xref_object(int(ref.group(1)), compressed=True)
    else:
        body = m.group(1)
    return {n.encode(): int(x) for n, x in _XOBJ_REF.findall(body)}


def form_invocations(pdf: pymupdf.Document, page: pymupdf.Page, limit: int = MAX_FORM_INVOCATIONS) -> int:
    """Estimated form XObject invocations needed to draw the page; raises TooComplex over
    ``limit``, for a cycle, or for nesting deeper than MAX_DEPTH."""
    memo: dict[int, int] = {}

    def cost(xref: int, content: bytes, stack: tuple[int, ...], names: dict[bytes, int] | None = None) -> int:
        total = 0
        names = _xobjects(pdf, xref) if names is None else names
        for name, n in _uses(content).items():
            child = names.get(name)
            if child is None or not _is_form(pdf, child):
                continue
            if child in stack:
                raise TooComplex("a form XObject draws itself (a cycle)")
            if len(stack) > MAX_DEPTH:
                raise TooComplex(f"form XObjects nest more than {MAX_DEPTH} deep")
            if child not in memo:
                memo[child] = 1 + cost(child, pdf.xref_stream(child) or b"", stack + (child,))
            total += n * memo[child]
            if total > limit:
                raise TooComplex(f"its form XObjects expand to more than {limit:,} drawing calls")
        return total

    top = {name.encode(): x for x, name, invoker, _ in page.get_xobjects() if invoker == 0}
    return cost(page.xref, page.read_contents(), (page.xref,), top)


def _is_form(pdf: pymupdf.Document, xref: int) -> bool:
    return pdf.xref_get_key(xref, "Subtype")[1] == "/Form"
