"""Text clean-up of the local engine (pixtract.textclean) and on a real page."""

from __future__ import annotations

import pytest

from pixtract import local, textclean
from pixtract.discover import identify
from pixtract.records import RenderSettings
from pixtract.render import render_page


@pytest.mark.parametrize("raw, clean", [
    ("J\u00b4an Min\u00b4a\u02c7c", "Ján Mináč"),  # TeX accents before their letters
    ("Erd\u02ddos and Gau\u00df", "Erdős and Gauß"),
    ("cafe\u0301", "café"),  # combining accent: NFC
    ("na\u00a8\u0131ve", "naïve"),  # TeX's dotless i
    ("\u2018\u2018quoted\u2019\u2019 and ``TeX''", "\u201cquoted\u201d and \u201cTeX\u201d"),
    ("the \ufb01eld of \ufb02ow, e\ufb03cient", "the field of flow, efficient"),
    ("御\u2003⾒\u2003積\u2003書, 発⾏⽇", "御\u2003見\u2003積\u2003書, 発行日"),  # Kangxi radicals
])
def test_character_clean_up(raw, clean):
    assert textclean.clean_text(raw) == clean


@pytest.mark.parametrize("keep", [
    "`code` and ``x`` stay",  # Markdown code spans are not TeX quotes
    "it\u00b4s 5\u00b4 long",  # an accent with no letter to compose with stays
    "\u00b4 alone, q\u02c7x",  # nothing to compose with, or no such letter in use
])
def test_clean_up_leaves_other_text_alone(keep):
    assert textclean.clean_text(keep) == keep


def test_single_page_furniture_dropped_by_pattern():
    md = "Revision: 2.4\n\n# Datasheet\n\nThe body of the page, with 12 items.\n\n12\n\nPage 3 of 9\n"
    out = textclean.drop_page_furniture(md)
    assert "Revision" not in out and "Page 3 of 9" not in out
    assert "# Datasheet" in out and "with 12 items" in out
    assert "\n12\n" not in out


@pytest.mark.parametrize("md", [
    "# Title\n\nIntro.\n\n12\n\nBody text in the middle.\n\nMore body text.\n\nLast words.\n",  # not at an edge
    "| 1 |\n|---|\n| 2 |\n",  # table rows
    "42\n",  # a page that is nothing but the number
])
def test_furniture_check_keeps_content(md):
    assert textclean.drop_page_furniture(md).split() == md.split()


def test_local_engine_cleans_a_real_japanese_text_layer(real):
    """zerox 0017.pdf: its fonts map kanji to Kangxi radicals (発⾏⽇); clean text is searchable."""
    s = RenderSettings()
    doc = identify(str(real / "zerox_0017.pdf"))
    md = local.transcribe(render_page(doc, 1, s), s, set()).markdown
    assert "発行日" in md and "御見積金額" in md and "\u2f92" not in md


# --- what the glyphs say: lost spaces, drop caps, cells cut mid-word -------------------------


def _glyphs(words, gap_em, size=10.0):
    """Glyphs of ``words`` set with ``gap_em`` between words and no space character."""
    import pymupdf

    font = pymupdf.Font("tiro")
    out, x = [], 72.0
    for w in words:
        for ch in w:
            width = font.text_length(ch, size)
            out.append((ch, x, x + width, size))
            x += width
        x += gap_em * size
    return out


def test_lost_spaces_found_from_glyph_gaps():
    from pixtract.textlayer import lost_spaces

    words = "Table 1: Composition of the Pretraining Data".split()
    assert lost_spaces(_glyphs(words, 0.1)) == {"Table1:CompositionofthePretrainingData":
                                                "Table 1: Composition of the Pretraining Data"}
    assert lost_spaces(_glyphs(["Composition"], 0.1)) == {}  # letters set close: nothing to split
    jitter = [(ch, 72 + 6 * i + (0.5 if i % 2 else -0.3), 72 + 6 * i + 5.5, 10.0) for i, ch in enumerate("Commercial")]
    assert lost_spaces(jitter) == {}  # metrics that do not match the glyphs are not word gaps
    foot = _glyphs(["projects"], 0) + [("7", 72 + 45, 72 + 49, 6.0)]
    assert lost_spaces([*foot[:-1], ("7", foot[-2][2] + 1.2, foot[-2][2] + 4, 6.0)]) == {}  # a footnote mark


def test_layer_fixes_applied_to_markdown():
    from pixtract.textlayer import LayerFixes

    fixes = LayerFixes(splits={"CompositionofthePretraining": "Composition of the Pretraining"},
                       drop_caps=[("T", "he committee")], words={"Procedure", "work", "Time", "Step"})
    md = ("Table 1 CompositionofthePretraining\n\nhe committee met and agreed T on a plan.\n\n"
          "|Step|Proced|ure of work|Time|\n|---|---|---|---|\n|1|Mix|well|5 min|")
    out = textclean.apply_layer_fixes(md, fixes)
    assert "Table 1 Composition of the Pretraining" in out
    assert "The committee met and agreed on a plan." in out
    assert "|Step|Procedure|of work|Time|" in out
    assert "|1|Mix|well|5 min|" in out  # cells that are words of their own stay apart


def test_page_with_lost_spaces_and_a_drop_cap(tmp_path):
    import pymupdf

    path = tmp_path / "caption.pdf"
    font = pymupdf.Font("tiro")
    pdf = pymupdf.open()
    page = pdf.new_page()
    tw = pymupdf.TextWriter(page.rect)
    x = 72.0
    for w in "Table 1: Composition of the Pretraining Data".split():
        tw.append((x, 100), w, font=font, fontsize=10)
        x += font.text_length(w, 10) + 1.0  # 0.1 em: MuPDF puts no space there
    tw.write_text(page)
    page.insert_text((72, 190), "T", fontsize=40, fontname="tiro")
    body = ["he committee met on the first day of spring to", "discuss the budget for the coming year and agreed",
            "on a plan that all members could support today."]
    for i, line in enumerate(body):
        page.insert_text((98 if i < 2 else 72, 168 + i * 14), line, fontsize=11, fontname="tiro")
    pdf.save(path)
    assert "CompositionofthePretraining" in pdf[0].get_text()
    md = local.text_layer_markdown(identify(str(path)), 1)
    assert "Table 1: Composition of the Pretraining Data" in md
    assert "The committee met" in " ".join(md.split())
    assert " T " not in md


def test_real_table_header_words_not_cut_at_column_rules(real):
    """ICDAR 2013 us-018 page 1: the layout analysis cuts the header words at the table's
    column rules (``|Actu|al|``, ``|Proje|cted|``); the page's own words put them back."""
    import contextlib
    import io

    import pymupdf

    with contextlib.redirect_stdout(io.StringIO()), pymupdf.open(real / "us-018-p1.pdf") as pdf:
        raw = local._to_markdown(pdf, 1)
    assert "|Actu|al|" in raw  # what the layout analysis gives
    md = local.text_layer_markdown(identify(str(real / "us-018-p1.pdf")), 1)
    assert "|Actual|" in md and "|Projected|" in md
    assert "Actu|" not in md and "Proje|" not in md
