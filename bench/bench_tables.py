"""The local engine on the ICDAR 2013 table PDFs: cell text against ``*-str.xml``, CPU per page.

    python bench/bench_tables.py                 # every table page of the 67 PDFs
    python bench/bench_tables.py --limit 10      # the first 10 documents
    python bench/bench_tables.py --match us-01   # the documents whose name holds us-01
    python bench/bench_tables.py --corpus PATH   # the corpus folder (default ../shared/corpus)

Each page that holds a ground-truth table goes through ``pixtract.local.transcribe`` as a
``local`` run would do it (default OCR options). Two figures per ground-truth cell (its text,
spaces collapsed): *exact*, the text is one cell of a Markdown table of that page; *present*,
the text occurs anywhere in the page's Markdown (table syntax and emphasis removed). CPU per
page is this process's plus its children's (Tesseract on pictures). Results in
bench/results/tables.json.
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import log, write_result  # noqa: E402

from pixtract import local  # noqa: E402
from pixtract.discover import identify  # noqa: E402
from pixtract.records import RenderSettings  # noqa: E402
from pixtract.render import render_page  # noqa: E402

S = RenderSettings()


def norm(text: str) -> str:
    return " ".join(text.replace("*", "").split())


def truth(xml: Path) -> dict[int, list[str]]:
    """Ground-truth cell texts by page (1-based)."""
    out: dict[int, list[str]] = defaultdict(list)
    for region in ET.parse(xml).iter("region"):
        page = int(region.get("page"))
        for cell in region.iter("cell"):
            text = norm(cell.findtext("content") or "")
            if text:
                out[page].append(text)
    return out


def md_cells(md: str) -> set[str]:
    cells = set()
    for line in md.splitlines():
        line = line.strip()
        if line.startswith("|") and not re.fullmatch(r"\|[-:| ]+\|", line):
            cells.update(norm(c.replace("<br>", " ")) for c in line.strip("|").split("|"))
    return cells


def cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--match", default="", help="only documents whose name holds this")
    args = ap.parse_args()
    base = args.corpus.resolve() / "icdar2013_table_competition"
    docs = [x for x in sorted(base.glob("*/*-str.xml")) if args.match in x.name][: args.limit or None]
    cells = exact = present = pages = 0
    page_cpu: list[float] = []
    per_doc = []
    for xml in docs:
        pdf = xml.with_name(xml.name.replace("-str.xml", ".pdf"))
        doc = identify(str(pdf))
        if getattr(doc, "kind", None) != "pdf":
            log(f"{pdf.name}: skipped ({getattr(doc, 'error', 'not a PDF')})")
            continue
        running = local.document_running_lines(doc)
        d_cells = d_exact = d_present = 0
        for number, want in sorted(truth(xml).items()):
            t0 = cpu()
            md = local.transcribe(render_page(doc, number, S), S, running).markdown
            page_cpu.append((cpu() - t0) * 1000)
            have, flat = md_cells(md), norm(md.replace("|", " ").replace("<br>", " "))
            d_cells += len(want)
            d_exact += sum(c in have for c in want)
            d_present += sum(c in flat for c in want)
            pages += 1
        per_doc.append({"doc": pdf.name, "cells": d_cells, "exact": d_exact, "present": d_present})
        cells, exact, present = cells + d_cells, exact + d_exact, present + d_present
        log(f"{pdf.name}: {d_exact}/{d_cells} exact, {d_present}/{d_cells} present")
    page_cpu.sort()
    res = {
        "documents": len(per_doc), "pages": pages, "cells": cells,
        "exact": round(exact / cells, 4), "present": round(present / cells, 4),
        "cpu_ms_per_page_mean": round(sum(page_cpu) / len(page_cpu), 1),
        "cpu_ms_per_page_median": round(page_cpu[len(page_cpu) // 2], 1),
        "per_document": per_doc,
    }
    log(f"{len(per_doc)} documents, {pages} pages, {cells} cells: exact {res['exact']:.1%}, present "
        f"{res['present']:.1%}; CPU {res['cpu_ms_per_page_mean']} ms/page mean, {res['cpu_ms_per_page_median']} median")
    write_result("tables", res)


if __name__ == "__main__":
    main()
