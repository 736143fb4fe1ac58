"""Crash and resume: SIGKILL at several points (rendering, requests, output writing), rerun,
and the outputs equal an uninterrupted run's, with no answered page sent twice."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest

from pixtract.flows.cli import EXIT_OK, main
from pixtract.outputs import read_results
from tests.emulator.helpers import FAKE_KEY

pytestmark = pytest.mark.prefect

DOCS, PAGES = 6, 6
MARK = re.compile(r"KLM(\d)(\d\d)")
VOLATILE = {"latency_ms", "cached", "attempts", "paid_usd"}  # paid_usd: 0 for an answer from the cache


def make_inputs(folder: Path) -> None:
    folder.mkdir()
    for d in range(DOCS):
        pdf = pymupdf.open()
        for p in range(PAGES):
            page = pdf.new_page(width=300, height=200)
            page.insert_text((20, 40), f"Crash test document {d} page {p} KLM{d}{p:02d}", fontsize=10)
            page.insert_text((20, 60), f"Amount {d * 100 + p} euros.", fontsize=10)
        pdf.save(folder / f"doc{d}.pdf")


def chats(emu) -> list[dict]:
    return [q for q in emu.requests if q.get("path", "").endswith("/chat/completions")]


def marker(q: dict) -> tuple[int, int] | None:
    m = MARK.search(json.dumps(q.get("body") or {}))
    return (int(m.group(1)), int(m.group(2))) if m else None


def cached_pages(out: Path) -> set[tuple[int, int]]:
    pages = set()
    for f in (out / ".pixtract" / "cache").rglob("*.json"):
        rec = json.loads(f.read_text())
        pages.add((int(re.search(r"doc(\d)", rec["document"]).group(1)), rec["page"] - 1))
    return pages


def spool_lines(out: Path) -> int:
    part = out / ".pixtract" / "results.jsonl.part"
    return len(part.read_text().splitlines()) if part.exists() else 0


def comparable(out: Path) -> list[dict]:
    recs = [{k: v for k, v in r.to_json().items() if k not in VOLATILE} for r in read_results(str(out))]
    for r in recs:
        r["document"] = os.path.basename(r["document"])
    return sorted(recs, key=lambda r: (r["document"], r["page"]))


@pytest.mark.timeout(420)
def test_sigkill_at_random_points_then_resume(emu, tmp_path, monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    emu.reset()
    inputs = tmp_path / "in"
    make_inputs(inputs)
    base = ["--profile", "mistral", "--base-url", emu.base_url("mistral"), "--concurrency", "2", "--no-progress"]

    # the reference: one uninterrupted run
    assert main(["run", str(inputs), "--out", str(tmp_path / "ref"), *base]) == EXIT_OK
    reference = comparable(tmp_path / "ref")
    start = len(chats(emu))

    out = tmp_path / "out"
    cmd = [os.path.join(os.path.dirname(sys.executable), "pixtract"), "run", str(inputs), "--out", str(out), *base]
    env = dict(os.environ, MISTRAL_API_KEY=FAKE_KEY)
    emu.configure(latency=0.15)
    kill_when = [
        ("rendering", lambda: len(chats(emu)) > start),  # as the first requests leave
        ("requests", lambda: len(chats(emu)) >= start + 14),  # mid-way through the requests
        ("writing", lambda: spool_lines(out) >= 2 * PAGES),  # while documents are being written
    ]
    protected: set[tuple[int, int]] = set()  # pages with an answer on disk before a kill
    for label, due in kill_when:
        t_start = time.time()  # requests of a killed run may still be logged after it died
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 150
        while not due() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        reached, running = due(), proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)
        # a run that finished (or never got there) before the kill would test nothing
        assert running and reached, (label, "finished first" if not running else "never reached the point")
        assert proc.wait() == -signal.SIGKILL, label
        # nothing answered before this run may have been sent again by it
        resent = [marker(q) for q in chats(emu) if q["time"] >= t_start and marker(q) in protected]
        assert resent == [], (label, resent)
        assert not (out / "results.jsonl").exists() or label == "writing"
        protected |= cached_pages(out)
        for path in out.glob("*.md"):  # whatever was written is whole
            assert path.read_text().startswith("<!-- page 1 -->")
        for path in out.glob("*.json"):
            json.loads(path.read_text())

    emu.configure(latency=0)
    time.sleep(0.5)
    t_start = time.time()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    final = [q for q in chats(emu) if q["time"] >= t_start]
    assert not [marker(q) for q in final if marker(q) in protected]
    assert len(final) == DOCS * PAGES - len(protected)

    # the outputs are complete, valid, and the same as the uninterrupted run's
    assert comparable(out) == reference
    assert len(reference) == DOCS * PAGES
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ledger"]["balanced"] and manifest["counts"]["records"] == DOCS * PAGES
    for d in range(DOCS):
        assert (out / f"doc{d}.md").read_text() == (tmp_path / "ref" / f"doc{d}.md").read_text().replace(
            str(tmp_path / "ref"), str(out))
    assert sum(r.cached for r in read_results(str(out))) == len(protected)
