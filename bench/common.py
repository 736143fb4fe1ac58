"""Shared benchmark plumbing: paths, machine facts, generated inputs, the emulator in its own
process, process-tree sampling (RSS and CPU with psutil), pixtract and zerox runs, JSON output.

Nothing here is part of pixtract: bench/ only drives it from outside, the way a user would
(``pixtract run`` in a subprocess, the emulator as a separate server).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
WORK = BENCH / ".work"  # generated PDFs, run outputs, Prefect home (git-ignored)
ZEROX_VENV = BENCH / ".zerox-venv"
PY = sys.executable
VISION_MODEL = "pixtral-large-2411"  # priced at $2/M in, $6/M out in pipeline/tokens.py
ZEROX_MODEL = "gpt-4o-mini"  # what zerox's README uses; litellm sends it to OPENAI_API_BASE
EMULATOR_MODELS = {"openai": [VISION_MODEL, "mistral-large-2411", ZEROX_MODEL]}
FAKE_KEY = "sk-bench-not-a-real-key"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))


# --- output ------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, flush=True)


def write_result(name: str, data: dict, results_dir: Path | str | None = None) -> Path:
    """bench/results/NAME.json (atomically), with the machine facts attached."""
    out = Path(results_dir or RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(), **data}
    path = out / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    log(f"  -> {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


_MACHINE: dict | None = None


def machine_info() -> dict:
    global _MACHINE
    if _MACHINE is None:
        import psutil

        cpu = platform.processor() or ""
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        from importlib.metadata import PackageNotFoundError, version

        versions = {}
        for dist in ("pixtract", "pymupdf", "pymupdf4llm", "pillow", "prefect", "httpx", "mistral-common",
                     "pypdfium2", "psutil", "matplotlib"):
            try:
                versions[dist] = version(dist)
            except PackageNotFoundError:
                versions[dist] = None
        zpy = ZEROX_VENV / "bin" / "python"
        if zpy.exists():
            r = subprocess.run([str(zpy), "-c", "from importlib.metadata import version as v; "
                                "print(v('py-zerox'), v('litellm'))"], capture_output=True, text=True)
            if r.returncode == 0:
                versions["py-zerox"], versions["litellm"] = r.stdout.split()
        versions["pdftoppm"] = _tool_version(["pdftoppm", "-v"])
        _MACHINE = {
            "nproc": os.cpu_count(), "cpu": cpu, "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
    return _MACHINE


def _tool_version(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except Exception:
        return None


# --- inputs ------------------------------------------------------------------------------------


def generated_pdf(pages: int, work: Path | None = None) -> Path:
    """A generated born-digital PDF of PAGES pages (text, 6-pt fine print, tables, drawings)."""
    from gen_pdfs import make_pdf

    path = Path(work or WORK) / "pdfs" / f"generated-{pages}.pdf"
    make_pdf(str(path), pages)
    return path


def fixture_pdfs() -> list[Path]:
    """The readable PDFs under fixtures/ (samples and real documents; broken ones left out)."""
    import pymupdf

    out = []
    for folder in ("samples", "real"):
        for p in sorted((ROOT / "fixtures" / folder).glob("*.pdf")):
            try:
                with pymupdf.open(p) as d:
                    if d.page_count > 0 and not d.needs_pass:
                        out.append(p)
            except Exception:
                continue
    return out


# --- the emulator in its own process -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefectServer:
    """A throwaway ``prefect server start`` (its own home under WORK) for runs that use a
    running server instead of the ephemeral API; ``api_url`` while inside the ``with``."""

    def __init__(self, work: Path | None = None, timeout: float = 120) -> None:
        self.home = Path(work or WORK) / "prefect-server-home"
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "PrefectServer":
        import urllib.request

        self.home.mkdir(parents=True, exist_ok=True)
        env = _quiet_env(PREFECT_HOME=self.home)
        self.log = open(self.home / "server.log", "ab")
        self.proc = subprocess.Popen([str(Path(PY).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                                      "--port", str(self.port), "--no-ui"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.api_url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"prefect server did not start in {self.timeout:.0f} s (log: {self.home / 'server.log'})")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
        self.log.close()


class EmulatorProcess:
    """``python -m tests.emulator.emulator`` on a free loopback port, controlled through its
    admin API (``self.remote``, a RemoteEmulator). Its CPU is its own process's, so it never
    counts against the client being measured."""

    def __init__(self, **config):
        self.config = {"models": EMULATOR_MODELS, "log_bodies": True, **config}
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> "EmulatorProcess":
        from tests.emulator.emulator import RemoteEmulator

        self.port = free_port()
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [PY, "-m", "tests.emulator.emulator", "--port", str(self.port), "--config", json.dumps(self.config)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self._log, env=_quiet_env())
        self.url = f"http://127.0.0.1:{self.port}"
        self.remote = RemoteEmulator(self.url)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.remote._http.get("/health").raise_for_status()
                break
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self._log.seek(0)
                    raise RuntimeError(f"emulator did not start: {self._log.read()[-2000:]!r}")
                time.sleep(0.1)
        return self

    def base_url(self, dialect: str = "openai") -> str:
        return self.remote.base_url(dialect)

    def reset(self, **config) -> None:
        """Clear log, faults and config, then apply the bench defaults plus CONFIG."""
        self.remote.reset()
        self.remote.configure(**{**self.config, **config})

    def cpu_seconds(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def chat_log(self) -> list[dict]:
        return [r for r in self.remote.requests if str(r.get("path", "")).endswith("/chat/completions")]

    def __exit__(self, *exc) -> None:
        try:
            self.remote.close()
        except Exception:
            pass
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def has_image(rec: dict) -> bool:
    """Whether a logged request carried an image (the emulator logs bodies with images shortened)."""
    return "data:image" in json.dumps(rec.get("body") or {})


def api_window(chats: list[dict]) -> dict:
    """Request-log figures: requests by status, answered pages, and the window from the first
    request's arrival to the last answered request's end."""
    if not chats:
        return {"requests": 0, "ok": 0, "window_s": None}
    by_status: dict[str, int] = {}
    for r in chats:
        by_status[str(r.get("status"))] = by_status.get(str(r.get("status")), 0) + 1
    ok = [r for r in chats if r.get("status") == 200]
    start = min(r["time"] for r in chats)
    end = max(r["time"] + (r.get("duration") or 0) for r in (ok or chats))
    return {"requests": len(chats), "by_status": by_status, "ok": len(ok), "first": start, "last": end,
            "window_s": round(end - start, 3)}


# --- process-tree sampling -----------------------------------------------------------------------


class TreeSampler(threading.Thread):
    """Samples a process and its descendants every ``interval`` s: summed RSS (peak and a
    timeline) and each process's CPU time (last value seen), classified as client or Prefect
    server (the ephemeral API is a ``uvicorn`` subprocess)."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self._halt = threading.Event()
        self.peak_rss = 0
        self.peak_client_rss = 0
        self.peak_server_rss = 0
        self.timeline: list[tuple[float, int]] = []
        self.cpu: dict[int, dict] = {}
        self.t0 = time.monotonic()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._halt.is_set():
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                break
            total = client = server = 0
            for p in procs:
                try:
                    with p.oneshot():
                        rss = p.memory_info().rss
                        t = p.cpu_times()
                        if p.pid not in self.cpu or self.cpu[p.pid]["role"] == "other":
                            # re-checked until it is known: a child seen right after fork() still
                            # shows its parent's command line until it exec()s uvicorn
                            self.cpu[p.pid] = {"role": _role(p, self.pid), "cpu": 0.0}
                        self.cpu[p.pid]["cpu"] = t.user + t.system
                except psutil.Error:
                    continue
                total += rss
                if self.cpu[p.pid]["role"] == "server":
                    server += rss
                else:
                    client += rss
            if total:
                self.peak_rss = max(self.peak_rss, total)
                self.peak_client_rss = max(self.peak_client_rss, client)
                self.peak_server_rss = max(self.peak_server_rss, server)
                self.timeline.append((round(time.monotonic() - self.t0, 2), total))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def cpu_by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for v in self.cpu.values():
            out[v["role"]] = out.get(v["role"], 0.0) + v["cpu"]
        return out


def _role(p, root_pid: int) -> str:
    if p.pid == root_pid:
        return "client"
    try:
        cmd = " ".join(p.cmdline())
    except Exception:
        cmd = ""
    return "server" if ("uvicorn" in cmd or "prefect" in cmd) else "other"


def run_measured(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None, timeout: float = 900,
                 interval: float = 0.1, stdout_path: Path | None = None) -> dict:
    """Run CMD with the tree sampler; exact CPU of the whole tree (client plus every descendant it
    reaped, i.e. the ephemeral server) from wait4()."""
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd or ROOT, stdout=out, stderr=subprocess.STDOUT)
    sampler = TreeSampler(proc.pid, interval)
    sampler.start()
    deadline = time.monotonic() + timeout
    status = None
    while status is None:
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, rusage = st, ru
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    if stdout_path:
        out.close()
    roles = sampler.cpu_by_role()
    tree_cpu = rusage.ru_utime + rusage.ru_stime
    server_cpu = roles.get("server", 0.0)
    return {
        "rc": proc.returncode, "wall_s": round(wall, 3), "cpu_tree_s": round(tree_cpu, 3),
        "cpu_server_s": round(server_cpu, 3), "cpu_other_s": round(roles.get("other", 0.0), 3),
        "cpu_client_s": round(tree_cpu - server_cpu - roles.get("other", 0.0), 3),
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1), "peak_client_rss_mb": round(sampler.peak_client_rss / 2**20, 1),
        "peak_server_rss_mb": round(sampler.peak_server_rss / 2**20, 1),
        "rss_timeline": _downsample(sampler.timeline, 120),
    }


def _downsample(points: list, n: int) -> list:
    if len(points) <= n:
        return points
    step = len(points) / n
    return [points[int(i * step)] for i in range(n)] + [points[-1]]


# --- pixtract ----------------------------------------------------------------------------------


def _quiet_env(**extra) -> dict:
    env = dict(os.environ)
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
                "PYTHONDONTWRITEBYTECODE": "1"})
    env.pop("PREFECT_API_URL", None)
    # The figures before pixtract managed its own server were taken on the ephemeral API; the
    # benchmarks keep it unless they ask otherwise (bench_startup.py compares the two).
    env["PIXTRACT_PREFECT"] = "ephemeral"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def prefect_home(work: Path | None = None) -> Path:
    """One Prefect home for all bench runs: the first run migrates its database, later runs
    start the ephemeral server on the existing one (as a user's second run would)."""
    home = Path(work or WORK) / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def run_pixtract(inputs: list[Path], out: Path, emu: EmulatorProcess, *, concurrency: int,
                 extra: list[str] = (), work: Path | None = None, timeout: float = 900,
                 profile: str = "openai", api_url: str | None = None) -> dict:
    """``pixtract run`` in a subprocess against the emulator, measured; plus what its outputs say."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [PY, "-m", "pixtract.flows.cli", "run", *map(str, inputs), "--out", str(out), "--profile", profile,
           "--base-url", emu.base_url(profile), "--vision-model", VISION_MODEL, "--concurrency", str(concurrency),
           "--no-progress", *extra]
    env = _quiet_env(PREFECT_HOME=prefect_home(work), OPENAI_API_KEY=FAKE_KEY, MISTRAL_API_KEY=FAKE_KEY,
                     **({"PREFECT_API_URL": api_url} if api_url else {}))
    out.parent.mkdir(parents=True, exist_ok=True)
    res = run_measured(cmd, env=env, timeout=timeout, stdout_path=out.parent / f"{out.name}.log")
    res["outputs"] = pixtract_outputs(out)
    return res


def pixtract_outputs(out: Path) -> dict:
    """Pages answered, failed, empty and by route, from results.jsonl."""
    path = out / "results.jsonl"
    recs = []
    if path.exists():
        recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    routes: dict[str, int] = {}
    failed = empty = 0
    tokens_in = tokens_out = 0
    cost = 0.0
    for r in recs:
        routes[r.get("route") or "none"] = routes.get(r.get("route") or "none", 0) + 1
        if r.get("status") != "ok":
            failed += 1
        elif not (r.get("answer") or "").strip():
            empty += 1
        u = r.get("usage") or {}
        tokens_in += u.get("input_tokens") or 0
        tokens_out += u.get("output_tokens") or 0
        cost += r.get("cost_usd") or 0.0
    return {"records": len(recs), "ok": len(recs) - failed, "failed": failed, "ok_but_empty": empty,
            "by_route": routes, "input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": round(cost, 6)}


# --- zerox (in its own virtualenv) -------------------------------------------------------------


def zerox_python() -> Path | None:
    py = ZEROX_VENV / "bin" / "python"
    if not py.exists():
        return None
    r = subprocess.run([str(py), "-c", "import pyzerox"], capture_output=True)
    return py if r.returncode == 0 else None


def have_pdftoppm() -> bool:
    return shutil.which("pdftoppm") is not None and shutil.which("pdftocairo") is not None


def run_zerox(pdf: Path, emu: EmulatorProcess, *, concurrency: int, work: Path | None = None,
              timeout: float = 900, tag: str = "zerox") -> dict:
    """zerox on one PDF in a subprocess of the zerox venv, pointed at the emulator's OpenAI route."""
    py = zerox_python()
    if py is None:
        raise RuntimeError("zerox is not installed (bench/.zerox-venv); run bench/run_all.py")
    out = Path(work or WORK) / "runs" / f"{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = _quiet_env(OPENAI_API_KEY=FAKE_KEY, OPENAI_API_BASE=emu.base_url("openai"),
                     OPENAI_BASE_URL=emu.base_url("openai"), LITELLM_LOCAL_MODEL_COST_MAP="True",
                     LITELLM_LOG="CRITICAL")
    cmd = [str(py), str(BENCH / "zerox_run.py"), str(pdf), "--model", ZEROX_MODEL, "--concurrency",
           str(concurrency), "--json", str(out)]
    res = run_measured(cmd, env=env, timeout=timeout, stdout_path=out.with_suffix(".log"))
    res["outputs"] = json.loads(out.read_text()) if out.exists() else {"error": "no output"}
    return res
