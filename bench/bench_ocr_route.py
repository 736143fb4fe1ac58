"""Benchmark 9: dollars per 1,000 pages for ``transcribe``, the OCR route (Mistral's /v1/ocr,
``--route ocr``) against live Pixtral Large 2411, at the seed prices of the catalogue
(pipeline/providers/catalog.py: Pixtral $2/M input, $6/M output; mistral-ocr-latest $4 per 1,000
pages).

Both are measured the same way: ``pixtract run`` in a subprocess against the emulator in its own
process, on the generated document, and the dollars are what the run's records say it paid
(``cost_usd``: the emulator bills Pixtral's tokens with mistral_common and the OCR endpoint's
pages). Pixtral's output is the emulator's transcript, as long as the page's text layer. Batch
prices are not measured here: they are the vendor's stated 50 % of the live price, shown beside.

    python bench/bench_ocr_route.py [--pages 20] [--library]

``--library`` runs both through ``pixtract.run`` (the same engine without Prefect's start-up; the
smoke test's quick form) instead of ``pixtract run``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (PY, VISION_MODEL, WORK, FAKE_KEY, EmulatorProcess, _quiet_env, generated_pdf, log,  # noqa: E402
                    pixtract_outputs, run_measured, run_pixtract, write_result)

BATCH_DISCOUNT = 0.5  # "a 50% discount on batch API" (Mistral's batch docs, snapshot 2026-08-21)
ROUTES = {"pixtral (live)": "vision", "ocr route (live)": "ocr"}
_LIBRARY_RUN = ("import sys, pixtract; a = sys.argv; r = pixtract.run(a[1], out=a[2], profile='mistral', route=a[4], "
                "cache=False, review_dpi=0, concurrency=2, endpoint={'base_url': a[3], 'vision_model': a[5]}); "
                "sys.exit(0 if r.exit_code in (0, 1) else r.exit_code)")


def run(pages: int = 20, results_dir: Path | None = None, work: Path | None = None, library: bool = False) -> dict:
    work = Path(work or WORK)
    pdf = generated_pdf(max(pages, 1), work)
    rows = []
    with EmulatorProcess(log_bodies=False) as emu:
        for name, route in ROUTES.items():
            emu.reset()
            out = work / "ocr_route" / name.split()[0]
            if library:
                shutil.rmtree(out, ignore_errors=True)  # as run_pixtract does: every run starts afresh
                cmd = [PY, "-c", _LIBRARY_RUN, str(pdf), str(out), emu.base_url("mistral"), route, VISION_MODEL]
                res = run_measured(cmd, env=_quiet_env(MISTRAL_API_KEY=FAKE_KEY), timeout=900,
                                   stdout_path=work / f"ocr-route-{route}.log")
                res["outputs"] = pixtract_outputs(out)
            else:
                res = run_pixtract([pdf], out, emu, concurrency=2, profile="mistral",
                                   extra=["--no-cache", "--route", route], work=work)
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
    ap.add_argument("--library", action="store_true", help="run through pixtract.run, without Prefect (quick)")
    a = ap.parse_args(argv)
    return run(a.pages, a.results, library=a.library)


if __name__ == "__main__":
    main()
