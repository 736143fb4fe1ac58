"""Deterministic benchmark PDFs: born-digital pages with body text, 6-pt fine print, ruled
tables and vector drawings (a bar chart, a line chart, a flow diagram), made with PyMuPDF.

    python bench/gen_pdfs.py OUT.pdf PAGES      # one document of PAGES pages

Every page is different (numbers and words come from a seeded generator), so no renderer can
profit from identical pages, and every page has a real text layer.
"""

from __future__ import annotations

import math
import os
import random
import sys

import pymupdf

LETTER = pymupdf.paper_rect("letter")  # 612 x 792 pt
FINE_PRINT_PT = 6.0
FINE_PRINT_MARK = "FINE PRINT"

WORDS = (
    "harbour cargo tonnage vessel berth quay crane container freight manifest pilot tug draft "
    "customs tariff invoice ledger quarterly revenue margin forecast audit storage terminal "
    "schedule inspection compliance safety weather tide channel dredging mooring warehouse "
    "logistics throughput capacity utilisation maintenance budget variance contract clause "
    "liability insurance premium settlement delivery consignee shipper carrier routing"
).split()
REGIONS = ["North", "South", "East", "West", "Central", "Coastal", "Inland", "Delta"]


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng, rng.randint(8, 16)) for _ in range(sentences))


def _table(page: pymupdf.Page, rng: random.Random, top: float, rows: int = 7) -> float:
    """A ruled table with a header row; returns its bottom y."""
    cols = ["Region", "Q1", "Q2", "Q3", "Q4", "Total"]
    x0, width, row_h = 54.0, 504.0, 16.0
    col_w = width / len(cols)
    shape = page.new_shape()
    shape.draw_rect(pymupdf.Rect(x0, top, x0 + width, top + row_h))
    shape.finish(color=None, fill=(0.85, 0.88, 0.95))
    for r in range(rows + 2):
        y = top + r * row_h
        shape.draw_line((x0, y), (x0 + width, y))
    for c in range(len(cols) + 1):
        x = x0 + c * col_w
        shape.draw_line((x, top), (x, top + (rows + 1) * row_h))
    shape.finish(color=(0.2, 0.2, 0.2), width=0.6)
    for c, name in enumerate(cols):
        shape.insert_text((x0 + c * col_w + 4, top + 11.5), name, fontsize=9, fontname="hebo")
    for r in range(rows):
        vals = [rng.randint(100, 9999) for _ in range(4)]
        cells = [REGIONS[(r + rng.randint(0, 7)) % len(REGIONS)]] + [f"{v:,}" for v in vals] + [f"{sum(vals):,}"]
        for c, cell in enumerate(cells):
            shape.insert_text((x0 + c * col_w + 4, top + (r + 1) * row_h + 11.5), cell, fontsize=9, fontname="helv")
    shape.commit()
    return top + (rows + 1) * row_h


def _bar_chart(page: pymupdf.Page, rng: random.Random, rect: pymupdf.Rect) -> None:
    shape = page.new_shape()
    shape.draw_line(rect.bl, rect.br)
    shape.draw_line(rect.bl, rect.tl)
    shape.finish(color=(0, 0, 0), width=0.8)
    n = 6
    bw = rect.width / (n * 1.5)
    for i in range(n):
        h = rect.height * rng.uniform(0.15, 0.95)
        x = rect.x0 + bw * 0.5 + i * bw * 1.5
        shape.draw_rect(pymupdf.Rect(x, rect.y1 - h, x + bw, rect.y1))
        shape.finish(color=None, fill=(0.2 + 0.1 * i, 0.45, 0.75 - 0.08 * i))
    for k in range(1, 5):  # grid lines
        y = rect.y1 - rect.height * k / 5
        shape.draw_line((rect.x0, y), (rect.x1, y))
    shape.finish(color=(0.75, 0.75, 0.75), width=0.3, dashes="[2 2] 0")
    for i in range(n):
        x = rect.x0 + bw * 0.5 + i * bw * 1.5
        shape.insert_text((x, rect.y1 + 10), REGIONS[i][:5], fontsize=7, fontname="helv")
    shape.insert_text((rect.x0, rect.y0 - 6), "Figure: tonnage by region", fontsize=9, fontname="hebo")
    shape.commit()


def _line_chart(page: pymupdf.Page, rng: random.Random, rect: pymupdf.Rect) -> None:
    shape = page.new_shape()
    shape.draw_rect(rect)
    shape.finish(color=(0, 0, 0), width=0.6)
    for series, colour in enumerate([(0.8, 0.1, 0.1), (0.1, 0.5, 0.1)]):
        pts = []
        v = rng.uniform(0.3, 0.7)
        for i in range(24):
            v = min(0.95, max(0.05, v + rng.uniform(-0.12, 0.12)))
            pts.append(pymupdf.Point(rect.x0 + rect.width * i / 23, rect.y1 - rect.height * v))
        shape.draw_polyline(pts)
        shape.finish(color=colour, width=1.2, closePath=False)
        for p in pts[::4]:
            shape.draw_circle(p, 1.8)
        shape.finish(color=colour, fill=colour)
    shape.commit()
    page.insert_text((rect.x0, rect.y0 - 6), "Figure: monthly berth utilisation (%)", fontsize=9, fontname="hebo")


def _diagram(page: pymupdf.Page, rect: pymupdf.Rect) -> None:
    shape = page.new_shape()
    labels = ["Arrival", "Inspection", "Storage", "Dispatch"]
    bw = rect.width / (len(labels) * 1.4)
    centres = []
    for i, _ in enumerate(labels):
        x = rect.x0 + i * bw * 1.4
        box = pymupdf.Rect(x, rect.y0, x + bw, rect.y1)
        shape.draw_rect(box, radius=0.2)
        centres.append(box)
    shape.finish(color=(0.1, 0.1, 0.4), fill=(0.93, 0.95, 1.0), width=0.8)
    for a, b in zip(centres, centres[1:]):
        y = (a.y0 + a.y1) / 2
        shape.draw_line((a.x1, y), (b.x0, y))
        shape.draw_polyline([(b.x0 - 5, y - 3), (b.x0, y), (b.x0 - 5, y + 3)])
    shape.finish(color=(0.1, 0.1, 0.4), width=0.8, closePath=False)
    for box, label in zip(centres, labels):
        shape.insert_text((box.x0 + 5, (box.y0 + box.y1) / 2 + 3), label, fontsize=8, fontname="helv")
    shape.commit()


def add_page(pdf: pymupdf.Document, number: int, rng: random.Random, title: str) -> None:
    page = pdf.new_page(width=LETTER.width, height=LETTER.height)
    page.insert_text((54, 40), f"{title}  |  page {number}", fontsize=8, fontname="helv", color=(0.4, 0.4, 0.4))
    page.insert_text((54, 72), f"Section {number}: {rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} report",
                     fontsize=16, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(54, 84, 558, 200), _paragraph(rng, 6), fontsize=10, fontname="helv")
    y = _table(page, rng, 210)
    kind = number % 3
    chart = pymupdf.Rect(74, y + 30, 538, y + 190)
    if kind == 0:
        _bar_chart(page, rng, chart)
    elif kind == 1:
        _line_chart(page, rng, chart)
    else:
        _diagram(page, pymupdf.Rect(54, y + 60, 558, y + 110))
    page.insert_textbox(pymupdf.Rect(54, y + 205, 558, 700), _paragraph(rng, 5), fontsize=10, fontname="helv")
    fine = (f"{FINE_PRINT_MARK} {number}: Rates exclude VAT at 21%; demurrage of EUR {rng.randint(40, 990)}.{rng.randint(10, 99)} "
            f"per day applies after {rng.randint(2, 9)} free days. Claims within {rng.randint(7, 30)} days. "
            + _sentence(rng, 14))
    page.insert_textbox(pymupdf.Rect(54, 712, 558, 752), fine, fontsize=FINE_PRINT_PT, fontname="helv")
    page.insert_text((300, 770), str(number), fontsize=8, fontname="helv")


UNIQUE_PAGES = 200  # longer documents repeat these pages (generating one costs ~25 ms)


def make_pdf(path: str, pages: int, seed: int = 1, title: str = "Port Authority Annual Review") -> str:
    """Write a PAGES-page PDF to PATH (skipped if it already exists with that many pages).
    Up to UNIQUE_PAGES pages are all different; beyond that the first ones repeat."""
    if os.path.exists(path):
        try:
            with pymupdf.open(path) as existing:
                if existing.page_count == pages:
                    return path
        except Exception:
            pass
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    rng = random.Random(seed)
    pdf = pymupdf.open()
    for n in range(1, min(pages, UNIQUE_PAGES) + 1):
        add_page(pdf, n, rng, title)
    if pages > UNIQUE_PAGES:
        base = pymupdf.open()
        base.insert_pdf(pdf)
        while pdf.page_count < pages:
            pdf.insert_pdf(base, to_page=min(UNIQUE_PAGES, pages - pdf.page_count) - 1)
        base.close()
    tmp = path + ".tmp"
    pdf.save(tmp, garbage=3, deflate=True)
    pdf.close()
    os.replace(tmp, path)
    return path


def fine_print_rect_px(width_px: int, height_px: int) -> tuple[int, int, int, int]:
    """Where the fine print sits in a rendered page image (left, top, right, bottom)."""
    sx, sy = width_px / LETTER.width, height_px / LETTER.height
    return (math.floor(50 * sx), math.floor(708 * sy), math.ceil(562 * sx), math.ceil(740 * sy))


if __name__ == "__main__":
    out, n = sys.argv[1], int(sys.argv[2])
    make_pdf(out, n)
    print(out)
