"""Prototypes of the speed changes this benchmark recommends for pipeline/render.py, kept here
(bench/ only) so their effect can be measured side by side with the shipped code. Not used by
pixtract itself.

1. Text layer: ``page.get_text("text", sort=True)`` runs PyMuPDF's pure-Python layout
   simulation (``get_sorted_text``: a Rect per word, unions per line) and costs ~11 ms a page;
   sorting the blocks MuPDF already returns, which pixtract does for /Rotate'd pages
   (``mupdf.page_text``), costs ~1 ms.
2. PNG: Pillow's PNG encoder tries every row filter (adaptive filtering) even at
   compress_level=1 and costs ~14 ms for a 792x1024 RGB page; writing the PNG straight from
   MuPDF's samples with filter 0 and zlib level 1 costs ~6 ms and comes out about as small
   for rendered line art. The result is a standard, lossless PNG (checked in bench_render).
"""

from __future__ import annotations

import pymupdf

from pipeline import mupdf
from pipeline.records import Document, RenderSettings
from pipeline.render import _image_coverage, pdf_zoom
from pipeline.render import png_from_samples as render_png_from_samples


# Both changes are now in pixtract itself (pipeline/render.py, pipeline/mupdf.py); the names stay
# so the benchmark's "proposed" row keeps measuring the same thing.
png_from_samples = render_png_from_samples
block_text = mupdf.page_text


def render_pdf_page_proposed(doc: Document, number: int, settings: RenderSettings) -> tuple[bytes, int, int, str]:
    """What ``render._render_pdf_page`` does for a born-digital page (PNG), with both changes.
    Returns (png bytes, width, height, text)."""
    with mupdf.open_pdf(doc) as pdf:
        page = pdf.load_page(number - 1)
        zoom = pdf_zoom(page.rect.width, page.rect.height, settings)
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
        text = block_text(page)
        _image_coverage(page)  # kept: it chooses PNG or JPEG
        data = png_from_samples(pix.samples_mv, pix.width, pix.height, pix.n)
        w, h = pix.width, pix.height
        del pix
    return data, w, h, text
