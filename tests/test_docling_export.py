"""The layout JSON as a docling-core DoclingDocument: built with the library, boxes kept."""

import json

import pytest

from pixtract import grounding, local
from pixtract.discover import identify
from pixtract.docling_export import layout_to_docling
from pixtract.layout import document_layout, save_page_words
from pixtract.records import Record, RenderSettings
from pixtract.render import render_page

S = RenderSettings()
docling = pytest.importorskip("docling_core.types.doc")  # installed by the test extras


def _layout(samples, out) -> dict:
    doc = identify(str(samples / "report.pdf"))
    page = render_page(doc, 2, S)
    rec = Record(document=doc.path, sha256=doc.sha256, page=2, task="transcribe", route="local-text",
                 status="ok", answer=local.transcribe(page, S).markdown)
    rec.grounding = grounding.ground_record(rec, {2: page.words})
    save_page_words(str(out), page, page.words)
    return document_layout(doc.path, doc.sha256, 3, [rec], str(out))


def test_a_layout_becomes_a_valid_docling_document_with_its_boxes(samples, tmp_path):
    layout = _layout(samples, tmp_path)
    dd = docling.DoclingDocument.model_validate_json(layout_to_docling(layout, "report").model_dump_json())
    page = layout["pages"][1]
    assert dd.pages[2].size.width == page["width"] == 595.0
    [table] = dd.tables
    [lt] = page["tables"]
    assert table.data.num_rows == lt["rows"] == 6 and table.data.num_cols == lt["cols"] == 4
    cell = next(c for c in table.data.table_cells if c.text == "1,480")
    want = next(c["box"] for c in lt["cells"] if c["text"] == "1,480")
    assert [cell.bbox.l, cell.bbox.t, cell.bbox.r, cell.bbox.b] == want
    assert cell.bbox.coord_origin == docling.CoordOrigin.TOPLEFT
    heading = next(t for t in dd.texts if t.text == "2. Regional Results")
    assert heading.prov[0].page_no == 2 and heading.prov[0].bbox.t == page["blocks"][0]["box"][1]
    md = dd.export_to_markdown()
    assert "2. Regional Results" in md and "1,480" in md


def test_the_docling_command_writes_one_file_per_layout(samples, tmp_path):
    from pixtract.flows.cli import main

    layout = _layout(samples, tmp_path)
    (tmp_path / "report.json").write_text(json.dumps(layout))
    (tmp_path / "manifest.json").write_text(json.dumps({"inputs": [
        {"path": "fixtures/samples/report.pdf", "layout": "report.json"}, {"path": "corrupt.pdf", "layout": None}]}))
    assert main(["docling", str(tmp_path)]) == 0
    dd = docling.DoclingDocument.model_validate_json((tmp_path / "report.docling.json").read_text())
    assert dd.name == "report" and len(dd.tables) == 1
    assert main(["docling", str(tmp_path / "nowhere")]) == 2
