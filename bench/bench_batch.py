"""Benchmark 9: batch mode (Mistral batch jobs). Dollars per 1,000 transcribed pages live and in
a batch job at the seed prices, and the wall clock from submit to collected for a batch in the
emulator with a configured processing delay.

Dollars: the same requests (the planner's, for the generated Letter document) priced by
pixtract's own tables: live $2 / $6 per million tokens, batch the catalogue's batch price (half,
derived: pipeline/providers/catalog.py). Input tokens are exact; output tokens are the
assumption of bench_cost.py (a transcript as long as the page's text layer). The emulator's
billed tokens of the measured batch are priced the same way, per 1,000 batch items (its answers
are shorter than a real transcript, so its output share is smaller). The generated document
repeats its 200 distinct pages, and identical requests go in a job once (they have the same
fingerprint), so a 1,000-page batch holds 200 items: the emulator bills 200, not 1,000.

Wall clock: ``pixtract run --batch`` in a subprocess (the night: plan, upload, create the job),
the job's processing delay in the emulator (``batch_delay``), then the same command again (the
morning: poll, download, write every answer). Prefect's ephemeral API, as the other benchmarks.

    python bench/bench_batch.py [--pages 1000] [--delay 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import (FAKE_KEY, PY, VISION_MODEL, EmulatorProcess, _quiet_env, generated_pdf, log,  # noqa: E402
                    prefect_home, run_measured, write_result)


def dollars(pages: int) -> dict:
    """$ per 1,000 transcribe pages, live and batch, for the planner's requests."""
    from pixtract import request_plan, tokens
    from pixtract.config import RunConfig, TaskSpec
    from pixtract.discover import discover
    from pixtract.prices import PriceTable
    from pixtract.records import RenderSettings
    from pixtract.render import render_page

    pdf = generated_pdf(max(pages, 1))
    doc = next(iter(discover([str(pdf)])))
    cfg = RunConfig(inputs=[str(pdf)], out="unused", profile="mistral")
    tin = tout = 0
    for n in range(1, pages + 1):
        page = render_page(doc, n, RenderSettings())
        req = request_plan.request(cfg, TaskSpec(), request_plan.page_part(page), model=VISION_MODEL)
        tin += tokens.estimate_prompt_tokens(req, VISION_MODEL)
        tout += tokens.count_text_tokens(page.text, VISION_MODEL)
    k = 1000.0 / pages
    live, batch = PriceTable().get(VISION_MODEL), PriceTable.for_job(None, [VISION_MODEL]).get(VISION_MODEL)
    assert (live.input_per_m, live.output_per_m) == (2.0, 6.0), live
    row = {"input_tokens_per_1000": round(tin * k), "output_tokens_per_1000": round(tout * k)}
    for name, p in (("live", live), ("batch", batch)):
        row[f"{name}_usd_per_1000"] = round((tin * p.input_per_m + tout * p.output_per_m) * k / 1e6, 3)
        row[f"{name}_price_per_million"] = {"input": p.input_per_m, "output": p.output_per_m}
    return row


_LIBRARY_RUN = ("import sys, pixtract; a = sys.argv; r = pixtract.run(a[1], out=a[2], profile='mistral', batch='on', "
                "review_dpi=0, endpoint={'base_url': a[3]}); sys.exit(r.exit_code)")


def wall_clock(pages: int, delay: float, work: Path, library: bool = False) -> dict:
    """Submit, wait for the emulated job, collect: seconds for each, and what the emulator billed.
    ``library``: both runs through ``pixtract.run`` (the same engine without Prefect; the smoke
    test's quick form), not ``pixtract run``."""
    from pixtract.prices import PriceTable
    from pixtract.providers import Endpoint
    from pixtract.providers.batchapi import TERMINAL, BatchAPI

    pdf = generated_pdf(pages, work)
    out = work / "batch-out"
    if out.exists():
        shutil.rmtree(out)
    with EmulatorProcess(batch_delay=delay) as emu:
        cmd = [PY, "-m", "pixtract.flows.cli", "run", str(pdf), "--out", str(out), "--profile", "mistral",
               "--base-url", emu.base_url("mistral"), "--batch", "--no-progress", "--review-dpi", "0"]
        if library:
            cmd = [PY, "-c", _LIBRARY_RUN, str(pdf), str(out), emu.base_url("mistral")]
        env = _quiet_env(PREFECT_HOME=prefect_home(work), MISTRAL_API_KEY=FAKE_KEY)
        t0 = time.perf_counter()
        night = run_measured(cmd, env=env, timeout=1800, stdout_path=work / "batch-night.log")
        submitted = time.perf_counter()
        assert night["rc"] == 4, f"the submit run should end PENDING (exit 4), got {night['rc']}"
        api = BatchAPI(Endpoint(profile="mistral", base_url=emu.base_url("mistral"), api_key=FAKE_KEY))
        manifest = json.loads((out / "manifest.json").read_text())
        job_id = manifest["batch"]["jobs"][0]["job_id"]
        while api.get_job(job_id)["status"] not in TERMINAL:
            time.sleep(0.2)
        done_at = time.perf_counter()
        morning = run_measured(cmd, env=env, timeout=1800, stdout_path=work / "batch-morning.log")
        collected = time.perf_counter()
        assert morning["rc"] == 0, f"the collect run should end COMPLETE, got {morning['rc']}"
        items = [r for r in emu.remote.requests if r.get("method") == "BATCH"]
        api.close()
    pin = sum(r.get("prompt_tokens") or 0 for r in items)
    pout = sum(r.get("completion_tokens") or 0 for r in items)
    k = 1000.0 / max(1, len(items))  # per 1,000 items billed
    live, batch = PriceTable().get(VISION_MODEL), PriceTable.for_job(None, [VISION_MODEL]).get(VISION_MODEL)
    return {"pages": pages, "batch_delay_s": delay, "submit_s": round(submitted - t0, 1),
            "job_done_s": round(done_at - t0, 1), "collected_s": round(collected - t0, 1),
            "collect_run_s": round(collected - done_at, 1), "submit_cpu_s": night["cpu_tree_s"],
            "collect_cpu_s": morning["cpu_tree_s"], "items_billed": len(items),
            "billed_input_tokens_per_1000_items": round(pin * k), "billed_output_tokens_per_1000_items": round(pout * k),
            "billed_live_usd_per_1000_items": round((pin * live.input_per_m + pout * live.output_per_m) * k / 1e6, 3),
            "billed_batch_usd_per_1000_items": round((pin * batch.input_per_m + pout * batch.output_per_m) * k / 1e6, 3),
            "billed_batch_usd_total": round((pin * batch.input_per_m + pout * batch.output_per_m) / 1e6, 4)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1000, help="pages of the measured batch")
    ap.add_argument("--sample", type=int, default=50, help="pages sampled for the dollar figures")
    ap.add_argument("--delay", type=float, default=10.0, help="the emulated job's processing delay (s)")
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--library", action="store_true", help="run through pixtract.run, without Prefect (quick)")
    a = ap.parse_args(argv)
    work = Path(common.WORK)
    work.mkdir(parents=True, exist_ok=True)
    cost = dollars(a.sample)
    log(f"transcribe, $ per 1,000 pages ({a.sample} pages sampled): live ${cost['live_usd_per_1000']:.2f}, "
        f"batch ${cost['batch_usd_per_1000']:.2f}")
    clock = wall_clock(a.pages, a.delay, work, a.library)
    log(f"{a.pages} pages, job delay {a.delay:g} s: submitted in {clock['submit_s']} s, job done at "
        f"{clock['job_done_s']} s, collected at {clock['collected_s']} s (collect run {clock['collect_run_s']} s); "
        f"{clock['items_billed']} distinct items billed once (${clock['billed_batch_usd_total']:.2f} in all); "
        f"emulator-billed ${clock['billed_live_usd_per_1000_items']:.2f} live vs "
        f"${clock['billed_batch_usd_per_1000_items']:.2f} batch per 1,000 items")
    out = {"dollars": cost, "wall_clock": clock}
    write_result("batch", out, a.results)
    return out


if __name__ == "__main__":
    main()
