"""The local engine's accuracy and CPU per page, Tesseract against RapidOCR, on the shared corpus.

    python bench/bench_ocr.py                      # zerox recall, linn CER, rotated scans
    python bench/bench_ocr.py --only zerox --engines rapidocr
    python bench/bench_ocr.py --corpus PATH        # the corpus folder (default ../shared/corpus)

Figures, all through ``pixtract.local.transcribe`` as a ``local`` run would do them:
- zerox: expected-keyword recall over the 20 zerox samples (a keyword counts when it occurs in
  the page's Markdown, case and spacing ignored), CPU ms per page (this process + Tesseract);
- linn: character error rate of linn.pdf's OCR against OCRmyPDF's linn.txt;
- rotated: the rotation found and the share of expected words read on the turned scans.
Runs one page at a time (the machine is shared); results in bench/results/ocr.json.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import log, write_result  # noqa: E402

from pixtract import local, ocr  # noqa: E402
from pixtract.discover import identify  # noqa: E402
from pixtract.records import RenderSettings  # noqa: E402
from pixtract.render import render_page  # noqa: E402

S = RenderSettings()
# Rotated scans and the words that show the text came out upright.
ROTATED = {
    "zerox_doc2md_sample/inputs/0019.png": None,  # keywords from test.json
    "ocrmypdf_test_resources/cardinal.pdf": None,
    "ocrmypdf_test_resources/rotated_skew.pdf": None,
}


def options_for(engine: str, **kw) -> ocr.OcrOptions:
    """"tesseract-noupright" is the local engine as it was before the upright check."""
    name, _, variant = engine.partition("-")
    return ocr.OcrOptions(engine=name, upright=variant != "noupright", **kw)


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def squash(s: str) -> str:
    return re.sub(r"\s+", "", s).casefold()


def run_pages(path: Path, options: ocr.OcrOptions) -> list[tuple[local.LocalAnswer, float]]:
    doc = identify(str(path))
    running = local.document_running_lines(doc)
    out = []
    n = 1
    while True:
        try:
            page = render_page(doc, n, S)
        except Exception:
            break
        t0 = cpu_seconds()
        ans = local.transcribe(page, S, running, options=options)
        out.append((ans, (cpu_seconds() - t0) * 1000))
        n += 1
        if doc.kind != "pdf":
            break
    return out


def bench_zerox(corpus: Path, engine: str) -> dict:
    base = corpus / "zerox_doc2md_sample"
    tests = json.loads((base / "test.json").read_text())
    opts = options_for(engine)
    rows, found_all, total_all, ocr_ms, ocr_pages = [], 0, 0, 0.0, 0
    for t in tests:
        answers = run_pages(base / "inputs" / t["file"], opts)
        text = squash("\n".join(a.markdown for a, _ in answers))
        kws = [k for page in t["expectedKeywords"] for k in page]
        found = sum(1 for k in kws if squash(k) in text)
        found_all += found
        total_all += len(kws)
        for a, ms in answers:
            if a.route == "local-ocr":
                ocr_ms += ms
                ocr_pages += 1
        rows.append({"file": t["file"], "keywords": len(kws), "found": found,
                     "routes": sorted({a.route for a, _ in answers}),
                     "rotation": [a.rotation for a, _ in answers],
                     "cpu_ms": round(sum(ms for _, ms in answers))})
        log(f"  {engine:9s} {t['file']}: {found}/{len(kws)}  {rows[-1]['cpu_ms']} ms  {rows[-1]['routes']}")
    return {"recall": round(found_all / total_all, 4), "found": found_all, "keywords": total_all,
            "ocr_pages": ocr_pages, "ocr_cpu_ms_per_page": round(ocr_ms / max(ocr_pages, 1)), "files": rows}


def cer(ref: str, hyp: str) -> float:
    """Character error rate on whitespace-normalised text (Levenshtein / reference length)."""
    a, b = " ".join(ref.split()), " ".join(hyp.split())
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1] / max(len(a), 1)


def plain(md: str) -> str:
    return re.sub(r"^[#>\-*\s]+|[*_`|]+", "", md, flags=re.M)


def bench_linn(corpus: Path, engine: str) -> dict:
    base = corpus / "ocrmypdf_test_resources"
    opts = options_for(engine, force=True)  # linn.pdf is a scan: no text layer anyway
    answers = run_pages(base / "linn.pdf", opts)
    hyp = plain("\n".join(a.markdown for a, _ in answers))
    value = cer((base / "linn.txt").read_text(), hyp)
    log(f"  {engine:9s} linn.pdf CER {value:.3f}")
    return {"cer": round(value, 4), "cpu_ms": round(sum(ms for _, ms in answers))}


def bench_rotated(corpus: Path, engine: str) -> dict:
    tests = {t["file"]: [k for p in t["expectedKeywords"] for k in p]
             for t in json.loads((corpus / "zerox_doc2md_sample/test.json").read_text())}
    out = {}
    for rel in ROTATED:
        path = corpus / rel
        answers = run_pages(path, options_for(engine))
        text = "\n".join(a.markdown for a, _ in answers)
        row = {"rotation": [a.rotation for a, _ in answers], "routes": [a.route for a, _ in answers],
               "cpu_ms": round(sum(ms for _, ms in answers))}
        if path.name in tests:
            kws = tests[path.name]
            row["keyword_recall"] = round(sum(1 for k in kws if squash(k) in squash(text)) / len(kws), 3)
        words = re.findall(r"[A-Za-z]{4,}", text)
        row["words"] = len(words)
        row["sample"] = " ".join(words[:12])
        out[rel] = row
        log(f"  {engine:9s} {rel}: {row}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--engines", default="tesseract,rapidocr",
                    help="comma-separated: rapidocr, tesseract, tesseract-noupright (as before the upright check)")
    ap.add_argument("--only", default="zerox,linn,rotated")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        log(f"corpus not found at {corpus}: pass --corpus")
        return 2
    steps = {"zerox": bench_zerox, "linn": bench_linn, "rotated": bench_rotated}
    result: dict = {}
    for engine in args.engines.split(","):
        for step in args.only.split(","):
            log(f"{step} / {engine}")
            t0 = time.time()
            result.setdefault(step, {})[engine] = steps[step](corpus, engine)
            result[step][engine]["wall_s"] = round(time.time() - t0, 1)
    path = ROOT / "bench" / "results" / "ocr.json"
    if path.exists():  # keep figures of steps or engines not run this time
        old = json.loads(path.read_text())
        for step, per in old.items():
            if step in steps:
                for engine, v in per.items():
                    result.setdefault(step, {}).setdefault(engine, v)
    write_result("ocr", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
