"""Ctrl-C and SIGTERM (issue 12): a run started as a terminal starts it (its own process group,
SIGINT at its default disposition) stops promptly, writes what it did, leaves no process
behind, and a rerun finishes without paying again for what was answered."""

import json
import os
import signal
import subprocess
import sys
import time

import pymupdf
import pytest

from pixtract.outputs import read_results
from tests.emulator.helpers import FAKE_KEY

pytestmark = pytest.mark.prefect

DOCS, PAGES = 8, 3


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    for d in range(DOCS):
        pdf = pymupdf.open()
        for p in range(PAGES):
            page = pdf.new_page()
            page.insert_text((72, 72), f"Document {d} page {p + 1}: revenue {d * 100 + p} EUR in the quarter.")
        pdf.save(folder / f"doc{d}.pdf")
    return folder


def chats(emu):
    return [r for r in emu.requests if r.get("path", "").endswith("/chat/completions")]


def start(emu, inputs, out):
    env = dict(os.environ, MISTRAL_API_KEY=FAKE_KEY)
    cmd = [sys.executable, "-m", "pixtract.flows.cli", "run", str(inputs), "--out", str(out), "--no-progress",
           "--profile", "mistral", "--base-url", emu.base_url("mistral"), "--concurrency", "2"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_writes_what_is_done_and_the_rerun_resumes(emu, inputs, tmp_path, sig, code):
    emu.reset()
    emu.configure(latency=0.4)
    out = tmp_path / "out"
    proc = start(emu, inputs, out)
    deadline = time.monotonic() + 180
    while len(chats(emu)) < 4:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no request reached the emulator"
        time.sleep(0.05)
    os.killpg(proc.pid, sig)  # as a terminal does: the whole process group
    sent_at = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - sent_at
    assert proc.returncode == code, stderr
    assert took < 10, f"took {took:.1f} s to stop"
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"pixtract: interrupted by {sig.name}:"), stderr
    wait_gone = time.monotonic() + 5
    while group_alive(proc.pid) and time.monotonic() < wait_gone:
        time.sleep(0.1)
    left = subprocess.run(["ps", "-o", "pid,args", "-g", str(proc.pid)], capture_output=True, text=True).stdout
    assert not group_alive(proc.pid), f"a process of the run outlived it:\n{left}"

    m = json.loads((out / "manifest.json").read_text())
    assert m["outcome"] == "interrupted" and m["ledger"]["balanced"]
    first = read_results(str(out))
    answered = {(r.document, r.page) for r in first if r.status == "ok"}
    assert answered and len(answered) < DOCS * PAGES
    assert {r.error.type for r in first if r.status != "ok"} == {"interrupted"}

    emu.clear_requests()
    emu.configure(latency=0.0)
    rerun = start(emu, inputs, out)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    final = read_results(str(out))
    assert len(final) == DOCS * PAGES and all(r.status == "ok" for r in final)
    # Every page answered in the first run comes from the cache: none is paid twice.
    assert len(chats(emu)) <= DOCS * PAGES - len(answered)
    assert sum(r.cached for r in final) >= len(answered)


LAUNCHER_SLOW_IMPORT = """
import sys, time
from pathlib import Path
import pixtract.flows.cli as cli

real = cli._import_prefect
marker = Path(sys.argv.pop(1))

def slow_import():
    marker.touch()  # the test sends its signal now, while Prefect 'imports'
    time.sleep(3)
    real()

cli._import_prefect = slow_import
sys.exit(cli.main(sys.argv[1:]))
"""


def test_ctrl_c_while_prefect_imports_ends_with_one_line(emu, inputs, tmp_path):
    marker = tmp_path / "importing"
    env = dict(os.environ, MISTRAL_API_KEY=FAKE_KEY)
    cmd = [sys.executable, "-c", LAUNCHER_SLOW_IMPORT, str(marker), "run", str(inputs), "--out",
           str(tmp_path / "out"), "--no-progress", "--profile", "mistral", "--base-url", emu.base_url("mistral")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "pixtract: interrupted" in err
