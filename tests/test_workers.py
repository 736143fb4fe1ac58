"""No file can stall a batch: MuPDF work runs in worker processes the run kills from outside
(pipeline/workers.py).

A test-only hook (PIXTRACT_TEST_WORKER_HOOK, read inside the worker only) makes a worker
misbehave on one step of one document: freeze in C while holding the GIL (as MuPDF looping in
``fz_run_page`` does), die of SIGSEGV, or allocate past its memory cap. Each batch is three
documents of three pages, answered by the emulator, with the bad step in the middle one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pymupdf
import pytest

from pixtract.flows.cli import EXIT_FAILURES, main
from tests.emulator.helpers import FAKE_KEY
from pixtract.workers import TEST_HOOK_ENV

pytestmark = pytest.mark.prefect

DEADLINE = 4.0  # page_timeout for these runs, seconds
NAMES = ("a.pdf", "b.pdf", "c.pdf")


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    for name in NAMES:
        pdf = pymupdf.open()
        for n in range(1, 4):
            pdf.new_page(width=300, height=400).insert_text((30, 40), f"{name} page {n} says hello", fontsize=12)
        pdf.save(folder / name)
    return folder


@pytest.fixture(scope="module")
def clean_run(emu, docs, tmp_path_factory):
    """The same batch without the hook: every page ok (and Prefect's start-up is paid here, so
    the timed runs below measure the batch)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MISTRAL_API_KEY", FAKE_KEY)
        mp.delenv(TEST_HOOK_ENV, raising=False)
        return run(emu, docs, tmp_path_factory.mktemp("clean") / "out")


@pytest.fixture
def env(emu, monkeypatch, clean_run):
    emu.reset()
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    monkeypatch.setenv("PIXTRACT_PAGE_TIMEOUT", str(DEADLINE))
    return monkeypatch


def run(emu, folder, out) -> tuple[int, float, list[dict], dict]:
    t0 = time.monotonic()
    code = main(["run", str(folder), "--out", str(out), "--no-progress", "--profile", "mistral",
                 "--base-url", emu.base_url("mistral")])
    seconds = time.monotonic() - t0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    manifest = json.loads((out / "manifest.json").read_text())
    return code, seconds, records, manifest


def outcome(records: list[dict]) -> dict[tuple[str, int | None], tuple[str, str | None]]:
    return {(os.path.basename(r["document"]), r["page"]): (r["status"], (r.get("error") or {}).get("type"))
            for r in records}


def all_ok_but(records, bad: dict) -> None:
    """Every page of the three documents is ``ok`` except ``bad`` ({(name, page): error type})."""
    got = outcome(records)
    want = {(name, n): ("ok", None) for name in NAMES for n in (1, 2, 3)
            if (name, None) not in bad and (name, n) not in bad}
    want.update({k: ("failed", t) for k, t in bad.items()})
    assert got == want
    assert len(records) == len(want)


def test_without_the_hook_every_page_is_ok(clean_run):
    code, _, records, manifest = clean_run
    assert code == 0
    all_ok_but(records, {})
    assert manifest["ledger"]["balanced"]


def fails_alone(emu, docs, out, bad: tuple[str, int | None], error_type: str) -> tuple[float, str]:
    """Run the batch: exit code 1, only ``bad`` failed (with ``error_type``), the ledger balanced.
    Returns the run's seconds and the failure's message."""
    code, seconds, records, manifest = run(emu, docs, out)
    assert code == EXIT_FAILURES
    all_ok_but(records, {bad: error_type})
    assert manifest["ledger"]["balanced"]
    [failed] = [r for r in records if r["status"] == "failed"]
    return seconds, failed["error"]["message"]


def test_a_page_frozen_in_native_code_fails_render_timeout_and_the_batch_goes_on(emu, env, docs, tmp_path):
    env.setenv(TEST_HOOK_ENV, "freeze@page:b.pdf:2")
    seconds, message = fails_alone(emu, docs, tmp_path / "out", ("b.pdf", 2), "render_timeout")
    assert "b.pdf page 2" in message and f"{DEADLINE:g} s" in message
    assert seconds < DEADLINE + 15


def test_a_document_frozen_while_opening_fails_open_timeout_alone(emu, env, docs, tmp_path):
    env.setenv(TEST_HOOK_ENV, "freeze@open:b.pdf")
    seconds, message = fails_alone(emu, docs, tmp_path / "out", ("b.pdf", None), "open_timeout")
    assert "b.pdf" in message and "opening" in message
    assert seconds < DEADLINE + 15


def test_a_worker_killed_by_sigsegv_fails_that_page_render_crashed(emu, env, docs, tmp_path):
    env.setenv(TEST_HOOK_ENV, "segv@page:b.pdf:2")
    _, message = fails_alone(emu, docs, tmp_path / "out", ("b.pdf", 2), "render_crashed")
    assert "b.pdf page 2" in message and "SIGSEGV" in message


def test_a_page_past_the_memory_cap_fails_render_out_of_memory(emu, env, docs, tmp_path):
    env.setenv(TEST_HOOK_ENV, "oom@page:b.pdf:2")
    env.setenv("PIXTRACT_WORKER_MEMORY_MB", "1200")
    _, message = fails_alone(emu, docs, tmp_path / "out", ("b.pdf", 2), "render_out_of_memory")
    assert "b.pdf page 2" in message and "memory" in message


def _session_processes(sid: int) -> list[str]:
    """Live (not zombie) processes of a session: 'pid state cmdline'."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            if int(fields[3]) == sid and fields[0] != "Z":
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
                found.append(f"{pid} {fields[0]} {cmdline}")
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_while_a_worker_is_frozen_ends_the_run_within_5_s_leaving_no_process(
        emu, env, docs, tmp_path, sig):
    env.setenv(TEST_HOOK_ENV, "freeze@page:b.pdf:2")
    env.setenv("PIXTRACT_PAGE_TIMEOUT", "300")  # the run must stop on the signal, not the deadline
    cmd = [sys.executable, "-c", "import sys; from pixtract.flows.cli import main; sys.exit(main())", "run", str(docs),
           "--out", str(tmp_path / "out"), "--no-progress", "--profile", "mistral",
           "--base-url", emu.base_url("mistral")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    frozen = threading.Event()
    lines: list[bytes] = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if b"test hook: worker" in line and b"frozen" in line:
                frozen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert frozen.wait(120), b"".join(lines[-30:]).decode(errors="replace")
        time.sleep(0.5)  # the parent is now waiting on the frozen worker
        t0 = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        seconds = time.monotonic() - t0
        deadline = time.monotonic() + 2  # the kernel may take a moment to reap killed workers
        while _session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _session_processes(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert seconds < 5, f"{sig.name}: the run took {seconds:.1f} s to end"
    assert proc.returncode != 0
    assert left == [], f"processes left behind: {left}"
