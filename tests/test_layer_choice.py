"""The page-level choice of source (pixtract.textlayer.layer_problem, pixtract.local): a text
layer with unknown glyphs, lines interleaved character by character, text invisible over a scan
or hidden under an image is not trusted; the page is OCRed and the record says why."""

import io

import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from pixtract import local
from pixtract.discover import identify
from pixtract.records import RenderSettings
from pixtract.render import render_page
from pixtract.textlayer import (HIDDEN, INTERLEAVED, INVISIBLE, UNKNOWN_GLYPHS, LayerFacts,
                                layer_problem)

S = RenderSettings()
LINE_A = "The quick brown fox jumps over the lazy dog near the river bank today."
LINE_B = "Every good student reads books about history and science each week."


def transcribe(path, number=1):
    doc = identify(str(path))
    return local.transcribe(render_page(doc, number, S), S, set())


def _words_image(words: str, size=(1200, 220)) -> bytes:
    img = Image.new("L", size, 255)
    font = ImageFont.load_default(size=44)
    ImageDraw.Draw(img).text((30, 70), words, fill=0, font=font)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def interleaved_pdf(path):
    """Two lines written one character of each at a time (as some scanned books' layers are),
    above a normal line."""
    pdf = pymupdf.open()
    page = pdf.new_page()
    font = pymupdf.Font("tiro")
    tw = pymupdf.TextWriter(page.rect)
    xa = xb = 72.0
    for i in range(max(len(LINE_A), len(LINE_B))):
        if i < len(LINE_A):
            tw.append((xa, 100), LINE_A[i], font=font, fontsize=11)
            xa += font.text_length(LINE_A[i], 11)
        if i < len(LINE_B):
            tw.append((xb, 114), LINE_B[i], font=font, fontsize=11)
            xb += font.text_length(LINE_B[i], 11)
    tw.write_text(page)
    page.insert_text((72, 200), "A normal paragraph line follows here.", fontsize=11)
    pdf.save(path)


def test_byte_swapped_and_unmapped_glyphs():
    swapped = "".join(chr(ord(c) << 8) for c in "Multicolor Black Pure Cyan")  # '䴀甀氀...'
    assert layer_problem(LayerFacts(swapped)) == UNKNOWN_GLYPHS
    assert layer_problem(LayerFacts("\ufffd" * 5 + " readable words here and more words")) == UNKNOWN_GLYPHS
    # real CJK text is not mistaken for swapped bytes
    assert layer_problem(LayerFacts("御見積書 下記の通り御見積申し上げます。何卒御用命下さる様お願い申し上げます")) == ""
    assert layer_problem(LayerFacts("Plain English words on a page of a report.")) == ""


def test_interleaved_lines_found_from_baselines():
    zigzag = [(100.0, 1), (114.0, 1)] * 40 + [(200.0, 37)]
    assert layer_problem(LayerFacts("x" * 117, zigzag)) == INTERLEAVED
    # a paragraph, and a table read row by row, do not zigzag
    prose = [(100.0 + 14 * i, 60) for i in range(20)]
    table = [(100.0 + 14 * (i // 3), 2) for i in range(60)]
    assert layer_problem(LayerFacts("x" * 1200, prose)) == ""
    assert layer_problem(LayerFacts("x" * 120, table)) == ""


def test_invisible_or_hidden_text_by_area():
    assert layer_problem(LayerFacts("word " * 20, [], 100.0, 95.0, 0.0, 0.9)) == INVISIBLE
    assert layer_problem(LayerFacts("word " * 20, [], 100.0, 95.0, 0.0, 0.1)) == ""  # invisible, no scan under it
    assert layer_problem(LayerFacts("word " * 20, [], 100.0, 0.0, 60.0, 0.3)) == HIDDEN
    assert layer_problem(LayerFacts("word " * 20, [], 100.0, 0.0, 10.0, 0.3)) == ""


def test_interleaved_layer_is_ocred_and_recorded(tmp_path):
    path = tmp_path / "interleaved.pdf"
    interleaved_pdf(path)
    assert local.layer_facts(identify(str(path)), 1).lines  # the layer is there
    ans = transcribe(path)
    assert ans.route == "local-ocr"
    assert ans.flags[0] == "text-layer-interleaved"
    text = " ".join(ans.markdown.split())
    assert "quick brown fox" in text and "history and science" in text


def test_text_hidden_under_an_image_is_ocred(tmp_path):
    """A page whose text layer says one thing while an image painted over it shows another:
    the reader sees the image, so the image is what is read."""
    path = tmp_path / "hidden.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((80, 120), "Old figures that nobody can see any more", fontsize=12)
    page.insert_text((80, 140), "and a second hidden line of old words", fontsize=12)
    page.insert_image(pymupdf.Rect(60, 90, 540, 180), stream=_words_image("Invoice total due now"))
    pdf.save(path)
    facts = local.layer_facts(identify(str(path)), 1)
    assert facts.hidden_area >= 0.9 * facts.text_area > 0
    ans = transcribe(path)
    assert (ans.route, ans.flags[:1]) == ("local-ocr", ["text-layer-hidden-under-image"])
    assert "Invoice" in ans.markdown and "nobody" not in ans.markdown


def test_text_over_an_image_is_not_hidden(tmp_path):
    """The usual case, text printed on top of a picture, keeps its text layer."""
    path = tmp_path / "over.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_image(pymupdf.Rect(60, 90, 540, 180), stream=_words_image("Banner"))
    page.insert_text((80, 220), "The caption under the banner is real text on the page.", fontsize=12)
    page.insert_text((80, 120), "Title printed over the picture itself", fontsize=12)
    pdf.save(path)
    ans = transcribe(path)
    assert ans.route == "local-text" and not [f for f in ans.flags if f.startswith("text-layer")]
    assert "caption under the banner" in ans.markdown


def test_real_invisible_ocr_layer_over_a_scan_is_read_again(real):
    """OCRmyPDF's graph_ocred.pdf: a scanned chart under an invisible OCR layer of poor quality
    ('sw | \\ +', 'BH No vote{note 1]')."""
    ans = transcribe(real / "graph_ocred.pdf")
    assert ans.flags[:1] == ["text-layer-invisible"]
    assert ans.route == "local-ocr"
    assert "vote{note" not in ans.markdown


@pytest.mark.parametrize("name", ["eu-005.pdf", "zerox_0013.pdf"])
def test_real_born_digital_layers_are_trusted(real, name):
    ans = transcribe(real / name)
    assert ans.route == "local-text"
    assert not [f for f in ans.flags if f.startswith("text-layer")]
