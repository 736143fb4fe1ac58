"""Diagnostic (not part of run_all): where pixtract's throughput goes under a request-rate limit.

pixtract's model client alone (``pixtract.providers.ChatClient``, no Prefect, pages rendered
beforehand) sends PAGES page requests from CONCURRENCY threads to the emulator (fixed latency,
RPS limit in a sliding 1-s window), in these variants:

- ``shipped``: the client as it is: a 429 with a Retry-After holds every caller at the
  RateGate for that long and brings the AdaptiveLimiter down to the requests still in flight
  (``on_rate_limited``); only a 429 without a hint, or an overload, halves it (AIMD);
- ``no_trim``: the same, but a 429 with a Retry-After leaves the limit alone (what pixtract
  did before ``on_rate_limited``: about as fast, with several times the 429s);
- ``no_decrease``: neither a trim nor a halving on any 429 (``on_throttle`` disabled too);
- ``holdN`` (e.g. ``hold0``, ``hold5``): ``shipped`` with N seconds without growth after a
  trim instead of ``limits.RATE_HOLD``;
- ``render_in_slot``: ``shipped`` plus each thread rendering its page (``render_page``) and
  making its thumbnail (here from the PNG, ``make_thumbnail``) before the call. In the flow, a
  chunk task (``answer-pages``) of 16 pages hands its pages to the router's threads,
  CONCURRENCY + 2 (``RENDER_AHEAD``) of them, and each renders its page, then makes the request;
  this variant uses only CONCURRENCY threads, so it shows the cost of rendering without any
  threads to spare.

    python bench/diag_ratelimit.py [--pages 150] [--concurrency 16] [--rps 10] [--latency 1]
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FAKE_KEY, VISION_MODEL, EmulatorProcess, api_window, generated_pdf, log, write_result  # noqa: E402


def one(variant: str, emu: EmulatorProcess, doc, pages: int, concurrency: int, rps: float, latency: float) -> dict:
    from pixtract.config import RunConfig
    from pixtract.messages import ImagePart
    from pixtract.prompts import build_request
    from pixtract.providers import Endpoint, make_client
    from pixtract.providers import limits
    from pixtract.records import RenderSettings
    from pixtract.render import render_page
    from pixtract.report import make_thumbnail

    limits._REGISTRY.clear()
    emu.reset(latency=latency, rpm_limit=rps, rpm_window=1.0, log_bodies=False)
    client = make_client(Endpoint(profile="openai", base_url=emu.base_url("openai"), vision_model=VISION_MODEL,
                                  api_key=FAKE_KEY, concurrency=concurrency))
    if variant == "no_decrease":
        client.limiter.on_throttle = lambda: None
    if variant.startswith("hold"):
        client.limiter.rate_hold = float(variant[4:])
    if variant == "no_trim":  # the limit stays where it is after a 429 with Retry-After
        client.limiter.on_rate_limited = lambda: None
    cfg = RunConfig(inputs=["x"], out="unused", profile="openai")
    settings = RenderSettings()
    pre = {}
    if variant != "render_in_slot":
        for n in range(1, pages + 1):
            pre[n] = render_page(doc, n, settings)
    q: queue.Queue = queue.Queue()
    for n in range(1, pages + 1):
        q.put(n)
    done, errors = [], []

    def worker():
        while True:
            try:
                n = q.get_nowait()
            except queue.Empty:
                return
            page = pre.get(n) or render_page(doc, n, settings)
            if variant == "render_in_slot":
                make_thumbnail(page.image)
            req = build_request(cfg, cfg.tasks[0], images=[ImagePart(page.image, page.mime, page.width, page.height)],
                                text=page.text, model=VISION_MODEL)
            try:
                client.complete(req)
                done.append(n)
            except Exception as e:
                errors.append(type(e).__name__)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    client.close()
    win = api_window(emu.chat_log())
    theo = 60 * min(rps, concurrency / latency)
    ppm = 60 * len(done) / win["window_s"] if win.get("window_s") else 0
    r = {"variant": variant, "pages": pages, "answered": len(done), "errors": len(errors), "wall_s": round(wall, 2),
         "ppm_api_window": round(ppm, 1), "ratio": round(ppm / theo, 3), "requests": win["requests"],
         "rate_limited_429": win.get("by_status", {}).get("429", 0), "limiter_history": client.limiter.history[-40:]}
    log(f"  {variant:15s} {len(done)}/{pages} pages, {ppm:.0f} ppm ({r['ratio']:.2f} of {theo:.0f}), "
        f"429s {r['rate_limited_429']}, limiter low point {min(client.limiter.history or [concurrency])}")
    return r


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=150)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rps", type=float, default=10)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--variants", default="shipped,no_decrease,render_in_slot")
    ap.add_argument("--results", type=Path, default=None)
    a = ap.parse_args(argv)
    from pixtract.discover import discover

    pdf = generated_pdf(a.pages)
    doc = next(iter(discover([str(pdf)])))
    log(f"rate-limit diagnostic: {a.pages} pages, concurrency {a.concurrency}, {a.rps:g} req/s, latency {a.latency} s")
    with EmulatorProcess(log_bodies=False) as emu:
        rows = [one(v, emu, doc, a.pages, a.concurrency, a.rps, a.latency) for v in a.variants.split(",") if v]
    out = {"setup": vars(a) | {"results": None}, "runs": rows}
    write_result("diag_ratelimit", out, a.results)
    return out


if __name__ == "__main__":
    main()
