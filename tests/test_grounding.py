"""Grounding: answers located on the page's words (text layer or OCR), unlocated values flagged."""

import json
import os

import pytest

from pixtract import grounding, pagewords
from pixtract.discover import identify
from pixtract.ocr import OcrWord, line_of
from pixtract.records import PageWords, Record, RenderSettings, Word
from pixtract.render import render_page

HERE = os.path.dirname(__file__)
NDA = os.path.join(HERE, "..", "fixtures", "real", "kleister_nda")


def _words(lines: list[str], top: float = 100.0) -> PageWords:
    """A page whose lines are printed 20 pt apart, words 8 pt per character."""
    words = []
    for n, line in enumerate(lines):
        x = 50.0
        for w in line.split():
            words.append(Word(w, x, top + 20 * n, x + 8 * len(w), top + 20 * n + 12, 0, n, 1.0))
            x += 8 * len(w) + 6
    return PageWords(612, 792, "pt", 0, "text-layer", words)


def _rec(task: str, **kw) -> Record:
    return Record(document="a.pdf", sha256="ab" * 32, page=1, task=task, route="vision", status="ok", **kw)


PAGE = _words([
    "INVOICE No. 7731",
    "Date: March 15th, 2019",
    "Bill to: Lighthouse Logistics Ltd.",
    "Item Qty Amount",
    "Beacon service 2 $1,234.50",
    "Total due: EUR 4,250.00",
])


def test_extract_values_are_found_in_their_printed_forms_and_others_are_unlocated():
    rec = _rec("extract", data={"number": "7731", "date": "2019-03-15", "customer": "Lighthouse Logistics Ltd",
                                "amount": 1234.5, "total": "4250.00", "paid": None, "vat_id": "GB999"})
    g = grounding.ground_record(rec, {1: PAGE})
    by = {i["path"]: i for i in g["items"]}
    assert set(by) == {"$.number", "$.date", "$.customer", "$.amount", "$.total", "$.vat_id"}  # null skipped
    assert by["$.date"]["located"] and by["$.date"]["match"] == "March 15th, 2019"
    # "Date:" is 50-90, then "March" 96-136, "15th," 142-182, "2019" 188-220, on the line at y 120
    assert by["$.date"]["boxes"] == [[96.0, 120.0, 220.0, 132.0]]
    assert by["$.amount"]["match"] == "$1,234.50" and by["$.amount"]["boxes"][0][1] == 180.0
    assert by["$.total"]["match"] == "4,250.00"
    assert by["$.customer"]["match"] == "Lighthouse Logistics Ltd."
    assert not by["$.vat_id"]["located"] and by["$.vat_id"]["boxes"] == []
    assert (g["located"], g["total"], g["share"]) == (5, 6, 0.833)
    assert g["words"] == "text-layer" and g["unit"] == "pt"


def test_a_short_value_needs_a_whole_word_and_a_typo_is_forgiven_in_a_long_one():
    pages = [grounding.PageIndex.of(1, PAGE)]
    assert grounding.find("77", pages) is None  # inside 7731, not a word of its own
    m = grounding.find("Lighthouse Logistic Ltd", pages)
    assert m is not None and 0.9 <= m.score < 1 and m.words[0].text == "Lighthouse"


def test_transcription_blocks_and_table_cells_get_boxes():
    md = ("# INVOICE No. 7731\n\nDate: March 15th, 2019\n\n| Item | Qty | Amount |\n|---|---|---|\n"
          "| Beacon service | 2 | $1,234.50 |\n\nA paragraph the page does not have at all, made up.\n")
    g = grounding.ground_record(_rec("transcribe", answer=md), {1: PAGE})
    kinds = [(i["type"], i["located"]) for i in g["items"]]
    assert kinds == [("heading", True), ("paragraph", True), ("table", True), ("paragraph", False)]
    assert g["items"][0]["boxes"] == [[50.0, 100.0, 50 + 8 * 7 + 6 + 8 * 3 + 6 + 8 * 4, 112.0]]
    table = g["tables"][0]
    cells = {(c["row"], c["col"]): c for c in table["cells"]}
    assert cells[(1, 2)]["text"] == "$1,234.50" and cells[(1, 2)]["box"][1] == 180.0
    assert cells[(0, 0)]["box"][1] == 160.0 and (table["rows"], table["cols"]) == (2, 3)
    assert table["box"][1] == 160.0 and table["box"][3] == 192.0


def test_ask_spans_and_chart_labels_inside_the_region_only():
    g = grounding.ground_record(_rec("ask", answer="The total due is EUR 4,250.00, invoice 7731."), {1: PAGE})
    figs = {i["value"]: i["located"] for i in g["items"] if i["kind"] == "figure"}
    assert figs == {"4,250.00": True, "7731": True}
    chart_page = _words(["Sales 2024", "Q1 Q2 Q3", "10 20 30"])
    rows = [["quarter", "sales"], ["Q1", "10"], ["Q2", "20"], ["Q3", "31"]]
    g = grounding.ground_record(_rec("chart", data={"rows": rows}), {1: chart_page}, region=[40, 130, 300, 160])
    got = {i["value"]: i["located"] for i in g["items"]}
    assert got == {"quarter": False, "sales": False, "Q1": True, "10": True, "Q2": True, "20": True, "Q3": True,
                   "31": False}  # "Sales" is printed above the region; 31 is not printed at all
    assert g["region"] == {"page": 1, "box": [40, 130, 300, 160]}


def test_no_words_says_so_and_failed_or_blank_records_have_no_grounding():
    g = grounding.ground_record(_rec("transcribe", answer="Hello there"), {1: None})
    assert g["words"] == "none" and g["located"] == 0 and g["items"][0]["located"] is False
    assert grounding.ground_record(_rec("transcribe", answer="", blank=True), {1: PAGE}) is None
    failed = Record(document="a.pdf", sha256=None, page=1, task="transcribe", route=None, status="failed")
    assert grounding.ground_record(failed, {1: PAGE}) is None


def test_printed_forms_of_dates_and_amounts():
    forms = grounding.printed_forms("2004-07-13")
    assert {"July 13, 2004", "13th day of July, 2004", "07/13/2004", "13.07.2004"} <= set(forms)
    assert {"1,234.50", "1234.50"} <= set(grounding.printed_forms(1234.5))
    assert grounding.printed_forms(True) == [] and grounding.printed_forms("2019-02-30") == ["2019-02-30"]


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_ocr_word_boxes_are_turned_back_into_page_coordinates(turn):
    """A word at (100, 50)-(160, 70) of a 400x300 image, read after turning the image."""
    from pixtract.records import Document, Page

    w_img, h_img = 400, 300
    box = {0: (100, 50, 160, 70), 90: (300 - 70, 100, 300 - 50, 160), 180: (400 - 160, 300 - 70, 400 - 100, 300 - 50),
           270: (50, 400 - 160, 70, 400 - 100)}[turn]  # the same word in the turned image
    word = OcrWord("hello", box[0], box[1], box[2] - box[0], box[3] - box[1], 0.9)
    page = Page(Document("a.png", "/a.png", "ab" * 32, "image", 1), 1, b"", "image/png", 200, 150, "")
    pw = pagewords.ocr_words(page, [line_of([word])], turn, (w_img, h_img))
    assert pw.unit == "px" and (pw.width, pw.height) == (200, 150) and pw.source == "ocr"
    w = pw.words[0]
    assert (w.x0, w.y0, w.x1, w.y1, w.conf) == (50, 25, 80, 35, 0.9)


def test_a_real_nda_locates_its_parties_and_jurisdiction_on_the_right_line():
    doc = identify(os.path.join(NDA, "nda_jda_compuware.pdf"))
    page = render_page(doc, 1, RenderSettings())
    assert page.words is not None and page.words.source == "text-layer" and len(page.words.words) > 500
    expected = json.load(open(os.path.join(NDA, "expected.json")))["items"][0]["expected"]
    rec = _rec("extract", data=expected)
    g = grounding.ground_record(rec, {1: page.words})
    assert g["located"] == g["total"] == 3
    lines = {}
    for w in page.words.words:
        lines.setdefault(w.line, []).append(w)
    for item in g["items"]:
        (box,) = item["boxes"]  # each on one printed line
        on_line = [w.text for w in page.words.words if w.y0 >= box[1] - 0.5 and w.y1 <= box[3] + 0.5
                   and w.x0 >= box[0] - 0.5 and w.x1 <= box[2] + 0.5]
        assert grounding.norm(" ".join(on_line)) == grounding.norm(item["value"]), item


def test_a_table_header_word_also_in_the_text_above_is_placed_in_the_table():
    page = _words(["Each Region grew this year", "Region Units", "North 1,200", "South 980"])
    md = "Each Region grew this year\n\n| Region | Units |\n|---|---|\n| North | 1,200 |\n| South | 980 |\n"
    g = grounding.ground_record(_rec("transcribe", answer=md), {1: page})
    cells = {c["text"]: c["box"] for c in g["tables"][0]["cells"]}
    assert cells["Region"] == [50.0, 120.0, 98.0, 132.0]  # the table's line, not the sentence's word
    assert g["tables"][0]["box"] == [50.0, 120.0, 144.0, 172.0]  # "Units" ends at 144


def test_a_cell_printed_once_but_repeated_in_the_markdown_spans_and_a_value_printed_twice_does_not():
    # pymupdf4llm (and most models) repeat a spanning cell's text in each position it covers
    page = _words(["Region Sales", "Q2 Q3", "North 0 0", "5 7"])
    md = ("| Region | Sales | Sales |\n|---|---|---|\n| | Q2 | Q3 |\n"
          "| North | 0 | 0 |\n| North | 5 | 7 |\n")
    g = grounding.ground_record(_rec("transcribe", answer=md), {1: page})
    cells = {(c["row"], c["col"]): c for c in g["tables"][0]["cells"]}
    spans = {k: (c["text"], c["row_span"], c["col_span"]) for k, c in cells.items()}
    assert spans == {(0, 0): ("Region", 1, 1), (0, 1): ("Sales", 1, 2), (1, 1): ("Q2", 1, 1),
                     (1, 2): ("Q3", 1, 1), (2, 0): ("North", 2, 1), (2, 1): ("0", 1, 1),
                     (2, 2): ("0", 1, 1), (3, 1): ("5", 1, 1), (3, 2): ("7", 1, 1)}
    assert cells[(2, 1)]["box"] != cells[(2, 2)]["box"]  # the two printed zeros, one each
    assert (g["tables"][0]["rows"], g["tables"][0]["cols"]) == (4, 3)


def test_words_cross_the_worker_pipe_whole():
    import pickle

    pw = PageWords(612, 792, "pt", 90, "ocr", [Word("a\x1fb", 1.5, 2, 3, 4.25, 7, 9, 0.5), Word("é", 0, 0, 1, 1)])
    back = pickle.loads(pickle.dumps(pw, protocol=5))
    assert back == PageWords(612, 792, "pt", 90, "ocr", [Word("a b", 1.5, 2, 3, 4.25, 7, 9, 0.5), Word("é", 0, 0, 1, 1)])
    assert pickle.loads(pickle.dumps(PageWords(1, 2, "px"))).words == []


def test_odd_answers_ground_without_raising():
    pw = _words(["total 10"])
    for data in [{"a": 1e400, "b": [1, -0.0, {"c": "x" * 5000}], "d": "", "e": 10**30}, [[[]]], "plain", 7, None]:
        g = grounding.ground_record(_rec("extract", data=data), {1: pw})
        assert g["located"] <= g["total"]
    for answer in ["", "\x00", "|a|b|\n|-|-|\n|1|2|", "# " * 1000, "```\ncode", "1. a\n2. b", "<div>x</div>"]:
        assert grounding.ground_record(_rec("transcribe", answer=answer), {1: pw}) is not None
        assert grounding.ground_record(_rec("ask", answer=answer), {1: pw}) is not None
    g = grounding.ground_record(_rec("chart", data={"rows": [["a", 10], "x", None]}), {1: pw}, region=[0, 0, 500, 500])
    assert [i["value"] for i in g["items"] if i["located"]] == ["10"]
