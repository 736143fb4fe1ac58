"""The local engine: text layer as Markdown, Tesseract OCR otherwise."""

import re

import pytest

from pixtract import local, ocr
from pixtract.discover import identify
from pixtract.errors import OCRError
from pixtract.records import ROUTE_LOCAL_OCR, ROUTE_LOCAL_TEXT, RenderSettings
from pixtract.render import render_page

from .helpers import missing_words

S = RenderSettings()


def transcribe(path, number=1):
    doc = identify(str(path))
    return local.transcribe(render_page(doc, number, S), S, local.document_running_lines(doc))


def test_scanned_page_is_ocred_and_has_the_known_words(samples, expected):
    ans = transcribe(samples / "scanned.pdf")
    assert ans.route == ROUTE_LOCAL_OCR
    assert missing_words(ans.markdown, expected["scanned.pdf"]["ocr_words"]) == []


@pytest.mark.parametrize("name", ["alpha.png", "photo_exif.jpg", "scan.webp", "scan.bmp", "multi.tiff", "anim.gif"])
def test_images_are_ocred(samples, expected, name):
    ans = transcribe(samples / name)
    assert ans.route == ROUTE_LOCAL_OCR
    assert missing_words(ans.markdown, expected[name]["page_words"][0]) == []


def test_second_tiff_frame(samples, expected):
    ans = transcribe(samples / "multi.tiff", 2)
    assert missing_words(ans.markdown, expected["multi.tiff"]["page_words"][1]) == []


def test_born_digital_page_uses_text_layer(samples, expected):
    ans = transcribe(samples / "report.pdf", 1)
    assert ans.route == ROUTE_LOCAL_TEXT
    assert missing_words(ans.markdown, expected["report.pdf"]["page_words"][0]) == []


def test_table_becomes_markdown_table(samples, expected):
    md = transcribe(samples / "report.pdf", 2).markdown
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(rows) >= 6  # header, separator, 4 regions (+ total)
    assert re.search(r"\|\s*North\s*\|\s*1,200\s*\|\s*1,350\s*\|\s*1,480\s*\|", md)


def test_running_headers_and_footers_dropped(samples, expected):
    for n in (1, 2, 3):
        md = transcribe(samples / "report.pdf", n).markdown
        for s in expected["report.pdf"]["drop_strings"]:
            assert s not in md, (n, s)


def test_hyphenated_line_break_joined(samples, expected):
    h = expected["report.pdf"]["hyphenated"]
    md = transcribe(samples / "report.pdf", h["page"]).markdown
    assert h["joined"] in md
    assert h["broken"][0] not in md


def test_two_columns_read_in_order(samples):
    md = transcribe(samples / "report.pdf", 3).markdown
    assert md.index("The left column ends here.") < md.index("Operating costs are expected")
    assert md.index("Operating costs are expected") < md.index("The right column ends here.")


def _recall(text: str, truth: str) -> float:
    want = re.findall(r"[a-z0-9]+", truth.casefold())
    have = set(re.findall(r"[a-z0-9]+", text.casefold()))
    return sum(w in have for w in want) / len(want)


def test_real_scan_matches_ground_truth(real):
    """linn.pdf (a real scanned brochure from OCRmyPDF's test suite) against its transcript."""
    md = transcribe(real / "linn.pdf").markdown
    assert _recall(md, (real / "linn.txt").read_text()) > 0.9
    assert md.count("\n- ") >= 10  # its bullet lists come out as Markdown list items


def test_real_table_pdf_keeps_table_cells(real):
    """eu-005.pdf (ICDAR 2013 table competition): every cell of its ground-truth grid appears."""
    import xml.etree.ElementTree as ET

    md = "\n".join(transcribe(real / "eu-005.pdf", n).markdown for n in (1, 2))
    cells = [c.findtext("content") for c in ET.parse(real / "eu-005-str.xml").iter("cell")]
    cells = [" ".join(c.split()) for c in cells if c and c.strip()]
    flat = " ".join(md.replace("|", " ").replace("*", "").split())
    found = sum(c in flat for c in cells)
    assert found / len(cells) > 0.9
    assert "|---" in md


def test_missing_tesseract_is_a_clear_error(samples, monkeypatch):
    monkeypatch.setenv("PIXTRACT_TESSERACT", "tesseract-not-installed-here")
    with pytest.raises(OCRError, match="apt-get install tesseract-ocr"):
        ocr.ocr_lines(b"not used")


def test_meets_pymupdf4llm_on_a_real_scan(real):
    """The bar from the issue: pymupdf4llm's own Markdown (with its OCR) on the same page."""
    import contextlib
    import io

    import pymupdf4llm

    truth = (real / "linn.txt").read_text()
    ours = _recall(transcribe(real / "linn.pdf").markdown, truth)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = _recall(pymupdf4llm.to_markdown(str(real / "linn.pdf"), show_progress=False), truth)
    assert ours >= theirs - 0.01, (ours, theirs)


def test_real_filing_text_layer(real):
    """A real SEC filing (Kleister NDA): the parties and jurisdiction come through the text layer."""
    ans = transcribe(real / "kleister_nda" / "nda_jda_compuware.pdf")
    assert ans.route == ROUTE_LOCAL_TEXT
    text = ans.markdown.casefold()
    for want in ("jda software", "compuware corporation", "arizona"):
        assert want in text


def test_a_page_made_only_of_repeated_lines_keeps_them(tmp_path):
    """Lines on every page are running headers, unless they are all a page has (a form letter
    repeated page after page): dropping them would leave an empty answer marked ok."""
    import pymupdf

    pdf = pymupdf.open()
    for p in range(6):
        page = pdf.new_page(width=300, height=200)
        page.insert_text((20, 40), f"Form letter, copy {p + 1}.", fontsize=10)
        page.insert_text((20, 60), "The quick brown fox jumps over the lazy dog.", fontsize=10)
    pdf.save(tmp_path / "letters.pdf")
    doc = identify(str(tmp_path / "letters.pdf"))
    assert local.document_running_lines(doc)  # both lines repeat on every page
    ans = transcribe(tmp_path / "letters.pdf", 3)
    assert "copy 3" in ans.markdown and "lazy dog" in ans.markdown
