"""Text clean-up of the local engine (pipeline.textclean) and on a real page."""

from __future__ import annotations

import pytest

from pipeline import local, textclean
from pipeline.discover import identify
from pipeline.records import RenderSettings
from pipeline.render import render_page


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
