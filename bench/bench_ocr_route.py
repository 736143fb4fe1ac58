"""Benchmark 9: dollars per 1,000 pages for ``transcribe``, the OCR route (Mistral's /v1/ocr,
``--route ocr``) against live Pixtral Large 2411, at the seed prices of the catalogue
(pipeline/providers/catalog.py: Pixtral $2/M input, $6/M output; mistral-ocr-latest $4 per 1,000
pages).

Both are measured the same way: ``pixtract run`` in a subprocess against the emulator in its own
process, on the generated document, and the dollars are what the run's records say it paid
(``cost_usd``: the emulator bills Pixtral's tokens with mistral_common and the OCR endpoint's
pages). Pixtral's output is the emulator's transcript, as long as the page's text layer. Batch
prices are not measured here: they are the vendor's stated 50 % of the live price, shown beside.

    python bench/bench_ocr_route.py [--pages 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, EmulatorProcess, generated_pdf, log, run_pixtract, write_result  # noqa: E402

BATCH_DISCOUNT = 0.5  # "a 50% discount on batch API" (Mistral's batch docs, snapshot 2026-08-21)
ROUTES = {"pixtral (live)": [], "ocr route (live)": ["--route", "ocr"]}


def run(pages: int = 20, results_dir: Path | None = None, work: Path | None = None) -> dict:
    work = Path(work or WORK)
    pdf = generated_pdf(max(pages, 1), work)
    rows = []
    with EmulatorProcess(log_bodies=False) as emu:
        for name, extra in ROUTES.items():
            emu.reset()
            res = run_pixtract([pdf], work / "ocr_route" / name.split()[0], emu, concurrency=2, profile="mistral",
                               extra=["--no-cache", *extra], work=work)
            o = res["outputs"]
            answered = o["ok"]
            per_1000 = o["cost_usd"] / max(answered, 1) * 1000
            rows.append({"route": name, "pages": answered, "failed": o["failed"], "by_route": o["by_route"],
                         "input_tokens": o["input_tokens"], "output_tokens": o["output_tokens"],
                         "cost_usd": o["cost_usd"], "usd_per_1000_pages": round(per_1000, 3),
                         "batch_usd_per_1000_pages": round(per_1000 * BATCH_DISCOUNT, 3),
                         "wall_s": round(res.get("wall_s", 0.0), 1)})
    pixtral, ocr = rows[0]["usd_per_1000_pages"], rows[1]["usd_per_1000_pages"]
    out = {"pages": pages, "document": pdf.name, "rows": rows,
           "ocr_share_of_pixtral": round(ocr / pixtral, 3) if pixtral else None,
           "batch_discount": BATCH_DISCOUNT}
    log(f"transcribe, dollars per 1,000 pages ({pdf.name}, {pages} pages; seed prices)")
    log(f"  {'route':18s} {'pages':>5s} {'in tok':>9s} {'out tok':>9s} {'$ / 1k pages':>12s} {'batch (computed)':>16s}")
    for r in rows:
        log(f"  {r['route']:18s} {r['pages']:5d} {r['input_tokens']:9,d} {r['output_tokens']:9,d} "
            f"{r['usd_per_1000_pages']:12.2f} {r['batch_usd_per_1000_pages']:16.2f}")
    write_result("ocr_route_cost", out, results_dir)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=20, help="pages of the generated document")
    ap.add_argument("--results", type=Path, default=None)
    a = ap.parse_args(argv)
    return run(a.pages, a.results)


if __name__ == "__main__":
    main()
