"""Chart regions for the ``chart`` task: where the charts are, and a crop of each for the model.

A chart image input is one region covering the whole image. On a PDF page, charts are found
from the page's own objects (PyMuPDF), not from pixels:

- **vector charts**: the page's drawings are clustered by proximity (a grid-hashed union-find,
  linear in the drawings); a cluster is kept when it is big enough (``min_area_frac`` of the
  page) and looks like a chart: bars (filled rectangles sharing a baseline with different
  lengths), pie slices (filled curved paths of several colours), data lines (many diagonal or
  curved stroke segments) or scatter marks, with axis-like lines, or a few data marks on an
  evenly ticked axis. Bars are no proof (a table's shaded cells share edges too): such clusters,
  and those with weaker evidence (a few filled shapes), are checked against
  ``page.find_tables()`` (line-based: a ruled grid with text in most cells) and rejected when
  they are mostly a table or boxes holding words (table cells, a flowchart's boxes). A ruled
  table is only thin lines, so it never counts as a chart. Framed panels printed side by side
  are split into one region each; a drawn region whose text covers more than TEXT_COVER of it
  is a table or prose.
  Above MAX_DRAWINGS drawings (hostile pages) nothing is clustered: one box around all of
  them is the region, if it is big enough.
- **raster charts**: images (``page.get_image_info()``) over the area threshold, except
  full-page images (scans), images as wide or tall as the page (banners, background strips)
  and clearly photographic images.

Each region grows to the text that touches it (tick labels, axis titles, legends: short lines
within ~12 pt, a few rounds), overlapping regions are merged, and the box is widened by
``margin_pt`` and clipped to the page. The caption is the nearest ``Figure/Fig./Chart/Graph/
Exhibit N`` line within ~60 pt above or below (or such a title inside the chart), else the
nearest short title line directly above. Coordinates are in the page's rotated space (the
space of ``page.rect`` and of rendered images); the analysis itself runs in the page's reading
frame (turned by 90 degrees when most text runs sideways).

Every PyMuPDF call runs under ``mupdf.LOCK`` (through ``mupdf.open_pdf``).
"""

from __future__ import annotations

import io
import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass

import pymupdf
from PIL import Image, ImageOps

from . import mupdf
from .errors import RenderError
from .records import Document, Page, RenderSettings
from .render import _open_image, encode, render_page
from .workers import isolated

Box = tuple[float, float, float, float]

SOURCE_VECTOR, SOURCE_IMAGE, SOURCE_WHOLE = "vector", "image", "whole-image"

MAX_DRAWINGS = 20_000  # above this, no clustering: one box around all drawings (or nothing)
MAX_ITEMS = 200_000  # path items inspected for chart features, page total
MAX_CELLS = 1_000_000  # grid cells touched while clustering; above this, as for MAX_DRAWINGS
MAX_TABLE_CHECK_DRAWINGS = 3_000  # find_tables() is slow on pages with many drawings
CELL = 6.0  # clustering grid (pt): drawings up to ~6-10 pt apart join one cluster
LINK = 2.0  # each drawing is widened by this (pt) before hashing
TEXT_TOUCH = 12.0  # a label line this close (pt) to the chart joins it
TEXT_ROUNDS = 3
LABEL_MAX_CHARS = 80
CAPTION_GAP = 60.0
FULL_PAGE_IMAGE = 0.8  # an image covering this share of the page is a scan, not a chart
PAGE_SPAN = 0.95  # an image this wide or tall (share of the page's side) is a banner or background
TEXT_COVER = 0.2  # a drawn region whose text lines cover more of it than this is a table or text

CAPTION_RE = re.compile(
    r"^\s*(?i:figure|fig\.?|chart|graph|exhibit)\s*(?:\d|[IVXLC]+\b|[A-Z]\b)"
)


@dataclass
class ChartRegion:
    page: int  # 1-based
    index: int  # 1-based within the page
    bbox: Box  # PDF points in the page's rotated space; pixels for a chart image input
    source: str  # "vector" | "image" | "whole-image"
    caption: str  # nearby caption text, "" if none
    text: str  # text inside the region from the text layer


# --- public API ----------------------------------------------------------------------------


@isolated("page")
def chart_regions_for(doc: Document, number: int, password: str | None = None) -> list[ChartRegion]:
    """The chart regions of one page: one whole-image region for an image input, the regions
    found by ``find_chart_regions`` for a PDF page."""
    if doc.kind != "pdf":
        return [_whole_image_region(doc, number)]
    return find_chart_regions(doc, number, password)


def find_chart_regions(
    doc: Document,
    number: int,
    password: str | None = None,
    *,
    min_area_frac: float = 0.04,
    margin_pt: float = 12,
) -> list[ChartRegion]:
    """Chart regions of PDF page ``number`` (1-based), top to bottom."""
    if doc.kind != "pdf":
        return [_whole_image_region(doc, number)]
    with mupdf.open_pdf(doc, password) as pdf:
        if not 1 <= number <= pdf.page_count:
            raise RenderError(f"{doc.path}: page {number} out of range (1-{pdf.page_count})")
        try:
            page = pdf.load_page(number - 1)
            return _find(pdf, page, number, min_area_frac, margin_pt)
        except RenderError:
            raise
        except Exception as e:
            raise RenderError(
                f"{doc.path} page {number}: cannot analyse charts ({mupdf._short(e)})"
            ) from None


@isolated("page")
def render_region(
    doc: Document, region: ChartRegion, settings: RenderSettings, password: str | None = None
) -> Page:
    """The region as a model-ready image: long edge ``settings.max_edge`` px, never above
    twice ``settings.dpi_cap`` DPI (small charts are enlarged, within reason), PNG unless
    ``settings.image_format`` says otherwise. ``Page.text`` is the region's text."""
    t0 = time.perf_counter()
    if doc.kind != "pdf":
        page = render_page(doc, region.page, settings, password)
        page.text = region.text
        page.render_ms = (time.perf_counter() - t0) * 1000
        return page
    with mupdf.open_pdf(doc, password) as pdf:
        if not 1 <= region.page <= pdf.page_count:
            raise RenderError(f"{doc.path}: page {region.page} out of range (1-{pdf.page_count})")
        try:
            pg = pdf.load_page(region.page - 1)
            clip = pymupdf.Rect(region.bbox) & pg.rect
            if clip.is_empty:
                raise RenderError(f"{doc.path} page {region.page}: chart region {region.bbox} is off the page")
            zoom = region_zoom(clip.width, clip.height, settings)
            want = (max(1, round(clip.width * zoom)), max(1, round(clip.height * zoom)))
            pix = pg.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=clip, alpha=False)
            mode = "L" if pix.n == 1 else "RGB"
            img = Image.frombytes(mode, (pix.width, pix.height), pix.samples)
            del pix
        except RenderError:
            raise
        except Exception as e:
            raise RenderError(f"{doc.path} page {region.page}: cannot render chart ({mupdf._short(e)})") from None
    if img.size != want:  # MuPDF rounds the clip outwards: trim (or stretch) the odd pixel
        if img.width >= want[0] and img.height >= want[1]:
            img = img.crop((0, 0, want[0], want[1]))
        else:
            img = img.resize(want, Image.Resampling.LANCZOS)
    data, mime = encode(img, False, settings)
    page = Page(doc, region.page, data, mime, img.width, img.height, region.text, source_dpi=round(zoom * 72, 1))
    page.render_ms = (time.perf_counter() - t0) * 1000
    return page


def region_zoom(width_pt: float, height_pt: float, settings: RenderSettings) -> float:
    """Scale from points to pixels for a crop: long edge to max_edge, at most 2 x dpi_cap."""
    long_pt = max(width_pt, height_pt, 1e-6)
    return min(settings.max_edge / long_pt, 2 * settings.dpi_cap / 72.0)


# --- images --------------------------------------------------------------------------------


def _whole_image_region(doc: Document, number: int) -> ChartRegion:
    with _open_image(doc) as img:
        frames = getattr(img, "n_frames", 1) if (doc.fmt or img.format) == "TIFF" else 1
        if not 1 <= number <= frames:
            raise RenderError(f"{doc.path}: frame {number} out of range (1-{frames})")
        try:
            if number > 1:
                img.seek(number - 1)
            w, h = img.size
            orientation = img.getexif().get(0x0112, 1)
        except (OSError, ValueError, EOFError) as e:
            raise RenderError(f"{doc.path} page {number}: cannot read image ({e})") from None
    if orientation in (5, 6, 7, 8):  # EXIF transpose swaps the sides
        w, h = h, w
    return ChartRegion(number, 1, (0.0, 0.0, float(w), float(h)), SOURCE_WHOLE, "", "")


# --- PDF pages -----------------------------------------------------------------------------


@dataclass
class _Line:
    box: pymupdf.Rect  # reading frame (see _find)
    text: str
    block: int
    block_lines: int


@dataclass
class _Cand:
    box: pymupdf.Rect  # content box (drawings or image, grown to touching labels)
    source: str
    core_area: float  # area of the drawings/image themselves
    core: pymupdf.Rect | None = None  # the drawings/image box before labels were added
    panel: bool = False  # one of several framed panels split apart: not merged with a sibling

    def __post_init__(self) -> None:
        if self.core is None:
            self.core = pymupdf.Rect(self.box)


def _find(pdf: pymupdf.Document, page: pymupdf.Page, number: int, min_area_frac: float, margin: float) -> list[ChartRegion]:
    # Work in the page's reading frame: rotated space (page.rect), turned by a multiple of
    # 90 degrees when most text runs sideways, so "above" and "below" mean what they say.
    rot = page.rotation_matrix
    lines, turn = _text_lines(page, rot)
    view = rot * turn
    prect = page.rect * turn
    parea = abs(prect) or 1.0
    min_area = min_area_frac * parea
    back = ~turn  # reading frame to rotated space

    drawings = page.get_cdrawings()
    cands: list[_Cand] = []
    too_many = len(drawings) > MAX_DRAWINGS
    weak: list[tuple[pymupdf.Rect, list[dict], bool]] = []
    if not too_many:
        clusters = _cluster(drawings, view, prect)
        if clusters is None:
            too_many = True
        else:
            budget = [MAX_ITEMS]
            big = 0.8 * parea
            clusters.sort(key=lambda c: -abs(c[0]))
            boxes = [b for b, _ in clusters]
            consumed: set[int] = set()
            for i, (box, members) in enumerate(clusters):
                if i in consumed or abs(box) < min_area / 4:
                    continue
                # Data marks (bars, points, lines) can stand apart from their axes, frame and
                # legend: judge each cluster together with the clusters it touches or holds.
                taken: list[int] = []
                if abs(box) < big:
                    box, taken = _absorb(box, boxes, big, skip=consumed | {i})
                group = members + [d for k in taken for d in clusters[k][1]]
                verdict = _chart_evidence(group, box, view, budget)
                if verdict == "none" or abs(box) < min_area / 2:  # with its labels it may be big enough
                    continue
                consumed.update(taken)
                consumed.add(i)
                for part_box, part in _split_panels(box, group, view):
                    if part is not group:
                        verdict = _chart_evidence(part, part_box, view, budget)
                        if verdict == "none" or abs(part_box) < min_area / 2:
                            continue
                    if verdict == "strong":
                        cands.append(_Cand(part_box, SOURCE_VECTOR, abs(part_box), panel=part is not group))
                    else:  # "bars" or "weak": a shaded table or a diagram can look the same
                        weak.append((part_box, part, part is not group))
    if too_many:
        box = _all_drawings_box(drawings, view, prect)
        if box is not None and abs(box) >= min_area:
            cands.append(_Cand(box, SOURCE_VECTOR, abs(box)))
    else:
        for img_box in _chart_images(pdf, page, view, prect, min_area):
            cands.append(_Cand(img_box, SOURCE_IMAGE, abs(img_box)))
        if weak:
            cands.extend(_check_weak(page, weak, lines, view, turn, len(drawings)))

    for c in cands:
        c.box = _grow_to_labels(c.box, lines, [o.core for o in cands if o is not c])
    if cands and not too_many:
        _attach_legends(cands, _legends(drawings, view, lines))
    cands = [c for c in cands if abs(c.box) >= min_area]
    cands = [c for c in cands if c.source != SOURCE_VECTOR or too_many or _text_cover(c.box, lines) <= TEXT_COVER]
    cands = _merge(cands)

    regions: list[ChartRegion] = []
    for c in sorted(cands, key=lambda c: (round(c.box.y0), c.box.x0)):
        final = pymupdf.Rect(c.box.x0 - margin, c.box.y0 - margin, c.box.x1 + margin, c.box.y1 + margin) & prect
        if final.is_empty:
            continue
        out = final * back  # to the page's rotated space
        regions.append(
            ChartRegion(
                page=number,
                index=len(regions) + 1,
                bbox=(round(out.x0, 2), round(out.y0, 2), round(out.x1, 2), round(out.y1, 2)),
                source=c.source,
                caption=_caption(c.box, c.core, lines),
                text=_text_inside(final, lines),
            )
        )
    return regions


def _text_lines(page: pymupdf.Page, rot: pymupdf.Matrix) -> tuple[list[_Line], pymupdf.Matrix]:
    """Text lines in the reading frame, and the turn (a multiple of 90 degrees) from the
    page's rotated space to that frame: the one where most text runs left to right."""
    flags = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES
    out: list[_Line] = []
    weight: dict[int, int] = defaultdict(int)
    turn_only = pymupdf.Matrix(rot.a, rot.b, rot.c, rot.d, 0, 0)
    for bno, block in enumerate(page.get_text("dict", flags=flags)["blocks"]):
        if block.get("type", 0) != 0:
            continue
        blines = [
            (ln["bbox"], ln.get("dir", (1, 0)), " ".join("".join(s["text"] for s in ln["spans"]).split()))
            for ln in block["lines"]
        ]
        blines = [b for b in blines if b[2]]
        for bbox, direction, text in blines:
            v = pymupdf.Point(direction) * turn_only
            weight[round(math.degrees(math.atan2(v.y, v.x)) / 90) % 4] += len(text)
            out.append(_Line(pymupdf.Rect(bbox) * rot, text, bno, len(blines)))
    quarter = max(weight, key=lambda k: weight[k]) if weight else 0
    turn = pymupdf.Matrix(-90 * quarter) if quarter else pymupdf.Matrix(1, 1)
    if quarter:
        for ln in out:
            ln.box = ln.box * turn
    return out, turn


def _cluster(drawings: list[dict], rot: pymupdf.Matrix, prect: pymupdf.Rect) -> list[tuple[pymupdf.Rect, list[dict]]] | None:
    """Group drawings that are within a few points of each other. Each drawing marks the grid
    cells it covers (a filled shape its whole box, a stroked path only along its segments, so
    a page frame does not swallow the page); drawings sharing a cell are joined. None when
    the work would exceed MAX_CELLS."""
    parea = abs(prect) or 1.0
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    cells: dict[tuple[int, int], int] = {}
    used = 0
    kept: list[tuple[pymupdf.Rect, dict]] = []

    def mark(idx: int, x0: float, y0: float, x1: float, y1: float) -> bool:
        nonlocal used
        cx0, cx1 = int((x0 - LINK) // CELL), int((x1 + LINK) // CELL)
        cy0, cy1 = int((y0 - LINK) // CELL), int((y1 + LINK) // CELL)
        used += (cx1 - cx0 + 1) * (cy1 - cy0 + 1)
        if used > MAX_CELLS:
            return False
        for cx in range(cx0, cx1 + 1):
            for cy in range(cy0, cy1 + 1):
                other = cells.setdefault((cx, cy), idx)
                if other != idx:
                    a, b = find(idx), find(other)
                    if a != b:
                        parent[b] = a
        return True

    for d in drawings:
        r = _clip(pymupdf.Rect(d["rect"]) * rot, prect)
        if r is None:
            continue
        filled = _visible_fill(d)
        stroked = "s" in d.get("type", "") and d.get("stroke_opacity", 1) > 0.05
        if not filled and not stroked:
            continue  # white or transparent fill: invisible on the page
        if filled and abs(r) > 0.6 * parea and not stroked:
            continue  # a page background
        idx = len(kept)
        parent.append(idx)
        kept.append((r, d))
        big = r.width > 3 * CELL and r.height > 3 * CELL
        if filled or not big:
            if not mark(idx, *r):
                return None
            continue
        for seg in _segments(d["items"], rot):
            if not _mark_segment(mark, idx, seg):
                return None

    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(kept)):
        groups[find(i)].append(i)
    out = []
    for ids in groups.values():
        rs = [kept[i][0] for i in ids]
        box = pymupdf.Rect(min(r.x0 for r in rs), min(r.y0 for r in rs), max(r.x1 for r in rs), max(r.y1 for r in rs))
        out.append((box, [kept[i][1] for i in ids]))
    return out


def _split_panels(box: pymupdf.Rect, members: list[dict], rot: pymupdf.Matrix) -> list[tuple[pymupdf.Rect, list[dict]]]:
    """A cluster holding two to six separate framed panels (charts printed side by side, their
    frames a few points apart) as one part per panel; else the cluster itself. Small multiples
    (many small panels) stay one chart."""
    area = abs(box) or 1.0
    rects = [(pymupdf.Rect(d["rect"]) * rot, d) for d in members]
    panels: list[pymupdf.Rect] = []
    for r, d in sorted(rects, key=lambda rd: -abs(rd[0])):
        if abs(r) < 0.15 * area or abs(r) > 0.9 * area:
            continue
        if sum(1 for o, _ in rects if o is not r and o in r + (-1, -1, 1, 1)) < 3:
            continue  # a frame holds its plot; a pie slice or a curve holds nothing
        if all(abs(r & p) <= 0.02 * min(abs(r), abs(p)) for p in panels):
            panels.append(r)
    if not 2 <= len(panels) <= 6:
        return [(box, members)]
    parts: list[list[dict]] = [[] for _ in panels]
    for r, d in rects:
        c = pymupdf.Point((r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2)
        k = min(range(len(panels)), key=lambda k: 0 if c in panels[k] else _gap(pymupdf.Rect(c, c), panels[k]) + 1)
        parts[k].append(d)
    out = []
    for p, part in zip(panels, parts):
        out.append((pymupdf.Rect(p), part))
    return out


def _absorb(
    box: pymupdf.Rect, others: list[pymupdf.Rect], max_area: float, skip: set[int], rounds: int = 10
) -> tuple[pymupdf.Rect, list[int]]:
    """``box`` grown by every other cluster box it touches, overlaps or holds, repeatedly
    (never by a page-sized one); returns the grown box and the indexes taken."""
    box = pymupdf.Rect(box)
    taken: list[int] = []
    seen = set(skip)
    for _ in range(rounds):
        added = False
        for k, o in enumerate(others):
            if k in seen or abs(o) >= max_area or _gap(o, box) > 4:
                continue
            seen.add(k)
            taken.append(k)
            box = pymupdf.Rect(min(box.x0, o.x0), min(box.y0, o.y0), max(box.x1, o.x1), max(box.y1, o.y1))
            added = True
        if not added:
            break
    return box, taken


def _clip(r: pymupdf.Rect, prect: pymupdf.Rect) -> pymupdf.Rect | None:
    """``r & prect`` that keeps zero-width or zero-height boxes (lines), which PyMuPDF's own
    intersection drops as empty."""
    r = pymupdf.Rect(min(r.x0, r.x1), min(r.y0, r.y1), max(r.x0, r.x1), max(r.y0, r.y1))
    x0, y0 = max(r.x0, prect.x0), max(r.y0, prect.y0)
    x1, y1 = min(r.x1, prect.x1), min(r.y1, prect.y1)
    if x0 > x1 or y0 > y1:
        return None
    return pymupdf.Rect(x0, y0, x1, y1)


def _mark_segment(mark, idx: int, seg: tuple) -> bool:
    """Mark the cells along one path item (a line walked in CELL steps, else its box)."""
    kind = seg[0]
    if kind == "l":
        (x0, y0), (x1, y1) = seg[1], seg[2]
        n = max(1, math.ceil(max(abs(x1 - x0), abs(y1 - y0)) / CELL))
        if n > 1 and (abs(x1 - x0) < 0.5 or abs(y1 - y0) < 0.5):  # straight: one thin box
            return mark(idx, min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        for k in range(n):
            ax, ay = x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n
            bx, by = x0 + (x1 - x0) * (k + 1) / n, y0 + (y1 - y0) * (k + 1) / n
            if not mark(idx, min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)):
                return False
        return True
    pts = seg[1]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if kind == "re":  # stroked rectangle: its four edges
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        return all(
            mark(idx, *b)
            for b in ((x0, y0, x1, y0), (x0, y1, x1, y1), (x0, y0, x0, y1), (x1, y0, x1, y1))
        )
    return mark(idx, min(xs), min(ys), max(xs), max(ys))


def _segments(items: list, rot: pymupdf.Matrix, limit: int = 100_000):
    """Path items in rotated space: ("l", p, q), ("re"|"qu"|"c", [points])."""
    for n, it in enumerate(items):
        if n >= limit:
            return
        kind = it[0]
        if kind == "l":
            yield ("l", tuple(pymupdf.Point(it[1]) * rot), tuple(pymupdf.Point(it[2]) * rot))
        elif kind == "re":
            q = pymupdf.Rect(it[1]).quad * rot
            yield ("re", [tuple(p) for p in (q.ul, q.ur, q.ll, q.lr)])
        elif kind == "qu":
            q = pymupdf.Quad(it[1]) * rot
            yield ("qu", [tuple(p) for p in (q.ul, q.ur, q.ll, q.lr)])
        elif kind == "c":
            yield ("c", [tuple(pymupdf.Point(p) * rot) for p in it[1:5]])


def _visible_fill(d: dict) -> bool:
    if "f" not in d.get("type", ""):
        return False
    fill = d.get("fill")
    if not fill or d.get("fill_opacity", 1) <= 0.05:
        return False
    if len(fill) == 4:  # CMYK
        return any(c > 0.07 for c in fill)
    return any(c < 0.93 for c in fill)


def _chart_evidence(members: list[dict], box: pymupdf.Rect, rot: pymupdf.Matrix, budget: list[int]) -> str:
    """'strong', 'bars', 'weak' or 'none': how much a drawing cluster looks like a chart.
    'bars' (filled rectangles of one thickness and different lengths) is strong evidence that
    a table with shaded cells also gives: it is checked like 'weak'."""
    area = abs(box) or 1.0
    bars: list[pymupdf.Rect] = []  # filled rectangles, not thin
    curved_fill_colours: set = set()
    small_marks: list[pymupdf.Rect] = []
    marks = 0
    diagonal = 0
    h_axis = v_axis = False
    ticks: list[tuple[bool, int, int]] = []  # (horizontal, x, y) of short axis-parallel strokes
    for d in members:
        if budget[0] <= 0:
            break
        items = d["items"]
        budget[0] -= len(items)
        r = pymupdf.Rect(d["rect"]) * rot
        if _visible_fill(d):
            short, long_ = min(r.width, r.height), max(r.width, r.height)
            thin = short <= 1.5 or (short <= 3 and long_ >= 20 * short)  # a rule, not a bar
            if thin:
                if r.width >= 0.3 * box.width:
                    h_axis = True
                if r.height >= 0.3 * box.height:
                    v_axis = True
            elif abs(r) < 0.6 * area:
                marks += 1
                kinds = {it[0] for it in items[:50]}
                if len(items) == 1 and kinds <= {"re", "qu"}:
                    bars.append(r)
                if "c" in kinds or (len(items) >= 8 and kinds <= {"l", "c"}):  # curves, or arcs flattened to many sides
                    curved_fill_colours.add(tuple(round(c, 2) for c in d["fill"]))
                if max(r.width, r.height) <= 8:
                    small_marks.append(r)
        elif "s" in d.get("type", "") and 1 < max(r.width, r.height) <= 8 and len(items) >= 2:
            small_marks.append(r)  # a hollow point of a scatter plot
        if "s" in d.get("type", ""):
            for seg in _segments(items, rot, limit=5000):
                if seg[0] == "l":
                    (x0, y0), (x1, y1) = seg[1], seg[2]
                    dx, dy = abs(x1 - x0), abs(y1 - y0)
                    if dx < 0.3 and dy < 0.3:
                        continue
                    if min(dx, dy) <= 0.02 * max(dx, dy) + 0.3:
                        if 2 <= max(dx, dy) <= 10:  # a tick mark (or a short rule)
                            ticks.append((dy <= dx, round(min(x0, x1)), round(min(y0, y1))))
                        if dy <= dx and dx >= 0.3 * box.width:
                            h_axis = True
                        elif dx < dy and dy >= 0.3 * box.height:
                            v_axis = True
                    else:
                        diagonal += 1
                elif seg[0] == "c":
                    diagonal += 1
                elif seg[0] in ("re", "qu"):
                    xs, ys = [p[0] for p in seg[1]], [p[1] for p in seg[1]]
                    if max(xs) - min(xs) >= 0.3 * box.width:
                        h_axis = True
                    if max(ys) - min(ys) >= 0.3 * box.height:
                        v_axis = True
    axes = h_axis or v_axis
    if _bar_pattern(bars, axes):
        return "bars"
    if len(curved_fill_colours) >= 2:  # pie or donut slices
        return "strong"
    if diagonal >= 10 and axes or diagonal >= 30:  # data lines
        return "strong"
    if len(small_marks) >= 10 and h_axis and v_axis:  # scatter plot
        xs = {round((m.x0 + m.x1) / 4) for m in small_marks}
        ys = {round((m.y0 + m.y1) / 4) for m in small_marks}
        if len(xs) >= 4 and len(ys) >= 4:
            return "strong"
    if (diagonal or small_marks or marks) and axes and _ticked_axis(ticks):  # few data on a real axis
        return "strong"
    if (marks >= 2 or diagonal >= 4) and axes:
        return "weak"
    return "none"


def _ticked_axis(ticks: list[tuple[bool, int, int]]) -> bool:
    """Four or more tick marks in a row at an even spacing: a value axis, which tables and
    diagrams do not draw."""
    rows: dict[tuple[bool, int], list[int]] = defaultdict(list)
    for horizontal, x, y in ticks:
        # horizontal ticks stand on a vertical axis (same x, spread along y), and the reverse
        rows[(horizontal, x if horizontal else y)].append(y if horizontal else x)
    for pos in rows.values():
        pos = sorted(set(pos))
        if len(pos) < 4:
            continue
        steps = [b - a for a, b in zip(pos, pos[1:])]
        mid = sorted(steps)[len(steps) // 2]
        if mid >= 4 and sum(1 for st in steps if abs(st - mid) <= 0.1 * mid + 1) >= 3:
            return True
    return False


def _bar_pattern(bars: list[pymupdf.Rect], axes: bool) -> bool:
    """Filled rectangles that share a baseline (bottom, top, left or right edge) and differ in
    length: bars. Table shading shares edges too, but its cells in a row or column have the
    same length."""
    if len(bars) < 2:
        return False
    need = 2 if axes else 3
    for edge, length in (
        (lambda r: r.y1, lambda r: r.height),
        (lambda r: r.y0, lambda r: r.height),
        (lambda r: r.x0, lambda r: r.width),
        (lambda r: r.x1, lambda r: r.width),
    ):
        groups: dict[int, list[pymupdf.Rect]] = defaultdict(list)
        for r in bars:
            groups[round(edge(r))].append(r)
        for members in groups.values():
            if len(members) < need:
                continue
            # Bars of one series are equally thick (the other side): coloured page bands and
            # boxes that happen to share an edge are not.
            thick = sorted((r.width + r.height - length(r)) for r in members)
            mid = thick[len(thick) // 2]
            same = [r for r in members if abs((r.width + r.height - length(r)) - mid) <= 0.25 * mid + 0.5]
            if len(same) >= need and len({round(length(r) * 2) for r in same}) >= 2:
                return True
    return False


def _check_weak(
    page: pymupdf.Page, weak: list, lines: list[_Line], view: pymupdf.Matrix, turn: pymupdf.Matrix, n_drawings: int
) -> list[_Cand]:
    """Clusters with bars or only a few filled shapes: keep them unless they are mostly a table
    (a ruled grid with text in most cells, from ``find_tables``), boxes holding words (table
    cells or a diagram's boxes; bars hold at most their values) or filled boxes holding text."""
    out: list[_Cand] = []
    tables = _text_tables(page, [b for b, _, _ in weak], turn) if n_drawings <= MAX_TABLE_CHECK_DRAWINGS else []
    for box, members, panel in weak:
        area = abs(box) or 1.0
        if any(abs(box & t) > 0.5 * area for t in tables):
            continue
        if _boxes_hold_text(members, box, lines, view):
            continue
        out.append(_Cand(box, SOURCE_VECTOR, area, panel=panel))
    return out


WORD_RE = re.compile(r"[^\W\d_]{3}")


def _wordy(text: str) -> bool:
    """A label made of words ("Step 1", "Benzene"), not a value ("1990s", "12.5 %")."""
    return bool(WORD_RE.search(text)) and sum(c.isalpha() for c in text) >= sum(c.isdigit() for c in text)


def _boxes_hold_text(members: list[dict], box: pymupdf.Rect, lines: list[_Line], view: pymupdf.Matrix) -> bool:
    """Whether the cluster's boxes are containers of text rather than data marks: filled or
    outlined rectangles of which many hold a word (a table's shaded cells, a flowchart's boxes),
    or filled ones of which most hold any text. A chart's bars are empty or hold a number."""
    area = abs(box) or 1.0
    filled: list[pymupdf.Rect] = []
    outlined: list[pymupdf.Rect] = []
    for d in members:
        r = pymupdf.Rect(d["rect"]) * view
        if _visible_fill(d) and min(r.width, r.height) > 1.5:
            filled.append(r)
        elif "s" in d.get("type", "") and len(d["items"]) <= 8:
            for seg in _segments(d["items"], view, limit=8):
                if seg[0] in ("re", "qu"):
                    xs, ys = [p[0] for p in seg[1]], [p[1] for p in seg[1]]
                    outlined.append(pymupdf.Rect(min(xs), min(ys), max(xs), max(ys)))
            if len(d["items"]) >= 4 and all(it[0] == "l" for it in d["items"]) and d.get("closePath", True):
                if min(r.width, r.height) > 6:
                    outlined.append(r)
    filled = [b for b in filled if 200 < abs(b) < 0.6 * area]
    outlined = [b for b in outlined if 200 < abs(b) < 0.6 * area]
    boxes = filled + outlined
    if not boxes:
        return False
    texts = [(ln.box, _wordy(ln.text)) for ln in lines if _inside(ln.box, box)]

    def holds(b: pymupdf.Rect, words: bool) -> bool:
        return any(_inside(t, b) and (w or not words) for t, w in texts)

    worded = sum(1 for b in boxes if holds(b, True))
    if worded >= 3 and worded >= 0.4 * len(boxes):
        return True
    # a flowchart: separate outlined boxes with words (a chart's legend and frame nest)
    labelled = [b for b in outlined if holds(b, True)]
    apart = [b for b in labelled if not any(o is not b and abs(o & b) > 0 for o in labelled)]
    if len(apart) >= 3 and len(labelled) >= 0.6 * len(outlined):
        return True
    with_text = [b for b in filled if holds(b, False)]
    return bool(filled) and len(with_text) >= 0.6 * len(filled) and sum(1 for b in with_text if holds(b, True)) >= 0.5 * len(with_text)


def _text_tables(page: pymupdf.Page, boxes: list[pymupdf.Rect], turn: pymupdf.Matrix) -> list[pymupdf.Rect]:
    """Ruled tables around ``boxes`` (reading frame) whose cells mostly hold text: PyMuPDF's
    line-based table finder, without its layout model (about a second per page). A chart's
    gridlines also form a lattice, but its cells are empty. Pages with /Rotate are skipped:
    find_tables() temporarily rewrites such a page's content."""
    if page.rotation or not boxes:
        return []
    clip = pymupdf.Rect(boxes[0])
    for b in boxes[1:]:
        clip |= b
    clip = (clip * ~turn) + (-4, -4, 4, 4)
    try:
        found = page.find_tables(clip=clip, use_layout=False)
    except Exception:
        return []
    out = []
    for t in (found.tables if found else []):
        if t.row_count < 2 or t.col_count < 2:
            continue
        try:
            cells = [c for row in t.extract() for c in row]
        except Exception:
            continue
        full = sum(1 for c in cells if c and c.strip())
        if cells and full >= 0.5 * len(cells):
            out.append(pymupdf.Rect(t.bbox) * turn)
    return out


def _all_drawings_box(drawings: list[dict], rot: pymupdf.Matrix, prect: pymupdf.Rect) -> pymupdf.Rect | None:
    x0 = y0 = math.inf
    x1 = y1 = -math.inf
    for d in drawings:
        r = d["rect"]
        x0, y0 = min(x0, r[0], r[2]), min(y0, r[1], r[3])
        x1, y1 = max(x1, r[0], r[2]), max(y1, r[1], r[3])
    if x0 > x1:
        return None
    box = (pymupdf.Rect(x0, y0, x1, y1) * rot) & prect
    return None if box.is_empty else box


def _chart_images(pdf: pymupdf.Document, page: pymupdf.Page, rot: pymupdf.Matrix, prect: pymupdf.Rect, min_area: float) -> list[pymupdf.Rect]:
    parea = abs(prect) or 1.0
    out = []
    for info in page.get_image_info(xrefs=True):
        r = pymupdf.Rect(info["bbox"])
        if r.is_empty or r.is_infinite:
            continue
        r = (r * rot) & prect
        if r.is_empty or abs(r) < min_area or abs(r) >= FULL_PAGE_IMAGE * parea:
            continue
        if r.width >= PAGE_SPAN * prect.width or r.height >= PAGE_SPAN * prect.height:
            continue  # a banner, a background strip, a scan in pieces: charts sit inside margins
        if _photographic_image(pdf, info.get("xref", 0)):
            continue
        out.append(r)
    return out


def _photographic_image(pdf: pymupdf.Document, xref: int) -> bool:
    """A photo, not a chart: many colours and no dominant flat ones (charts are mostly
    background and a few fills). Unknown (inline images, odd formats) counts as a chart."""
    if not xref:
        return False
    try:
        raw = pdf.extract_image(xref)
        if not raw or not raw.get("image"):
            return False
        if raw.get("width", 0) * raw.get("height", 0) > 40_000_000:
            return False
        with Image.open(io.BytesIO(raw["image"])) as img:
            img.draft("RGB", (256, 256))
            img = ImageOps.exif_transpose(img) or img
            img = img.convert("RGB")
            img.thumbnail((96, 96))
            q = img.point(lambda v: v >> 4)  # 16 levels per channel
            colours = q.getcolors(maxcolors=4096)
    except Exception:
        return False
    if colours is None:
        return True
    total = sum(c for c, _ in colours) or 1
    top = sum(c for c, _ in sorted(colours, reverse=True)[:10])
    return len(colours) > 200 and top / total < 0.5


def _text_cover(box: pymupdf.Rect, lines: list[_Line]) -> float:
    """Share of ``box`` under its text lines: a chart's labels are sparse, a table's cells and
    a page of prose are dense."""
    covered = sum(abs(ln.box & box) for ln in lines if _inside(ln.box, box))
    return covered / (abs(box) or 1.0)


def _gap(a: pymupdf.Rect, b: pymupdf.Rect) -> float:
    dx = max(b.x0 - a.x1, a.x0 - b.x1, 0.0)
    dy = max(b.y0 - a.y1, a.y0 - b.y1, 0.0)
    return max(dx, dy)


def _inside(line: pymupdf.Rect, box: pymupdf.Rect) -> bool:
    cx, cy = (line.x0 + line.x1) / 2, (line.y0 + line.y1) / 2
    return box.x0 <= cx <= box.x1 and box.y0 <= cy <= box.y1


def _overlap_frac(lo: float, hi: float, a: float, b: float) -> float:
    """Share of [lo, hi] inside [a, b]."""
    span = hi - lo
    if span <= 0:
        return 1.0 if a <= lo <= b else 0.0
    return max(0.0, min(hi, b) - max(lo, a)) / span


def _grow_to_labels(box: pymupdf.Rect, lines: list[_Line], others: list[pymupdf.Rect] = ()) -> pymupdf.Rect:
    """Take in the text that touches the chart: tick labels, axis titles, legend entries.
    Only short lines that sit alongside the box (not body text, not captions, not the labels
    inside a neighbouring chart's drawings) count."""
    box = pymupdf.Rect(box)
    taken: set[int] = {i for i, ln in enumerate(lines) if any(_inside(ln.box, o) for o in others)}
    for _ in range(TEXT_ROUNDS):
        grown = pymupdf.Rect(box)
        for i, ln in enumerate(lines):
            if i in taken:
                continue
            r = ln.box
            if _inside(r, box):
                taken.add(i)
                grown |= r
                continue
            if len(ln.text) > LABEL_MAX_CHARS or CAPTION_RE.match(ln.text) or _gap(r, box) > TEXT_TOUCH:
                continue
            if ln.block_lines > 3 and r.width > 0.6 * box.width:
                continue  # a paragraph of body text
            beside = r.y1 > box.y0 and r.y0 < box.y1 and (r.x1 <= box.x0 + 1 or r.x0 >= box.x1 - 1)
            if beside:
                ok = _overlap_frac(r.y0, r.y1, box.y0, box.y1) >= 0.7
            else:
                ok = _overlap_frac(r.x0, r.x1, box.x0 - TEXT_TOUCH, box.x1 + TEXT_TOUCH) >= 0.7
            if ok:
                taken.add(i)
                grown |= r
        if grown == box:
            break
        box = grown
    return box


LEGEND_GAP = 60.0  # a legend this far (pt, or 0.6 of the chart's width) beside a chart belongs to it


def _legends(drawings: list[dict], rot: pymupdf.Matrix, lines: list[_Line]) -> list[pymupdf.Rect]:
    """Legends: three or more small swatches (filled squares, short line samples) in a column,
    each with a short label just right of it, plus a title line just above."""
    columns: dict[int, list[pymupdf.Rect]] = defaultdict(list)
    for d in drawings:
        r = pymupdf.Rect(d["rect"]) * rot
        if not 3 <= max(r.width, r.height) <= 16:
            continue
        if _visible_fill(d) or "s" in d.get("type", ""):
            columns[round(r.x0)].append(r)
    out = []
    for swatches in columns.values():
        if len(swatches) < 3:
            continue
        entries = []
        for r in sorted(swatches, key=lambda r: r.y0):
            cy = (r.y0 + r.y1) / 2
            label = next((ln for ln in lines if 0 <= ln.box.x0 - r.x1 <= 12 and ln.box.y0 <= cy <= ln.box.y1
                          and len(ln.text) <= 40), None)
            if label is not None and (not entries or r.y0 - entries[-1][0].y1 <= 2 * max(r.width, r.height)):
                entries.append((r, label.box))
        if len(entries) < 3:
            continue
        box = pymupdf.Rect(entries[0][0])
        for r, lb in entries:
            box |= r
            box |= lb
        title = [ln.box for ln in lines if 0 <= box.y0 - ln.box.y1 <= 12 and ln.box.x0 < box.x1 and ln.box.x1 > box.x0
                 and len(ln.text) <= 40]
        for t in title[:1]:
            box |= t
        out.append(box)
    return out


def _attach_legends(cands: list[_Cand], legends: list[pymupdf.Rect]) -> None:
    """Each legend that is not inside a chart's box joins the nearest chart beside it."""
    for leg in legends:
        if any(c.box.contains(leg) for c in cands):
            continue
        near = [(_gap(c.box, leg), c) for c in cands
                if _overlap_frac(leg.y0, leg.y1, c.box.y0 - TEXT_TOUCH, c.box.y1 + TEXT_TOUCH) >= 0.5]
        near = [(g, c) for g, c in near if g <= max(LEGEND_GAP, 0.6 * c.box.width)]
        if near:
            c = min(near, key=lambda gc: gc[0])[1]
            c.box |= leg


def _merge(cands: list[_Cand]) -> list[_Cand]:
    """Join regions that overlap or nearly touch (an image with vector labels, a chart split
    by a gap in its drawings)."""
    cands = list(cands)
    changed = True
    while changed:
        changed = False
        for i in range(len(cands)):
            for j in range(i + 1, len(cands)):
                a, b = cands[i], cands[j]
                if a.panel and b.panel and abs(a.core & b.core) <= 0.02 * min(abs(a.core), abs(b.core)):
                    continue
                if _gap(a.box, b.box) <= 4:
                    src = a.source if a.core_area >= b.core_area else b.source
                    cands[i] = _Cand(a.box | b.box, src, a.core_area + b.core_area, a.core | b.core)
                    del cands[j]
                    changed = True
                    break
            if changed:
                break
    return cands


def _caption(box: pymupdf.Rect, core: pymupdf.Rect, lines: list[_Line]) -> str:
    """The nearest Figure/Chart/... line just above or below the chart (or such a title inside
    it); else the nearest short title line directly above the chart's drawings (taken into
    the crop or not); else ""."""
    best: tuple[float, int] | None = None
    inside: tuple[float, int] | None = None
    above: tuple[float, int] | None = None
    for i, ln in enumerate(lines):
        r = ln.box
        pattern = bool(CAPTION_RE.match(ln.text))
        within = _inside(r, box)
        if within and pattern and (inside is None or r.y0 < inside[0]):
            inside = (r.y0, i)
        if not (r.x1 >= box.x0 - 30 and r.x0 <= box.x1 + 30):
            continue
        if pattern and not within:
            if r.y1 <= box.y0 + 3:
                dist = box.y0 - r.y1
            elif r.y0 >= box.y1 - 3:
                dist = r.y0 - box.y1
            else:
                continue
            if dist <= CAPTION_GAP and (best is None or dist < best[0]):
                best = (dist, i)
        elif not pattern and r.y1 <= core.y0 + 3 and core.y0 - r.y1 <= CAPTION_GAP:
            aligned = _overlap_frac(r.x0, r.x1, core.x0 - 20, core.x1 + 20) >= 0.5 or (
                r.x0 <= core.x0 + 20 and r.x1 >= core.x1 - 20
            )
            short = len(ln.text) <= 100 and ln.block_lines <= 2 and re.search(r"[^\W\d_]{2}", ln.text)
            dist = core.y0 - r.y1
            if aligned and short and (above is None or dist < above[0]):
                above = (dist, i)
    pick = best or inside or above
    if pick is None:
        return ""
    return _with_continuation(pick[1], lines, box if pick is best else None)


def _with_continuation(i: int, lines: list[_Line], box: pymupdf.Rect | None) -> str:
    """A caption line plus up to two following lines of the same block (a wrapped caption)."""
    first = lines[i]
    parts = [first.text]
    prev = first.box
    for ln in lines[i + 1 : i + 3]:
        if ln.block != first.block or ln.box.y0 - prev.y1 > 0.8 * max(prev.height, 1):
            break
        if box is not None and _inside(ln.box, box):
            break
        parts.append(ln.text)
        prev = ln.box
    text = " ".join(parts)
    return text[:400]


def _text_inside(box: pymupdf.Rect, lines: list[_Line]) -> str:
    inside = [ln for ln in lines if _inside(ln.box, box)]
    inside.sort(key=lambda ln: (round(ln.box.y0 / 3), ln.box.x0))
    return "\n".join(ln.text for ln in inside)
