"""Benchmark: how soon an ad hoc run starts and ends (issue 18).

For a 3-page PDF against the emulator (zero latency), median of N runs each, in one process:
seconds from the command's start to its first model request and to its exit, and peak RSS of
the pixtract process, for
  * ``warm``: the managed Prefect server already running;
  * ``cold``: the managed server not running (as after a reboot; its database exists);
  * ``fresh``: no data folder at all (the very first run: the server creates its database);
  * ``ephemeral``: Prefect's ephemeral API (PIXTRACT_PREFECT=ephemeral, the old default);
  * ``zerox`` on the same PDF, when bench/.zerox-venv exists (bench/run_all.py installs it).
Also: peak RSS of the managed server, the share of task runs in the Prefect database after the
runs (managed vs ephemeral), and a 200-page run with fixed latency whose managed server is
SIGKILLed mid-run, timed against an undisturbed one.

    python bench/bench_startup.py [--runs 5] [--no-kill]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (PY, ROOT, WORK, EmulatorProcess, _quiet_env, generated_pdf, log, run_measured,  # noqa: E402
                    run_zerox, write_result, zerox_python)

from tests.emulator.helpers import FAKE_KEY  # noqa: E402

PDF = ROOT / "fixtures" / "samples" / "report.pdf"


def _env(mode: str, data: Path, home: Path) -> dict:
    return _quiet_env(PIXTRACT_PREFECT=mode, PIXTRACT_DATA_DIR=data, PREFECT_HOME=home, MISTRAL_API_KEY=FAKE_KEY,
                      PIXTRACT_SERVER_IDLE=3600)


def _state(data: Path) -> dict | None:
    try:
        return json.loads((data / "prefect-server" / "state.json").read_text())
    except OSError:
        return None


def _server(data: Path, action: str, env: dict) -> None:
    subprocess.run([PY, "-m", "pixtract.flows.cli", "server", action], env=env, cwd=ROOT, capture_output=True, timeout=300)


def one_run(emu: EmulatorProcess, env: dict, out: Path, pdf: Path = PDF) -> dict:
    emu.reset()
    cmd = [PY, "-m", "pixtract.flows.cli", "run", str(pdf), "--out", str(out), "--profile", "mistral", "--base-url",
           emu.base_url("mistral"), "--no-progress", "--overwrite"]
    # A cache of its own: a cached page sends no request, and the first request is what is timed.
    env = {**env, "PIXTRACT_CACHE_DIR": tempfile.mkdtemp(prefix="cache-", dir=out.parent)}
    t0 = time.time()
    res = run_measured(cmd, env=env, timeout=900, stdout_path=out.parent / f"{out.name}.log")
    chats = emu.chat_log()
    first = min((c["time"] for c in chats), default=None)
    return {"rc": res["rc"], "exit_s": res["wall_s"], "first_request_s": round(first - t0, 3) if first else None,
            "peak_rss_mb": res["peak_client_rss_mb"], "cpu_s": res["cpu_tree_s"], "requests": len(chats)}


def _median(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(vals), 3) if vals else None


def summary(rows: list[dict]) -> dict:
    return {"runs": rows, **{f"median_{k}": _median(rows, k) for k in ("first_request_s", "exit_s", "peak_rss_mb")}}


def server_rss_mb(data: Path) -> float | None:
    import psutil

    st = _state(data)
    if not st:
        return None
    try:
        root = psutil.Process(st["pid"])
        return round(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20, 1)
    except psutil.Error:
        return None


def task_runs_kept_managed(data: Path, flow_runs: int) -> dict:
    import httpx

    st = _state(data)
    api = f"http://127.0.0.1:{st['port']}/api"
    time.sleep(5)  # the server's recorder catches up after the runs
    runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=60).json()
    tasks = httpx.post(f"{api}/task_runs/filter", json={}, timeout=60).json()
    done = [t for t in tasks if t["state_type"] == "COMPLETED"]
    return {"flow_runs": len(runs), "task_runs": len(done), "expected_task_runs": flow_runs}


def task_runs_kept_ephemeral(home: Path, flow_runs: int) -> dict:
    db = home / "prefect.db"
    with sqlite3.connect(db) as con:
        runs = con.execute("select count(*) from flow_run").fetchone()[0]
        tasks = con.execute("select count(*) from task_run where state_type = 'COMPLETED'").fetchone()[0]
    return {"flow_runs": runs, "task_runs": tasks, "expected_task_runs": flow_runs}


def kill_mid_run(emu: EmulatorProcess, data: Path, home: Path, work: Path) -> dict:
    """A 200-page run (50 ms a request) undisturbed, then with the managed server SIGKILLed mid-run."""
    pdf = generated_pdf(200, work)
    env = _env("managed", data, home)
    _server(data, "start", env)
    emu.reset(latency=0.05)
    base = one_run_latency(emu, env, work / "kill-base", pdf)
    emu.reset(latency=0.05)
    cmd = [PY, "-m", "pixtract.flows.cli", "run", str(pdf), "--out", str(work / "kill"), "--profile", "mistral",
           "--base-url", emu.base_url("mistral"), "--no-progress", "--overwrite"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while len(emu.chat_log()) < 40 and proc.poll() is None:
        time.sleep(0.1)
    st = _state(data)
    os.killpg(st["pid"], signal.SIGKILL)
    out, err = proc.communicate(timeout=900)
    wall = time.perf_counter() - t0
    results = work / "kill" / "results.jsonl"
    if not results.exists():
        return {"error": f"no results (rc {proc.returncode}): {err[-1500:]}", "undisturbed_s": base}
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    return {"undisturbed_s": base, "killed_s": round(wall, 3), "ratio": round(wall / base, 3), "rc": proc.returncode,
            "ok_pages": sum(r["status"] == "ok" for r in recs), "pages": 200,
            "history_line": "history of this run is incomplete" in err, "traceback": "Traceback" in err}


def one_run_latency(emu, env, out, pdf) -> float:
    t0 = time.perf_counter()
    subprocess.run([PY, "-m", "pixtract.flows.cli", "run", str(pdf), "--out", str(out), "--profile", "mistral", "--base-url",
                    emu.base_url("mistral"), "--no-progress", "--overwrite"], env=env, cwd=ROOT,
                   capture_output=True, timeout=900)
    return round(time.perf_counter() - t0, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-kill", action="store_true", help="skip the 200-page server-kill run")
    args = ap.parse_args()
    work = Path(WORK) / "startup"
    work.mkdir(parents=True, exist_ok=True)
    data, home = work / "data", work / "prefect-home"
    result: dict = {"pdf": str(PDF.relative_to(ROOT)), "runs_each": args.runs}
    with EmulatorProcess() as emu:
        # the very first run: nothing exists yet
        import shutil

        shutil.rmtree(data, ignore_errors=True)
        result["fresh"] = summary([one_run(emu, _env("managed", data, home), work / "fresh")])
        log(f"fresh: {result['fresh']['median_exit_s']} s")
        cold, warm = [], []
        for i in range(args.runs):
            env = _env("managed", data, home)
            _server(data, "stop", env)
            cold.append(one_run(emu, env, work / f"cold{i}"))
            warm.append(one_run(emu, env, work / f"warm{i}"))  # the server the cold run started
        result["cold"], result["warm"] = summary(cold), summary(warm)
        result["managed_server_rss_mb"] = server_rss_mb(data)
        result["history_managed"] = task_runs_kept_managed(data, 2 * args.runs + 1)
        eph_home = work / "eph-home"
        shutil.rmtree(eph_home, ignore_errors=True)
        eph = [one_run(emu, _env("ephemeral", data, eph_home), work / f"eph{i}") for i in range(args.runs)]
        result["ephemeral"] = summary(eph)
        result["history_ephemeral"] = task_runs_kept_ephemeral(eph_home, args.runs)
        if zerox_python() is not None:
            zx = []
            for i in range(args.runs):
                emu.reset()
                t0 = time.time()
                res = run_zerox(PDF, emu, concurrency=8, work=work, tag=f"zerox{i}")
                first = min((c["time"] for c in emu.chat_log()), default=None)
                zx.append({"rc": res["rc"], "exit_s": res["wall_s"], "peak_rss_mb": res["peak_client_rss_mb"],
                           "first_request_s": round(first - t0, 3) if first else None})
            result["zerox"] = summary(zx)
        else:
            result["zerox"] = None
        if not args.no_kill:
            result["server_killed_mid_run"] = kill_mid_run(emu, data, home, work)
        _server(data, "stop", _env("managed", data, home))
    for mode in ("fresh", "cold", "warm", "ephemeral", "zerox"):
        r = result.get(mode)
        if r:
            log(f"{mode:9s} first request {r['median_first_request_s']} s, exit {r['median_exit_s']} s, "
                f"peak RSS {r['median_peak_rss_mb']} MB")
    log(f"managed server RSS {result['managed_server_rss_mb']} MB; history kept: managed "
        f"{result['history_managed']}, ephemeral {result['history_ephemeral']}")
    if "server_killed_mid_run" in result:
        log(f"server killed mid-run: {result['server_killed_mid_run']}")
    result["targets"] = {
        "warm_first_request_s<=1.5": (result["warm"]["median_first_request_s"] or 99) <= 1.5,
        "warm_exit_s<=2.5": (result["warm"]["median_exit_s"] or 99) <= 2.5,
        "warm_peak_rss_mb<250": (result["warm"]["median_peak_rss_mb"] or 999) < 250,
        "cold_no_slower_than_ephemeral": (result["cold"]["median_exit_s"] or 99)
        <= (result["ephemeral"]["median_exit_s"] or 0),
        "all_task_runs_kept": result["history_managed"]["task_runs"] >= result["history_managed"]["expected_task_runs"],
    }
    write_result("startup", result)


if __name__ == "__main__":
    main()
