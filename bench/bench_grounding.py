"""Grounding: are answers located on the right page and line, table cells in the right place,
at what CPU per page; and how fast does a report of many pages load in headless Chromium.

    python bench/bench_grounding.py                     # everything (a few minutes on 2 cores)
    python bench/bench_grounding.py --only nda,report --report-pages 500
    python bench/bench_grounding.py --corpus PATH       # the corpus folder (default ../shared/corpus)

Figures:
- nda: the Kleister NDA ground-truth values (parties, effective date, jurisdiction, term) given to
  the grounding step as if a model had answered them (an ``extract`` answer over the whole
  document). The reference place of a value is found independently of pixtract.grounding: the
  text-layer lines that contain it as printed (letters and digits compared, case ignored; a
  date as any date expression on the line that dateutil reads as the same day). A value counts
  as located right when the grounding's first box overlaps such a line on the same page.
  Values printed nowhere as given ("3 years" for "three (3) years") are counted apart.
- icdar: the ICDAR 2013 table PDFs through the local engine (pymupdf4llm's Markdown tables),
  then grounded; a ground-truth cell counts as matched when a grounded table cell has the same
  text (letters and digits) and its box overlaps the truth's box by IoU >= 0.5.
  Spans: of the matched truth cells, those spanning several rows or columns that got the same
  span, and single cells given a span.
- ocr: scanned pages (the zerox samples with expected keywords and linn.pdf under
  fixtures/real) answered by the local engine through a Router, which keeps their OCR words;
  each page's expected keywords given to the grounding step as one ``extract`` answer. Located
  share over the pages whose words came from OCR, and among the keywords the OCR text holds at all (letters and digits compared),
  which separates what OCR missed from what grounding missed; linn.pdf's reference text
  (OCRmyPDF's linn.txt) given as a transcription: share of its blocks located.
- cpu: CPU ms per page of ``ground_record`` alone (nda: extraction values; icdar: transcriptions
  with tables).
- words: what the words add to the render pass on the NDA pages (dense text): the text layer
  alone against text layer plus words from the same text page, and their pickling round trip
  (the pipe from a MuPDF worker).
- report: build and load time of a generated run of N pages (grounded extract answers, thumbnail
  and page-image files) in headless Chromium: build_report seconds, file size, time to the load
  event, and a click on a field until its box is highlighted.
Results in bench/results/grounding.json.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import log, write_result  # noqa: E402

from pixtract import grounding, local  # noqa: E402
from pixtract.discover import identify  # noqa: E402
from pixtract.records import PageWords, Record, RenderSettings  # noqa: E402
from pixtract.render import count_pages, render_page  # noqa: E402

S = RenderSettings()
DATE_EXPR = re.compile(
    r"(?:\d{1,2}(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?[A-Za-z]+\.?,?\s+\d{4})"
    r"|(?:[A-Za-z]+\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})"
    r"|(?:\d{1,2}/\d{1,2}/\d{2,4})")


def squash(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.casefold())


def cpu() -> float:
    return time.process_time()


# --------------------------------------------------------------------------- Kleister NDA

def _lines(pw: PageWords) -> dict[int, tuple[str, float, float]]:
    """line id -> (text, top, bottom) of a page's words."""
    out: dict[int, list] = {}
    for w in pw.words:
        e = out.setdefault(w.line, ["", w.y0, w.y1])
        e[0] += " " + w.text
        e[1], e[2] = min(e[1], w.y0), max(e[2], w.y1)
    return {k: (v[0].strip(), v[1], v[2]) for k, v in out.items()}


def _same_day(expr: str, iso: str) -> bool:
    from dateutil import parser

    try:
        return parser.parse(expr.replace("day of", ""), fuzzy=True).date().isoformat() == iso
    except (ValueError, OverflowError):
        return False


def reference_places(key: str, value: str, pages: dict[int, PageWords]) -> list[tuple[int, float, float]]:
    """(page, top, bottom) of the lines where ``value`` is printed (a line and the next, for a
    value broken across two lines)."""
    places = []
    want = squash(value)
    for n, pw in pages.items():
        lines = list(_lines(pw).values())
        for i, (text, top, bottom) in enumerate(lines):
            if key == "effective_date":
                if any(_same_day(m, value) for m in DATE_EXPR.findall(text)):
                    places.append((n, top, bottom))
                continue
            if want and want in squash(text):
                places.append((n, top, bottom))
            elif want and i + 1 < len(lines) and want in squash(text + " " + lines[i + 1][0]) \
                    and squash(text) and not squash(text).endswith(want):
                places.append((n, top, lines[i + 1][2]))
    return places


def bench_nda(corpus: Path, limit: int) -> dict:
    folder = corpus / "kleister_nda_dev_sample"
    if not folder.exists():
        folder = ROOT / "fixtures" / "real" / "kleister_nda"
    expected = json.loads((folder / "expected.json").read_text())["items"][:limit]
    per_key: dict[str, dict[str, int]] = {}
    ground_cpu = pages_total = 0.0
    misses = []
    for item in expected:
        path = folder / "documents" / item["file"] if (folder / "documents").exists() else folder / item["file"]
        doc = identify(str(path))
        n = count_pages(doc)
        words = {i: render_page(doc, i, S).words for i in range(1, n + 1)}
        pages_total += n
        data = {k: v for k, v in item["expected"].items()}
        rec = Record(document=doc.path, sha256=doc.sha256, page=None, task="extract", route="vision",
                     status="ok", data=data, scope="document", pages=list(words))
        t = cpu()
        g = grounding.ground_record(rec, words)
        ground_cpu += cpu() - t
        for it in g["items"]:
            key = it["path"].split(".")[1].split("[")[0]
            value = it["value"]
            s = per_key.setdefault(key, {"values": 0, "printed": 0, "right": 0, "located_not_printed": 0})
            s["values"] += 1
            refs = reference_places(key, value, words)
            if not refs:
                s["located_not_printed"] += bool(it["located"])
                continue
            s["printed"] += 1
            box = (it["boxes"] or [None])[0]
            right = box is not None and any(p == it["page"] and box[1] < bottom and box[3] > top
                                            for p, top, bottom in refs)
            s["right"] += right
            if not right:
                misses.append({"file": item["file"], "key": key, "value": value, "found": it.get("match"),
                               "page": it.get("page")})
    for s in per_key.values():
        s["share_right"] = round(s["right"] / s["printed"], 3) if s["printed"] else None
    printed = sum(s["printed"] for s in per_key.values())
    right = sum(s["right"] for s in per_key.values())
    return {"documents": len(expected), "pages": int(pages_total), "by_key": per_key,
            "share_right_all_printed": round(right / printed, 3) if printed else None,
            "ground_cpu_ms_per_page": round(1000 * ground_cpu / max(pages_total, 1), 2),
            "misses": misses[:30]}


def bench_words(corpus: Path, limit: int) -> dict:
    """What the words cost in the render pass, per page: the text layer alone against the text
    layer plus words (one text page for both), and the words' trip through the worker pipe."""
    import pickle

    import pymupdf

    from pixtract import mupdf

    folder = corpus / "kleister_nda_dev_sample" / "documents"
    pdfs = sorted(folder.glob("*.pdf"))[:limit] if folder.exists() else \
        [ROOT / "fixtures" / "real" / "kleister_nda" / "nda_jda_compuware.pdf"]
    text_only = with_words = pipe = 0.0
    pages = words = 0
    for pdf_path in pdfs:
        doc = identify(str(pdf_path))
        with mupdf.open_pdf(doc) as pdf:
            for i in range(pdf.page_count):
                dl = mupdf.display_list(pdf.load_page(i), "bench")
                t = cpu()
                tp = pymupdf.TextPage(dl.get_textpage(mupdf._TEXT_FLAGS))
                mupdf._blocks_text(tp.extractBLOCKS(), pymupdf.Identity, dl.rect)
                text_only += cpu() - t
                t = cpu()
                _, _, ws = mupdf.text_images_words(dl)
                with_words += cpu() - t
                pw = PageWords(1, 1, "pt", 0, "text-layer", ws)
                t = cpu()
                pickle.loads(pickle.dumps(pw, protocol=5))
                pipe += cpu() - t
                pages += 1
                words += len(ws)
        mupdf.forget(doc)
    return {"pages": pages, "words_per_page": round(words / max(pages, 1)),
            "text_layer_ms_per_page": round(1000 * text_only / max(pages, 1), 2),
            "text_layer_and_words_ms_per_page": round(1000 * with_words / max(pages, 1), 2),
            "words_through_the_pipe_ms_per_page": round(1000 * pipe / max(pages, 1), 2)}


# --------------------------------------------------------------------------- ICDAR 2013 tables

def _truth_cells(xml: Path, page_heights: dict[int, float]) -> list[dict]:
    cells = []
    for table in ET.parse(xml).getroot().iter("table"):
        for region in table.iter("region"):
            page = int(region.get("page"))
            h = page_heights.get(page)
            if h is None:
                continue
            for c in region.iter("cell"):
                bb = c.find("bounding-box")
                text = c.findtext("content") or ""
                if bb is None or not squash(text):
                    continue
                try:
                    x1, x2, y1, y2 = (float(bb.get(k)) for k in ("x1", "x2", "y1", "y2"))
                except (TypeError, ValueError):  # a typo in the ground truth ("26ß"): left out
                    continue
                span = [int(c.get(f"end-{k}") or c.get(f"start-{k}") or 0) - int(c.get(f"start-{k}") or 0) + 1
                        for k in ("row", "col")]
                cells.append({"page": page, "text": text, "box": [x1, h - y2, x2, h - y1], "span": span})
    return cells


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def bench_icdar(corpus: Path, limit: int) -> dict:
    folder = corpus / "icdar2013_table_competition"
    pdfs = sorted(folder.glob("competition-dataset-*/*.pdf"))[:limit] if folder.exists() else \
        [ROOT / "fixtures" / "real" / "eu-005.pdf"]
    truth_n = matched = found_tables = pages_n = 0
    spans = dict.fromkeys(("truth_spanning", "spanning_right", "spanning_some_span", "truth_single",
                           "single_given_a_span"), 0)
    ground_cpu = 0.0
    per_doc = {}
    for pdf in pdfs:
        doc = identify(str(pdf))
        xml = pdf.with_name(pdf.stem + "-str.xml")
        table_pages = sorted({int(r.get("page")) for r in ET.parse(xml).getroot().iter("region")})
        heights, cells = {}, []
        for n in table_pages:
            if n > count_pages(doc):
                continue
            page = render_page(doc, n, S)
            heights[n] = page.words.height
            ans = local.transcribe(page, S)
            rec = Record(document=doc.path, sha256=doc.sha256, page=n, task="transcribe", route="local-text",
                         status="ok", answer=ans.markdown)
            t = cpu()
            g = grounding.ground_record(rec, {n: page.words})
            ground_cpu += cpu() - t
            pages_n += 1
            for table in g.get("tables", []):
                found_tables += 1
                cells += [dict(c, page=c["page"]) for c in table["cells"] if c["box"]]
        truth = _truth_cells(xml, heights)
        hit = 0
        for tc in truth:
            same = next((c for c in cells if c["page"] == tc["page"] and squash(c["text"]) == squash(tc["text"])
                         and _iou(c["box"], tc["box"]) >= 0.5), None)
            hit += same is not None
            if same is not None:  # spans: the truth's against the grounded cell's (row, column)
                got = [same["row_span"], same["col_span"]]
                spans["truth_spanning" if tc["span"] != [1, 1] else "truth_single"] += 1
                if tc["span"] != [1, 1]:
                    spans["spanning_right"] += got == tc["span"]
                    spans["spanning_some_span"] += got != [1, 1]
                else:
                    spans["single_given_a_span"] += got != [1, 1]
        truth_n += len(truth)
        matched += hit
        per_doc[pdf.name] = {"truth_cells": len(truth), "matched": hit}
    return {"documents": len(pdfs), "table_pages": pages_n, "markdown_tables": found_tables,
            "truth_cells": truth_n, "matched": matched,
            "share_matched": round(matched / truth_n, 3) if truth_n else None,
            "spans_of_matched_cells": spans,
            "ground_cpu_ms_per_page": round(1000 * ground_cpu / max(pages_n, 1), 2), "per_document": per_doc}


# --------------------------------------------------------------------------- scans: OCR words

def bench_ocr_words() -> dict:
    import threading

    from pixtract.config import RunConfig
    from pixtract.discover import discover
    from pixtract.plan import plan_document
    from pixtract.route import Router

    real = ROOT / "fixtures" / "real"
    cases = [(p, json.loads(p.read_text())["expectedKeywords"]) for p in sorted(real.glob("zerox_*.keywords.json"))]
    cases = [(next(f for ext in (".png", ".pdf") if (f := real / p.name.replace(".keywords.json", ext)).exists()), kw)
             for p, kw in cases]
    cases.append((real / "linn.pdf", None))
    kept: dict[tuple[str, int], PageWords] = {}
    cfg = RunConfig(inputs=[str(p) for p, _ in cases], out=tempfile.mkdtemp(), cache=False)
    router = Router(cfg, stop=threading.Event(),
                    on_words=lambda page, words: kept.__setitem__((page.document.path, page.number), words))
    rows, total = [], {"keywords": 0, "in_ocr_text": 0, "located": 0, "located_of_in_ocr_text": 0}
    ground_cpu = 0.0
    for path, keywords in cases:
        doc = next(iter(discover([str(path)])))
        plan = plan_document(doc, cfg)
        for n in range(1, plan.pages + 1):
            recs = router.answer_page(plan, n)
            words = kept.get((doc.path, n))
            if words is None or not words.words:
                rows.append({"page": f"{path.name} p{n}", "words": "none"})
                continue
            text = squash(" ".join(w.text for w in words.words))
            if keywords is None:  # linn.pdf: its reference text as the transcription
                rec = Record(document=doc.path, sha256=doc.sha256, page=n, task="transcribe", route="local",
                             status="ok", answer=(real / "linn.txt").read_text(encoding="utf-8"))
                g = grounding.ground_record(rec, {n: words})
                rows.append({"page": f"{path.name} p{n}", "words": words.source, "blocks": g["total"],
                             "located": g["located"], "share": g["share"]})
                continue
            kw = keywords[n - 1] if n - 1 < len(keywords) else []
            rec = Record(document=doc.path, sha256=doc.sha256, page=n, task="extract", route="local", status="ok",
                         data={f"k{i}": k for i, k in enumerate(kw)})
            t = cpu()
            g = grounding.ground_record(rec, {n: words})
            ground_cpu += cpu() - t
            items = g["items"]
            in_text = [bool(squash(k)) and squash(k) in text for k in kw]
            row = {"page": f"{path.name} p{n}", "words": words.source, "keywords": len(kw),
                   "in_ocr_text": sum(in_text), "located": sum(1 for it in items if it["located"]),
                   "located_of_in_ocr_text": sum(1 for it, ok in zip(items, in_text) if ok and it["located"]),
                   "route": recs[0].route if recs else None}
            rows.append(row)
            if words.source == "ocr":  # a page with a text layer (zerox_0013.pdf) is not what this measures
                for k in total:
                    total[k] += row[k]
    pages = sum(1 for r in rows if "keywords" in r)
    return {"pages": rows, **total,
            "share_located": round(total["located"] / total["keywords"], 3) if total["keywords"] else None,
            "share_located_of_in_ocr_text": round(total["located_of_in_ocr_text"] / total["in_ocr_text"], 3)
            if total["in_ocr_text"] else None,
            "ground_cpu_ms_per_page": round(1000 * ground_cpu / max(pages, 1), 2)}


# --------------------------------------------------------------------------- report load

def _make_run(out: Path, pages: int, fields: int = 20) -> None:
    from PIL import Image, ImageDraw

    from pixtract.layout import page_image_name
    from pixtract.report import make_thumbnail, save_thumbnail

    im = Image.new("RGB", (791, 1024), "white")
    d = ImageDraw.Draw(im)
    for y in range(80, 980, 24):
        d.rectangle([60, y, 700, y + 10], fill=(150, 150, 150))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    png = buf.getvalue()
    thumb = make_thumbnail(png)
    out.mkdir(parents=True)
    (out / "pages").mkdir()
    docs = max(1, pages // 25)
    sha = lambda i: f"{i:064x}"  # noqa: E731
    with open(out / "results.jsonl", "w") as f:
        for k in range(pages):
            di, page = k % docs, k // docs + 1
            items = [{"kind": "field", "path": f"$.f{j}", "value": f"value {j}", "located": j % 7 != 6, "page": page,
                      "boxes": [[60.0, 40.0 + 24 * j, 300.0, 50.0 + 24 * j]] if j % 7 != 6 else [],
                      "match": f"value {j}", "score": 1.0} for j in range(fields)]
            r = {"document": f"doc{di}.pdf", "sha256": sha(di), "page": page, "task": "extract", "route": "vision",
                 "status": "ok", "answer": "{}", "data": {f"f{j}": f"value {j}" for j in range(fields)},
                 "usage": {"input_tokens": 1500, "output_tokens": 200}, "cost_usd": 0.004, "latency_ms": 1500,
                 "image": {"width": 791, "height": 1024, "bytes": len(png), "mime": "image/png"}, "flags": [],
                 "grounding": {"located": sum(i["located"] for i in items), "total": fields, "words": "text-layer", "unit": "pt",
                               "sizes": {str(page): [612.0, 792.0]}, "items": items}}
            f.write(json.dumps(r) + "\n")
            save_thumbnail(str(out), sha(di), page, thumb)
            (out / page_image_name(sha(di), page, "image/png")).write_bytes(png)


def bench_report(pages: int, fields: int = 20) -> dict:
    sys.path.insert(0, str(ROOT))
    from pixtract.report import build_report
    from tests.report_browser import Browser, find_chromium

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        _make_run(out, pages, fields)
        t = time.perf_counter()
        path = build_report(str(out))
        build_s = time.perf_counter() - t
        size = Path(path).stat().st_size
        exe = find_chromium()
        if not exe:
            return {"pages": pages, "build_s": round(build_s, 2), "html_mb": round(size / 1e6, 1),
                    "browser": "unmeasured: no Chromium"}
        with Browser(exe, width=1280, height=900, timeout=120) as b:
            b.goto("about:blank")
            t = time.perf_counter()
            b.goto(Path(path).as_uri())  # returns at the load event
            load_s = time.perf_counter() - t
            nav = b.eval("JSON.stringify(performance.getEntriesByType('navigation')[0].toJSON())")
            nav = json.loads(nav)
            card = "#d1-p%d" % min(10, pages // max(1, pages // 25))
            click_ms = None
            if fields:
                t = time.perf_counter()
                b.eval(f"document.querySelector('{card}').scrollIntoView()")
                b.click(f"{card} .gi[data-g]")
                assert b.eval("document.querySelectorAll('.bx.hl').length") == 1
                click_ms = round((time.perf_counter() - t) * 1000, 1)
            t = time.perf_counter()
            b.click(f"{card} .thumb .sheet")
            b.eval("document.querySelector('#viewer img').decode()")
            viewer_ms = (time.perf_counter() - t) * 1000
            heap = b.eval("performance.memory ? performance.memory.usedJSHeapSize : null")
    return {"pages": pages, "fields_per_page": fields, "build_s": round(build_s, 2), "html_mb": round(size / 1e6, 1),
            "load_event_s": round(load_s, 2), "dom_content_loaded_s": round(nav["domContentLoadedEventEnd"] / 1000, 2),
            "click_to_highlight_ms": click_ms, "open_viewer_ms": round(viewer_ms, 1),
            "js_heap_mb": round(heap / 1e6, 1) if heap else None}


SECTIONS = ("nda", "words", "icdar", "ocr", "report")


def kept_sections(rerun: list[str]) -> dict:
    """The sections of the last saved run that this partial run does not measure again, so that
    ``--only report`` does not wipe the NDA, ICDAR and OCR figures from grounding.json."""
    import common

    try:
        previous = json.loads((Path(common.RESULTS) / "grounding.json").read_text())
    except (OSError, ValueError):
        return {}
    own = ("benchmark", "finished", "machine", "targets", "corpus", "rerun_sections")
    return {k: v for k, v in previous.items()
            if k not in own and not any(k == s or k.startswith(s + "_") for s in rerun)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help="sections to measure; the others keep their last saved figures")
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--nda-docs", type=int, default=20)
    ap.add_argument("--icdar-docs", type=int, default=67)
    ap.add_argument("--report-pages", type=int, default=2500)
    a = ap.parse_args(argv)
    corpus = Path(a.corpus)
    only = a.only.split(",")
    partial = set(only) != set(SECTIONS)
    result: dict = {**(kept_sections(only) if partial else {}),
                    "corpus": "shared corpus" if corpus.exists() else "fixtures only"}
    if partial:
        result["rerun_sections"] = only  # the others are from an earlier run
    if "nda" in only:
        log("== Kleister NDA: ground-truth values on the right page and line")
        result["nda"] = bench_nda(corpus, a.nda_docs)
        log(json.dumps({k: v for k, v in result["nda"].items() if k != "misses"}, indent=1))
    if "words" in only:
        log("== what the words cost in the render pass (NDA pages, dense text)")
        result["words"] = bench_words(corpus, a.nda_docs)
        log(json.dumps(result["words"], indent=1))
    if "icdar" in only:
        log("== ICDAR 2013: table cells located against the ground truth's cell boxes")
        result["icdar"] = bench_icdar(corpus, a.icdar_docs)
        log(json.dumps({k: v for k, v in result["icdar"].items() if k != "per_document"}, indent=1))
    if "ocr" in only:
        log("== scanned pages: expected keywords located on OCR words")
        result["ocr"] = bench_ocr_words()
        log(json.dumps(result["ocr"], indent=1))
    if "report" in only:
        log(f"== report of {a.report_pages} pages in headless Chromium")
        result["report"] = bench_report(a.report_pages)
        log(json.dumps(result["report"], indent=1))
        log(f"== the same {a.report_pages} pages without grounded items (what the grounding markup costs)")
        result["report_no_grounding"] = bench_report(a.report_pages, fields=0)
        log(json.dumps(result["report_no_grounding"], indent=1))
    nda = result.get("nda", {}).get("by_key", {})
    result["targets"] = {
        f"nda {k} right page+line >= 0.95": {"measured": nda[k]["share_right"],
                                              "met": None if nda[k]["share_right"] is None else nda[k]["share_right"] >= 0.95}
        for k in ("party", "effective_date") if k in nda}
    write_result("grounding", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
