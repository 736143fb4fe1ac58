"""Chart detection precision and recall on labelled page regions from the shared corpus.

    python bench/bench_charts.py                 # all sources
    python bench/bench_charts.py --corpus PATH   # the corpus folder (default ../shared/corpus)

Regions come from three sources:
- labelled: bench/labels/chart_regions.json, regions of the ICDAR 2013 table PDFs and the zerox
  PDF samples judged by eye (charts; non-charts: tables, a map, flowcharts, a screenshot, logos,
  a photo, whole pages). Every page of those PDFs is searched; a region found where nothing is
  labelled counts as a false chart.
- vegalite-vector: each Vega-Lite chart of the corpus (its SVG) drawn as vector art on an A4 page
  between a paragraph and a "Figure N" caption; the label is the placed box.
- vegalite-raster: the same charts' PNGs placed as images.
A found region is a hit when its box overlaps a chart label with IoU >= 0.5; any other found
region is a false chart. Results in bench/results/charts.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import log, write_result  # noqa: E402

from pixtract.charts import find_chart_regions  # noqa: E402
from pixtract.discover import identify  # noqa: E402

LABELS = ROOT / "bench" / "labels" / "chart_regions.json"
PDF_SOURCES = ("icdar2013_table_competition/*/*.pdf", "zerox_doc2md_sample/inputs/*.pdf")
IOU = 0.5
TEXT = ("The figure below is reproduced from the Vega-Lite examples. It sits between body text and "
        "its caption, as a chart in a report would. ") * 3


def iou(a, b) -> float:
    ra, rb = pymupdf.Rect(a), pymupdf.Rect(b)
    union = abs(ra | rb)
    return abs(ra & rb) / union if union else 0.0


def vegalite_pages(corpus: Path, work: Path, raster: bool) -> list[dict]:
    """One PDF per chart: paragraph, chart (vector from its SVG, or its PNG), caption."""
    base = corpus / "vegalite_charts_with_data"
    out = []
    for n, spec in enumerate(sorted(base.glob("*/*/chart.svg")), 1):
        src = spec.with_name("chart.png") if raster else spec
        pdf = pymupdf.open()
        page = pdf.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(72, 60, 523, 140), TEXT, fontsize=10)
        if raster:
            with pymupdf.open(src) as img:
                w, h = img[0].rect.width, img[0].rect.height
        else:
            svg = pymupdf.open(src)
            vec = pymupdf.open("pdf", svg.convert_to_pdf())
            w, h = vec[0].rect.width, vec[0].rect.height
        scale = min(451 / w, 520 / h)  # the text width, as a figure in a report
        box = pymupdf.Rect(72, 160, 72 + w * scale, 160 + h * scale)
        if raster:
            page.insert_image(box, filename=str(src))
        else:
            page.show_pdf_page(box, vec, 0)
        page.insert_text((72, box.y1 + 24), f"Figure {n}: {spec.parent.name.replace('_', ' ')}", fontsize=10)
        page.insert_textbox(pymupdf.Rect(72, box.y1 + 40, 523, box.y1 + 120), TEXT, fontsize=10)
        path = work / f"{'png' if raster else 'svg'}_{spec.parent.name}.pdf"
        pdf.save(path)
        out.append({"doc": str(path), "page": 1, "bbox": list(box), "label": "chart", "name": spec.parent.name})
    return out


def score(source: str, labels: list[dict], pages: list[tuple[str, int]]) -> dict:
    """Search ``pages``; match what is found against ``labels`` (doc, page, bbox, label)."""
    by_page: dict[tuple[str, int], list[dict]] = {}
    for lab in labels:
        by_page.setdefault((lab["doc"], lab["page"]), []).append(lab)
    hits, false, found_ms = 0, [], []
    recalled: set[int] = set()
    for doc, page in pages:
        t0 = time.process_time()
        regions = find_chart_regions(identify(doc), page)
        found_ms.append((time.process_time() - t0) * 1000)
        labs = by_page.get((doc, page), [])
        for r in regions:
            best = max(labs, key=lambda lab: iou(r.bbox, lab["bbox"]), default=None)
            if best is not None and iou(r.bbox, best["bbox"]) >= IOU and best["label"] == "chart":
                hits += 1
                recalled.add(id(best))
            else:
                kind = best["label"] if best is not None and iou(r.bbox, best["bbox"]) >= IOU else "unlabelled"
                false.append({"doc": Path(doc).name, "page": page, "bbox": r.bbox, "label": kind})
    charts = [lab for lab in labels if lab["label"] == "chart"]
    missed = [{"doc": Path(lab["doc"]).name, "page": lab["page"], "bbox": lab["bbox"]} for lab in charts if id(lab) not in recalled]
    found = hits + len(false)
    res = {
        "source": source, "pages": len(pages), "chart_labels": len(charts),
        "non_chart_labels": dict(Counter(lab["label"] for lab in labels if lab["label"] != "chart")),
        "found": found, "hits": hits,
        "precision": round(hits / found, 3) if found else None,
        "recall": round((len(charts) - len(missed)) / len(charts), 3) if charts else None,
        "false_charts": false, "missed_charts": missed,
        "cpu_ms_per_page": round(sum(found_ms) / max(1, len(found_ms)), 1),
    }
    log(f"{source}: {res['pages']} pages, {len(charts)} charts, found {found}, precision {res['precision']}, "
        f"recall {res['recall']}, false {Counter(f['label'] for f in false)}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    args = ap.parse_args()
    corpus = args.corpus.resolve()
    labels = [dict(lab, doc=str(corpus / lab["doc"])) for lab in json.loads(LABELS.read_text())]
    pages = []
    for pattern in PDF_SOURCES:
        for path in sorted(corpus.glob(pattern)):
            with pymupdf.open(path) as pdf:
                pages += [(str(path), n) for n in range(1, pdf.page_count + 1)]
    results = [score("labelled", labels, pages)]
    with tempfile.TemporaryDirectory() as tmp:
        for raster in (False, True):
            vl = vegalite_pages(corpus, Path(tmp), raster)
            results.append(score("vegalite-raster" if raster else "vegalite-vector", vl, [(v["doc"], 1) for v in vl]))
    hits = sum(r["hits"] for r in results)
    found = sum(r["found"] for r in results)
    charts = sum(r["chart_labels"] for r in results)
    recalled = charts - sum(len(r["missed_charts"]) for r in results)
    total = {"precision": round(hits / found, 3), "recall": round(recalled / charts, 3), "charts": charts, "found": found}
    log(f"all: {charts} charts, found {found}, precision {total['precision']}, recall {total['recall']}")
    write_result("charts", {"iou": IOU, "total": total, "sources": results})


if __name__ == "__main__":
    main()
