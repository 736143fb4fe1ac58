"""Batch mode end to end through the emulator (issue 19): a run submits every page in a Mistral
batch job and ends PENDING; a collector killed with SIGKILL mid-download loses nothing; the
rerun answers every page exactly once, pays no batch item twice, retries the items the batch
failed live, and balances the ledger; a job that expires leaves its unanswered pages to the
next job, never dropped."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from pixtract import batch, outcome
from pixtract.batchjobs import FINISHED, SUBMITTED, JobStore
from pixtract.config import build_config
from pixtract.outputs import read_results
from pixtract.providers import Endpoint
from pixtract.providers.batchapi import TERMINAL, BatchAPI
from tests.emulator.helpers import FAKE_KEY
from tests.helpers import text_pdfs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "pixtral-large-2411"


def config(emu, inputs, out, **more):
    return build_config({"inputs": [str(inputs)], "out": str(out), "profile": "mistral", "batch": "on",
                         "endpoint": {"base_url": emu.base_url("mistral"), "max_retries": 1, "backoff_base": 0.01},
                         "concurrency": 4, **more})


def live_chats(emu, since=0.0):
    return [r for r in emu.requests if r["path"].endswith("/chat/completions") and r["time"] >= since]


def batch_items(emu):
    return [r for r in emu.requests if r["method"] == "BATCH"]


def wait_jobs(emu, out, statuses=TERMINAL, timeout=60.0):
    api = BatchAPI(Endpoint(profile="mistral", base_url=emu.base_url("mistral"), api_key=FAKE_KEY))
    deadline = time.monotonic() + timeout
    try:
        while True:
            jobs = [api.get_job(e.job_id) for e in JobStore(str(out)).jobs() if e.job_id]
            if all(j["status"] in statuses for j in jobs) or time.monotonic() > deadline:
                return jobs
            time.sleep(0.1)
    finally:
        api.close()


@pytest.fixture()
def env(monkeypatch, emu):
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    emu.reset()
    yield emu
    emu.reset()


@pytest.mark.timeout(600)
def test_200_pages_submitted_collector_killed_mid_download_rerun_answers_each_once(env, tmp_path):
    emu = env
    text_pdfs(tmp_path / "in", {f"doc{d}": 20 for d in range(10)})  # 200 pages
    out = tmp_path / "out"
    emu.configure(batch_delay=1.0, batch_item_failure_rate=0.05)

    # 1. the night: every page planned as live, sent in one batch job, nothing answered yet
    first = batch.run(config(emu, tmp_path / "in", out), report=False)
    assert first["outcome"] == outcome.PENDING and first["exit_code"] == 4
    assert first["headline"].startswith("PENDING: 200 of 200 records submitted")
    assert first["ledger"]["balanced"] and first["skipped_by_reason"] == {"batch_pending": 200}
    assert live_chats(emu) == []  # nothing was sent live
    [entry] = JobStore(str(out)).jobs()
    items = JobStore(str(out)).items(entry.name)
    assert entry.items == 200 and len(items) == 200
    units = [u for i in items.values() for u in i.units]
    assert sorted((os.path.basename(u["document"]), u["page"]) for u in units) == sorted(
        (f"doc{d}.pdf", p) for d in range(10) for p in range(1, 21))
    assert all(u["cache_key"] and u["sha256"] and u["task"] == "transcribe" for u in units)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["outcome"] == "pending" and manifest["batch"]["submitted"] == 200
    assert manifest["batch"]["jobs"][0]["job_id"] == entry.job_id
    assert all(r.status == "skipped" and r.error.type == "batch_pending" for r in read_results(str(out)))

    # 2. the morning: the job is done; a collector is killed while it downloads the output
    [job] = wait_jobs(emu, out)
    assert job["status"] == "SUCCESS" and 0 < job["failed_requests"] < 30
    failed = job["failed_requests"]
    emu.configure(batch_download_s=20.0)
    started = emu.batches.downloads
    script = ("import sys; from pixtract import batch; from pixtract.config import build_config; "
              "batch.run(build_config(__import__('json').loads(sys.argv[1])), report=False)")
    cfg = {"inputs": [str(tmp_path / "in")], "out": str(out), "profile": "mistral", "batch": "on",
           "endpoint": {"base_url": emu.base_url("mistral")}, "concurrency": 4}
    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(cfg)], cwd=ROOT, start_new_session=True,
                            env=dict(os.environ, MISTRAL_API_KEY=FAKE_KEY),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while emu.batches.downloads == started and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # part of the file has arrived
    assert proc.poll() is None, "the collector finished before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    store = JobStore(str(out))
    assert store.jobs()[0].state == SUBMITTED  # the output was not saved: no half file counts
    assert not os.path.exists(store.path(entry.name, "output.jsonl"))

    # 3. the rerun: every page answered exactly once; no batch item paid twice; failed items live
    emu.configure(batch_download_s=0.0)
    t0 = time.time()
    done = batch.run(config(emu, tmp_path / "in", out), report=False)
    assert done["outcome"] == outcome.COMPLETE and done["exit_code"] == 0, done["headline"]
    assert done["ledger"]["balanced"] and done["ledger"]["duplicates"] == 0
    recs = read_results(str(out))
    keys = Counter((os.path.basename(r.document), r.page, r.task) for r in recs)
    assert len(keys) == 200 and set(keys.values()) == {1}
    assert all(r.status == "ok" and r.route == "vision" and r.answer for r in recs)
    billed = Counter(r["custom_id"] for r in batch_items(emu))
    assert len(billed) == 200 and set(billed.values()) == {1}  # each item answered (and paid) once
    live = live_chats(emu, t0)
    assert len(live) == failed  # only the items the batch failed were asked live
    assert store.jobs()[0].state == FINISHED
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["batch"]["from_batch"] == 200 - failed and manifest["batch"]["live_retries"] == failed
    # batch answers cost the batch price (half), the live retries the live price
    def priced(r, inp, outp):
        return r.cost_usd == pytest.approx((r.usage["input_tokens"] * inp + r.usage["output_tokens"] * outp) / 1e6)
    assert sum(priced(r, 1.0, 3.0) for r in recs) == 200 - failed
    assert sum(priced(r, 2.0, 6.0) for r in recs) == failed

    # 4. a third run pays nothing: every answer is in the cache
    t1 = time.time()
    again = batch.run(config(emu, tmp_path / "in", out), report=False)
    assert again["outcome"] == outcome.COMPLETE and again["paid_usd"] == 0 and live_chats(emu, t1) == []
    assert len(batch_items(emu)) == 200


@pytest.mark.timeout(300)
def test_failed_items_whose_live_retry_fails_too_end_with_why(env, tmp_path):
    emu = env
    text_pdfs(tmp_path / "in", {"a": 10})
    out = tmp_path / "out"
    emu.configure(batch_item_failure_rate=0.3)
    assert batch.run(config(emu, tmp_path / "in", out, local_fallback=False), report=False)["outcome"] == "pending"
    [job] = wait_jobs(emu, out)
    failed = job["failed_requests"]
    assert failed > 0
    emu.inject("400", message="Invalid request parameters")  # every live request fails for good
    done = batch.run(config(emu, tmp_path / "in", out, local_fallback=False), report=False)
    recs = read_results(str(out))
    assert len(recs) == 10 and done["ledger"]["balanced"]
    bad = [r for r in recs if r.status != "ok"]
    assert len(bad) + sum(r.status == "ok" and r.route == "vision" for r in recs) == 10
    assert len([r for r in recs if r.status == "ok" and r.route == "vision"]) == 10 - failed
    for r in bad:  # answered by no rung: failed, and the record says why for each rung tried
        assert r.status == "failed" and r.error.message and r.tried and r.tried[0]["route"] == "vision"
    assert done["outcome"] == outcome.INCOMPLETE


@pytest.mark.timeout(300)
def test_an_expired_job_leaves_its_unanswered_pages_to_the_next_job(env, tmp_path):
    emu = env
    text_pdfs(tmp_path / "in", {"a": 12})
    out = tmp_path / "out"
    emu.configure(batch_delay=3.0, batch_hour_s=0.05)  # a 24-hour job times out after 1.2 s
    assert batch.run(config(emu, tmp_path / "in", out), report=False)["outcome"] == "pending"
    [job] = wait_jobs(emu, out)
    assert job["status"] == "TIMEOUT_EXCEEDED" and job["completed_requests"] < 12
    answered = job["succeeded_requests"]
    emu.configure(batch_delay=0.0, batch_hour_s=3600.0)
    second = batch.run(config(emu, tmp_path / "in", out), report=False)
    recs = read_results(str(out))
    assert len(recs) == 12 and second["ledger"]["balanced"]
    assert sum(r.status == "ok" for r in recs) == answered
    assert second["skipped_by_reason"].get("batch_pending", 0) == 12 - answered  # resubmitted, not dropped
    jobs = JobStore(str(out)).jobs()
    assert len(jobs) == 2 and jobs[1].items == 12 - answered
    wait_jobs(emu, out)
    third = batch.run(config(emu, tmp_path / "in", out), report=False)
    assert third["outcome"] == outcome.COMPLETE and len(read_results(str(out))) == 12
    assert live_chats(emu) == []
    assert len(Counter(r["custom_id"] for r in batch_items(emu))) == 12


def test_batch_mode_needs_the_mistral_profile(tmp_path):
    from pixtract.errors import UsageError

    with pytest.raises(UsageError, match="--batch needs --profile mistral"):
        build_config({"inputs": ["x.pdf"], "out": str(tmp_path), "profile": "openrouter", "batch": "on"}).validate()


def test_a_scheduled_inbox_retries_pending_documents_and_its_runs_share_one_store(tmp_path):
    """An inbox writes each run to a dated folder: the store sits beside the shared cache, so
    the morning run finds the night's jobs; a pending document is selected again to collect it."""
    from pixtract.inbox import document_status, needs_run
    from pixtract.records import ErrorInfo, Record

    pending = Record("a.pdf", "s", 1, "transcribe", None, "skipped", error=ErrorInfo("batch_pending", "waiting"))
    assert document_status([pending]) == "skipped" and needs_run({"status": document_status([pending])})
    night = build_config({"inputs": ["in"], "out": str(tmp_path / "runs" / "night"),
                          "cache_dir": str(tmp_path / ".pixtract" / "cache")})
    morning = build_config({"inputs": ["in"], "out": str(tmp_path / "runs" / "morning"),
                            "cache_dir": str(tmp_path / ".pixtract" / "cache")})
    assert JobStore.for_run(night).root == JobStore.for_run(morning).root == str(tmp_path / ".pixtract" / "batch")


def test_estimate_and_budget_use_the_batch_price_of_the_batched_model_only(tmp_path):
    live = build_config({"inputs": ["x"], "out": str(tmp_path), "profile": "mistral"}).prices_table()
    night = build_config({"inputs": ["x"], "out": str(tmp_path), "profile": "mistral", "batch": "on"}).prices_table()
    assert night.get(MODEL).input_per_m == live.get(MODEL).input_per_m / 2
    assert night.get(MODEL).output_per_m == live.get(MODEL).output_per_m / 2
    assert night.get("mistral-large-2411") == live.get("mistral-large-2411")  # the text rung goes live


def test_a_run_that_cannot_check_its_jobs_sends_nothing(env, tmp_path):
    """Going on without knowing what the jobs hold would pay for the same pages twice."""
    from pixtract.errors import UsageError

    emu = env
    text_pdfs(tmp_path / "in", {"a": 2})
    out = tmp_path / "out"
    emu.configure(batch_delay=30.0)
    assert batch.run(config(emu, tmp_path / "in", out), report=False)["outcome"] == "pending"
    emu.configure(api_keys=["another-key-0000"])
    t0 = time.time()
    with pytest.raises(UsageError, match="could not be checked.*nothing was sent"):
        batch.run(config(emu, tmp_path / "in", out), report=False)
    assert live_chats(emu, t0) == [] and len(JobStore(str(out)).jobs()) == 1


@pytest.mark.prefect
@pytest.mark.timeout(300)
def test_the_command_line_names_the_jobs_it_left_running_and_exits_4(env, tmp_path, capsys):
    """`pixtract run --batch` ends PENDING (exit 4) and says which jobs to wait for; the same
    command later collects them (exit 0) and names none."""
    from pixtract.flows.cli import main

    emu = env
    text_pdfs(tmp_path / "in", {"a": 2})
    emu.configure(batch_delay=30.0)
    argv = ["run", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress", "--profile", "mistral",
            "--base-url", emu.base_url("mistral"), "--batch"]
    assert main(argv) == 4
    [entry] = JobStore(str(tmp_path / "out")).jobs()
    said = capsys.readouterr().out
    assert f"batch jobs still running: {entry.job_id} (" in said and "2 requests)" in said
    emu.configure(batch_delay=0.0)
    wait_jobs(emu, tmp_path / "out")
    assert main(argv) == 0
    assert "batch jobs still running" not in capsys.readouterr().out


def test_collecting_answers_spends_nothing_of_the_collecting_run_s_budget(env, tmp_path):
    """The night's run spent its budget on the job; the morning's run records each collected
    answer's cost but spends none of its own budget on it, so a small morning budget still
    collects every page (it was refused before the request, as if it were new)."""
    emu = env
    text_pdfs(tmp_path / "in", {"a": 3})
    out = tmp_path / "out"
    night = batch.run(config(emu, tmp_path / "in", out, budget_usd=1.0), report=False)
    assert night["outcome"] == outcome.PENDING
    committed = json.loads((out / "manifest.json").read_text())["budget"]["spent_usd"]
    assert committed > 0  # the job's worst case, at the batch price
    wait_jobs(emu, out)
    t0 = time.time()
    morning = batch.run(config(emu, tmp_path / "in", out, budget_usd=committed / 100), report=False)
    assert morning["outcome"] == outcome.COMPLETE, morning["headline"]
    budget = json.loads((out / "manifest.json").read_text())["budget"]
    assert budget["spent_usd"] == 0 and budget["refused_requests"] == 0
    records = read_results(str(out))
    assert [r.status for r in records] == ["ok"] * 3
    assert all(r.cost_usd and r.cost_usd > 0 for r in records)  # each answer still says what it cost
    assert live_chats(emu, t0) == []
