"""OCR engines of the local engine: RapidOCR (default) and Tesseract, upright pages, languages."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from pixtract import local, ocr, orientation
from pixtract.config import build_config
from pixtract.discover import identify
from pixtract.errors import UsageError
from pixtract.records import ROUTE_LOCAL_OCR, RenderSettings
from pixtract.render import render_page

from .helpers import missing_words

S = RenderSettings()
RAPID = ocr.OcrOptions(engine="rapidocr")
TESS = ocr.OcrOptions(engine="tesseract")


def missing_substrings(text: str, wanted: list[str]) -> list[str]:
    """Like missing_words, but PP-OCR sometimes drops a space ("4,250.00EUR"): the words are
    still right, so look for them as substrings."""
    return [w for w in wanted if w not in text]


# The memo's words in its top part (a crop keeps the turned-page tests cheap).
TOP_WORDS = ["MEMORANDUM", "Harbour", "Lighthouse", "Invoice", "quarterly", "maintenance"]


def transcribe(path, options, number=1):
    doc = identify(str(path))
    return local.transcribe(render_page(doc, number, S), S, set(), options=options)


def squash(s: str) -> str:
    return re.sub(r"\s+", "", s).casefold()


def keyword_recall(md: str, keywords_file) -> float:
    kws = [k for page in json.loads(keywords_file.read_text())["expectedKeywords"] for k in page]
    return sum(squash(k) in squash(md) for k in kws) / len(kws)


@pytest.mark.parametrize("options, engine", [(None, "tesseract"), ("rapidocr", "rapidocr")])
def test_the_default_engine_is_tesseract_and_rapidocr_is_one_option_away(samples, expected, options, engine):
    ans = transcribe(samples / "scan.webp", ocr.OcrOptions(engine=options) if options else ocr.OcrOptions())
    assert ans.route == ROUTE_LOCAL_OCR and ans.model.endswith(f"/{engine}")
    assert missing_words(ans.markdown, expected["scan.webp"]["page_words"][0]) == []


@pytest.mark.parametrize("options", [RAPID, TESS], ids=["rapidocr", "tesseract"])
def test_both_engines_return_words_with_boxes_and_confidences(samples, expected, options):
    doc = identify(str(samples / "scanned.pdf"))
    from pixtract.render import ocr_image

    read = local.ocr_page(ocr_image(doc, 1, S), options)
    words = [w for ln in read.lines for w in ln.words]
    assert missing_substrings(" ".join(w.text for w in words), expected["scanned.pdf"]["ocr_words"]) == []
    assert all(0 < w.conf <= 1 and w.width > 0 and w.height > 0 for w in words)
    memo = next(w for w in words if w.text == "MEMORANDUM")
    later = next(w for w in words if w.text.startswith("Lighthouse"))
    assert memo.top < later.top  # boxes are real positions, top to bottom
    assert read.rotation == 0


def test_tesseract_is_selectable_per_run(samples, expected):
    ans = transcribe(samples / "scan.bmp", TESS)
    assert ans.model.endswith("/tesseract")
    assert missing_words(ans.markdown, expected["scan.bmp"]["page_words"][0]) == []


@pytest.mark.parametrize("turn", [90, 180, 270])
@pytest.mark.parametrize("options", [RAPID, TESS], ids=["rapidocr", "tesseract"])
def test_a_turned_scan_is_read_upright_and_the_record_says_so(tmp_path, samples, expected, turn, options):
    # The sample scan, turned as a scanner or phone would have stored it.
    doc = identify(str(samples / "scanned.pdf"))
    from pixtract.render import ocr_image

    page = Image.open(io.BytesIO(ocr_image(doc, 1, S)))
    top = page.crop((0, 0, page.width, int(page.height * 0.45)))
    path = tmp_path / f"turned{turn}.png"
    top.rotate(turn, expand=True).save(path)  # PIL turns counter-clockwise
    ans = transcribe(path, options)
    assert (ans.rotation, ans.flags) == (turn, [f"rotated-{turn}"])  # turned back clockwise
    assert missing_substrings(ans.markdown, TOP_WORDS) == []


def test_no_upright_option_reads_the_page_as_it_came(tmp_path, samples):
    doc = identify(str(samples / "scanned.pdf"))
    from pixtract.render import ocr_image

    path = tmp_path / "turned.png"
    page = Image.open(io.BytesIO(ocr_image(doc, 1, S)))
    page.crop((0, 0, page.width, int(page.height * 0.45))).rotate(180, expand=True).save(path)
    ans = transcribe(path, ocr.OcrOptions(upright=False))
    assert ans.rotation == 0 and ans.flags == [] and "MEMORANDUM" not in ans.markdown


def test_real_sideways_receipt_comes_out_upright(real):
    """zerox 0019.png: a receipt photographed sideways (0 of 35 keywords before)."""
    ans = transcribe(real / "zerox_0019.png", RAPID)
    assert ans.rotation in (90, 270)
    assert keyword_recall(ans.markdown, real / "zerox_0019.keywords.json") >= 0.6
    assert "Walmart" in ans.markdown


def test_chinese_invoice_is_read_by_rapidocr(real):
    """zerox 0015.png, a Chinese VAT invoice: Tesseract with English data read 5 of 33 keywords."""
    ans = transcribe(real / "zerox_0015.png", ocr.OcrOptions(engine="rapidocr", lang="chi_sim+eng"))
    assert ans.model.endswith("/rapidocr")
    assert "普通发票" in ans.markdown and "收款人" in ans.markdown and "销售方" in ans.markdown
    assert keyword_recall(ans.markdown, real / "zerox_0015.keywords.json") >= 0.5


def test_languages_rapidocr_lacks_go_to_tesseract():
    assert ocr.OcrOptions(engine="rapidocr", lang="chi_sim+jpn").effective_engine == "rapidocr"
    assert ocr.OcrOptions(engine="rapidocr", lang="kor").effective_engine == "tesseract"
    assert ocr.OcrOptions(engine="rapidocr", lang="eng+rus").effective_engine == "tesseract"
    assert ocr.OcrOptions(engine="tesseract", lang="jpn").effective_engine == "tesseract"
    assert ocr.OcrOptions(lang="kor").key() != ocr.OcrOptions().key()


def test_missing_tesseract_language_says_how_to_install(samples):
    with pytest.raises(ocr.OCRError, match="make ocr-langs"):
        ocr.tesseract_lines((samples / "scan.bmp").read_bytes(), lang="zzz_nonexistent")


@pytest.mark.parametrize("bad", [{"engine": "easyocr"}, {"lang": "eng;rm -rf"}, {"lang": ""}])
def test_bad_ocr_options_are_usage_errors(bad):
    with pytest.raises(UsageError):
        ocr.OcrOptions(**bad)


def test_ocr_options_from_job_file_env_and_flags(tmp_path):
    from pixtract.flows.cli import build_parser, flags_layer
    from pixtract.config import env_layer, load_job

    job = tmp_path / "job.toml"
    job.write_text('inputs = ["a.pdf"]\nout = "o"\n[ocr]\nengine = "tesseract"\nlang = "eng+deu"\nforce = true\n')
    cfg = build_config(load_job(str(job)))
    assert cfg.ocr == ocr.OcrOptions(engine="tesseract", lang="eng+deu", force=True)
    env = env_layer({"PIXTRACT_OCR_LANG": "jpn"})
    args = build_parser().parse_args(["run", "a.pdf", "--out", "o", "--ocr-engine", "rapidocr", "--no-upright"])
    cfg = build_config(load_job(str(job)), env, flags_layer(args))
    assert cfg.ocr == ocr.OcrOptions(engine="rapidocr", lang="jpn", force=True, upright=False)
    assert build_config({"inputs": ["a"], "out": "o"}).ocr == ocr.OcrOptions()


def test_sideways_and_score_helpers():
    tall = ocr.OcrLine("abcd", 0, 0, 10, 60, 0, 0.9, [ocr.OcrWord("abcd", 0, 0, 10, 60, 0.9)])
    wide = ocr.OcrLine("abcd", 0, 0, 60, 10, 0, 0.9, [ocr.OcrWord("abcd", 0, 0, 60, 10, 0.9)])
    assert orientation.sideways([tall, tall, wide]) and not orientation.sideways([wide, wide, tall])
    assert orientation.score([wide]) == pytest.approx(3.6)


def test_text_inside_pictures_of_a_born_digital_page_is_read(real):
    """zerox 0013.pdf: chart labels and figures exist only as pixels; the text layer alone gave
    41 of its 68 keywords."""
    doc = identify(str(real / "zerox_0013.pdf"))
    pages = [render_page(doc, n, S) for n in (1, 2, 3)]
    md = "\n".join(local.transcribe(p, S, set(), options=RAPID).markdown for p in pages)
    layer = squash("\n".join(p.text for p in pages))
    only_in_images = ["US Stocks", "Portfolio Construction", "78.65", "Mutual Funds"]
    assert [k for k in only_in_images if squash(k) in layer] == []
    assert [k for k in only_in_images if squash(k) not in squash(md)] == []
    assert keyword_recall(md, real / "zerox_0013.keywords.json") >= 0.85


# --- RapidOCR's boxes into lines: columns of prose read column by column -----------------------


def _seg(text, left, top, width, height=30):
    from pixtract.ocr import OcrWord

    return [OcrWord(text, left, top, width, height, 0.95)]


def test_two_columns_of_prose_are_read_column_by_column():
    from pixtract.ocr_rapid import column_gutter, group_lines

    segs = [_seg("A title across the whole page of the brochure", 100, 40, 1800)]
    for i in range(8):
        segs.append(_seg(f"left column line {i}", 100, 200 + 50 * i, 800))
        segs.append(_seg(f"right column line {i}", 1050, 200 + 50 * i, 850))
    segs.append(_seg("A closing line across both columns at the foot", 100, 700, 1800))
    assert column_gutter(segs) is not None
    texts = [ln.text for ln in group_lines(segs)]
    assert texts[0].startswith("A title")
    assert texts[1:9] == [f"left column line {i}" for i in range(8)]
    assert texts[9:17] == [f"right column line {i}" for i in range(8)]
    assert texts[-1].startswith("A closing line")


def test_table_and_form_columns_stay_rows():
    """Short cells (a table, a receipt's items and prices) are no columns of prose: each row is
    one line, as before."""
    from pixtract.ocr_rapid import column_gutter, group_lines

    segs = []
    for i in range(10):
        segs.append(_seg(f"Item {i}", 100, 100 + 50 * i, 200))
        segs.append(_seg(f"{i}.99", 1500, 100 + 50 * i, 120))
    assert column_gutter(segs) is None
    assert [ln.text for ln in group_lines(segs)][:2] == ["Item 0 0.99", "Item 1 1.99"]
