"""Benchmark 5: overhead. CPU milliseconds per page that pixtract and Prefect spend outside the
model call, against the emulator at zero latency (its own process, so its CPU is never counted).

- whole runs (``pixtract run`` subprocesses, from bench_memory's runs when they exist, else
  two runs of its own): CPU of the client process and, separately, of Prefect's ephemeral API
  server; per page as the slope between the smallest and the largest batch, so start-up
  (imports, server start, migrations) drops out; also the plain total / pages.
- where the client's time goes, measured in-process without Prefect: ``render_page`` as the
  flow calls it (with the report thumbnail) and without it, ``thumbnail_jpeg`` alone, the
  prompt-token estimate (paid only when a budget is set), ``Router.answer_page`` as a whole
  (render, thumbnail, request building, HTTP, parsing, cache), and the whole pipeline without
  Prefect: ``Router.answer_pages`` over chunks of PAGES_PER_TASK pages at the run's concurrency,
  the output files and the report, per page as the slope between two page counts. The client
  slope minus that last figure is Prefect's task engine plus the flow's own glue.

Target: < 20 ms CPU per page.

    python bench/bench_overhead.py [--memory-results bench/results/memory.json] [--sizes 100,600]
                                   [--component-pages 60] [--pipeline-sizes 40,160]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (RESULTS, VISION_MODEL, WORK, EmulatorProcess, FAKE_KEY, generated_pdf, log,  # noqa: E402
                    write_result)

TARGET_MS = 20.0
PAGES_PER_TASK = 16  # a copy of pixtract.batch.PAGES_PER_TASK (tests/test_bench_smoke.py holds them equal)


def whole_runs(sizes: tuple[int, ...], concurrency: int, work: Path) -> list[dict]:
    from bench_memory import measure  # the same measured `pixtract run`s as the memory benchmark

    rows = measure(sizes, concurrency, work)
    for r in rows:
        r.pop("rss_timeline", None)
    return rows


def per_page(rows: list[dict]) -> dict:
    rows = sorted(rows, key=lambda r: r["pages"])
    lo, hi = rows[0], rows[-1]
    out = {"sizes": [r["pages"] for r in rows]}
    for key in ("cpu_client_s", "cpu_server_s", "cpu_emulator_s"):
        name = key[4:-2]
        if hi["pages"] > lo["pages"]:
            out[f"{name}_ms_per_page_marginal"] = round((hi[key] - lo[key]) / (hi["pages"] - lo["pages"]) * 1000, 2)
        out[f"{name}_ms_per_page_total_{hi['pages']}"] = round(hi[key] / hi["pages"] * 1000, 2)
        out[f"{name}_s_fixed_estimate"] = round(lo[key] - (out.get(f"{name}_ms_per_page_marginal", 0) / 1000) * lo["pages"], 2)
    return out


def components(pages: int = 60, work: Path | None = None, pipeline_sizes: tuple[int, int] = (40, 160),
               concurrency: int = 8) -> dict:
    """Per-page CPU of pixtract's own steps, in this process, without Prefect."""
    os.environ.setdefault("OPENAI_API_KEY", FAKE_KEY)
    from pixtract import malloc

    malloc.tune()  # as the pixtract command does (flows/__init__.py)
    from pixtract import tokens
    from pixtract.discover import discover
    from pixtract.messages import ImagePart
    from pixtract.plan import plan_document
    from pixtract.prompts import build_request
    from pixtract.records import RenderSettings
    from pixtract.render import render_page
    from pixtract.report import THUMB_MAX_EDGE

    pdf = generated_pdf(max(pages + 1, 30), work)
    doc = next(iter(discover([str(pdf)])))
    settings = RenderSettings()
    render_page(doc, 1, settings, thumb_edge=THUMB_MAX_EDGE)
    out: dict = {"pages": pages}

    def timed(fn) -> float:
        c0 = time.process_time()
        for n in range(2, pages + 2):
            fn(n)
        return round((time.process_time() - c0) / pages * 1000, 2)

    rendered = {}
    out["render_page_ms"] = timed(lambda n: rendered.__setitem__(
        n, render_page(doc, n, settings, thumb_edge=THUMB_MAX_EDGE)))
    out["render_page_no_thumbnail_ms"] = timed(lambda n: render_page(doc, n, settings))
    out["thumbnail_in_render_page_ms"] = round(out["render_page_ms"] - out["render_page_no_thumbnail_ms"], 2)
    out["thumbnail_ms"] = _thumbnail_ms(rendered.values(), THUMB_MAX_EDGE)
    tmp = Path(tempfile.mkdtemp(prefix="pixtract-bench-"))
    try:
        cfg = _config(pdf, tmp / "out", "http://127.0.0.1:9/openai/v1", 1)
        task = cfg.tasks[0]

        def estimate(n):
            p = rendered[n]
            req = build_request(cfg, task, images=[ImagePart(p.image, p.mime, p.width, p.height)], text=p.text,
                                model=VISION_MODEL)
            tokens.estimate_prompt_tokens(req, VISION_MODEL)

        estimate(2)  # load the tokenizer first (once per process)
        out["prompt_token_estimate_ms"] = timed(estimate)  # paid only with a budget (cfg.budget_usd)
        rendered.clear()
        with EmulatorProcess(log_bodies=False) as emu:
            emu.reset(latency=0.0, log_bodies=False)
            cfg = _config(pdf, tmp / "out", emu.base_url("openai"), 1)
            router = _router(cfg)
            plan = plan_document(doc, cfg)
            router.answer_page(plan, 1)
            e0 = emu.cpu_seconds()
            out["router_answer_page_ms"] = timed(lambda n: router.answer_page(plan, n))
            out["emulator_ms_per_request"] = round((emu.cpu_seconds() - e0) / pages * 1000, 2)
            router.close()
            out.update(pipeline_slope(emu, tmp, work, pipeline_sizes, concurrency))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _thumbnail_ms(pages, max_edge: int) -> float:
    """CPU ms per page of ``thumbnail_jpeg`` alone, on each page's pixels (decoded beforehand)."""
    import io

    from PIL import Image

    from pixtract.render import thumbnail_jpeg

    cpu, count = 0.0, 0
    for page in pages:
        with Image.open(io.BytesIO(page.image)) as im:
            im.load()
            c0 = time.process_time()
            thumbnail_jpeg(im, max_edge)
            cpu += time.process_time() - c0
        count += 1
    return round(cpu / count * 1000, 2)


def _config(pdf: Path, out: Path, base_url: str, concurrency: int):
    from pixtract.config import build_config

    return build_config({"inputs": [str(pdf)], "out": str(out), "profile": "openai",
                         "endpoint": {"base_url": base_url, "vision_model": VISION_MODEL},
                         "concurrency": concurrency})


def _router(cfg):
    """A Router as the batch flow builds it: thumbnails made while rendering, written on render."""
    from pixtract.report import THUMB_MAX_EDGE, save_thumbnail
    from pixtract.route import Router

    return Router(cfg, thumb_edge=THUMB_MAX_EDGE, on_render=lambda page: save_thumbnail(
        cfg.out, page.document.sha256, page.number, page.thumbnail))


def pipeline_slope(emu: EmulatorProcess, tmp: Path, work: Path | None, sizes: tuple[int, int],
                   concurrency: int = 8) -> dict:
    """Process CPU ms per page of the whole pipeline without Prefect (plan, answer in chunks of
    PAGES_PER_TASK pages, write outputs and the report), as the slope between two page counts
    so that one-off costs drop out."""
    lo, hi = sizes
    cpu, emulator, ok = [], [], []
    for n in (lo, hi):
        emu.reset(latency=0.0, log_bodies=False)
        cfg = _config(generated_pdf(n, work), tmp / f"pipeline-{n}", emu.base_url("openai"), concurrency)
        e0 = emu.cpu_seconds()
        seconds, answered = _pipeline_cpu(cfg, PAGES_PER_TASK)
        emulator.append(emu.cpu_seconds() - e0)
        cpu.append(seconds)
        ok.append(answered)
    return {"pipeline_no_prefect_sizes": [lo, hi], "pipeline_no_prefect_concurrency": concurrency,
            "pipeline_no_prefect_ok": ok, "pipeline_no_prefect_cpu_s": [round(c, 3) for c in cpu],
            "pipeline_no_prefect_ms": round((cpu[1] - cpu[0]) / (hi - lo) * 1000, 2),
            "pipeline_no_prefect_emulator_ms": round((emulator[1] - emulator[0]) / (hi - lo) * 1000, 2)}


def _pipeline_cpu(cfg, chunk: int) -> tuple[float, int]:
    """Process CPU seconds (all threads) of one run of the pipeline over the one document in
    ``cfg.inputs``, as the flow does it but without Prefect; and the records answered ok."""
    import datetime as dt
    import resource

    from pixtract import mupdf
    from pixtract.discover import discover
    from pixtract.manifest import build_manifest
    from pixtract.outputs import OutputWriter
    from pixtract.plan import plan_document
    from pixtract.report import build_report

    def now() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    c0, started = now(), dt.datetime.now(dt.UTC)
    router = _router(cfg)
    writer = OutputWriter(cfg.out)
    doc = next(iter(discover(cfg.inputs)))
    plan = plan_document(doc, cfg)
    writer.ledger.plan("transcribe", plan.pages)
    numbers, records = list(range(1, plan.pages + 1)), []
    for i in range(0, len(numbers), chunk):
        for recs in router.answer_pages([(plan, n) for n in numbers[i:i + chunk]]):
            records.extend(recs)
    writer.add_document(doc, plan.pages, records)
    mupdf.forget(doc)
    router.close()
    summary = writer.summary()
    writer.finish(build_manifest(config=cfg.public(), documents=writer.documents, summary=summary, started=started,
                                 finished=dt.datetime.now(dt.UTC), extra={"ledger": summary["ledger"]}))
    build_report(cfg.out)
    return now() - c0, summary["by_status"].get("ok", 0)


def run(memory_results: Path | None = None, sizes: tuple[int, ...] = (100, 600), concurrency: int = 8,
        component_pages: int = 60, results_dir: Path | None = None, work: Path | None = None,
        pipeline_sizes: tuple[int, int] = (40, 160)) -> dict:
    work = Path(work or WORK)
    rows, source = None, None
    if memory_results and Path(memory_results).exists():
        data = json.loads(Path(memory_results).read_text())
        rows = [dict(r) for r in data.get("runs", []) if r.get("rc") in (0, 1, 3)]  # 3: degraded
        if len(rows) >= 2:
            source = f"{memory_results} (bench_memory runs)"
        else:
            rows = None
    if rows is None:
        rows = whole_runs(sizes, concurrency, work)
        source = "own runs"
    for r in rows:
        r.pop("rss_timeline", None)
    pp = per_page(rows)
    comp = components(component_pages, work, pipeline_sizes, concurrency)
    client = pp.get("client_ms_per_page_marginal", pp[f"client_ms_per_page_total_{pp['sizes'][-1]}"])
    server = pp.get("server_ms_per_page_marginal", 0.0)
    # Prefect's task engine + the flow's glue = client slope - the same pipeline without Prefect.
    comp["prefect_and_flow_ms"] = round(client - comp["pipeline_no_prefect_ms"], 2)
    # The older, cruder estimate: also counts output files, the report and the thread pool.
    comp["client_minus_answer_page_ms"] = round(client - comp["router_answer_page_ms"], 2)
    out = {
        "source": source, "concurrency": concurrency, "runs": [
            {k: r.get(k) for k in ("pages", "rc", "wall_s", "cpu_client_s", "cpu_server_s", "cpu_emulator_s",
                                   "peak_rss_mb")} for r in rows],
        "per_page": pp, "client_components_ms": comp,
        "targets": {f"client overhead < {TARGET_MS:g} ms/page": {"measured": client, "met": client < TARGET_MS},
                    f"client + server < {TARGET_MS:g} ms/page": {"measured": round(client + server, 2),
                                                                   "met": client + server < TARGET_MS}},
    }
    log(f"overhead (CPU per page outside the model call; sizes {pp['sizes']}, from {source}):")
    log(f"  client {client:.1f} ms/page marginal ({pp.get('client_ms_per_page_total_' + str(pp['sizes'][-1]))} "
        f"ms/page incl. start-up at {pp['sizes'][-1]} pages), Prefect server {server:.1f} ms/page, "
        f"emulator {pp.get('emulator_ms_per_page_marginal', 0):.1f} ms/page (not counted)")
    log(f"  client breakdown (in-process, no Prefect, ms/page): render_page with thumbnail "
        f"{comp['render_page_ms']:.1f} (without {comp['render_page_no_thumbnail_ms']:.1f}; thumbnail_jpeg alone "
        f"{comp['thumbnail_ms']:.1f}), Router.answer_page {comp['router_answer_page_ms']:.1f}, whole pipeline "
        f"without Prefect {comp['pipeline_no_prefect_ms']:.1f} (slope {pipeline_sizes[0]}->{pipeline_sizes[1]} pages, "
        f"ok {comp['pipeline_no_prefect_ok']}); prompt-token estimate {comp['prompt_token_estimate_ms']:.1f} "
        f"(only with a budget)")
    log(f"  Prefect task engine + flow glue (client slope - pipeline without Prefect): "
        f"{comp['prefect_and_flow_ms']:.1f} ms/page")
    write_result("overhead", out, results_dir)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory-results", default=str(RESULTS / "memory.json"),
                    help="reuse bench_memory's runs ('' to run its own)")
    ap.add_argument("--sizes", default="100,600", help="batch sizes when running its own")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--component-pages", type=int, default=60)
    ap.add_argument("--pipeline-sizes", default="40,160",
                    help="two page counts for the slope of the whole pipeline without Prefect")
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args(argv)
    mem = Path(a.memory_results) if a.memory_results else None
    lo, hi = (int(x) for x in a.pipeline_sizes.split(","))
    return run(mem, tuple(int(x) for x in a.sizes.split(",")), a.concurrency, a.component_pages, a.results, a.work,
               (lo, hi))


if __name__ == "__main__":
    main()
