"""pipeline/batch.py without Prefect: the batch core with executors handed in (ordering, the
window, a failing chunk, a stopped run) and a whole run in a process that never imports Prefect."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from pixtract import batch
from pixtract.config import build_config
from pixtract.outputs import read_results
from pixtract.workers import worker_pids
from tests.helpers import text_pdfs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def local_config(inputs, out, **more):
    return build_config({"inputs": [str(inputs)], "out": str(out), "profile": "local", "concurrency": 2, **more})


def order(records):
    return [(os.path.basename(r.document), r.page) for r in records]


class Recorder:
    def __init__(self) -> None:
        self.documents, self.records = [], []

    def document(self, path, pages):
        self.documents.append((os.path.basename(path), pages))

    def record(self, rec):
        self.records.append(rec)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Chunks of 4 pages: the same cuts across documents, with few pages to answer."""
    monkeypatch.setattr(batch, "PAGES_PER_TASK", 4)


def test_chunks_finishing_out_of_order_are_written_in_input_order(tmp_path):
    """The first chunk is held back until the second has finished: results.jsonl still holds
    every page once, in input order, and the chunks were cut across documents."""
    text_pdfs(tmp_path / "in", {"a": 3, "b": 3, "c": 3})
    cfg = local_config(tmp_path / "in", tmp_path / "out")
    second_done = threading.Event()
    finished, labels = [], []
    pool = ThreadPoolExecutor(4)

    def answer(router, pages, label):
        if label == labels[0]:
            assert second_done.wait(60), "the second chunk never finished while the first was held"
        result = batch.answer_pages(router, pages, label)
        finished.append(label)
        if label == labels[1]:
            second_done.set()
        return result

    def submit_pages(router, pages, label):
        labels.append(label)
        return pool.submit(answer, router, pages, label)

    listener = Recorder()
    try:
        summary = batch.run(cfg, submit_pages=submit_pages, submit_document=None, listener=listener, report=False)
    finally:
        pool.shutdown()
    assert labels == ["a.pdf p1-3 + 1 page of 1 more document", "b.pdf p2-3 + 2 pages of 1 more document",
                      "c.pdf p3"]
    assert finished.index(labels[1]) < finished.index(labels[0])
    expected = [(f"{d}.pdf", p) for d in "abc" for p in (1, 2, 3)]
    records = read_results(str(tmp_path / "out"))
    assert order(records) == expected
    assert all(r.status == "ok" and f"document {os.path.basename(r.document)[0]}, page {r.page}." in r.answer
               for r in records)
    assert listener.documents == [("a.pdf", 3), ("b.pdf", 3), ("c.pdf", 3)]
    assert sorted(order(listener.records)) == sorted(expected)
    assert summary["outcome"] == "complete" and summary["ledger"]["balanced"]


def test_a_chunk_that_raises_fails_its_pages_and_the_batch_goes_on(tmp_path):
    text_pdfs(tmp_path / "in", {"a": 4, "b": 2})
    cfg = local_config(tmp_path / "in", tmp_path / "out")

    def submit_pages(router, pages, label):
        fut: Future = Future()
        if label.startswith("a.pdf"):
            fut.set_exception(RuntimeError("the executor lost this chunk"))
        else:
            fut.set_result(batch.answer_pages(router, pages, label))
        return fut

    summary = batch.run(cfg, submit_pages=submit_pages, submit_document=None, report=False)
    records = read_results(str(tmp_path / "out"))
    assert order(records) == [("a.pdf", p) for p in range(1, 5)] + [("b.pdf", 1), ("b.pdf", 2)]
    assert {r.status for r in records[:4]} == {"failed"}
    assert all("the executor lost this chunk" in r.error.message for r in records[:4])
    assert {r.status for r in records[4:]} == {"ok"}
    assert summary["outcome"] == "incomplete" and summary["exit_code"] == 1 and summary["ledger"]["balanced"]


def test_a_stopped_run_writes_one_record_for_every_planned_page(tmp_path):
    """Stopped while a chunk never finishes: the run waits STOP_GRACE_S, then every page still
    gets exactly one record (the unfinished ones ``interrupted``) and the outputs are written."""
    text_pdfs(tmp_path / "in", {"a": 1, "b": 4, "c": 2})
    cfg = local_config(tmp_path / "in", tmp_path / "out")
    control = batch.RunControl()

    def submit_pages(router, pages, label):
        if label.startswith("a.pdf"):
            fut: Future = Future()
            fut.set_result(batch.answer_pages(router, pages, label))
            return fut
        control.stop.set()
        return Future()  # never finishes

    summary = batch.run(cfg, submit_pages=submit_pages, submit_document=None, control=control, report=False)
    records = read_results(str(tmp_path / "out"))
    assert order(records) == [("a.pdf", 1)] + [("b.pdf", p) for p in range(1, 5)] + [("c.pdf", 1), ("c.pdf", 2)]
    assert {r.status for r in records[:4]} == {"ok"}  # the first chunk, answered before the stop
    assert {(r.status, r.error.type) for r in records[4:]} == {("skipped", "interrupted")}
    assert summary["outcome"] == "interrupted" and control.written.is_set() and control.summary == summary
    assert worker_pids() == []  # once the outputs are written, a stopped run's workers are stopped too


def test_a_whole_run_never_imports_prefect(tmp_path):
    """The library runs a batch on its own thread pool: no Prefect, no flows package."""
    code = ("import sys\nfrom pixtract import batch\nfrom pixtract.config import build_config\n"
            "cfg = build_config({'inputs': [sys.argv[1]], 'out': sys.argv[2], 'profile': 'local', 'concurrency': 2})\n"
            "s = batch.run(cfg)\n"
            "print(s['outcome'], s['records'], 'prefect' in sys.modules, 'pixtract.flows' in sys.modules)\n")
    sample = os.path.join(ROOT, "fixtures", "samples", "report.pdf")
    done = subprocess.run([sys.executable, "-c", code, sample, str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["complete", "3", "False", "False"], done.stdout + done.stderr
    assert [r.page for r in read_results(str(tmp_path / "out"))] == [1, 2, 3]
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "manifest.json").is_file()


def test_an_unreadable_input_is_a_failed_record_and_the_rest_is_answered(tmp_path):
    text_pdfs(tmp_path / "in", {"a": 2})
    (tmp_path / "in" / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    summary = batch.run(local_config(tmp_path / "in", tmp_path / "out"), report=False)
    records = read_results(str(tmp_path / "out"))
    by_doc = {os.path.basename(r.document): r for r in records}
    assert by_doc["broken.pdf"].status == "failed" and "broken.pdf" in by_doc["broken.pdf"].error.message
    assert [r.status for r in records if r.document.endswith("a.pdf")] == ["ok", "ok"]
    assert summary["ledger"]["balanced"] and summary["outcome"] == "incomplete"


def test_two_runs_in_one_process_are_heard_only_by_their_own_listeners(tmp_path):
    """The listeners are the run's (its RunContext), not the process's: two runs at once, one
    listened to through the context made before it started, one through ``listener``, each
    hear their own documents and records, once, and no one else's."""
    from pixtract.runcontext import RunContext

    text_pdfs(tmp_path / "a", {"a": 2})
    text_pdfs(tmp_path / "b", {"b": 3})
    cfg_a, cfg_b = local_config(tmp_path / "a", tmp_path / "out_a"), local_config(tmp_path / "b", tmp_path / "out_b")
    heard_a, heard_b = Recorder(), Recorder()
    control_a = batch.RunControl(context=RunContext.for_run(cfg_a))
    control_a.context.listeners.add(heard_a)
    runs = [threading.Thread(target=batch.run, args=(cfg_a,), kwargs={"control": control_a, "report": False}),
            threading.Thread(target=batch.run, args=(cfg_b,), kwargs={"listener": heard_b, "report": False})]
    for t in runs:
        t.start()
    for t in runs:
        t.join(120)
    assert heard_a.documents == [("a.pdf", 2)] and heard_b.documents == [("b.pdf", 3)]
    assert order(heard_a.records) == [("a.pdf", 1), ("a.pdf", 2)]
    assert sorted(order(heard_b.records)) == [("b.pdf", 1), ("b.pdf", 2), ("b.pdf", 3)]
