"""A layout JSON (``<stem>.json``) as docling-core's ``DoclingDocument``, which the RAG
ecosystem reads (docling's LangChain, LlamaIndex and Haystack loaders).

Built with docling-core's own API (``add_page``, ``add_heading``, ``add_text``, ``add_table``,
``add_picture``), so the result is valid by construction; docling-core is an optional extra
(``pip install 'pixtract[docling]'``). Every located block keeps its box as the item's
provenance (page coordinates, origin top left); unlocated blocks are added without one.
"""

from __future__ import annotations

from typing import Any

from .errors import UsageError


def _docling():
    try:
        from docling_core.types import doc
    except ImportError:
        raise UsageError("the DoclingDocument export needs docling-core: pip install 'pixtract[docling]'") from None
    return doc


def layout_to_docling(layout: dict[str, Any], name: str):
    """The DoclingDocument of one layout JSON."""
    d = _docling()
    out = d.DoclingDocument(name=name)
    for page in layout.get("pages", []):
        n = page["page"]
        if page.get("width") and page.get("height"):
            out.add_page(page_no=n, size=d.Size(width=float(page["width"]), height=float(page["height"])))
        tables = {t.get("order"): t for t in page.get("tables", [])}

        def prov(box, text: str):
            if not box:
                return None
            bbox = d.BoundingBox(l=box[0], t=box[1], r=box[2], b=box[3], coord_origin=d.CoordOrigin.TOPLEFT)
            return d.ProvenanceItem(page_no=n, bbox=bbox, charspan=(0, len(text)))

        for b in page.get("blocks", []):
            text, kind = b.get("text") or "", b.get("type")
            p = prov(b.get("box"), text)
            if kind == "table" and b.get("order") in tables:
                out.add_table(data=_table_data(d, tables[b["order"]]), prov=prov(tables[b["order"]].get("box"), ""))
            elif kind == "heading":
                out.add_heading(text=text, level=int(b.get("level") or 1), prov=p)
            elif text:
                label = {"caption": d.DocItemLabel.CAPTION, "code": d.DocItemLabel.CODE,
                         "list": d.DocItemLabel.TEXT}.get(kind, d.DocItemLabel.TEXT)
                out.add_text(label=label, text=text, prov=p)
        for fig in page.get("figures", []):
            out.add_picture(prov=prov(fig.get("box"), ""))
    return out


def _table_data(d, table: dict[str, Any]):
    cells = []
    for c in table.get("cells", []):
        box = c.get("box")
        cells.append(d.TableCell(
            text=c.get("text") or "", row_span=c.get("row_span", 1), col_span=c.get("col_span", 1),
            start_row_offset_idx=c["row"], end_row_offset_idx=c["row"] + c.get("row_span", 1),
            start_col_offset_idx=c["col"], end_col_offset_idx=c["col"] + c.get("col_span", 1),
            column_header=c["row"] == 0,
            bbox=d.BoundingBox(l=box[0], t=box[1], r=box[2], b=box[3], coord_origin=d.CoordOrigin.TOPLEFT)
            if box else None))
    return d.TableData(num_rows=int(table.get("rows") or 0), num_cols=int(table.get("cols") or 0), table_cells=cells)


def export_folder(out_dir: str) -> list[str]:
    """``<stem>.docling.json`` beside every layout JSON of an output folder; returns their names."""
    import json
    import os

    from .files import atomic_write
    from .outputs import MANIFEST

    with open(os.path.join(out_dir, MANIFEST), encoding="utf-8") as f:
        manifest = json.load(f)
    written = []
    for entry in manifest.get("inputs", []):
        name = entry.get("layout")
        if not name:
            continue
        with open(os.path.join(out_dir, name), encoding="utf-8") as f:
            layout = json.load(f)
        doc = layout_to_docling(layout, os.path.splitext(os.path.basename(entry["path"]))[0])
        target = name[:-len(".json")] + ".docling.json"
        atomic_write(os.path.join(out_dir, target), doc.model_dump_json())
        written.append(target)
    return written
