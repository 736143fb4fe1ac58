"""Step 2: a Document to Pages, each a model-ready image plus its text layer.

Image rule (documented in the README):
- size: the long edge becomes ``max_edge`` px (1024, Pixtral's native size, model-apis.md §5);
  a PDF page is rendered straight to that size, never above ``dpi_cap`` DPI, so a small page
  is not blown up; an image is only ever downscaled.
- format: PNG for line art (born-digital PDF pages, charts, images with few colours), where it
  keeps small print sharp and is small; JPEG (quality 90) for photographic content (scans,
  photos), where PNG would be several times larger for no gain.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import time
import zlib
from collections.abc import Iterator


try:
    from zlib_ng.zlib_ng import compress as _deflate
except ImportError:  # no wheel for this platform: the standard zlib, ~2.4x slower
    from zlib import compress as _deflate
from PIL import Image, ImageOps, UnidentifiedImageError

from . import mupdf
from .workers import isolated
from .errors import DecompressionBomb, RenderError, UnreadableFile
from .records import WORDS_TEXT_LAYER, Document, Page, PageWords, RenderSettings

# We apply our own pixel budget (RenderSettings.max_pixels) before decoding; Pillow's warning
# at the same threshold would only add noise.
Image.MAX_IMAGE_PIXELS = None

PNG, JPEG = "image/png", "image/jpeg"
OCR_DPI, OCR_MIN_EDGE, OCR_MAX_EDGE = 300, 1600, 4200


@isolated("open")
def count_pages(doc: Document, password: str | None = None) -> int:
    """Pages in a document: PDF pages, TIFF frames, 1 for other images (GIF: first frame)."""
    if doc.kind == "pdf":
        with mupdf.open_pdf(doc, password) as pdf:
            return pdf.page_count
    with _open_image(doc) as img:
        if (doc.fmt or img.format) == "TIFF":
            return getattr(img, "n_frames", 1)
        return 1


def iter_pages(doc: Document, settings: RenderSettings, password: str | None = None) -> Iterator[Page]:
    """Render pages one at a time; only the current page is held in memory."""
    for number in range(1, count_pages(doc, password) + 1):
        yield render_page(doc, number, settings, password)


@isolated("page")
def render_page(doc: Document, number: int, settings: RenderSettings, password: str | None = None,
                thumb_edge: int = 0) -> Page:
    """One page as a model-ready image; with ``thumb_edge``, also a small JPEG thumbnail made
    from the same pixels (for the report), no larger than ``thumb_edge`` on its long side."""
    t0 = time.perf_counter()
    if doc.kind == "pdf":
        page = _render_pdf_page(doc, number, settings, password, thumb_edge)
    else:
        page = _render_image_frame(doc, number, settings, thumb_edge)
    page.render_ms = (time.perf_counter() - t0) * 1000
    return page


@isolated("page")
def ocr_image(doc: Document, number: int, settings: RenderSettings, password: str | None = None) -> bytes:
    """A greyscale PNG of a page for Tesseract: 300 DPI for PDFs (OCR wants about 30 px per
    line of body text, far more than the model image has), originals for images, with small
    images enlarged. The long edge stays within OCR_MAX_EDGE."""
    if doc.kind == "pdf":
        with mupdf.open_pdf(doc, password) as pdf:
            page = pdf.load_page(number - 1)
            long_pt = max(page.rect.width, page.rect.height, 1e-6)
            zoom = min(OCR_DPI / 72.0, OCR_MAX_EDGE / long_pt)
            where = f"{doc.path} page {number}"
            pix = mupdf.draw(mupdf.display_list(page, where), zoom, where, gray=True)
            img = Image.frombytes("L", (pix.width, pix.height), pix.samples)
            del pix
    else:
        big = dataclasses.replace(settings, max_edge=OCR_MAX_EDGE)
        with _open_image(doc) as src:
            if number > 1:
                src.seek(number - 1)
            img = _normalise(src, big).convert("L")
        long_px = max(img.size)
        if long_px < OCR_MIN_EDGE:
            f = min(3.0, OCR_MIN_EDGE / long_px)
            img = img.resize((round(img.width * f), round(img.height * f)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


REVIEW_MAX_EDGE = 3200  # px: an A4 page at 200 DPI is 2339 px long; A3 stays near 190 DPI
REVIEW_JPEG_QUALITY = 85


@isolated("page")
def review_image(doc: Document, number: int, dpi: int, photographic: bool, settings: RenderSettings,
                 password: str | None = None) -> tuple[bytes, str]:
    """A page at a resolution a person can read small print at, for the report's viewer: PDFs
    drawn again at ``dpi`` (long edge at most REVIEW_MAX_EDGE), in the format the model's image
    got (``photographic``: JPEG, else PNG); an input image as it is when it is a PNG or JPEG
    the browser shows upright, else its frame normalised to REVIEW_MAX_EDGE."""
    if doc.kind == "pdf":
        with mupdf.open_pdf(doc, password) as pdf:
            page = pdf.load_page(number - 1)
            where = f"{doc.path} page {number}"
            long_pt = max(page.rect.width, page.rect.height, 1e-6)
            zoom = min(dpi / 72.0, REVIEW_MAX_EDGE / long_pt)
            pix = mupdf.draw(mupdf.display_list(page, where), zoom, where)
            width, height, channels, samples = pix.width, pix.height, pix.n, pix.samples
            del pix
        if not photographic:
            return png_from_samples(samples, width, height, channels), PNG
        mode = "L" if channels == 1 else "RGB"
        img = Image.frombuffer(mode, (width, height), samples, "raw", mode, 0, 1)
        return _jpeg(img, REVIEW_JPEG_QUALITY), JPEG
    big = dataclasses.replace(settings, max_edge=REVIEW_MAX_EDGE)
    with _open_image(doc) as src:
        fmt = src.format
        as_is = (fmt in ("PNG", "JPEG") and getattr(src, "n_frames", 1) == 1 and max(src.size) <= REVIEW_MAX_EDGE
                 and src.getexif().get(0x0112, 1) == 1 and src.mode in ("RGB", "L", "RGBA", "LA", "P"))
        if not as_is:
            if number > 1:
                src.seek(number - 1)
            frame = _normalise(src, big)
    if as_is:
        with open(doc.abspath, "rb") as f:
            return f.read(), PNG if fmt == "PNG" else JPEG
    if photographic:
        return _jpeg(frame, REVIEW_JPEG_QUALITY), JPEG
    return encode(frame, False, dataclasses.replace(settings, image_format="png"))


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# --- PDF -----------------------------------------------------------------------------------


def pdf_zoom(width_pt: float, height_pt: float, settings: RenderSettings) -> float:
    """Scale factor from PDF points to pixels: long edge to max_edge, capped at dpi_cap."""
    long_pt = max(width_pt, height_pt, 1e-6)
    return min(settings.max_edge / long_pt, settings.dpi_cap / 72.0)


def _render_pdf_page(doc: Document, number: int, settings: RenderSettings, password: str | None,
                     thumb_edge: int = 0) -> Page:
    with mupdf.open_pdf(doc, password) as pdf:
        if not 1 <= number <= pdf.page_count:
            raise RenderError(f"{doc.path}: page {number} out of range (1-{pdf.page_count})")
        try:
            page = pdf.load_page(number - 1)
        except Exception as e:
            raise RenderError(f"{doc.path} page {number}: cannot load ({mupdf._short(e)})") from None
        where = f"{doc.path} page {number}"
        mupdf.check_complexity(pdf, page, where)
        try:
            rect = page.rect  # already rotated by /Rotate
            zoom = pdf_zoom(rect.width, rect.height, settings)
            dl = mupdf.display_list(page, where)  # the content is interpreted once, within the time limit
            pix = mupdf.draw(dl, zoom, where)
            text, image_share, words = mupdf.text_images_words(dl)
            page_words = PageWords(rect.width, rect.height, "pt", page.rotation, WORDS_TEXT_LAYER, words)
            photographic = image_share > 0.5
            width, height, channels, samples = pix.width, pix.height, pix.n, pix.samples
            del pix, dl
        except RenderError:
            raise
        except Exception as e:
            raise RenderError(f"{doc.path} page {number}: cannot render ({mupdf._short(e)})") from None
    # Encoding runs outside the MuPDF lock, so other pages can render meanwhile.
    mode = "L" if channels == 1 else "RGB"
    if settings.image_format == "png" or (settings.image_format == "auto" and not photographic):
        data, mime = png_from_samples(samples, width, height, channels), PNG
    else:
        data, mime = encode(Image.frombuffer(mode, (width, height), samples, "raw", mode, 0, 1), True, settings)
    thumb = thumbnail_jpeg(Image.frombuffer(mode, (width, height), samples, "raw", mode, 0, 1),
                           thumb_edge) if thumb_edge else None
    return Page(doc, number, data, mime, width, height, text, source_dpi=round(zoom * 72, 1), thumbnail=thumb,
                words=page_words)


def thumbnail_jpeg(img: Image.Image, max_edge: int) -> bytes:
    """A small JPEG of an RGB or L image: an integer box reduction (a few times cheaper than
    resampling, and plenty for a thumbnail), never enlarged."""
    factor = -(-max(img.size) // max_edge)  # ceil
    if factor > 1:
        img = img.reduce(factor)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def png_from_samples(samples: bytes, width: int, height: int, channels: int, level: int = 2) -> bytes:
    """A lossless PNG (8-bit grey or RGB) straight from raw pixel rows: filter 0, deflate by
    zlib-ng at level 2.

    Pillow's encoder tries every row filter even at compress_level 1; for rendered line art
    this writer is twice as fast and the file about as small; zlib-ng's deflate is another
    2.4x faster than zlib's for ~10 % more bytes (bench/README.md, render).
    """
    stride = width * channels
    mv = memoryview(samples)
    raw = b"".join(b"\x00" + mv[y * stride : (y + 1) * stride] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2 if channels == 3 else 0, 0, 0, 0)
    return b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr), _chunk(b"IDAT", _deflate(raw, level)),
                     _chunk(b"IEND", b"")))


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


# --- images --------------------------------------------------------------------------------


def _open_image(doc: Document) -> Image.Image:
    try:
        img = Image.open(doc.abspath)
    except UnidentifiedImageError:
        raise UnreadableFile(f"{doc.path}: not a readable {doc.fmt or 'image'} file") from None
    except OSError as e:
        raise UnreadableFile(f"{doc.path}: cannot open image ({e})") from None
    return img


def _render_image_frame(doc: Document, number: int, settings: RenderSettings, thumb_edge: int = 0) -> Page:
    with _open_image(doc) as img:
        w, h = img.size
        if w * h > settings.max_pixels:
            raise DecompressionBomb(
                f"{doc.path}: image is {w}x{h} = {w * h:,} pixels, over the "
                f"{settings.max_pixels:,}-pixel limit (a possible decompression bomb)"
            )
        try:
            if number > 1:
                img.seek(number - 1)
            elif getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            frame = _normalise(img, settings)
        except (OSError, ValueError, EOFError) as e:
            raise RenderError(f"{doc.path} page {number}: cannot decode image ({e})") from None
        photographic = (doc.fmt == "JPEG" or img.format == "JPEG") or _is_photographic(frame)
    data, mime = encode(frame, photographic, settings)
    thumb = thumbnail_jpeg(frame, thumb_edge) if thumb_edge else None
    return Page(doc, number, data, mime, frame.width, frame.height, "", thumbnail=thumb)


def _normalise(img: Image.Image, settings: RenderSettings) -> Image.Image:
    """EXIF orientation, downscale to max_edge, alpha on white, mode RGB or L."""
    if img.format == "JPEG":
        # Let libjpeg decode at a reduced scale: far less memory and time for big photos.
        img.draft("RGB" if img.mode not in ("L", "1") else "L", (settings.max_edge, settings.max_edge))
    frame = ImageOps.exif_transpose(img) or img
    frame = _to_rgb_or_l(frame)
    if max(frame.size) > settings.max_edge:
        frame.thumbnail((settings.max_edge, settings.max_edge), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return frame


def _to_rgb_or_l(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("RGB", "L"):
        return img.copy()  # detached from the file, which is closed next
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "A" in mode:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        out = Image.alpha_composite(white, rgba).convert("RGB")
        return out
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit and float greyscale: scale the real range into 8 bits.
        lo, hi = img.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        return img.point(lambda v: (v - lo) * scale).convert("L")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _is_photographic(img: Image.Image) -> bool:
    """Many distinct colours in a small sample means photo-like content."""
    sample = img.copy()
    sample.thumbnail((128, 128))
    colours = sample.getcolors(maxcolors=4096)
    return colours is None or len(colours) > 1024


def encode(img: Image.Image, photographic: bool, settings: RenderSettings) -> tuple[bytes, str]:
    fmt = settings.image_format
    use_jpeg = fmt == "jpeg" or (fmt == "auto" and photographic)
    buf = io.BytesIO()
    if use_jpeg:
        img.save(buf, "JPEG", quality=settings.jpeg_quality, optimize=False)
        return buf.getvalue(), JPEG
    # compress_level 1: a fraction of the CPU of the default 6, a few % larger on line art.
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue(), PNG


def turned(page: Page, degrees: int, settings: RenderSettings) -> Page:
    """``page`` with its image turned ``degrees`` clockwise (90, 180, 270), in its own format:
    what a vision model gets of a scan or photo that came in sideways."""
    if degrees % 360 == 0:
        return page
    with Image.open(io.BytesIO(page.image)) as img:
        img = img.rotate(-degrees, expand=True)  # PIL turns counter-clockwise
    data, mime = encode(img, page.mime == JPEG, dataclasses.replace(settings, image_format="jpeg" if page.mime == JPEG else "png"))
    return dataclasses.replace(page, image=data, mime=mime, width=img.width, height=img.height)
