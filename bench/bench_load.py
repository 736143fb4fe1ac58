"""Load run (issue: reliability): 5,000 generated pages against the emulator at zero latency with
5 % of requests faulted (429 with and without Retry-After, 500/502/503/529, dropped
connections, truncated JSON, empty content, finish_reason length). The run must end with a
balanced ledger, no page lost or silently empty, and peak RSS flat (compared with a 500-page
run under the same faults).

    python bench/bench_load.py [--pages 5000] [--small 500] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, EmulatorProcess, generated_pdf, log, run_pixtract, write_result  # noqa: E402

FAULTS = ["429", "500", "502", "503", "529", "drop", "truncated_json", "empty_content", "length"]
FAULT_RATE = 0.05


def _inject(emu: EmulatorProcess) -> None:
    each = FAULT_RATE / (len(FAULTS) + 1)
    for i, fault in enumerate(FAULTS):
        emu.remote.inject(fault, rate=each, retry_after=0.05 if (fault == "429" and i % 2 == 0) else None)
    emu.remote.inject("429", rate=each)  # without Retry-After


def one(n: int, emu: EmulatorProcess, concurrency: int, work: Path) -> dict:
    pdf = generated_pdf(n, work)
    emu.reset(latency=0.0, log_bodies=False)
    _inject(emu)
    out = work / "runs" / f"load-{n}"
    extra = ["--max-retries", "3", "--timeout", "10", "--max-edge", "512"]
    res = run_pixtract([pdf], out, emu, concurrency=concurrency, extra=extra, work=work, timeout=3600)
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    ledger = manifest.get("ledger", {})
    o = res["outputs"]
    row = {"pages": n, "rc": res["rc"], "wall_s": res["wall_s"], "peak_rss_mb": res["peak_rss_mb"],
           **{k: res.get(k) for k in ("peak_client_rss_mb", "peak_server_rss_mb", "cpu_client_s", "cpu_server_s")},
           "records": o.get("records"), "ok": o.get("ok"), "failed": o.get("failed"), "empty_ok": o.get("ok_but_empty"),
           "routes": o.get("routes"), "ledger_balanced": ledger.get("balanced"),
           "faulted_requests": sum(v for k, v in (emu_outcomes(emu)).items() if k != "ok")}
    log(f"  {n} pages: {row['ok']} ok, {row['failed']} failed, {row['empty_ok']} empty-ok; ledger balanced "
        f"{row['ledger_balanced']}; {row['faulted_requests']} faulted requests; peak RSS "
        f"{row['peak_rss_mb']:.0f} MB (client {row['peak_client_rss_mb']:.0f}, server {row['peak_server_rss_mb']:.0f}); wall {row['wall_s']:.0f} s")
    return row


def emu_outcomes(emu: EmulatorProcess) -> dict:
    counts: dict = {}
    for r in emu.chat_log():
        counts[r.get("outcome")] = counts.get(r.get("outcome"), 0) + 1
    return counts


def run(pages: int = 5000, small: int = 500, concurrency: int = 8, results_dir: Path | None = None,
        work: Path | None = None) -> dict:
    work = Path(work or WORK)
    with EmulatorProcess(log_bodies=False) as emu:
        rows = [one(small, emu, concurrency, work), one(pages, emu, concurrency, work)]
    big, ref = rows[-1], rows[0]
    growth = big["peak_rss_mb"] / ref["peak_rss_mb"] - 1 if ref["peak_rss_mb"] else None
    out = {
        "setup": {"pages": pages, "reference_pages": small, "concurrency": concurrency, "fault_rate": FAULT_RATE,
                  "faults": FAULTS + ["429 without Retry-After"], "latency_s": 0.0},
        "runs": rows,
        "targets": {
            "ledger balanced": {"measured": big["ledger_balanced"], "met": big["ledger_balanced"] is True},
            "no page lost or empty": {"measured": {"records": big["records"], "empty_ok": big["empty_ok"]},
                                      "met": big["records"] == pages and big["empty_ok"] == 0},
            "RSS flat within 20 %": {"measured": None if growth is None else round(growth, 3),
                                     "met": growth is not None and growth <= 0.20},
        },
    }
    write_result("load", out, results_dir)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args(argv)
    return run(a.pages, a.small, a.concurrency, a.results, a.work)


if __name__ == "__main__":
    main()
