"""Benchmark 1: render and encode. Milliseconds per page (CPU and wall) to turn PDF pages into
model-ready PNGs with a 1024-px long edge:

- pixtract: ``pixtract.render.render_page`` (PNG forced, so every tool writes the same format;
  this includes pixtract's complexity guard and its text layer + image coverage pass, which it
  does per page; no report thumbnail), called in-process
- pixtract_workers: the same ``render_page`` as a run calls it, in a MuPDF worker process
  (pipeline/workers.py): CPU is the worker's plus the calling process's (pickling, the pipe),
  the worker's start-up left out as a batch pays it once
- ``pdftoppm -scale-to 1024 -png`` (poppler-utils), one process per document, CPU from rusage
- pypdfium2 + Pillow: ``page.render(scale=...)`` then ``Image.save(PNG)`` at Pillow's default
  level (6, what a user would write) and at level 1

Inputs: the readable fixture PDFs plus a generated 200-page document (text, tables, vector
drawings, 6-pt fine print). Also times each step of the shipped ``render_page`` on the
generated document (``breakdown``) and saves a crop of the fine print from pixtract's image.

Review images (``review``): what the report's full-resolution page images (``review_dpi``,
200 DPI by default) cost a run on top of the model's image: CPU ms (worker + caller) and bytes
per page of ``render.review_image`` in a MuPDF worker, as a run calls it, and on the generated
document PNG against high-quality JPEG for line art.

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
    from pixtract.discover import discover

    return next(iter(discover([str(path)])))


def bench_pixtract(path: Path, pages: int) -> dict:
    from pixtract.records import RenderSettings
    from pixtract.render import render_page

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


def bench_pixtract_workers(path: Path, pages: int) -> dict:
    from pixtract.records import RenderSettings
    from pixtract.render import render_page
    from pixtract.workers import WorkerSettings, running_workers, worker_pids

    settings = RenderSettings(max_edge=LONG_EDGE, image_format="png")
    doc = _doc(path)
    size = px = 0
    with running_workers(WorkerSettings(1, 60.0, 4096)):
        render_page(doc, 1, settings)  # start the worker and open the document, as a batch would
        [pid] = worker_pids()
        k0, c0, w0 = _proc_cpu(pid), time.process_time(), time.perf_counter()
        for n in range(1, pages + 1):
            p = render_page(doc, n, settings)
            size += len(p.image)
            px += p.width * p.height
        k1, c1, w1 = _proc_cpu(pid), time.process_time(), time.perf_counter()
    return _figures((k1 - k0) + (c1 - c0), w1 - w0, pages, size, px, last=(p.width, p.height, p.mime))


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _forget(doc) -> None:
    from pixtract import mupdf

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


REVIEW_DPI = 200  # RunConfig.review_dpi's default


def bench_review(path: Path, pages: int, dpi: int = REVIEW_DPI) -> dict:
    """``review_image`` in a MuPDF worker, after the page's model render (untimed: a run does it
    anyway, and its format choice decides the review image's)."""
    from PIL import Image

    from pixtract.records import RenderSettings
    from pixtract.render import JPEG, render_page, review_image
    from pixtract.workers import WorkerSettings, running_workers, worker_pids

    settings = RenderSettings()
    doc = _doc(path)
    cpu = wall = 0.0
    size = px = 0
    mimes: dict[str, int] = {}
    with running_workers(WorkerSettings(1, 60.0, 4096)):
        review_image(doc, 1, dpi, False, settings)  # start the worker and open the document
        [pid] = worker_pids()
        for n in range(1, pages + 1):
            photographic = render_page(doc, n, settings).mime == JPEG
            k0, c0, w0 = _proc_cpu(pid), time.process_time(), time.perf_counter()
            data, mime = review_image(doc, n, dpi, photographic, settings)
            k1, c1, w1 = _proc_cpu(pid), time.process_time(), time.perf_counter()
            cpu, wall, size = cpu + (k1 - k0) + (c1 - c0), wall + (w1 - w0), size + len(data)
            mimes[mime] = mimes.get(mime, 0) + 1
            with Image.open(io.BytesIO(data)) as im:
                px += im.width * im.height
                last = (im.width, im.height, mime)
    return {**_figures(cpu, wall, pages, size, px, last), "mimes": mimes}


def review_formats(path: Path, pages: int = 20, dpi: int = REVIEW_DPI) -> dict:
    """Line-art pages at ``dpi``, in-process: the shipped PNG writer against JPEG at 85 and 90
    (CPU ms of the encoding alone, KB per page)."""
    import pymupdf

    from pixtract import render

    pdf = pymupdf.open(str(path))
    pages = min(pages, pdf.page_count)
    out = {k: [0.0, 0] for k in ("png (shipped for line art)", "jpeg q85", "jpeg q90")}
    for i in range(pages):
        pix = pdf.load_page(i).get_pixmap(matrix=pymupdf.Matrix(dpi / 72, dpi / 72), alpha=False)
        samples, w, h, n = pix.samples, pix.width, pix.height, pix.n
        for key, fn in (("png (shipped for line art)", lambda: render.png_from_samples(samples, w, h, n)),
                        ("jpeg q85", lambda: render._jpeg(_pixels(samples, w, h, n), 85)),
                        ("jpeg q90", lambda: render._jpeg(_pixels(samples, w, h, n), 90))):
            c0 = time.process_time()
            data = fn()
            out[key][0] += time.process_time() - c0
            out[key][1] += len(data)
    pdf.close()
    return {"pages": pages, "dpi": dpi, "encode": {k: {"cpu_ms_per_page": round(c / pages * 1000, 2),
                                                       "kb_per_page": round(b / pages / 1024, 1)}
                                                   for k, (c, b) in out.items()}}


def _figures(cpu: float, wall: float, pages: int, size: int, px: int, last) -> dict:
    return {"pages": pages, "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
            "cpu_ms_per_page": round(cpu / pages * 1000, 2), "wall_ms_per_page": round(wall / pages * 1000, 2),
            "kb_per_page": round(size / pages / 1024, 1), "megapixels_per_page": round(px / pages / 1e6, 3),
            "last_page_size": list(last)}


def breakdown(path: Path, pages: int = 30) -> dict:
    """CPU ms per page of each step of the shipped ``render_page`` (a PDF page to PNG, with the
    report thumbnail) on the same pages, plus two other PNG writers for comparison; and the
    PNG sizes (KB/page) of the three writers."""
    import zlib
    from unittest import mock

    import pymupdf

    from pixtract import mupdf, render
    from pixtract.records import RenderSettings
    from pixtract.report import THUMB_MAX_EDGE

    deflate = "zlib-ng" if render._deflate.__module__.startswith("zlib_ng") else "zlib: no zlib-ng installed"
    png, png_zlib1, png_pillow = (f"PNG as shipped (png_from_samples, {deflate} level 2)",
                                  "compare: PNG, same writer, zlib level 1",
                                  "compare: PNG, Pillow compress_level=1")
    settings = RenderSettings(max_edge=LONG_EDGE, image_format="png")
    doc = _doc(path)
    pdf = pymupdf.open(str(path))
    pages = min(pages, pdf.page_count)
    render.render_page(doc, 1, settings, thumb_edge=THUMB_MAX_EDGE)  # warm MuPDF's caches once
    cpu: dict[str, float] = {}
    writers = {png: f"png_from_samples, {deflate} level 2 (shipped)", png_zlib1: "png_from_samples, zlib level 1",
               png_pillow: "Pillow, compress_level=1"}
    size = dict.fromkeys(writers, 0)

    def t(key, fn):
        c0 = time.process_time()
        r = fn()
        cpu[key] = cpu.get(key, 0.0) + time.process_time() - c0
        if key in size:
            size[key] += len(r)
        return r

    def one(i: int) -> None:
        page = t("load page", lambda: pdf.load_page(i))
        t("complexity guard (check_complexity)", lambda: mupdf.check_complexity(pdf, page, f"page {i + 1}"))
        z = render.pdf_zoom(page.rect.width, page.rect.height, settings)
        pix = t("rasterize (MuPDF get_pixmap)", lambda: page.get_pixmap(matrix=pymupdf.Matrix(z, z), alpha=False))
        t("text layer + image coverage, one pass (page_text_and_images)", lambda: mupdf.page_text_and_images(page))
        samples = t("samples copy (pix.samples)", lambda: pix.samples)
        w, h, n = pix.width, pix.height, pix.n
        t(png, lambda: render.png_from_samples(samples, w, h, n))
        t(f"thumbnail (thumbnail_jpeg, {THUMB_MAX_EDGE} px)",
          lambda: render.thumbnail_jpeg(_pixels(samples, w, h, n), THUMB_MAX_EDGE))
        with mock.patch.object(render, "_deflate", zlib.compress):
            t(png_zlib1, lambda: render.png_from_samples(samples, w, h, n, level=1))
        t(png_pillow, lambda: _pillow_png(_pixels(samples, w, h, n)))
        t(f"render_page as a whole (with the {THUMB_MAX_EDGE}-px thumbnail)",
          lambda: render.render_page(doc, i + 1, settings, thumb_edge=THUMB_MAX_EDGE))

    for i in range(pages):
        one(i)
    pdf.close()
    _forget(doc)
    return {"pages": pages, "steps_ms": {k: round(v / pages * 1000, 2) for k, v in cpu.items()},
            "png_kb_per_page": {writers[k]: round(v / pages / 1024, 1) for k, v in size.items()}}


def _pixels(samples: bytes, w: int, h: int, channels: int):
    """The pixels as a Pillow image, as render_page wraps them (Pillow maps grey samples but
    copies RGB into its own 4-byte layout)."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    return Image.frombuffer(mode, (w, h), samples, "raw", mode, 0, 1)


def _pillow_png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def fine_print_crop(path: Path, out_png: Path) -> dict:
    """Crop the 6-pt fine print out of pixtract's image of page 1 and save it."""
    from PIL import Image

    from gen_pdfs import FINE_PRINT_PT, fine_print_rect_px
    from pixtract.records import RenderSettings
    from pixtract.render import render_page

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


TOOLS = ("pixtract", "pixtract_workers", "pdftoppm", "pdfium_pillow_default", "pdfium_pillow_level1")


def run(pages: int = 200, results_dir: Path | None = None, fixtures: bool = True, crop_dir: Path | None = None) -> dict:
    from pixtract import malloc

    malloc.tune()  # the malloc settings the pixtract command runs with (pipeline/malloc.py)
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
        row["pixtract_workers"] = bench_pixtract_workers(path, n)
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
        for mine, other in [("pixtract", t) for t in TOOLS[2:]] + [("pixtract_workers", "pdftoppm")]:
            if other in s:
                ratios[f"{mine}/{other}"] = {
                    "cpu": round(s[mine]["cpu_ms_per_page"] / s[other]["cpu_ms_per_page"], 3),
                    "wall": round(s[mine]["wall_ms_per_page"] / s[other]["wall_ms_per_page"], 3)}
        s["ratios"] = ratios
        summary[label] = s
    steps = breakdown(gen)
    log(f"  render_page step by step ({steps['pages']} pages), CPU ms/page: "
        + ", ".join(f"{k} {v:.1f}" for k, v in steps["steps_ms"].items()))
    log("  PNG KB/page: " + ", ".join(f"{k} {v:.1f}" for k, v in steps["png_kb_per_page"].items()))
    crop = fine_print_crop(gen, (crop_dir or BENCH) / "fineprint_pixtract.png")
    review = {"dpi": REVIEW_DPI, "documents": [
        {"document": d["document"], **bench_review(path, n)} for d, (path, n) in zip(docs, inputs)]}
    rv = review["documents"]
    for label, rows in (("generated", rv[:1]), ("fixtures", rv[1:]), ("all", rv)):
        if rows:
            pg = sum(r["pages"] for r in rows)
            review[label] = {"pages": pg, "cpu_ms_per_page": round(sum(r["cpu_s"] for r in rows) / pg * 1000, 2),
                             "wall_ms_per_page": round(sum(r["wall_s"] for r in rows) / pg * 1000, 2),
                             "kb_per_page": round(sum(r["kb_per_page"] * r["pages"] for r in rows) / pg, 1)}
    review["formats"] = review_formats(gen)
    for r in rv:
        log(f"  review image {REVIEW_DPI} DPI, {r['document']} ({r['pages']} p): {r['cpu_ms_per_page']:.1f} ms cpu, "
            f"{r['kb_per_page']:.0f} KB, {r['megapixels_per_page']:.2f} MP a page, {r['mimes']}")
    log("  review formats (line art): " + ", ".join(
        f"{k} {v['cpu_ms_per_page']:.1f} ms {v['kb_per_page']:.0f} KB" for k, v in review["formats"]["encode"].items()))
    # The target holds for the path a run takes: render_page in a MuPDF worker process.
    target = summary["all"]["ratios"].get("pixtract_workers/pdftoppm", {}).get("cpu")
    result = {"long_edge": LONG_EDGE, "format": "png", "documents": docs, "summary": summary,
              "render_page_steps_pages": steps["pages"], "render_page_steps_ms": steps["steps_ms"],
              "render_page_png_kb_per_page": steps["png_kb_per_page"], "fine_print": crop, "review": review,
              "targets": {"pixtract_workers/pdftoppm cpu <=": 0.1, "measured": target,
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
