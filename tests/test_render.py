import io
import tracemalloc

import pymupdf
import pytest
from PIL import Image

from pixtract.discover import identify
from pixtract.errors import DecompressionBomb, UnreadableFile
from pixtract.records import RenderSettings
from pixtract.render import count_pages, iter_pages, pdf_zoom, render_page


def _img(page):
    return Image.open(io.BytesIO(page.image))


def test_pdf_page_rendered_to_long_edge(samples):
    page = render_page(identify(str(samples / "report.pdf")), 1, RenderSettings())
    assert max(page.width, page.height) == 1024
    im = _img(page)
    assert im.size == (page.width, page.height)
    # A4 portrait: 595 x 842 pt
    assert page.height == 1024 and page.width == round(595 * 1024 / 842)


def test_max_edge_is_configurable(samples):
    page = render_page(identify(str(samples / "report.pdf")), 2, RenderSettings(max_edge=512))
    assert max(page.width, page.height) == 512


def test_small_page_is_not_upscaled_past_dpi_cap(tmp_path):
    pdf = pymupdf.open()
    pdf.new_page(width=144, height=72)  # 2 x 1 inch label
    pdf[0].insert_text((10, 40), "Label 42")
    path = tmp_path / "label.pdf"
    pdf.save(path)
    page = render_page(identify(str(path)), 1, RenderSettings(max_edge=1024, dpi_cap=200))
    assert (page.width, page.height) == (400, 200)
    assert page.source_dpi == 200


def test_zoom_rule():
    s = RenderSettings(max_edge=1024, dpi_cap=200)
    assert pdf_zoom(612, 792, s) == pytest.approx(1024 / 792)
    assert pdf_zoom(14400, 14400, s) == pytest.approx(1024 / 14400)  # a 200-inch page
    assert pdf_zoom(72, 72, s) == pytest.approx(200 / 72)


def test_rotated_page_renders_upright_landscape(samples):
    page = render_page(identify(str(samples / "rotated.pdf")), 1, RenderSettings())
    assert page.width > page.height
    assert "Landscape Schedule" in page.text


def test_text_layer_kept_and_scan_has_none(samples, expected):
    report = identify(str(samples / "report.pdf"))
    for number, wanted in enumerate(expected["report.pdf"]["page_words"], start=1):
        page = render_page(report, number, RenderSettings())
        assert page.has_text_layer
        assert all(w in page.text for w in wanted[:3])
    scan = render_page(identify(str(samples / "scanned.pdf")), 1, RenderSettings())
    assert not scan.has_text_layer and scan.text.strip() == ""


def test_format_rule_png_for_line_art_jpeg_for_scans_and_photos(samples):
    s = RenderSettings()
    assert render_page(identify(str(samples / "report.pdf")), 1, s).mime == "image/png"
    assert render_page(identify(str(samples / "chart.png")), 1, s).mime == "image/png"
    assert render_page(identify(str(samples / "scanned.pdf")), 1, s).mime == "image/jpeg"
    assert render_page(identify(str(samples / "photo_exif.jpg")), 1, s).mime == "image/jpeg"
    forced = render_page(identify(str(samples / "report.pdf")), 1, RenderSettings(image_format="jpeg"))
    assert forced.mime == "image/jpeg" and _img(forced).format == "JPEG"


def test_exif_orientation_applied(samples, expected):
    page = render_page(identify(str(samples / "photo_exif.jpg")), 1, RenderSettings())
    assert [page.width, page.height] == expected["photo_exif.jpg"]["size"]


def test_alpha_flattened_on_white(samples):
    page = render_page(identify(str(samples / "alpha.png")), 1, RenderSettings())
    im = _img(page)
    assert im.mode in ("RGB", "L")
    assert im.convert("RGB").getpixel((2, 2)) == (255, 255, 255)


def test_tiff_every_frame_is_a_page_gif_first_frame_only(samples):
    tiff = identify(str(samples / "multi.tiff"))
    gif = identify(str(samples / "anim.gif"))
    assert count_pages(tiff) == 2
    assert count_pages(gif) == 1
    a, b = (render_page(tiff, n, RenderSettings()).image for n in (1, 2))
    assert a != b


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "LA", "1"])
def test_unusual_modes_normalised_to_rgb_or_l(tmp_path, mode):
    im = Image.new("RGB", (300, 200), "white")
    im = im.convert(mode) if mode != "I;16" else Image.new("I;16", (300, 200), 40000)
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    path = tmp_path / f"img.{fmt.lower()}"
    im.save(path, fmt)
    page = render_page(identify(str(path)), 1, RenderSettings())
    assert _img(page).mode in ("RGB", "L")


def test_image_only_downscaled_never_upscaled(tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (300, 100), "white").save(small)
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 1500), "white").save(big)
    assert (render_page(identify(str(small)), 1, RenderSettings()).width) == 300
    p = render_page(identify(str(big)), 1, RenderSettings())
    assert (p.width, p.height) == (1024, 512)


def test_decompression_bomb_guard(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(path)  # 144 M pixels, a small file
    with pytest.raises(DecompressionBomb, match="bomb.png.*pixel"):
        render_page(identify(str(path)), 1, RenderSettings())


def test_corrupt_pdf_raises_clear_error(samples):
    with pytest.raises(UnreadableFile, match="corrupt.pdf"):
        count_pages(identify(str(samples / "corrupt.pdf")))


def test_pages_are_lazy_and_memory_flat(tmp_path):
    pdf = pymupdf.open()
    for i in range(60):
        p = pdf.new_page()
        p.insert_text((72, 72), f"Page {i} " + "lorem ipsum " * 40)
    path = tmp_path / "long.pdf"
    pdf.save(path)
    doc = identify(str(path))
    pages = iter_pages(doc, RenderSettings())
    tracemalloc.start()
    for i, page in enumerate(pages):
        if i == 5:
            _, peak_early = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
    _, peak_late = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert i == 59
    assert peak_late < peak_early * 2 + 1_000_000


@pytest.mark.parametrize("name", ["report.pdf", "scanned.pdf", "photo_exif.jpg", "chart.png"])
def test_thumbnail_made_from_the_same_pixels(samples, name):
    """With thumb_edge the page carries a small JPEG of the very image sent to the model."""
    page = render_page(identify(str(samples / name)), 1, RenderSettings(), thumb_edge=320)
    assert render_page(identify(str(samples / name)), 1, RenderSettings()).thumbnail is None
    thumb = Image.open(io.BytesIO(page.thumbnail))
    assert thumb.format == "JPEG" and 160 < max(thumb.size) <= 320
    assert abs(thumb.width / thumb.height - page.width / page.height) < 0.05
    full = _img(page).convert("RGB").resize(thumb.size)
    diff = sum(abs(a - b) for a, b in zip(full.convert("L").tobytes(), thumb.convert("L").tobytes()))
    assert diff / (thumb.width * thumb.height) < 12  # same picture, not just same size


def _heavy_pdf(path, paths=50_000):
    """A page drawing ``paths`` small rectangles: milliseconds to tens of ms for MuPDF."""
    ops = b"".join(b"%d %d 2 2 re f\n" % (i % 500, (i // 500) % 700) for i in range(paths))
    pdf = pymupdf.open()
    page = pdf.new_page(width=600, height=800)
    page.insert_text((20, 20), "Heavy page", fontsize=10)
    xref = page.get_contents()[0]
    pdf.update_stream(xref, pdf.xref_stream(xref) + b"\n" + ops)
    pdf.new_page(width=600, height=800).insert_text((20, 40), "A light second page", fontsize=10)
    pdf.save(path)


def test_a_page_over_the_time_limit_fails_cleanly_and_the_next_page_renders(tmp_path, monkeypatch):
    """MuPDF is stopped through its cookie when a page takes longer than PAGE_TIME_LIMIT; the
    page fails with a typed error naming the file and page, and nothing stays locked."""
    from pixtract import mupdf
    from pixtract.errors import RenderTimeout

    _heavy_pdf(tmp_path / "heavy.pdf")
    doc = identify(str(tmp_path / "heavy.pdf"))
    assert render_page(doc, 1, RenderSettings()).width > 0  # fine within the default limit
    monkeypatch.setattr(mupdf, "PAGE_TIME_LIMIT", 0.0005)
    with pytest.raises(RenderTimeout, match=r"heavy\.pdf page 1: stopped after 0.0005 s of rendering"):
        render_page(doc, 1, RenderSettings(max_edge=4096, dpi_cap=600))
    monkeypatch.setattr(mupdf, "PAGE_TIME_LIMIT", 60.0)
    assert mupdf.LOCK.acquire(blocking=False)
    mupdf.LOCK.release()
    assert "light second page" in render_page(doc, 2, RenderSettings()).text


def test_review_images_are_readable_resolution_capped_and_inputs_kept_as_they_are(samples, tmp_path):
    from pixtract.render import JPEG, PNG, REVIEW_MAX_EDGE, review_image

    s = RenderSettings()
    data, mime = review_image(identify(str(samples / "report.pdf")), 1, 200, False, s)
    with Image.open(io.BytesIO(data)) as im:
        assert mime == PNG and im.format == "PNG" and im.size == (round(595 * 200 / 72), round(842 * 200 / 72))
    scan = identify(str(samples / "scanned.pdf"))
    assert review_image(scan, 1, 200, render_page(scan, 1, s).mime == JPEG, s)[1] == JPEG  # as the model's image
    big = tmp_path / "poster.pdf"  # 40 inches long: 8000 px at 200 DPI, capped
    pdf = pymupdf.open()
    pdf.new_page(width=1440, height=2880).insert_text((72, 72), "poster")
    pdf.save(big)
    with Image.open(io.BytesIO(review_image(identify(str(big)), 1, 200, False, s)[0])) as im:
        assert max(im.size) == REVIEW_MAX_EDGE and im.size[0] * 2 == im.size[1]
    # an input image is shown as it is, unless the browser would not show it upright
    png = samples / "chart.png"
    assert review_image(identify(str(png)), 1, 200, False, s) == (png.read_bytes(), PNG)
    exif = samples / "photo_exif.jpg"
    data, mime = review_image(identify(str(exif)), 1, 200, True, s)
    page = render_page(identify(str(exif)), 1, s)
    with Image.open(io.BytesIO(data)) as im:
        assert mime == JPEG and data != exif.read_bytes() and im.width / im.height == pytest.approx(
            page.width / page.height, rel=0.01)
