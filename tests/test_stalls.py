"""No single input may keep a run from ending (issue 13, point 4): what MuPDF does is bounded
in worker processes (test_workers.py); these tests cover what runs in the run's own process.

A page stuck with the GIL free (a blocking call with no limit of its own) is given up after
``stall_timeout`` (``page_stalled`` for that page) and the batch goes on; a process frozen in
native code with the GIL held is ended by faulthandler's watchdog once no record has come for
``stall_timeout`` plus a margin. The stuck page is made by patching
``Router.answer_page`` for page 2 (in a launcher, for the frozen process), so no test hook
lives in pixtract's own code."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pymupdf
import pytest

from pixtract.errors import PageStalled
from pixtract.flows.cli import EXIT_FAILURES, main
from pixtract.pagethreads import PageThreads
from pixtract.route import Router

pytestmark = pytest.mark.prefect

LAUNCHER = textwrap.dedent("""
    import sys

    from pixtract.route import Router

    target = sys.argv.pop(1)  # the document whose page 2 freezes
    answer_page = Router.answer_page

    def stuck(self, plan, number):
        if number == 2 and plan.document.path.endswith(target):
            # libc's sleep called through PyDLL keeps the GIL held: nothing in Python runs
            import ctypes
            ctypes.PyDLL(None).sleep(3600)
        return answer_page(self, plan, number)

    Router.answer_page = stuck
    from pixtract.flows.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_a_stalled_page_is_given_up_and_its_thread_does_not_hold_the_pool():
    pool = PageThreads(2)
    release = threading.Event()
    stuck = pool.submit(release.wait, 3600)
    with pytest.raises(PageStalled, match=r"doc\.pdf page 2: no answer after 0\.3 s"):
        pool.result(stuck, 0.3, "doc.pdf page 2")
    assert pool.abandoned == 1
    # Both places are free again: the stuck thread was replaced. Each page waits for the other,
    # so they only finish if two threads run them side by side (else the barrier breaks).
    both = threading.Barrier(2, timeout=30)
    done = [pool.submit(both.wait), pool.submit(both.wait)]
    assert sorted(pool.result(fut, 60, "x") for fut in done) == [0, 1]
    pool.shutdown(wait=True)  # returns although one thread is still stuck
    assert not release.is_set()
    release.set()


def test_a_page_within_its_limit_is_waited_for():
    pool = PageThreads(1)
    fut = pool.submit(lambda: time.sleep(1.5) or "answer")
    assert pool.result(fut, 5, "doc.pdf page 1") == "answer"
    assert pool.abandoned == 0
    pool.shutdown()


def run(tmp_path, pdf, target: str, stall: float, **env):
    out = tmp_path / "out"
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    env = dict(os.environ, PIXTRACT_STALL_TIMEOUT=str(stall), PYTHONPATH=os.getcwd(), **env)
    cmd = [sys.executable, "-X", "faulthandler", str(launcher), target, "run", str(pdf), "--out", str(out),
           "--profile", "local", "--no-progress"]
    # Output to files, not pipes: a process left behind would keep a pipe open and hide the exit.
    with open(tmp_path / "stdout", "w+") as so, open(tmp_path / "stderr", "w+") as se:
        proc = subprocess.Popen(cmd, env=env, stdout=so, stderr=se, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGABRT)  # -X faulthandler: every thread's traceback
            proc.wait(30)
            os.killpg(proc.pid, signal.SIGKILL)
            se.seek(0)
            pytest.fail(f"the run did not end: a stuck page held it\n{se.read()[-6000:]}")
        so.seek(0)
        se.seek(0)
        return proc, out, so.read(), se.read()


def test_a_page_stuck_outside_the_workers_fails_page_stalled_and_the_batch_goes_on(tmp_path, samples, monkeypatch):
    release = threading.Event()
    answer_page = Router.answer_page

    def stuck(self, plan, number):
        if number == 2:
            release.wait(600)  # blocks, as a call with no limit of its own would; other threads run
        return answer_page(self, plan, number)

    monkeypatch.setattr(Router, "answer_page", stuck)
    # Long enough for pages 1 and 3 (the first loads the local engine's models) on a loaded machine.
    monkeypatch.setenv("PIXTRACT_STALL_TIMEOUT", "10")
    out = tmp_path / "out"
    try:
        code = main(["run", str(samples / "report.pdf"), "--out", str(out), "--profile", "local", "--no-progress"])
    finally:
        release.set()
    assert code == EXIT_FAILURES
    recs = {r["page"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert sorted(recs) == [1, 2, 3]
    assert recs[2]["status"] == "failed" and recs[2]["error"]["type"] == "page_stalled"
    assert "report.pdf page 2: no answer after 10 s" in recs[2]["error"]["message"]
    assert recs[1]["status"] == recs[3]["status"] == "ok"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ledger"]["balanced"] is True
    assert manifest["outcome"] == "incomplete"
    assert manifest["ledger"]["tasks"]["transcribe"]["failed"] == 1


def test_a_process_frozen_with_the_gil_held_is_ended_by_the_watchdog(tmp_path):
    # Twelve pages, so that the frozen one (page 2 of the second document) comes after the flow
    # has started and reported records. The managed server runs in its own session, so the
    # run's process group is the run alone (Prefect's temporary server would be its child).
    pdfs = tmp_path / "in"
    pdfs.mkdir()
    for name in ("a", "b"):
        doc = pymupdf.open()
        for n in range(6):
            doc.new_page().insert_text((72, 72), f"Document {name}, page {n + 1}: text to read.")
        doc.save(pdfs / f"{name}.pdf")
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "environ", env)
            proc, out, stdout, stderr = run(tmp_path, pdfs, "b.pdf", stall=1, PIXTRACT_DATA_DIR=str(data),
                                            PIXTRACT_PREFECT="managed")
    finally:
        subprocess.run([sys.executable, "-m", "pixtract.flows.cli", "server", "stop"], env={**env, "PIXTRACT_DATA_DIR": str(data)},
                       capture_output=True, timeout=60)
    assert proc.returncode == 1, stderr[-3000:]
    assert "Timeout" in stderr and "stuck" in stderr, stderr[-3000:]
    # the MuPDF workers die with the process (PR_SET_PDEATHSIG): nothing of the run is left
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a process of the run outlived it")
