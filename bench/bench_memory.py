"""Benchmark 3: memory. Peak RSS of the whole ``pixtract run`` process tree (the client plus
Prefect's ephemeral API server, sampled every 0.1 s with psutil) for batches of 100, 1,000 and
3,000 generated pages against the emulator at zero latency (profile openai, Pixtral model ID).

Targets: flat within 20 % from the smallest to the largest batch, and under 500 MB.
The same runs also record CPU time (client, server, emulator); bench_overhead.py reads them.

    python bench/bench_memory.py [--sizes 100,1000,3000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, EmulatorProcess, PrefectServer, api_window, generated_pdf, log, run_pixtract, write_result  # noqa: E402

RSS_LIMIT_MB = 500
FLAT_WITHIN = 0.20


def run(sizes: tuple[int, ...] = (100, 1000, 3000), concurrency: int = 8, results_dir: Path | None = None,
        work: Path | None = None, server_sizes: tuple[int, ...] = ()) -> dict:
    """The runs on Prefect's ephemeral API (``sizes``), then, for ``server_sizes``, the same
    against a running ``prefect server start`` (whose memory is not in the run's tree)."""
    work = Path(work or WORK)
    rows = measure(sizes, concurrency, work)
    server_rows = []
    if server_sizes:
        with PrefectServer(work) as server:
            server_rows = measure(server_sizes, concurrency, work, api_url=server.api_url)
    out = summarize(rows, sizes, concurrency)
    if server_rows:
        out["running_server"] = {"runs": server_rows, "peak_rss_mb": {str(r["pages"]): r["peak_rss_mb"] for r in server_rows}}
        log("memory, against a running Prefect server (the run's own process): "
            + ", ".join(f"{r['pages']}: {r['peak_rss_mb']:.0f} MB" for r in server_rows))
    write_result("memory", out, results_dir)
    return out


def measure(sizes: tuple[int, ...], concurrency: int, work: Path, api_url: str | None = None) -> list[dict]:
    rows = []
    with EmulatorProcess(log_bodies=False) as emu:
        for n in sizes:
            pdf = generated_pdf(n, work)
            emu.reset(latency=0.0, log_bodies=False)
            e0 = emu.cpu_seconds()
            res = run_pixtract([pdf], work / "runs" / f"memory-{n}", emu, concurrency=concurrency, work=work,
                               timeout=1800, api_url=api_url)
            res["cpu_emulator_s"] = round(emu.cpu_seconds() - e0, 3)
            win = api_window(emu.chat_log())
            res["api"] = {k: win.get(k) for k in ("requests", "ok", "window_s", "by_status")}
            res["pages"] = n
            o = res["outputs"]
            log(f"  {n:5d} pages: peak RSS {res['peak_rss_mb']:.0f} MB (client {res['peak_client_rss_mb']:.0f}, "
                f"server {res['peak_server_rss_mb']:.0f}); CPU client {res['cpu_client_s']:.1f} s, server "
                f"{res['cpu_server_s']:.1f} s, emulator {res['cpu_emulator_s']:.1f} s; wall {res['wall_s']:.0f} s; "
                f"{o['ok']}/{n} ok, rc {res['rc']}")
            rows.append(res)
    return rows


def summarize(rows: list[dict], sizes: tuple[int, ...], concurrency: int) -> dict:
    peaks = [r["peak_rss_mb"] for r in rows]
    growth = (peaks[-1] / peaks[0] - 1.0) if len(peaks) > 1 and peaks[0] else 0.0
    spread = (max(peaks) / min(peaks) - 1.0) if peaks and min(peaks) else 0.0
    out = {
        "setup": {"sizes": list(sizes), "concurrency": concurrency, "latency_s": 0.0, "profile": "openai",
                  "sample_interval_s": 0.1},
        "runs": rows,
        "summary": {"peak_rss_mb": dict(zip(map(str, sizes), peaks)),
                    "growth_smallest_to_largest": round(growth, 3), "max_over_min": round(spread, 3)},
        "targets": {
            f"flat within {FLAT_WITHIN:.0%}": {"measured": round(spread, 3), "met": spread <= FLAT_WITHIN},
            f"peak < {RSS_LIMIT_MB} MB": {"measured": max(peaks) if peaks else None,
                                          "met": bool(peaks) and max(peaks) < RSS_LIMIT_MB},
        },
    }
    log("memory: peak RSS (process tree) by batch size: "
        + ", ".join(f"{n}: {p:.0f} MB" for n, p in zip(sizes, peaks))
        + f"; max/min - 1 = {spread:.1%}")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,3000")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--server-sizes", default="3000",
                    help="batch sizes to rerun against a running `prefect server start` ('' for none)")
    a = ap.parse_args(argv)
    return run(tuple(int(x) for x in a.sizes.split(",")), a.concurrency, a.results, a.work,
               tuple(int(x) for x in a.server_sizes.split(",") if x))


if __name__ == "__main__":
    main()
