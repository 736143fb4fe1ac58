"""Chart regions (pipeline/charts.py): detection on PDF pages, captions, crops."""

import io
import math
import random
import threading
import time

import pymupdf
import pytest
from PIL import Image

from pixtract import charts, mupdf
from pixtract.charts import ChartRegion, chart_regions_for, find_chart_regions, render_region
from pixtract.discover import identify
from pixtract.errors import RenderError
from pixtract.records import RenderSettings
from pixtract.render import render_page


def _doc(path):
    return identify(str(path))


def _contains(outer, inner, tol=0.5):
    return (
        outer[0] <= inner[0] + tol
        and outer[1] <= inner[1] + tol
        and outer[2] >= inner[2] - tol
        and outer[3] >= inner[3] - tol
    )


def _area(b):
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _img(page):
    return Image.open(io.BytesIO(page.image))


# --- the committed fixtures ----------------------------------------------------------------


def test_vector_bar_chart_found_with_caption_and_labels(samples, expected):
    want = expected["chart_page.pdf"]["charts"][0]
    regions = find_chart_regions(_doc(samples / "chart_page.pdf"), 1)
    assert len(regions) == 1
    r = regions[0]
    assert isinstance(r, ChartRegion)
    assert (r.page, r.index, r.source) == (1, 1, "vector")
    assert _contains(r.bbox, want["bbox"])
    m = 12
    x0, y0, x1, y1 = want["bbox"]
    assert _area(r.bbox) <= 1.6 * _area((x0 - m, y0 - m, x1 + m, y1 + m))
    assert r.caption == want["caption"]
    # axis labels and values sit outside the drawings: the region takes them in
    for word in [*want["data"], want["x_label"], want["y_label"], *map(str, want["data"].values())]:
        assert word in r.text.split("\n"), word
    assert "Sales Overview" not in r.text and "Source:" not in r.text


def test_ruled_table_and_text_pages_have_no_chart(samples):
    doc = _doc(samples / "report.pdf")
    for number in (1, 2, 3):
        assert find_chart_regions(doc, number) == [], number
    assert find_chart_regions(_doc(samples / "rotated.pdf"), 1) == []


def test_scans_are_not_charts(samples, real):
    # a full-page image is a scan, not a chart
    assert find_chart_regions(_doc(samples / "scanned.pdf"), 1) == []
    assert find_chart_regions(_doc(real / "linn.pdf"), 1) == []


@pytest.mark.parametrize("rel", ["samples/chart.png", "real/vegalite_bar_title/chart.png"])
def test_chart_image_is_one_whole_image_region(samples, rel):
    path = samples.parent / rel
    doc = _doc(path)
    with Image.open(path) as im:
        w, h = im.size
    regions = chart_regions_for(doc, 1)
    assert regions == [ChartRegion(1, 1, (0.0, 0.0, float(w), float(h)), "whole-image", "", "")]
    assert find_chart_regions(doc, 1) == regions
    page = render_region(doc, regions[0], RenderSettings(max_edge=200))
    assert max(page.width, page.height) == 200  # images are only downscaled
    assert _img(page).size == (page.width, page.height)
    big = render_region(doc, regions[0], RenderSettings(max_edge=4096))
    assert (big.width, big.height) == (w, h)


def test_real_line_chart_eu005(real):
    doc = _doc(real / "eu-005.pdf")
    regions = chart_regions_for(doc, 1)
    assert len(regions) == 1
    r = regions[0]
    assert r.source == "vector"
    # the whole framed figure: frame (86.6, 50.6)-(526.8, 328.1), curves, legend, title
    assert _contains(r.bbox, (86.6, 50.6, 526.7, 328.1))
    assert _area(r.bbox) < 0.35 * 595 * 842
    assert r.caption == "Figure 7.1 Cumulative Aggregate Concentration Curves"
    for label in ("proportion of EU retail turnover", "number of firms ranked in descending order of size",
                  "1996", "1993", "0.6"):
        assert label in r.text
    assert "Ultimately" not in r.text
    # page 2 holds two ruled tables, no chart
    assert chart_regions_for(doc, 2) == []


def test_real_shaded_tables_and_flowchart_are_not_charts_beside_a_real_chart(real):
    """ICDAR 2013 eu-015 page 1: two tables with shaded header and total rows beside a bar chart
    (the bars' labels are words, the table cells hold words); eu-014 page 1: a flowchart of
    outlined boxes joined by arrows. Only the bar chart is a chart."""
    doc = _doc(real / "icdar_chart_table_flowchart.pdf")
    regions = find_chart_regions(doc, 1)
    assert len(regions) == 1
    chart = regions[0]
    assert _contains(chart.bbox, (380, 85, 745, 305))  # the framed bar chart
    assert chart.bbox[0] > 365  # not the tables to its left
    assert "EU Institutions" in chart.text and "Topic" not in chart.text
    assert find_chart_regions(doc, 2) == []


def test_side_by_side_framed_charts_are_separate_regions(tmp_path):
    """Two framed line charts printed 3 pt apart are two regions, not one."""
    path = tmp_path / "pair.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    rnd = random.Random(3)
    for x0 in (60, 301):
        frame = pymupdf.Rect(x0, 100, x0 + 238, 300)
        page.draw_rect(frame, color=(0.5, 0.5, 0.5), fill=(1, 1, 1), width=1)
        page.draw_rect(frame + (20, 20, -10, -30), color=(0.5, 0.5, 0.5), fill=(0.85, 0.85, 0.85))
        for y in (150, 190, 230):  # gridlines
            page.draw_line((x0 + 20, y), (x0 + 228, y), color=(0.6, 0.6, 0.6), width=0.5)
        pts = [(x0 + 25 + 10 * k, 200 + rnd.uniform(-50, 50)) for k in range(20)]
        page.draw_polyline(pts, color=(1, 0, 0), width=1)
        page.insert_text((x0 + 60, 115), f"Series {x0}", fontsize=9)
    pdf.save(path)
    regions = find_chart_regions(_doc(path), 1)
    assert len(regions) == 2
    left, right = sorted(regions, key=lambda r: r.bbox[0])
    assert left.bbox[2] < 301 + 12 and right.bbox[0] > 298 - 12  # each its own frame (+ margin)


def test_legend_beside_the_chart_joins_its_region(tmp_path):
    """A legend set 40 pt right of the plot (swatches with labels, a title above) is part of
    the chart; the same swatch column with no chart near it makes no region."""
    path = tmp_path / "legend.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    _draw_bars(page, 80, 100, 330, 300, [4, 7, 3, 6], labels=["A", "B", "C", "D"])
    page.insert_text((370, 112), "Region", fontsize=9)
    for k, name in enumerate(["North", "South", "East"]):
        y = 120 + 16 * k
        page.draw_rect(pymupdf.Rect(370, y, 380, y + 10), fill=(0.2 + 0.3 * k, 0.4, 0.7), color=None)
        page.insert_text((385, y + 9), name, fontsize=9)
    for k, name in enumerate(["Alpha", "Beta", "Gamma"]):  # a swatch list far below: no chart
        y = 600 + 16 * k
        page.draw_rect(pymupdf.Rect(80, y, 90, y + 10), fill=(0.9, 0.5, 0.1), color=None)
        page.insert_text((95, y + 9), name, fontsize=9)
    pdf.save(path)
    [r] = find_chart_regions(_doc(path), 1)
    assert _contains(r.bbox, (80, 100, 420, 300))
    for word in ("Region", "North", "South", "East"):
        assert word in r.text
    assert "Alpha" not in r.text


# --- rendering -----------------------------------------------------------------------------


def test_crop_rendered_to_max_edge_as_png(samples):
    doc = _doc(samples / "chart_page.pdf")
    (region,) = find_chart_regions(doc, 1)
    for edge in (1024, 640):
        page = render_region(doc, region, RenderSettings(max_edge=edge))
        assert page.mime == "image/png"
        assert max(page.width, page.height) == edge
        im = _img(page)
        assert im.format == "PNG" and im.size == (page.width, page.height)
        w_pt, h_pt = region.bbox[2] - region.bbox[0], region.bbox[3] - region.bbox[1]
        assert abs(page.width / page.height - w_pt / h_pt) < 0.01
        assert page.text == region.text and page.number == 1 and page.document == doc
        assert page.source_dpi <= 2 * RenderSettings().dpi_cap


def test_small_chart_not_blown_up_past_twice_dpi_cap(tmp_path):
    path = tmp_path / "small.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page(width=200, height=160)
    _draw_bars(page, 30, 20, 170, 130, [3, 5, 2, 4])
    pdf.save(path)
    doc = _doc(path)
    (region,) = find_chart_regions(doc, 1, min_area_frac=0.1, margin_pt=5)
    settings = RenderSettings(max_edge=4096, dpi_cap=100)
    out = render_region(doc, region, settings)
    long_pt = max(region.bbox[2] - region.bbox[0], region.bbox[3] - region.bbox[1])
    assert max(out.width, out.height) == round(long_pt * 200 / 72)
    assert out.source_dpi == 200


# --- generated pages -----------------------------------------------------------------------


def _draw_bars(page, x0, y0, x1, y1, values, labels=None):
    """A small vector bar chart: axes, bars, optional category labels under the axis."""
    page.draw_line((x0, y1), (x1, y1), width=1)
    page.draw_line((x0, y0), (x0, y1), width=1)
    n = len(values)
    slot = (x1 - x0) / n
    top = max(values)
    for i, v in enumerate(values):
        bx = x0 + i * slot + slot * 0.2
        page.draw_rect(pymupdf.Rect(bx, y1 - (y1 - y0) * v / top, bx + slot * 0.6, y1),
                       fill=(0.2, 0.4, 0.7), color=None)
        if labels:
            page.insert_text((bx, y1 + 12), labels[i], fontsize=9)


def _photo_png(w=300, h=200):
    img = Image.merge("RGB", [Image.effect_noise((w, h), 60), Image.effect_noise((w, h), 70),
                              Image.linear_gradient("L").resize((w, h))])
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_raster_chart_in_pdf_is_an_image_region_with_caption(tmp_path, samples):
    path = tmp_path / "raster.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()  # A4
    page.insert_text((72, 80), "Quarterly review", fontsize=16)
    page.insert_textbox(pymupdf.Rect(72, 100, 520, 160), "Body text about the chart. " * 8, fontsize=10)
    chart_rect = pymupdf.Rect(72, 200, 472, 450)
    page.insert_image(chart_rect, filename=str(samples / "chart.png"))
    page.insert_text((72, 470), "Figure 2: Monthly revenue 2026", fontsize=10)
    page.insert_textbox(pymupdf.Rect(72, 500, 520, 600), "More body text. " * 20, fontsize=10)
    # a photograph further down is not a chart
    page.insert_image(pymupdf.Rect(72, 620, 372, 820), stream=_photo_png())
    pdf.save(path)
    doc = _doc(path)
    regions = find_chart_regions(doc, 1)
    assert len(regions) == 1
    r = regions[0]
    assert r.source == "image"
    assert r.caption == "Figure 2: Monthly revenue 2026"
    assert _contains(r.bbox, tuple(chart_rect))
    assert _area(r.bbox) < 1.4 * _area(tuple(chart_rect + (-12, -12, 12, 12)))
    out = render_region(doc, r, RenderSettings())
    assert out.mime == "image/png" and max(out.width, out.height) == 1024


def test_tables_with_shaded_cells_and_diagrams_are_not_charts(tmp_path):
    path = tmp_path / "nochart.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    rnd = random.Random(2)
    xs = [72, 200, 300, 400, 520]
    ys = [100 + i * 22 for i in range(12)]
    for y in ys:
        page.draw_line((72, y), (520, y), width=0.6)
    for x in xs:
        page.draw_line((x, ys[0]), (x, ys[-1]), width=0.6)
    for i in range(len(ys) - 1):
        for j in range(len(xs) - 1):
            if rnd.random() < 0.3:
                page.draw_rect(pymupdf.Rect(xs[j] + 1, ys[i] + 1, xs[j + 1] - 1, ys[i + 1] - 1),
                               fill=(1, 0.8, 0.8), color=None)
            page.insert_text((xs[j] + 4, ys[i] + 15), str(rnd.randint(1, 999)), fontsize=9)
    # a flow diagram: filled boxes holding text, joined by lines
    for k, (x, y) in enumerate([(100, 450), (300, 450), (100, 600), (300, 600)]):
        page.draw_rect(pymupdf.Rect(x, y, x + 150, y + 60), fill=(0.8, 0.9, 1), color=(0, 0, 0))
        page.insert_text((x + 10, y + 35), f"Step {k + 1}", fontsize=11)
    page.draw_line((250, 480), (300, 480))
    page.draw_line((175, 510), (175, 600))
    page.draw_line((250, 510), (300, 600))
    # coloured page bands (header, sidebar) that share an edge
    page.draw_rect(pymupdf.Rect(0, 0, 595, 50), fill=(0.1, 0.2, 0.4), color=None)
    page.draw_rect(pymupdf.Rect(0, 50, 60, 842), fill=(0.9, 0.9, 0.9), color=None)
    page.draw_rect(pymupdf.Rect(0, 810, 595, 842), fill=(0.1, 0.2, 0.4), color=None)
    pdf.save(path)
    assert find_chart_regions(_doc(path), 1) == []


def test_pie_scatter_and_separate_charts(tmp_path):
    path = tmp_path / "several.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.draw_rect(pymupdf.Rect(20, 20, 575, 822), color=(0, 0, 0), width=1)  # page border: no chart
    _draw_bars(page, 150, 60, 450, 200, [4, 7, 3, 6], labels=["A", "B", "C", "D"])
    page.insert_text((150, 235), "Chart 3. Items by score", fontsize=10)
    # pie
    cx, cy, radius, a0 = 300, 360, 80, 0.0
    for frac, col in zip([0.4, 0.3, 0.2, 0.1], [(0.8, 0.2, 0.2), (0.2, 0.6, 0.2), (0.2, 0.3, 0.8), (0.9, 0.7, 0.1)]):
        start = (cx + radius * math.cos(math.radians(a0)), cy + radius * math.sin(math.radians(a0)))
        page.draw_sector((cx, cy), start, frac * 360, fill=col, color=(1, 1, 1), fullSector=True)
        a0 += frac * 360
    page.insert_text((250, 460), "Fig. 4 Share of sales", fontsize=10)
    # scatter: unconnected dots inside a pair of axes
    rnd = random.Random(5)
    page.draw_line((100, 520), (100, 760))
    page.draw_line((100, 760), (450, 760))
    for _ in range(40):
        page.draw_circle((rnd.uniform(110, 440), rnd.uniform(530, 750)), 2.5, fill=(0.1, 0.3, 0.8), color=None)
    page.insert_text((100, 790), "Figure 6: Price against size", fontsize=10)
    pdf.save(path)
    regions = find_chart_regions(_doc(path), 1)
    assert [r.caption for r in regions] == [
        "Chart 3. Items by score", "Fig. 4 Share of sales", "Figure 6: Price against size"
    ]
    assert [r.index for r in regions] == [1, 2, 3]
    assert all(r.source == "vector" for r in regions)
    assert _contains(regions[0].bbox, (150, 60, 450, 212))  # bars plus category labels
    assert "B" in regions[0].text.split("\n")
    assert _contains(regions[1].bbox, (220, 280, 380, 440))
    assert _contains(regions[2].bbox, (100, 520, 450, 760))
    for r in regions:  # not swallowed by the page border
        assert _area(r.bbox) < 0.25 * 595 * 842


def test_caption_fallback_is_short_line_above(tmp_path):
    path = tmp_path / "title.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_textbox(pymupdf.Rect(72, 60, 520, 140), "A paragraph of body text. " * 12, fontsize=10)
    page.insert_text((150, 185), "Units by region", fontsize=12)
    _draw_bars(page, 150, 200, 450, 380, [4, 7, 3, 6])
    pdf.save(path)
    (r,) = find_chart_regions(_doc(path), 1)
    assert r.caption == "Units by region"


def test_rotated_page_region_in_rotated_space(tmp_path, samples):
    path = tmp_path / "rot.pdf"
    pdf = pymupdf.open()
    pdf.insert_pdf(pymupdf.open(samples / "chart_page.pdf"))
    pdf[0].set_rotation(90)
    pdf.save(path)
    doc = _doc(path)
    (r,) = find_chart_regions(doc, 1)
    (upright,) = find_chart_regions(_doc(samples / "chart_page.pdf"), 1)
    # /Rotate 90 maps (x, y) to (842 - y, x)
    x0, y0, x1, y1 = upright.bbox
    assert r.bbox == pytest.approx((842 - y1, x0, 842 - y0, x1), abs=0.05)
    assert r.caption == "Figure 1: Units sold by region"  # the text runs sideways: still "below"
    out = render_region(doc, r, RenderSettings())
    assert out.height == 1024 and out.width < out.height  # the page turned: chart stands up


def test_hostile_page_with_50000_drawings_is_fast(tmp_path):
    path = tmp_path / "hostile.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    shape = page.new_shape()
    rnd = random.Random(1)
    for _ in range(50_000):
        x, y = rnd.uniform(10, 580), rnd.uniform(10, 830)
        shape.draw_rect(pymupdf.Rect(x, y, x + 0.5, y + 0.5))
        shape.finish(fill=(0, 0, 0), color=None)
    shape.commit()
    pdf.save(path)
    doc = _doc(path)
    t0 = time.thread_time()  # this thread's CPU time: other processes' load does not count
    regions = find_chart_regions(doc, 1)
    assert time.thread_time() - t0 < 5
    assert len(regions) <= 1  # at most one box around all drawings


def test_many_drawings_below_cap_stay_fast(tmp_path):
    path = tmp_path / "many.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    shape = page.new_shape()
    rnd = random.Random(7)
    for _ in range(15_000):
        x, y = rnd.uniform(10, 580), rnd.uniform(10, 830)
        shape.draw_rect(pymupdf.Rect(x, y, x + 0.5, y + 0.5))
        shape.finish(fill=(0, 0, 0), color=None)
    shape.commit()
    pdf.save(path)
    t0 = time.thread_time()  # this thread's CPU time: other processes' load does not count
    find_chart_regions(_doc(path), 1)
    assert time.thread_time() - t0 < 3


# --- API edges -----------------------------------------------------------------------------


def test_page_out_of_range(samples):
    with pytest.raises(RenderError):
        find_chart_regions(_doc(samples / "chart_page.pdf"), 2)
    with pytest.raises(RenderError):
        chart_regions_for(_doc(samples / "chart.png"), 2)


def test_min_area_frac_filters_small_charts(samples):
    doc = _doc(samples / "chart_page.pdf")
    assert find_chart_regions(doc, 1, min_area_frac=0.5) == []
    (r,) = find_chart_regions(doc, 1, margin_pt=0)
    (r12,) = find_chart_regions(doc, 1)
    assert r12.bbox == pytest.approx((r.bbox[0] - 12, r.bbox[1] - 12, r.bbox[2] + 12, r.bbox[3] + 12))


def test_mupdf_calls_run_under_the_lock(samples, monkeypatch):
    """Every PyMuPDF page call made by charts.py happens while LOCK is held."""
    seen = []
    for name in ("get_cdrawings", "get_text", "get_image_info", "get_pixmap", "find_tables"):
        orig = getattr(pymupdf.Page, name)

        def wrapped(self, *a, _orig=orig, _name=name, **k):
            seen.append((_name, mupdf.LOCK._is_owned()))
            return _orig(self, *a, **k)

        monkeypatch.setattr(pymupdf.Page, name, wrapped)
    doc = _doc(samples / "chart_page.pdf")
    for region in chart_regions_for(doc, 1):
        render_region(doc, region, RenderSettings())
    assert seen and all(owned for _, owned in seen), seen


def test_concurrent_use_with_page_rendering(samples, real):
    docs = [_doc(samples / "chart_page.pdf"), _doc(real / "eu-005.pdf"), _doc(samples / "report.pdf")]
    errors = []

    def work(i):
        try:
            for _ in range(5):
                d = docs[i % len(docs)]
                for region in chart_regions_for(d, 1):
                    render_region(d, region, RenderSettings(max_edge=512))
                render_page(d, 1, RenderSettings(max_edge=256))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_caption_pattern():
    m = charts.CAPTION_RE.match
    for ok in ("Figure 1: Units", "FIGURE 2", "Fig. 3 Share", "fig 4", "Chart 5", "Graph 2.1", "Exhibit A",
               "Figure IV - Costs"):
        assert m(ok), ok
    for no in ("Figures show the trend", "Graph theory is fun", "Charting a course", "Exhibition hall"):
        assert not m(no), no
