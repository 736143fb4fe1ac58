"""Run every benchmark (``make bench``): install what they need, then render, cost, throughput,
memory, overhead, start-up and grounding, each in its own process. Figures are printed and written to
bench/results/*.json; the plot and the fine-print crop go to bench/.

    python bench/run_all.py                 # everything (about 15-20 min on 2 cores)
    python bench/run_all.py --only render,cost
    python bench/run_all.py --quick         # tiny inputs, a couple of minutes (smoke)

Installs: bench/requirements.txt into this interpreter's venv; poppler-utils with apt-get when
pdftoppm is missing (as root, or with sudo); py-zerox into bench/.zerox-venv (its own venv,
because its litellm dependency needs openai<3, older than the project's test dependency).
A tool that cannot be installed is skipped and the results say so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
ZEROX_VENV = BENCH / ".zerox-venv"
PY = sys.executable

STEPS = {
    "render": ["bench_render.py"],
    "cost": ["bench_cost.py"],
    "throughput": ["bench_throughput.py"],
    "memory": ["bench_memory.py"],
    "overhead": ["bench_overhead.py"],
    "startup": ["bench_startup.py"],
    "grounding": ["bench_grounding.py"],
    "batch": ["bench_batch.py"],
}
QUICK = {
    "render": ["--pages", "20", "--no-fixtures"],
    "cost": ["--pages", "5"],
    "throughput": ["--pages", "40", "--latency", "0.5", "--fault-pages", "20", "--sweep", "4", "--sweep-pages", "10"],
    "memory": ["--sizes", "20,100", "--server-sizes", "100"],
    "overhead": ["--component-pages", "20"],
    "startup": ["--runs", "1", "--no-kill"],
    "grounding": ["--nda-docs", "3", "--icdar-docs", "2", "--report-pages", "200"],
    "batch": ["--pages", "20", "--sample", "5", "--delay", "1"],
}


def sh(cmd: list[str], **kw) -> int:
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, **kw)


def install() -> dict:
    status = {}
    rc = sh([PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
             str(BENCH / "requirements.txt")])
    status["bench requirements"] = "ok" if rc == 0 else f"pip failed ({rc})"
    if not (shutil.which("pdftoppm") and shutil.which("pdftocairo")):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if shutil.which("apt-get"):
            sh(sudo + ["apt-get", "update", "-qq"], env=env)
            sh(sudo + ["apt-get", "install", "-y", "-qq", "poppler-utils"], env=env, stdout=subprocess.DEVNULL)
    status["poppler-utils"] = "ok" if shutil.which("pdftoppm") else "missing: pdftoppm and zerox parts skipped"
    zpy = ZEROX_VENV / "bin" / "python"
    if not (zpy.exists() and subprocess.call([str(zpy), "-c", "import pyzerox"], stderr=subprocess.DEVNULL) == 0):
        base = getattr(sys, "_base_executable", None) or shutil.which("python3") or PY
        if not zpy.exists():
            sh([base, "-m", "venv", str(ZEROX_VENV)])
        rc = sh([str(zpy), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                 str(BENCH / "requirements-zerox.txt")]) if zpy.exists() else 1
        status["py-zerox"] = "ok" if rc == 0 else f"install failed ({rc}): zerox parts skipped"
    else:
        status["py-zerox"] = "ok"
    return status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(STEPS), help="comma-separated: " + ",".join(STEPS))
    ap.add_argument("--quick", action="store_true", help="tiny inputs (a smoke run)")
    ap.add_argument("--no-install", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    status = {} if a.no_install else install()
    print(f"set-up: {status} ({time.perf_counter() - t0:.0f} s)", flush=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    durations, codes = {}, {}
    for name in [s for s in a.only.split(",") if s]:
        print(f"\n=== {name} ===", flush=True)
        t = time.perf_counter()
        args = STEPS[name] + (QUICK[name] if a.quick else [])
        codes[name] = subprocess.call([PY, str(BENCH / args[0]), *args[1:]], cwd=ROOT, env=env)
        durations[name] = round(time.perf_counter() - t, 1)
        print(f"=== {name}: exit {codes[name]}, {durations[name]:.0f} s ===", flush=True)
    total = round(time.perf_counter() - t0, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "run_all.json").write_text(json.dumps({
        "quick": a.quick, "install": status, "durations_s": durations, "exit_codes": codes, "total_s": total,
        "load_avg_at_end": os.getloadavg()}, indent=2) + "\n")
    print(f"\nall benchmarks: {total / 60:.1f} min ({', '.join(f'{k} {v:.0f} s' for k, v in durations.items())}); "
          f"results in {RESULTS.relative_to(ROOT)}/", flush=True)
    print_targets()
    return 0 if all(c == 0 for c in codes.values()) else 1


def print_targets() -> None:
    print("targets:")
    for name in STEPS:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        targets = data.get("targets") or {}
        if "met" in targets:  # render: a single target
            targets = {"pixtract/pdftoppm cpu <= 0.1": targets}
        for label, t in targets.items():
            if not isinstance(t, dict):  # startup: label -> met (the measured figure is in the label's key)
                t = {"met": t, "measured": "see results"}
            met = {True: "MET", False: "NOT MET", None: "n/a"}[t.get("met")]
            print(f"  {name:10s} {label:40s} measured {t.get('measured')}: {met}")


if __name__ == "__main__":
    sys.exit(main())
