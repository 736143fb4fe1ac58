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

import struct
import zlib

import pymupdf

from pipeline import mupdf
from pipeline.records import Document, RenderSettings
from pipeline.render import _image_coverage, pdf_zoom


def png_from_samples(samples: bytes | memoryview, width: int, height: int, channels: int, level: int = 1) -> bytes:
    """A PNG (8-bit grey or RGB, filter 0 on every row, zlib LEVEL) from raw pixel rows."""
    stride = width * channels
    mv = memoryview(samples)
    raw = b"".join(b"\x00" + mv[y * stride:(y + 1) * stride] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2 if channels == 3 else 0, 0, 0, 0)
    return b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr), _chunk(b"IDAT", zlib.compress(raw, level)),
                     _chunk(b"IEND", b"")))


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def block_text(page: pymupdf.Page) -> str:
    """Text blocks in reading order (top to bottom, then left to right), as mupdf.page_text
    already does for rotated pages."""
    blocks = []
    m = page.rotation_matrix
    for x0, y0, x1, y1, text, _no, kind in page.get_text("blocks"):
        if kind == 0:
            r = pymupdf.Rect(x0, y0, x1, y1) * m
            blocks.append((round(r.y0), r.x0, text))
    return "".join(t if t.endswith("\n") else t + "\n" for _, _, t in sorted(blocks))


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
