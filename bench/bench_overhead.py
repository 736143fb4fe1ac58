"""Benchmark 5: overhead. CPU milliseconds per page that pixtract and Prefect spend outside the
model call, against the emulator at zero latency (its own process, so its CPU is never counted).

- whole runs (``pixtract run`` subprocesses, from bench_memory's runs when they exist, else
  two runs of its own): CPU of the client process and, separately, of Prefect's ephemeral API
  server; per page as the slope between the smallest and the largest batch, so start-up
  (imports, server start, migrations) drops out; also the plain total / pages.
- where the client's time goes, measured in-process without Prefect: ``render_page``, the
  report thumbnail, the prompt-token estimate, and ``Router.answer_page`` as a whole (render,
  thumbnail, request building, HTTP, parsing, cache); the rest of the client's per-page CPU is
  Prefect's task engine plus the flow's own bookkeeping.

Target: < 20 ms CPU per page.

    python bench/bench_overhead.py [--memory-results bench/results/memory.json] [--sizes 100,600]
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
                    run_pixtract, write_result)

TARGET_MS = 20.0


def whole_runs(sizes: tuple[int, ...], concurrency: int, work: Path) -> list[dict]:
    rows = []
    with EmulatorProcess(log_bodies=False) as emu:
        for n in sizes:
            pdf = generated_pdf(n, work)
            emu.reset(latency=0.0, log_bodies=False)
            e0 = emu.cpu_seconds()
            res = run_pixtract([pdf], work / "runs" / f"overhead-{n}", emu, concurrency=concurrency, work=work)
            res["cpu_emulator_s"] = round(emu.cpu_seconds() - e0, 3)
            res["pages"] = n
            res.pop("rss_timeline", None)
            rows.append(res)
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


def components(pages: int = 60, work: Path | None = None) -> dict:
    """Per-page CPU of pixtract's own steps, in this process, without Prefect."""
    os.environ.setdefault("OPENAI_API_KEY", FAKE_KEY)
    from pipeline import tokens
    from pipeline.config import build_config
    from pipeline.discover import discover
    from pipeline.messages import ImagePart
    from pipeline.prompts import build_request
    from pipeline.records import RenderSettings
    from pipeline.render import count_pages, render_page
    from pipeline.report import make_thumbnail, write_thumbnail
    from pipeline.route import DocumentPlan, Router

    pdf = generated_pdf(max(pages + 1, 30), work)
    doc = next(iter(discover([str(pdf)])))
    settings = RenderSettings()
    render_page(doc, 1, settings)
    out: dict = {"pages": pages}

    def timed(fn) -> float:
        c0 = time.process_time()
        for n in range(2, pages + 2):
            fn(n)
        return round((time.process_time() - c0) / pages * 1000, 2)

    rendered = {}
    out["render_page_ms"] = timed(lambda n: rendered.__setitem__(n, render_page(doc, n, settings)))
    out["thumbnail_ms"] = timed(lambda n: make_thumbnail(rendered[n].image))
    out["thumbnail_direct_from_mupdf_ms"] = timed(lambda n: _direct_thumbnail(doc, n))  # proposal, not shipped
    tmp = Path(tempfile.mkdtemp(prefix="pixtract-bench-"))
    try:
        cfg = build_config({"inputs": [str(pdf)], "out": str(tmp / "out"), "profile": "openai",
                            "endpoint": {"base_url": "http://127.0.0.1:9/openai/v1", "vision_model": VISION_MODEL},
                            "concurrency": 1})
        task = cfg.tasks[0]

        def estimate(n):
            p = rendered[n]
            req = build_request(cfg, task, images=[ImagePart(p.image, p.mime, p.width, p.height)], text=p.text,
                                model=VISION_MODEL)
            tokens.estimate_prompt_tokens(req, VISION_MODEL)

        estimate(2)  # load the tokenizer first (once per process)
        out["prompt_token_estimate_ms"] = timed(estimate)
        rendered.clear()
        with EmulatorProcess(log_bodies=False) as emu:
            emu.reset(latency=0.0, log_bodies=False)
            cfg = build_config({"inputs": [str(pdf)], "out": str(tmp / "out"), "profile": "openai",
                                "endpoint": {"base_url": emu.base_url("openai"), "vision_model": VISION_MODEL},
                                "concurrency": 1})
            router = Router(cfg, on_render=lambda page: write_thumbnail(cfg.out, page.document.sha256, page.number,
                                                                        page.image))
            plan = DocumentPlan(doc, count_pages(doc))
            router.answer_page(plan, 1)
            e0 = emu.cpu_seconds()
            out["router_answer_page_ms"] = timed(lambda n: router.answer_page(plan, n))
            out["emulator_ms_per_request"] = round((emu.cpu_seconds() - e0) / pages * 1000, 2)
            router.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _direct_thumbnail(doc, number: int) -> bytes:
    """Proposal: render the 320-px report thumbnail straight from the page with MuPDF instead of
    decoding the 1024-px PNG and resampling it with Lanczos."""
    import io

    import pymupdf
    from PIL import Image

    from pipeline import mupdf
    from pipeline.report import THUMB_MAX_EDGE

    with mupdf.open_pdf(doc) as pdf:
        page = pdf.load_page(number - 1)
        z = THUMB_MAX_EDGE / max(page.rect.width, page.rect.height)
        pix = page.get_pixmap(matrix=pymupdf.Matrix(z, z), alpha=False)
        im = Image.frombytes("RGB" if pix.n == 3 else "L", (pix.width, pix.height), pix.samples)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80, optimize=True)
    return buf.getvalue()


def run(memory_results: Path | None = None, sizes: tuple[int, ...] = (100, 600), concurrency: int = 8,
        component_pages: int = 60, results_dir: Path | None = None, work: Path | None = None) -> dict:
    work = Path(work or WORK)
    rows, source = None, None
    if memory_results and Path(memory_results).exists():
        data = json.loads(Path(memory_results).read_text())
        rows = [dict(r) for r in data.get("runs", []) if r.get("rc") in (0, 1)]
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
    comp = components(component_pages, work)
    client = pp.get("client_ms_per_page_marginal", pp[f"client_ms_per_page_total_{pp['sizes'][-1]}"])
    server = pp.get("server_ms_per_page_marginal", 0.0)
    comp["prefect_and_flow_ms"] = round(client - comp["router_answer_page_ms"], 2)
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
    log(f"  client breakdown (in-process, no Prefect): render_page {comp['render_page_ms']:.1f}, thumbnail "
        f"{comp['thumbnail_ms']:.1f}, prompt-token estimate {comp['prompt_token_estimate_ms']:.1f}, Router.answer_page "
        f"total {comp['router_answer_page_ms']:.1f} ms; Prefect task engine + flow: {comp['prefect_and_flow_ms']:.1f} ms")
    write_result("overhead", out, results_dir)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory-results", type=Path, default=RESULTS / "memory.json",
                    help="reuse bench_memory's runs ('' to run its own)")
    ap.add_argument("--sizes", default="100,600", help="batch sizes when running its own")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--component-pages", type=int, default=60)
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args(argv)
    mem = a.memory_results if a.memory_results and str(a.memory_results) else None
    return run(mem, tuple(int(x) for x in a.sizes.split(",")), a.concurrency, a.component_pages, a.results, a.work)


if __name__ == "__main__":
    main()
