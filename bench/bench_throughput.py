"""Benchmark 2: end-to-end throughput against a rate-limited endpoint, pixtract beside zerox.

The emulator (its own process) answers every request after a fixed latency and allows at most
RPS requests in any sliding 1-s window (``rpm_limit=RPS, rpm_window=1``), answering 429 with a
Retry-After beyond that. The theoretical limit is min(RPS, concurrency / latency) pages/s.

- main run: PAGES pages (one generated PDF), both tools at the same concurrency; pages per
  minute over the API window (first page request to last answer) and end to end (process
  start to exit, i.e. with Prefect's / litellm's start-up and zerox's up-front rendering),
  divided by the theoretical limit.
- faults: the same set-up plus 5 % injected 429s; pages lost (no answer) or left empty.
- sweep: a few concurrency points on fewer pages, for the plot
  (bench/throughput_vs_concurrency.png).

    python bench/bench_throughput.py [--pages 500] [--latency 1] [--rps 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (BENCH, WORK, EmulatorProcess, api_window, generated_pdf, has_image, have_pdftoppm,  # noqa: E402
                    log, run_pixtract, run_zerox, write_result, zerox_python)


def theoretical_ppm(rps: float, concurrency: int, latency: float) -> float:
    return 60.0 * min(rps, concurrency / latency if latency > 0 else float("inf"))


def one_run(tool: str, pdf: Path, pages: int, emu: EmulatorProcess, *, concurrency: int, latency: float, rps: float,
            fault_rate: float = 0.0, tag: str, work: Path) -> dict:
    emu.reset(latency=latency, rpm_limit=rps, rpm_window=1.0)
    if fault_rate:
        emu.remote.inject("429", rate=fault_rate)
    if tool == "pixtract":
        res = run_pixtract([pdf], work / "runs" / tag, emu, concurrency=concurrency, work=work)
        o = res["outputs"]
        answered = o["ok"] - o["ok_but_empty"] - sum(v for k, v in o["by_route"].items() if k.startswith("local"))
        res["pages"] = {"in": pages, "answered_by_model": answered, "failed": o["failed"],
                        "missing": pages - o["records"], "ok_but_empty": o["ok_but_empty"],
                        "fell_back_to_local": sum(v for k, v in o["by_route"].items() if k.startswith("local")),
                        "lost_or_empty": o["failed"] + (pages - o["records"]) + o["ok_but_empty"]}
    else:
        res = run_zerox(pdf, emu, concurrency=concurrency, work=work, tag=tag)
        o = res["outputs"]
        res["pages"] = {"in": pages, "answered_by_model": o.get("pages_out", 0) - o.get("empty_pages", 0),
                        "failed": 0, "missing": pages - o.get("pages_out", 0), "ok_but_empty": o.get("empty_pages", 0),
                        "fell_back_to_local": 0, "lost_or_empty": o.get("lost_pages", pages)}
    chats = [c for c in emu.chat_log() if has_image(c)]
    win = api_window(chats)
    res["api"] = win
    theo = theoretical_ppm(rps, concurrency, latency)
    good = res["pages"]["answered_by_model"]
    ppm_window = 60.0 * good / win["window_s"] if win.get("window_s") else 0.0
    ppm_e2e = 60.0 * good / res["wall_s"] if res["wall_s"] else 0.0
    res["throughput"] = {"theoretical_ppm": round(theo, 1), "ppm_api_window": round(ppm_window, 1),
                         "ratio_api_window": round(ppm_window / theo, 3), "ppm_end_to_end": round(ppm_e2e, 1),
                         "ratio_end_to_end": round(ppm_e2e / theo, 3),
                         "requests_per_page": round(win["requests"] / pages, 3) if pages else None,
                         "rate_limited_429": win.get("by_status", {}).get("429", 0)}
    res.pop("rss_timeline", None)
    t = res["throughput"]
    log(f"  {tool:8s} {tag:28s} c={concurrency:<3d} {good}/{pages} pages by model; "
        f"{t['ppm_api_window']:.0f} ppm in API window ({t['ratio_api_window']:.2f} of {theo:.0f}), "
        f"{t['ppm_end_to_end']:.0f} ppm end to end ({t['ratio_end_to_end']:.2f}); "
        f"429s {t['rate_limited_429']}, lost/empty {res['pages']['lost_or_empty']}, wall {res['wall_s']:.0f} s")
    return res


def run(pages: int = 500, latency: float = 1.0, rps: float = 10.0, concurrency: int = 16, fault_rate: float = 0.05,
        fault_pages: int = 100, sweep: tuple[int, ...] = (2, 8, 32), sweep_pages: int = 24,
        tools: tuple[str, ...] = ("pixtract", "zerox"), results_dir: Path | None = None, plot_dir: Path | None = None,
        work: Path | None = None) -> dict:
    work = Path(work or WORK)
    skipped = {}
    if "zerox" in tools and zerox_python() is None:
        skipped["zerox"] = "py-zerox not installed in bench/.zerox-venv"
    if "zerox" in tools and not have_pdftoppm():
        skipped["zerox"] = "poppler-utils (pdftocairo) not installed"
    tools = tuple(t for t in tools if t not in skipped)
    setup = {"pages": pages, "latency_s": latency, "rate_limit_rps": rps, "rate_limit_rpm": rps * 60,
             "rate_window_s": 1.0, "concurrency": concurrency, "fault": {"429_rate": fault_rate, "pages": fault_pages},
             "theoretical_ppm": theoretical_ppm(rps, concurrency, latency), "sweep": list(sweep),
             "sweep_pages": sweep_pages}
    log(f"throughput: latency {latency} s, limit {rps:g} req/s ({rps * 60:g} rpm), concurrency {concurrency}, "
        f"theoretical {setup['theoretical_ppm']:.0f} pages/min")
    main_pdf, fault_pdf, sweep_pdf = (generated_pdf(n, work) for n in (pages, fault_pages, sweep_pages))
    out = {"setup": setup, "main": {}, "faults": {}, "sweep": {t: [] for t in tools}, "skipped": skipped}
    with EmulatorProcess() as emu:
        for tool in tools:
            out["main"][tool] = one_run(tool, main_pdf, pages, emu, concurrency=concurrency, latency=latency, rps=rps,
                                        tag=f"{tool}-main-{pages}", work=work)
        if fault_pages and fault_rate:
            for tool in tools:
                out["faults"][tool] = one_run(tool, fault_pdf, fault_pages, emu, concurrency=concurrency,
                                              latency=latency, rps=rps, fault_rate=fault_rate,
                                              tag=f"{tool}-faults-{fault_pages}", work=work)
        for c in sweep:
            for tool in tools:
                r = one_run(tool, sweep_pdf, sweep_pages, emu, concurrency=c, latency=latency, rps=rps,
                            tag=f"{tool}-sweep-c{c}", work=work)
                out["sweep"][tool].append({"concurrency": c, "pages": sweep_pages, **r["throughput"],
                                           "lost_or_empty": r["pages"]["lost_or_empty"], "wall_s": r["wall_s"]})
    px = out["main"].get("pixtract", {}).get("throughput", {})
    pf = out["faults"].get("pixtract", {}).get("pages", {})
    out["targets"] = {
        "throughput_ratio >= 0.95": {"measured": px.get("ratio_api_window"),
                                     "met": None if not px else px["ratio_api_window"] >= 0.95},
        "zero pages lost or empty under 429s": {"measured": pf.get("lost_or_empty"),
                                                "met": None if not pf else pf["lost_or_empty"] == 0},
    }
    out["plot"] = plot(out, (plot_dir or BENCH) / "throughput_vs_concurrency.png")
    _print(out)
    write_result("throughput", out, results_dir)
    return out


def plot(out: dict, path: Path) -> str | None:
    """Sweep points (few pages: they include the ramp-up) as lines, the main run as stars."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    s = out["setup"]
    sweeps = {t: [p for p in pts if p["pages"] == s["sweep_pages"]] for t, pts in out["sweep"].items()}
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    cs = sorted({p["concurrency"] for pts in sweeps.values() for p in pts} | {1, s["concurrency"]})
    grid = [c / 8 for c in range(8, 8 * max(cs) + 1)]
    ax.plot(grid, [theoretical_ppm(s["rate_limit_rps"], c, s["latency_s"]) for c in grid], "k--", lw=1,
            label=f"limit: min({s['rate_limit_rpm']:g} rpm, concurrency / {s['latency_s']:g} s)")
    style = {"pixtract": ("tab:blue", "o"), "zerox": ("tab:orange", "s")}
    for tool, pts in sweeps.items():
        colour, marker = style.get(tool, ("gray", "x"))
        if pts:
            ax.plot([p["concurrency"] for p in pts], [p["ppm_api_window"] for p in pts], marker=marker, color=colour,
                    label=f"{tool}, {s['sweep_pages']} pages (API window)")
        m = out["main"].get(tool)
        if m:
            t = m["throughput"]
            lost = m["pages"]["lost_or_empty"]
            ax.plot([s["concurrency"]], [t["ppm_api_window"]], marker="*", ms=14, color=colour, ls="none",
                    label=f"{tool}, {s['pages']} pages (API window)" + (f", {lost} pages lost" if lost else ""))
            ax.plot([s["concurrency"]], [t["ppm_end_to_end"]], marker="*", ms=10, color=colour, ls="none",
                    alpha=0.45, label=f"{tool}, {s['pages']} pages, end to end (with start-up)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(cs)
    ax.set_xticklabels([str(c) for c in cs])
    ax.set_xlabel("concurrency (requests in flight)")
    ax.set_ylabel("pages answered per minute")
    ax.set_title(f"Throughput vs concurrency: emulator, {s['latency_s']:g} s latency, {s['rate_limit_rpm']:g} rpm limit",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    log(f"  -> {path}")
    return str(path)


def _print(out: dict) -> None:
    s = out["setup"]
    log(f"throughput, {s['pages']} pages, latency {s['latency_s']} s, {s['rate_limit_rpm']:g} rpm, "
        f"concurrency {s['concurrency']}: theoretical {s['theoretical_ppm']:.0f} pages/min")
    log(f"  {'tool':9s} {'ppm (API)':>10s} {'ratio':>6s} {'ppm (e2e)':>10s} {'ratio':>6s} {'429s':>5s} {'lost/empty':>10s}")
    for tool, r in out["main"].items():
        t = r["throughput"]
        log(f"  {tool:9s} {t['ppm_api_window']:10.0f} {t['ratio_api_window']:6.2f} {t['ppm_end_to_end']:10.0f} "
            f"{t['ratio_end_to_end']:6.2f} {t['rate_limited_429']:5d} {r['pages']['lost_or_empty']:10d}")
    for tool, r in out["faults"].items():
        p = r["pages"]
        log(f"  faults ({out['setup']['fault']['429_rate']:.0%} 429s, {p['in']} pages) {tool}: lost {p['failed'] + p['missing']}, "
            f"empty {p['ok_but_empty']}, fell back to local {p['fell_back_to_local']}")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--rps", type=float, default=10.0, help="rate limit, requests per second (x60 = rpm)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    ap.add_argument("--fault-pages", type=int, default=100)
    ap.add_argument("--sweep", default="2,8,32", help="concurrency points for the plot ('' for none)")
    ap.add_argument("--sweep-pages", type=int, default=24)
    ap.add_argument("--tools", default="pixtract,zerox")
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--plot-dir", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--replot", type=Path, metavar="JSON", help="only redraw the plot from a results file")
    a = ap.parse_args(argv)
    if a.replot:
        import json

        out = json.loads(a.replot.read_text())
        plot(out, (a.plot_dir or BENCH) / "throughput_vs_concurrency.png")
        return out
    sweep = tuple(int(x) for x in a.sweep.split(",") if x.strip())
    return run(a.pages, a.latency, a.rps, a.concurrency, a.fault_rate, a.fault_pages, sweep, a.sweep_pages,
               tuple(t for t in a.tools.split(",") if t), a.results, a.plot_dir, a.work)


if __name__ == "__main__":
    main()
