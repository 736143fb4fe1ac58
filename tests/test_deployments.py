"""Scheduled inbox batches on a real Prefect server with two process workers.

One module-scoped scenario (a few minutes at most): a throwaway ``prefect server start``
(SQLite, analytics and UI off), a process work pool, two workers ``w1`` and ``w2`` (own process
groups, so SIGTERM stops them cleanly), the in-process model emulator on 127.0.0.1, and
``pixtract deploy``. Then:

1. run 1: six documents (one of them corrupt) in five parts fanned out over both workers, the
   API key in the workers' environment;
2. the same inbox into a second output root with ``w2`` stopped, the key from a Prefect Secret
   block named in that job file (the emulator now accepts only that key), in three parts of
   up to 4 pages: the same outputs from one worker as from two, whatever the split;
3. run 2 of the first inbox: nothing unchanged is sent again, the failed document is retried;
4. meanwhile ``inbox_batch`` called in a process of its own without a part deployment: its
   parts run one after another in that process;
5. ``pixtract serve`` (started early, so its start-up overlaps the runs): one run of the same
   inbox with OpenRouter's dialect, alongside run 2, from that one process: the same outputs as
   the in-process run of step 4.

Meanwhile ``prefect deploy --all`` registers the committed prefect.yaml (with a job whose
inbox is empty, in case its schedule fires).

The tests below check what the scenario left: outputs, index, workers, requests, artifacts,
and that neither API key appears anywhere the runs wrote or the server stored.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pixtract.outputs import read_results
from tests.emulator.emulator import Emulator
from tests.emulator.helpers import FAKE_KEY

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(600)]

BLOCK_KEY = "sk-block-SECRET-7f3a9c"  # the key in the Prefect Secret block (run 3)
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
DOCS = ["report.pdf", "scanned.pdf", "chart.png", "multi.tiff", "scan.bmp", "corrupt.pdf"]
PAGES = {"report.pdf": 3, "scanned.pdf": 1, "chart.png": 1, "multi.tiff": 2, "scan.bmp": 1, "scan.webp": 1}
POOL, NAME = "pixtract", "itest"  # the pool prefect.yaml names
# a daily schedule far from now, so the scheduler never starts a run during the test
CRON_HOUR = (time.gmtime().tm_hour + 12) % 24
CRON = f"0 {CRON_HOUR} * * *"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 30, sig: int = signal.SIGTERM) -> int | None:
    """Signal the process group (SIGTERM), wait; SIGKILL if it will not go."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode


class Stack:
    """Server, workers and the API, for one test module."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = dict(
            os.environ, PREFECT_HOME=str(tmp / "prefect-home"), PREFECT_API_URL=self.api,
            PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_UI_ENABLED="false", DO_NOT_TRACK="1",
            PREFECT_LOGGING_LEVEL="INFO", PREFECT_SERVER_LOGGING_LEVEL="WARNING",
            PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="5",
        )
        self.env.pop("MISTRAL_API_KEY", None)
        self.procs: dict[str, subprocess.Popen] = {}
        self.http = httpx.Client(base_url=self.api, timeout=30)

    def start(self, name: str, cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        proc = subprocess.Popen(cmd, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd or self.tmp, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def cli(self, *args: str, timeout: float = 120) -> str:
        out = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout,
                             cwd=self.tmp, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, f"{args}: {out.stdout}\n{out.stderr}"
        return out.stdout

    def wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.procs["server"].poll() is None, (self.logs / "server.log").read_text()[-3000:]
            try:
                if self.http.get("/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError("prefect server did not become healthy")

    def post(self, path: str, body: dict | None = None):
        """POST, retried while SQLite is busy (the server answers 503 then, as Prefect's client expects)."""
        for attempt in range(20):
            r = self.http.post(path, json=body or {})
            if r.status_code not in (429, 503) or attempt == 19:
                r.raise_for_status()
                return r.json()
            time.sleep(0.5)

    def get(self, path: str) -> httpx.Response | None:
        """A GET that rides out a busy server: SQLite under two workers on 2 cores can stall a
        read for longer than the client's timeout; the callers poll until their own deadline."""
        try:
            return self.http.get(path)
        except httpx.TransportError:
            return None

    def deployment(self, name: str, timeout: float = 0) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(f"/deployments/name/{name}")
            if r is not None and r.status_code == 200:
                return r.json()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.5)

    def run_deployment(self, params: dict | None = None, timeout: float = 300, name: str = NAME) -> dict:
        return self.wait_run(self.start_run(params, name), timeout)

    def start_run(self, params: dict | None = None, name: str = NAME) -> dict:
        dep = self.deployment(f"inbox-batch/{name}", timeout=60)
        assert dep, f"no deployment inbox-batch/{name}\n{self.tail()}"
        return self.post(f"/deployments/{dep['id']}/create_flow_run",
                         {"parameters": params or {}, "idempotency_key": os.urandom(8).hex()})

    def wait_run(self, run: dict, timeout: float = 300) -> dict:
        """Until the inbox run ends. Every run of this inbox has the corrupt document, so the
        night is incomplete, and the flow run says so: Failed, named "Incomplete"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.get(f"/flow_runs/{run['id']}")
            if r is None:
                continue
            fr = r.raise_for_status().json()
            if fr["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                assert (fr["state_type"], fr["state_name"]) == ("FAILED", "Incomplete"), (fr["state"], self.tail())
                assert "INCOMPLETE: 1 of" in fr["state"]["message"] and "unreadable_file" in fr["state"]["message"]
                return fr
            time.sleep(0.5)
        raise AssertionError(f"inbox run did not finish in {timeout} s\n{self.tail()}")

    def wait_workers(self, names: set[str], timeout: float = 120) -> None:
        """Until every named worker has reported to the pool (so the parts can spread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = self.post(f"/work_pools/{POOL}/workers/filter")
            if names <= {w["name"] for w in workers if w.get("status") == "ONLINE"}:
                return
            time.sleep(0.5)
        raise AssertionError(f"workers {names} not online\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.logs.glob("*.log"))

    def paged(self, path: str, body: dict | None = None) -> list[dict]:
        out, offset = [], 0
        while True:
            page = self.post(path, {**(body or {}), "limit": 200, "offset": offset})
            out += page
            if len(page) < 200:
                return out
            offset += 200

    def stop_all(self) -> dict[str, int | None]:
        codes = {}
        for name in [n for n in self.procs if n != "server"] + ["server"]:
            if name in self.procs:
                codes[name] = _stop(self.procs[name], sig=signal.SIGINT if name == "serve" else signal.SIGTERM)
        self.http.close()
        return codes


def _job(path: Path, emu, inbox: Path, out: str, secret: str | None = None, profile: str = "mistral") -> Path:
    lines = [f'inputs = ["{inbox}"]', f'out = "{out}"', f'profile = "{profile}"', "", "[endpoint]",
             f'base_url = "{emu.base_url(profile)}"', "max_retries = 1", "backoff_base = 0.01"]
    if secret:
        lines.append(f'api_key_secret = "{secret}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def _chats(emu, dialect: str = "mistral") -> int:
    return sum(1 for r in emu.requests
               if r.get("path", "").startswith(f"/{dialect}/") and r["path"].endswith("/chat/completions"))


def _only_run(out: Path, before: set[str] = frozenset()) -> Path:
    runs = [p for p in (out / "runs").iterdir() if p.name not in before]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, samples):
    tmp = tmp_path_factory.mktemp("deploy")
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    inbox = tmp / "inbox"
    inbox.mkdir()
    for name in DOCS:
        shutil.copy(samples / name, inbox / name)
    emu = Emulator().start()
    stack = Stack(tmp)
    try:
        stack.start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(stack.port), "--no-ui", "--analytics-off"])
        stack.wait_healthy()
        timings["server"] = time.monotonic() - t0
        stack.cli(str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process")
        worker_env = dict(stack.env, MISTRAL_API_KEY=FAKE_KEY)
        for w in ("w1", "w2"):
            stack.start(w, [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", w, "--limit", "2"],
                        env=worker_env)
        job = _job(tmp / "job.toml", emu, inbox, "out")
        deploy = stack.start("deploy", [str(BIN / "pixtract"), "deploy", "--job", str(job), "--cron", CRON,
                                        "--name", NAME, "--pool", POOL, "--pages-per-part", "2"])
        (tmp / "empty").mkdir()
        job_y = _job(tmp / "job_yaml.toml", emu, tmp / "empty", "out_yaml")
        yaml_deploy = stack.start("prefect-deploy", [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
                                  env=dict(stack.env, PIXTRACT_JOB=str(job_y)), cwd=ROOT)
        job_s = _job(tmp / "job_s.toml", emu, inbox, "out_s", profile="openrouter")
        stack.start("serve", [str(BIN / "pixtract"), "serve", "--job", str(job_s), "--cron", CRON,
                              "--name", "served"],
                    env=dict(stack.env, OPENROUTER_API_KEY=FAKE_KEY, PREFECT_RUNNER_POLL_FREQUENCY="1"))
        # the deployments exist before deploy has finished checking the schedule
        assert stack.deployment(f"inbox-batch/{NAME}", timeout=120), stack.tail()
        stack.wait_workers({"w1", "w2"})
        timings["deployed"] = time.monotonic() - t0
        # the Secret block for step 2, saved while run 1 goes on (the key goes in by stdin)
        saver = subprocess.Popen([sys.executable, "-c", "import sys; from prefect.blocks.system import Secret; "
                                  "Secret(value=sys.stdin.read()).save('mistral-key', overwrite=True)"],
                                 stdin=subprocess.PIPE, text=True, env=stack.env, cwd=tmp)
        saver.stdin.write(BLOCK_KEY)
        saver.stdin.close()

        # run 1: two workers, the key from their environment
        run1 = stack.run_deployment({"poll_seconds": 0.5})
        chats1 = _chats(emu)
        timings["run1"] = time.monotonic() - t0
        assert saver.wait(120) == 0
        assert deploy.wait(120) == 0, stack.tail()
        assert yaml_deploy.wait(120) == 0, stack.tail()

        # the same inbox into a second output root: one worker, the key from the Secret block
        assert _stop(stack.procs.pop("w2")) is not None
        emu.configure(api_keys=[BLOCK_KEY])
        # meanwhile, the flow called in a process of its own with no part deployment: the parts
        # run one after another as subflows (OpenRouter's dialect, so the Mistral count stays apart)
        job_p = _job(tmp / "job_p.toml", emu, inbox, "out_p", secret="mistral-key", profile="openrouter")
        inproc = stack.start("inproc", [sys.executable, "-c", "import sys; from pixtract.flows.inbox import inbox_batch; "
                                        "s = inbox_batch(job=sys.argv[1], pages_per_part=2, return_state=True); "
                                        "sys.exit(0 if s.name == 'Incomplete' else 1)", str(job_p)])
        job_b = _job(tmp / "job_b.toml", emu, inbox, "out_b", secret="mistral-key")
        run1b = stack.run_deployment({"job": str(job_b), "poll_seconds": 0.5, "pages_per_part": 4})
        chats1b = _chats(emu) - chats1
        timings["run1_one_worker"] = time.monotonic() - t0
        assert inproc.wait(180) == 0, stack.tail()
        chats_p = _chats(emu, "openrouter")
        timings["in_process"] = time.monotonic() - t0

        # run 2: nothing new, the corrupt document retried; meanwhile pixtract serve runs the same
        # inbox with OpenRouter's dialect from its one process (no pool, no worker)
        emu.configure(api_keys=[FAKE_KEY])
        before2 = {p.name for p in (tmp / "out" / "runs").iterdir()}
        index1 = json.loads((tmp / "out" / "index.json").read_text())
        c, c_s = _chats(emu), _chats(emu, "openrouter")
        pending2 = stack.start_run({"poll_seconds": 0.5})
        pending_s = stack.start_run({"poll_seconds": 0.5}, name="served")
        run2 = stack.wait_run(pending2)
        chats2 = _chats(emu) - c
        run2_dir = _only_run(tmp / "out", before2)
        timings["run2"] = time.monotonic() - t0
        run_s = stack.wait_run(pending_s)
        chats_s = _chats(emu, "openrouter") - c_s
        timings["serve"] = time.monotonic() - t0

        api = {
            "flow_runs": stack.paged("/flow_runs/filter"),
            "logs": stack.paged("/logs/filter"),
            "artifacts": stack.paged("/artifacts/filter"),
            "deployments": stack.paged("/deployments/filter"),
            "blocks": stack.paged("/block_documents/filter", {"include_secrets": False}),
        }
    finally:
        codes = stack.stop_all()
        emu.stop()
    timings["stopped"] = time.monotonic() - t0
    print("timings (s from start):", {k: round(v, 1) for k, v in timings.items()})
    return dict(tmp=tmp, out=tmp / "out", run1=run1, run1b=run1b, run2=run2, run_s=run_s,
                run1_dir=_only_run(tmp / "out", {run2_dir.name}), run1b_dir=_only_run(tmp / "out_b"),
                run_s_dir=_only_run(tmp / "out_s"), run2_dir=run2_dir, index1=index1, chats1=chats1,
                chats1b=chats1b, chats2=chats2, chats_s=chats_s, chats_p=chats_p, run_p_dir=_only_run(tmp / "out_p"),
                api=api, codes=codes, timings=timings,
                logs=stack.logs, deploy_output=(stack.logs / "deploy.log").read_text())


@pytest.mark.parametrize("command", ["deploy", "serve"])
def test_usage_errors_before_anything_is_registered(command, tmp_path, capsys, monkeypatch):
    from pixtract.flows.cli import EXIT_USAGE, main

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    job = tmp_path / "job.toml"
    job.write_text('inputs = ["inbox"]\nout = "out"\n')
    cases = [
        (["--job", str(tmp_path / "missing.toml"), "--cron", "0 2 * * *"], "cannot read job file"),
        (["--job", str(job), "--cron", "at two"], "bad --cron"),
        (["--job", str(job), "--cron", "0 2 * * *", "--timezone", "Mars/Olympus"], "bad --cron"),
        (["--job", str(job), "--cron", "0 2 * * *"], "needs a running Prefect server"),
    ]
    for args, message in cases:
        assert main([command, *args]) == EXIT_USAGE
        assert message in capsys.readouterr().err


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def test_both_workers_ran_parts(scenario):
    parts = _manifest(scenario["run1_dir"])["parts"]
    # at most 2 pages a part: [chart, corrupt], [multi.tiff], [report p1-2], [report p3], [scan.bmp, scanned]
    assert [len(p["documents"]) for p in parts] == [2, 1, 1, 1, 2]
    assert [(p["first_page"], p["last_page"]) for p in parts][2:4] == [(1, 2), (3, 3)]
    assert all(p["status"] == "completed" for p in parts)
    assert {p["worker"] for p in parts} == {"w1", "w2"}
    assert len({p["pid"] for p in parts}) == 5  # each part its own process
    # the server agrees: every part is a completed extract-part flow run started by a worker
    runs = {r["id"]: r for r in scenario["api"]["flow_runs"]}
    for p in parts:
        fr = runs[p["flow_run_id"]]
        assert fr["state_type"] == "COMPLETED" and fr["infrastructure_pid"]
        assert fr["parent_task_run_id"]  # linked to the inbox run as a subflow
    one = _manifest(scenario["run1b_dir"])["parts"]
    assert [len(p["documents"]) for p in one] == [3, 2, 1] and {p["worker"] for p in one} == {"w1"}


def test_outputs_and_ledger_complete(scenario):
    run = scenario["run1_dir"]
    recs = read_results(str(run))
    by_doc: dict[str, list] = {}
    for r in recs:
        by_doc.setdefault(Path(r.document).name, []).append(r)
    assert set(by_doc) == set(DOCS)
    for name in DOCS[:-1]:
        assert sorted(r.page for r in by_doc[name]) == list(range(1, PAGES[name] + 1)), name
        assert all(r.status == "ok" and r.route == "vision" for r in by_doc[name]), name
    [bad] = by_doc["corrupt.pdf"]
    assert bad.status == "failed" and bad.page is None
    m = _manifest(run)
    assert m["ledger"]["balanced"] and m["ledger"]["duplicates"] == 0
    assert m["ledger"]["tasks"]["transcribe"] == {
        "pages_in": 9, "ok": {"vision": 8}, "failed": 1, "skipped": 0, "accounted": 9, "balanced": True}
    assert [Path(d["path"]).name for d in m["inputs"]] == sorted(DOCS)  # input order
    for name in DOCS[:-1]:
        md = (run / (Path(name).stem + ".md")).read_text()
        assert all(f"<!-- page {n} -->" in md for n in range(1, PAGES[name] + 1))
    assert (run / "report.html").exists()
    assert len(list((run / "thumbs").glob("*.jpg"))) == 8
    assert scenario["chats1"] == 8  # one request per page
    index = scenario["index1"]
    assert len(index) == 6
    assert {Path(e["path"]).name: e["status"] for e in index.values()} == {
        **{n: "ok" for n in DOCS[:-1]}, "corrupt.pdf": "failed"}
    assert {e["run"] for e in index.values()} == {run.name}


def _comparable(run_dir: Path) -> dict:
    recs = []
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        r.pop("latency_ms")
        recs.append(r)
    m = _manifest(run_dir)
    return {
        "records": recs,
        "markdown": {p.name: p.read_text() for p in sorted(run_dir.glob("*.md"))},
        "thumbs": {p.name: p.read_bytes() for p in sorted((run_dir / "thumbs").glob("*"))},
        "inputs": m["inputs"], "counts": m["counts"], "ledger": m["ledger"],
        "files": sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                        if p.is_file() and ".pixtract" not in p.parts),
    }


def test_one_worker_gives_the_same_outputs_as_two(scenario):
    assert scenario["chats1b"] == scenario["chats1"]
    assert _comparable(scenario["run1b_dir"]) == _comparable(scenario["run1_dir"])


def test_serve_runs_the_same_batch_from_one_process(scenario):
    # the same outputs as the in-process run of the same inbox with the same dialect
    assert scenario["chats_s"] == scenario["chats_p"] == 8
    assert _comparable(scenario["run_s_dir"]) == _comparable(scenario["run_p_dir"])
    parts = _manifest(scenario["run_s_dir"])["parts"]
    assert len(parts) == 1 and parts[0]["worker"] is None  # pages_per_part 50: one part; no worker
    served = [d for d in scenario["api"]["deployments"] if d["name"] == "served"]
    assert len(served) == 2 and all(d["work_pool_name"] is None for d in served)


def test_prefect_yaml_deploys(scenario):
    deps = [d for d in scenario["api"]["deployments"] if d["name"] == "nightly"]
    by_entry = {d["entrypoint"]: d for d in deps}
    assert set(by_entry) == {"pixtract.flows.inbox.inbox_batch", "pixtract.flows.inbox.extract_part"}
    parent = by_entry["pixtract.flows.inbox.inbox_batch"]
    assert parent["parameters"] == {"job": str(scenario["tmp"] / "job_yaml.toml"),
                                    "part_deployment": "extract-part/nightly", "pages_per_part": 50}
    assert [(s["schedule"]["cron"], s["active"]) for s in parent["schedules"]] == [("0 2 * * *", True)]
    assert all(d["work_pool_name"] == POOL for d in deps)
    assert parent["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]


def test_without_a_part_deployment_the_parts_run_in_process(scenario):
    run = scenario["run_p_dir"]
    recs = read_results(str(run))
    assert scenario["chats_p"] == 8
    assert sorted((Path(r.document).name, r.page, r.status, r.provider) for r in recs if r.status == "ok") == sorted(
        (name, n, "ok", "openrouter") for name in DOCS[:-1] for n in range(1, PAGES[name] + 1))
    m = _manifest(run)
    assert m["ledger"]["balanced"] and len(m["parts"]) == 5
    assert all(p["worker"] is None and p["status"] == "completed" for p in m["parts"])
    assert len({p["pid"] for p in m["parts"]}) == 1  # one process


def _sqlalchemy_2_1() -> bool:
    import sqlalchemy

    return tuple(int(x) for x in sqlalchemy.__version__.split(".")[:2]) >= (2, 1)


def test_cron_schedule_registered(scenario):
    deps = {(d["name"], d["flow_id"]): d for d in scenario["api"]["deployments"]}
    [parent] = [d for d in deps.values() if d["name"] == NAME and d["parameters"].get("job")]
    assert [(s["schedule"]["cron"], s["schedule"]["timezone"], s["active"]) for s in parent["schedules"]] == [
        (CRON, "UTC", True)]
    assert parent["parameters"] == {"job": str(scenario["tmp"] / "job.toml"),
                                    "part_deployment": f"extract-part/{NAME}", "pages_per_part": 2}
    assert parent["work_pool_name"] == POOL and parent["global_concurrency_limit"]["limit"] == 1
    [child] = [d for d in deps.values() if d["name"] == NAME and not d["parameters"].get("job")]
    assert child["work_pool_name"] == POOL and child["entrypoint"] == "pixtract.flows.inbox.extract_part"


@pytest.mark.xfail(_sqlalchemy_2_1(), strict=True,
                   reason="Prefect 3.8.8's scheduler cannot insert runs with SQLAlchemy 2.1 "
                          "('Can't evaluate bulk DML statement'); needs sqlalchemy<2.1")
def test_server_scheduled_the_nightly_runs(scenario):
    dep_ids = {d["id"] for d in scenario["api"]["deployments"] if d["name"] == NAME and d["parameters"].get("job")}
    upcoming = [fr for fr in scenario["api"]["flow_runs"]
                if fr["deployment_id"] in dep_ids and fr["auto_scheduled"] and fr["state_type"] == "SCHEDULED"]
    assert upcoming and all(fr["expected_start_time"][11:19] == f"{CRON_HOUR:02d}:00:00" for fr in upcoming)
    assert "next scheduled run" in scenario["deploy_output"]


def test_deploy_warns_when_the_server_schedules_nothing(scenario):
    warned = "has not scheduled any run" in scenario["deploy_output"]
    assert warned == _sqlalchemy_2_1(), scenario["deploy_output"]


def test_second_run_sends_nothing_for_unchanged_documents_and_retries_the_failed_one(scenario):
    assert scenario["chats2"] == 0
    recs = read_results(str(scenario["run2_dir"]))
    assert [(Path(r.document).name, r.status) for r in recs] == [("corrupt.pdf", "failed")]
    assert _manifest(scenario["run2_dir"])["inbox"]["unchanged"] == 5
    index = json.loads((scenario["out"] / "index.json").read_text())
    assert {Path(e["path"]).name: (e["status"], e["run"]) for e in index.values()} == {
        **{n: ("ok", scenario["run1_dir"].name) for n in DOCS[:-1]}, "corrupt.pdf": ("failed", scenario["run2_dir"].name)}


def test_secret_block_key_reached_the_model(scenario):
    # the emulator took only the Secret block's key during the one-worker run: every page was
    # answered by the vision model (a refused key would have fallen back to the local engine)
    recs = read_results(str(scenario["run1b_dir"]))
    assert [r.route for r in recs if r.status == "ok"] == ["vision"] * 8
    params = [fr["parameters"] for fr in scenario["api"]["flow_runs"] if fr["id"] == scenario["run1b"]["id"]]
    assert params and params[0]["job"].endswith("job_b.toml")


def test_artifacts_on_every_flow_run(scenario):
    api = scenario["api"]
    by_run: dict[str, set] = {}
    progress: dict[str, float] = {}
    for a in api["artifacts"]:
        by_run.setdefault(a["flow_run_id"], set()).add(a["type"])
        if a["type"] == "progress":
            progress[a["flow_run_id"]] = a["data"]
    for fr in api["flow_runs"]:
        if fr["name"] and fr["state_name"] in ("Completed", "Incomplete"):
            assert by_run.get(fr["id"]) == {"progress", "table", "markdown"}, fr["name"]
            assert progress[fr["id"]] == 100
    parent = scenario["run1"]["id"]
    [table] = [a for a in api["artifacts"] if a["flow_run_id"] == parent and a["type"] == "table"]
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    assert {(r["route"], r["status"], r["records"]) for r in rows} == {("vision", "ok", 8), ("-", "failed", 1)}
    assert sum(r["cost_usd"] for r in rows) > 0
    [md] = [a for a in api["artifacts"] if a["flow_run_id"] == parent and a["type"] == "markdown"]
    assert "report.html" in md["data"] and "results.jsonl" in md["data"] and "index.json" in md["data"]


def test_no_key_anywhere(scenario):
    keys = [FAKE_KEY.encode(), BLOCK_KEY.encode()]
    api = scenario["api"]
    params = [fr["parameters"] for fr in api["flow_runs"]]
    assert any("job" in p for p in params) and any("documents" in p for p in params)
    assert all(set(p) <= {"job", "part_deployment", "pages_per_part", "poll_seconds", "wait_hours", "run_dir",
                          "part", "documents", "first_page", "last_page", "doc_units"} for p in params)
    assert len(api["logs"]) > 20
    blob = json.dumps(api).encode()
    for key in keys:
        assert key not in blob
    # everything the runs wrote, the server's database and every process's log
    for path in scenario["tmp"].rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for key in keys:
                assert key not in data, path


def test_clean_shutdown(scenario):
    codes = scenario["codes"]
    assert set(codes) == {"server", "w1", "serve", "deploy", "prefect-deploy", "inproc"}
    assert codes["deploy"] == 0 and codes["prefect-deploy"] == 0
    # every process went on SIGTERM (SIGINT for serve): none had to be killed
    assert all(c is not None and c != -signal.SIGKILL for c in codes.values()), codes
