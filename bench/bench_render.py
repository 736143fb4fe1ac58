"""Benchmark 1: render and encode. Milliseconds per page (CPU and wall) to turn PDF pages into
model-ready PNGs with a 1024-px long edge:

- pixtract: ``pipeline.render.render_page`` (PNG forced, so every tool writes the same format;
  this includes pixtract's text-layer extraction and image-coverage check, which it does per page)
- ``pdftoppm -scale-to 1024 -png`` (poppler-utils), one process per document, CPU from rusage
- pypdfium2 + Pillow: ``page.render(scale=...)`` then ``Image.save(PNG)`` at Pillow's default
  level (6, what a user would write) and at level 1 (pixtract's setting)
- pixtract with the changes proposed in bench/proposals.py (prototype, not shipped)

Inputs: the readable fixture PDFs plus a generated 200-page document (text, tables, vector
drawings, 6-pt fine print). Also saves a crop of the fine print from pixtract's image.

    python bench/bench_render.py [--pages 200] [--results DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, ROOT, fixture_pdfs, generated_pdf, have_pdftoppm, log, write_result  # noqa: E402

LONG_EDGE = 1024


def _doc(path: Path):
    from pipeline.discover import discover

    return next(iter(discover([str(path)])))


def bench_pixtract(path: Path, pages: int) -> dict:
    from pipeline.records import RenderSettings
    from pipeline.render import render_page

    settings = RenderSettings(max_edge=LONG_EDGE, image_format="png")
    doc = _doc(path)
    render_page(doc, 1, settings)  # open the document and warm caches once, as a batch would
    size = px = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for n in range(1, pages + 1):
        p = render_page(doc, n, settings)
        size += len(p.image)
        px += p.width * p.height
    c1, w1 = time.process_time(), time.perf_counter()
    _forget(doc)
    return _figures(c1 - c0, w1 - w0, pages, size, px, last=(p.width, p.height, p.mime))


def bench_proposed(path: Path, pages: int) -> dict:
    from PIL import Image

    from pipeline.records import RenderSettings
    from proposals import render_pdf_page_proposed

    settings = RenderSettings(max_edge=LONG_EDGE, image_format="png")
    doc = _doc(path)
    data, w, h, _ = render_pdf_page_proposed(doc, 1, settings)
    with Image.open(io.BytesIO(data)) as im:  # a valid PNG of the right size
        im.load()
        assert im.size == (w, h)
    size = px = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for n in range(1, pages + 1):
        data, w, h, _ = render_pdf_page_proposed(doc, n, settings)
        size += len(data)
        px += w * h
    c1, w1 = time.process_time(), time.perf_counter()
    _forget(doc)
    return _figures(c1 - c0, w1 - w0, pages, size, px, last=(w, h, "image/png"))


def _forget(doc) -> None:
    from pipeline import mupdf

    mupdf.forget(doc)


def bench_pdfium(path: Path, pages: int, level: int) -> dict:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    size = px = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(pages):
        page = pdf[i]
        w, h = page.get_size()
        img = page.render(scale=LONG_EDGE / max(w, h)).to_pil()
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=level)
        size += buf.tell()
        px += img.width * img.height
        page.close()
    c1, w1 = time.process_time(), time.perf_counter()
    pdf.close()
    return _figures(c1 - c0, w1 - w0, pages, size, px, last=(img.width, img.height, "image/png"))


def bench_pdftoppm(path: Path, pages: int) -> dict:
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        w0 = time.perf_counter()
        subprocess.run(["pdftoppm", "-scale-to", str(LONG_EDGE), "-png", "-f", "1", "-l", str(pages), str(path),
                        os.path.join(tmp, "p")], check=True, stderr=subprocess.DEVNULL)
        w1 = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        files = sorted(Path(tmp).glob("p*.png"))
        size = sum(f.stat().st_size for f in files)
        px = 0
        for f in files:
            with Image.open(f) as im:
                px += im.width * im.height
                last = (im.width, im.height, "image/png")
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return _figures(cpu, w1 - w0, len(files), size, px, last=last)


def _figures(cpu: float, wall: float, pages: int, size: int, px: int, last) -> dict:
    return {"pages": pages, "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
            "cpu_ms_per_page": round(cpu / pages * 1000, 2), "wall_ms_per_page": round(wall / pages * 1000, 2),
            "kb_per_page": round(size / pages / 1024, 1), "megapixels_per_page": round(px / pages / 1e6, 3),
            "last_page_size": list(last)}


def breakdown(path: Path, pages: int = 30) -> dict:
    """CPU ms per page of each step inside pixtract's render_page, and of the proposed
    replacements (bench/proposals.py), on the same pages."""
    import pymupdf
    from PIL import Image

    from pipeline import mupdf
    from pipeline.records import RenderSettings
    from pipeline.render import _image_coverage, pdf_zoom
    from proposals import block_text, png_from_samples

    pdf = pymupdf.open(str(path))
    pages = min(pages, pdf.page_count)
    totals: dict[str, float] = {}

    def t(key, fn):
        c0 = time.process_time()
        r = fn()
        totals[key] = totals.get(key, 0.0) + time.process_time() - c0
        return r

    for i in range(pages):
        page = pdf.load_page(i)
        z = pdf_zoom(page.rect.width, page.rect.height, RenderSettings())
        pix = t("rasterize (MuPDF get_pixmap)", lambda: page.get_pixmap(matrix=pymupdf.Matrix(z, z), alpha=False))
        t("text layer, shipped (get_text sort=True)", lambda: mupdf.page_text(page))
        t("text layer, proposed (sorted blocks)", lambda: block_text(page))
        t("image coverage check", lambda: _image_coverage(page))
        img = t("Image.frombytes", lambda: Image.frombytes("RGB", (pix.width, pix.height), pix.samples))

        def pillow_png():
            buf = io.BytesIO()
            img.save(buf, "PNG", compress_level=1)
            return buf

        t("PNG, shipped (Pillow, compress_level=1)", pillow_png)
        t("PNG, proposed (filter 0 + zlib 1 from samples)",
          lambda: png_from_samples(pix.samples_mv, pix.width, pix.height, pix.n))
    pdf.close()
    return {k: round(v / pages * 1000, 2) for k, v in totals.items()}


def fine_print_crop(path: Path, out_png: Path) -> dict:
    """Crop the 6-pt fine print out of pixtract's image of page 1 and save it."""
    from PIL import Image

    from gen_pdfs import FINE_PRINT_PT, fine_print_rect_px
    from pipeline.records import RenderSettings
    from pipeline.render import render_page

    page = render_page(_doc(path), 1, RenderSettings())
    with Image.open(io.BytesIO(page.image)) as im:
        box = fine_print_rect_px(im.width, im.height)
        crop = im.crop(box)
        crop.save(out_png, optimize=True)
        zoomed = crop.resize((crop.width * 2, crop.height * 2), Image.Resampling.NEAREST)
        zoomed.save(out_png.with_name(out_png.stem + "@2x.png"), optimize=True)
    px_per_pt = page.width / 612.0
    shown = out_png.relative_to(ROOT) if out_png.is_relative_to(ROOT) else out_png
    return {"file": str(shown), "image": [page.width, page.height, page.mime],
            "box": list(box), "font_pt": FINE_PRINT_PT, "font_px": round(FINE_PRINT_PT * px_per_pt, 2)}


TOOLS = ("pixtract", "pdftoppm", "pdfium_pillow_default", "pdfium_pillow_level1", "pixtract_proposed")


def run(pages: int = 200, results_dir: Path | None = None, fixtures: bool = True, crop_dir: Path | None = None) -> dict:
    gen = generated_pdf(pages)
    inputs = [(gen, pages)]
    if fixtures:
        import pymupdf

        for p in fixture_pdfs():
            with pymupdf.open(p) as d:
                inputs.append((p, d.page_count))
    have_poppler = have_pdftoppm()
    try:
        import pypdfium2  # noqa: F401

        have_pdfium = True
    except ImportError:
        have_pdfium = False
    docs = []
    for path, n in inputs:
        row = {"document": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path), "pages": n}
        row["pixtract"] = bench_pixtract(path, n)
        row["pixtract_proposed"] = bench_proposed(path, n)
        if have_poppler:
            row["pdftoppm"] = bench_pdftoppm(path, n)
        if have_pdfium:
            row["pdfium_pillow_default"] = bench_pdfium(path, n, 6)
            row["pdfium_pillow_level1"] = bench_pdfium(path, n, 1)
        docs.append(row)
        log(f"  {row['document']} ({n} p): " + ", ".join(
            f"{t} {row[t]['cpu_ms_per_page']:.1f} ms cpu" for t in TOOLS if t in row))
    summary = {}
    for label, rows in (("generated", docs[:1]), ("fixtures", docs[1:]), ("all", docs)):
        if not rows:
            continue
        s = {}
        for t in TOOLS:
            rs = [r[t] for r in rows if t in r]
            if not rs:
                continue
            pg = sum(r["pages"] for r in rs)
            s[t] = {"pages": pg, "cpu_ms_per_page": round(sum(r["cpu_s"] for r in rs) / pg * 1000, 2),
                    "wall_ms_per_page": round(sum(r["wall_s"] for r in rs) / pg * 1000, 2),
                    "kb_per_page": round(sum(r["kb_per_page"] * r["pages"] for r in rs) / pg, 1)}
        ratios = {}
        for other in ("pdftoppm", "pdfium_pillow_default", "pdfium_pillow_level1"):
            if other in s:
                for who in ("pixtract", "pixtract_proposed"):
                    ratios[f"{who}/{other}"] = {
                        "cpu": round(s[who]["cpu_ms_per_page"] / s[other]["cpu_ms_per_page"], 3),
                        "wall": round(s[who]["wall_ms_per_page"] / s[other]["wall_ms_per_page"], 3)}
        s["ratios"] = ratios
        summary[label] = s
    steps = breakdown(gen)
    log("  inside render_page, CPU ms/page: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))
    crop = fine_print_crop(gen, (crop_dir or BENCH) / "fineprint_pixtract.png")
    target = summary["all"]["ratios"].get("pixtract/pdftoppm", {}).get("cpu")
    result = {"long_edge": LONG_EDGE, "format": "png", "documents": docs, "summary": summary,
              "render_page_steps_ms": steps, "fine_print": crop,
              "targets": {"pixtract/pdftoppm cpu <=": 0.1, "measured": target,
                         "met": None if target is None else target <= 0.1},
              "skipped": [t for t, ok in (("pdftoppm", have_poppler), ("pypdfium2", have_pdfium)) if not ok]}
    _print(summary)
    write_result("render", result, results_dir)
    return result


def _print(summary: dict) -> None:
    for label, s in summary.items():
        log(f"render+encode to PNG, 1024-px long edge [{label}]")
        log(f"  {'tool':24s} {'cpu ms/page':>12s} {'wall ms/page':>13s} {'KB/page':>8s}")
        for t in TOOLS:
            if t in s:
                log(f"  {t:24s} {s[t]['cpu_ms_per_page']:12.1f} {s[t]['wall_ms_per_page']:13.1f} {s[t]['kb_per_page']:8.1f}")
        for k, v in s["ratios"].items():
            log(f"  ratio {k}: cpu {v['cpu']:.3f}x, wall {v['wall']:.3f}x")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=200, help="pages of the generated document")
    ap.add_argument("--no-fixtures", action="store_true")
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--crop-dir", type=Path, default=None, help="where to save the fine-print crop (default bench/)")
    a = ap.parse_args(argv)
    return run(a.pages, a.results, not a.no_fixtures, a.crop_dir)


if __name__ == "__main__":
    main()
