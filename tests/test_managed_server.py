"""The warm local Prefect server pixtract manages for ad hoc runs (issue 18): one server for
runs started together, every flow and task run in its history, an idle stop that leaves
nothing behind, a fresh server after a killed one, and usage errors before Prefect."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pymupdf
import pytest

from tests.emulator.helpers import FAKE_KEY

pytestmark = pytest.mark.prefect
ROOT = Path(__file__).resolve().parent.parent


def env_for(data: Path, idle: float = 600, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env.update(PIXTRACT_DATA_DIR=str(data), PIXTRACT_PREFECT="managed", PIXTRACT_SERVER_IDLE=str(idle),
               MISTRAL_API_KEY=FAKE_KEY, **extra)
    return env


def pixtract(env, *args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pixtract.flows.cli", *map(str, args)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            start_new_session=True, **kw)


def state(data: Path) -> dict | None:
    try:
        return json.loads((data / "prefect-server" / "state.json").read_text())
    except OSError:
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _running_flow_runs(data: Path) -> int:
    """Flow runs the managed server holds as running (0 while it cannot be asked)."""
    import httpx

    st = state(data)
    if not st:
        return 0
    try:
        r = httpx.post(f"http://127.0.0.1:{st['port']}/api/flow_runs/filter", timeout=5,
                       json={"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}})
        return len(r.json()) if r.status_code == 200 else 0
    except (httpx.HTTPError, ValueError):
        return 0


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def stop_server(data: Path) -> None:
    subprocess.run([sys.executable, "-m", "pixtract.flows.cli", "server", "stop"], env=env_for(data), cwd=ROOT,
                   capture_output=True, timeout=60)


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    yield folder
    stop_server(folder)


def api(data: Path, path: str, body: dict | None = None):
    st = state(data)
    return httpx.post(f"http://127.0.0.1:{st['port']}/api{path}", json=body or {}, timeout=30).json()


def test_two_runs_started_together_share_one_server_and_all_their_runs_are_kept(data, samples, tmp_path):
    env = env_for(data)
    runs = [pixtract(env, "run", samples / "report.pdf", "--out", tmp_path / f"o{i}", "--no-progress")
            for i in range(2)]
    outs = [p.communicate(timeout=300) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outs
    st = state(data)
    assert st and alive(st["pid"])
    assert all(f"http://127.0.0.1:{st['port']}" in err for _, err in outs)  # both name the one UI URL
    flow_runs = api(data, "/flow_runs/filter")
    assert len([f for f in flow_runs if f["state_type"] == "COMPLETED"]) == 2
    ids = {f["id"] for f in flow_runs}
    # every task run reaches the history (the server outlives the runs and catches up)
    def completed_tasks():
        tasks = [t for t in api(data, "/task_runs/filter") if t["flow_run_id"] in ids
                 and t["state_type"] == "COMPLETED"]
        return tasks if {t["flow_run_id"] for t in tasks} == ids else None

    tasks = wait_for(completed_tasks, 60, "the task runs in the server's history")
    assert len(tasks) == 2  # one chunk task (answer-pages) per 3-page run


def test_idle_stop_leaves_nothing_and_the_next_run_starts_a_new_server(data, samples, tmp_path):
    env = env_for(data, idle=2)
    first = pixtract(env, "run", samples / "rotated.pdf", "--out", tmp_path / "a", "--no-progress")
    assert first.wait(300) == 0, first.communicate()
    pid = state(data)["pid"]
    wait_for(lambda: state(data) is None and not alive(pid), 90, "the idle server to stop")
    assert list((data / "prefect-server" / "clients").iterdir()) == []
    second = pixtract(env, "run", samples / "rotated.pdf", "--out", tmp_path / "b", "--no-progress")
    assert second.wait(300) == 0, second.communicate()
    assert state(data)["pid"] != pid


def test_a_killed_server_is_noticed_and_replaced(data, samples, tmp_path):
    env = env_for(data)
    first = pixtract(env, "run", samples / "rotated.pdf", "--out", tmp_path / "a", "--no-progress")
    assert first.wait(300) == 0, first.communicate()
    old = state(data)
    os.killpg(old["pid"], signal.SIGKILL)  # the supervisor and the server
    wait_for(lambda: not alive(old["pid"]), 30, "the kill")
    second = pixtract(env, "run", samples / "rotated.pdf", "--out", tmp_path / "b", "--no-progress")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    new = state(data)
    assert new["pid"] != old["pid"] and alive(new["pid"])


def test_server_commands(data):
    env = env_for(data)
    status = subprocess.run([sys.executable, "-m", "pixtract.flows.cli", "server", "status"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 1 and "no Prefect server running" in status.stdout
    start = subprocess.run([sys.executable, "-m", "pixtract.flows.cli", "server", "start"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert start.returncode == 0 and "started at http://127.0.0.1:" in start.stdout
    status = subprocess.run([sys.executable, "-m", "pixtract.flows.cli", "server", "status"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "0 run(s) in progress" in status.stdout
    pid = state(data)["pid"]
    stop = subprocess.run([sys.executable, "-m", "pixtract.flows.cli", "server", "stop"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert not alive(pid) and state(data) is None


@pytest.mark.parametrize("argv", [
    ["run", "/no/such/file.pdf", "--out", "OUT"],
    ["run", "fixtures/samples", "--out", "OUT", "--concurrency", "0"],
    ["run", "fixtures/samples", "--out", "OUT", "--profile", "mistral", "--budget-usd", "1",
     "--vision-model", "unpriced"],
])
def test_a_usage_error_comes_before_prefect_is_imported(tmp_path, argv):
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    code = (f"import sys; from pixtract.flows.cli import main\n"
            f"try:\n    rc = main({argv!r})\nexcept SystemExit as e:\n    rc = e.code\n"
            f"print(rc, sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')))")
    done = subprocess.run([sys.executable, "-c", code], env=env_for(tmp_path / "data"), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "2 []", done.stdout + done.stderr
    assert not (tmp_path / "data").exists()  # and no server was started for it


def test_losing_the_server_mid_run_costs_no_page(data, emu, tmp_path):
    emu.reset()
    emu.configure(latency=1.0)  # 25 s of pages: on a loaded machine the flow run can take 15 s to start
    pdf = pymupdf.open()
    for i in range(200):
        pdf.new_page(width=300, height=200).insert_text((20, 40), f"Page {i + 1}: amount {i * 7} EUR")
    pdf.save(tmp_path / "long.pdf")
    env = env_for(data)
    # The server is up first, so that the flow run begins while most pages are still to go
    # (pages go out while Prefect creates the flow run).
    start = subprocess.run([sys.executable, "-m", "pixtract.flows.cli", "server", "start"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert start.returncode == 0, start.stderr
    run = pixtract(env, "run", tmp_path / "long.pdf", "--out", tmp_path / "out", "--no-progress", "--profile",
                   "mistral", "--base-url", emu.base_url("mistral"))

    def chats() -> int:
        return len([r for r in emu.requests if r.get("path", "").endswith("/chat/completions")])

    # Requests alone do not show the flow run has begun: wait until the server holds it as
    # running, then kill the server under it.
    wait_for(lambda: _running_flow_runs(data) or run.poll() is not None, 300, "a running flow run")
    assert run.poll() is None, run.communicate()
    os.killpg(state(data)["pid"], signal.SIGKILL)
    killed_at = chats()
    assert killed_at < 150, f"the kill came too late to be mid-run ({killed_at} requests)"
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "Traceback" not in err
    assert err.count("history of this run is incomplete") == 1
    recs = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 200 and all(r["status"] == "ok" and r["route"] == "vision" for r in recs)
