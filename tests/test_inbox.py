"""The inbox index and the fan-out plan/merge of scheduled runs, without a Prefect server."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading

import pytest

from pixtract.inbox import (
    InboxError,
    InboxIndex,
    PartSpec,
    claim_run_dir,
    document_status,
    inbox_lock,
    index_entries,
    merge_parts,
    part_dir,
    plan_parts,
    run_name,
)
from pixtract.config import RunConfig
from pixtract.discover import DiscoveryFailure, discover
from pixtract.errors import UnreadableFile, UsageError
from pixtract.outputs import OutputWriter, read_results
from pixtract.records import Document, ErrorInfo, Record


def doc(path: str, sha: str) -> Document:
    return Document(path=path, abspath=os.path.abspath(path), sha256=sha, kind="pdf", size=10, fmt="PDF")


def rec(path: str, sha: str | None, page: int | None, status: str = "ok", **kw) -> Record:
    return Record(document=path, sha256=sha, page=page, task="transcribe", route="vision" if status == "ok" else None,
                  status=status, answer="text" if status == "ok" else None, **kw)


WHEN = dt.datetime(2026, 11, 22, 2, 0, 0, tzinfo=dt.timezone.utc)


# --- selection: new, changed, failed, succeeded -------------------------------------------------


def test_new_documents_are_selected_and_succeeded_ones_are_not(tmp_path):
    index = InboxIndex(str(tmp_path))
    a, b = doc("in/a.pdf", "a" * 64), doc("in/b.pdf", "b" * 64)
    todo, unchanged = index.select([a, b])
    assert todo == [a, b] and unchanged == []
    index.update(index_entries([(a.path, a.sha256, [rec(a.path, a.sha256, 1)]),
                                (b.path, b.sha256, [rec(b.path, b.sha256, 1), rec(b.path, b.sha256, 2, "failed")])],
                               "r1", WHEN))
    todo, unchanged = index.select([a, b])
    assert todo == [b] and unchanged == [a]  # the failed one is retried, the succeeded one is not sent again


def test_changed_bytes_are_a_new_document_and_a_renamed_one_is_not(tmp_path):
    index = InboxIndex(str(tmp_path))
    index.update(index_entries([("in/a.pdf", "a" * 64, [rec("in/a.pdf", "a" * 64, 1)])], "r1", WHEN))
    changed, moved = doc("in/a.pdf", "c" * 64), doc("in/renamed.pdf", "a" * 64)
    todo, unchanged = index.select([changed, moved])
    assert todo == [changed] and unchanged == [moved]


def test_failed_then_succeeded_is_no_longer_retried(tmp_path):
    index = InboxIndex(str(tmp_path))
    a = doc("in/a.pdf", "a" * 64)
    index.update(index_entries([(a.path, a.sha256, [rec(a.path, a.sha256, 1, "failed")])], "r1", WHEN))
    assert index.select([a])[0] == [a]
    index.update(index_entries([(a.path, a.sha256, [rec(a.path, a.sha256, 1)])], "r2", WHEN))
    assert index.select([a]) == ([], [a])
    assert index.load()["a" * 64] == {"path": "in/a.pdf", "status": "ok", "run": "r2",
                                      "updated": "2026-11-22T02:00:00+00:00"}


def test_unhashable_files_are_always_tried_and_never_indexed(tmp_path):
    index = InboxIndex(str(tmp_path))
    missing = DiscoveryFailure("in/gone.pdf", None, UnreadableFile("in/gone.pdf: no such file"))
    assert index.select([missing]) == ([missing], [])
    assert index_entries([("in/gone.pdf", None, [rec("in/gone.pdf", None, None, "failed")])], "r1", WHEN) == {}


def test_document_status():
    ok = rec("a", "s", 1)
    assert document_status([ok]) == "ok"
    assert document_status([ok, rec("a", "s", 2, "failed")]) == "failed"
    budget = rec("a", "s", 2, "skipped", error=ErrorInfo("budget_exceeded", "budget of $0.01 reached"))
    assert document_status([ok, budget]) == "skipped"  # never answered: retried
    stopped = rec("a", "s", 2, "skipped", error=ErrorInfo("interrupted", "the run was interrupted"))
    assert document_status([ok, stopped]) == "skipped"
    no_chart = rec("a", "s", 2, "skipped", error=ErrorInfo("no_chart", "no chart found on this page"))
    assert document_status([ok, no_chart]) == "ok"  # a final answer
    fallback = rec("a", "s", 2, degraded=True)
    assert document_status([ok, fallback]) == "degraded"  # the next run retries the planned route
    assert document_status([fallback, budget]) == "skipped" and document_status([fallback, budget, rec(
        "a", "s", 3, "failed")]) == "failed"


def test_same_bytes_under_two_names_keep_the_worse_status():
    e = index_entries([("x.pdf", "s", [rec("x.pdf", "s", 1)]), ("y.pdf", "s", [rec("y.pdf", "s", 1, "failed")]),
                       ("z.pdf", "s", [rec("z.pdf", "s", 1)])], "r1", WHEN)
    assert e == {"s": {"path": "y.pdf", "status": "failed", "run": "r1", "updated": "2026-11-22T02:00:00+00:00"}}


# --- the index file: atomic, merged, locked -----------------------------------------------------


def test_update_merges_and_writes_atomically(tmp_path, monkeypatch):
    index = InboxIndex(str(tmp_path))
    index.update({"a": {"path": "a", "status": "ok", "run": "r1", "updated": "t"}})
    index.update({"b": {"path": "b", "status": "failed", "run": "r2", "updated": "t"}})
    assert sorted(index.load()) == ["a", "b"]
    before = (tmp_path / "index.json").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        index.update({"c": {"path": "c", "status": "ok", "run": "r3", "updated": "t"}})
    assert (tmp_path / "index.json").read_bytes() == before  # the old index, whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def _writer(root: str, worker: int, n: int) -> None:
    index = InboxIndex(root)
    for i in range(n):
        index.update({f"{worker}-{i}": {"path": f"p{worker}-{i}", "status": "ok", "run": "r", "updated": "t"}})


def test_concurrent_updates_lose_nothing(tmp_path):
    # threads: each update opens the lock file afresh, and flock() locks of separate open files
    # exclude each other within one process as between processes (forking a process that
    # runs Prefect is not safe)
    errors = []

    def run(w: int) -> None:
        try:
            _writer(str(tmp_path), w, 15)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(InboxIndex(str(tmp_path)).load()) == 90


def test_corrupt_index_stops_the_run_instead_of_resending_everything(tmp_path):
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(InboxError, match="cannot read the inbox index"):
        InboxIndex(str(tmp_path)).select([doc("a.pdf", "a" * 64)])


def test_one_run_per_inbox(tmp_path):
    with inbox_lock(str(tmp_path)), pytest.raises(InboxError, match="in progress"):
        with inbox_lock(str(tmp_path)):
            pass
    with inbox_lock(str(tmp_path)):  # released
        pass


# --- run folders ----------------------------------------------------------------------------------


def test_run_folders_are_dated_and_never_shared(tmp_path):
    assert run_name(WHEN) == "2026-11-22T020000Z"
    assert run_name(dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == "2026-11-22T020000Z"
    first = claim_run_dir(str(tmp_path), "2026-11-22T020000Z", "flow-run-1")
    assert first == str(tmp_path / "runs" / "2026-11-22T020000Z")
    assert claim_run_dir(str(tmp_path), "2026-11-22T020000Z", "flow-run-1") == first  # a retry resumes
    assert claim_run_dir(str(tmp_path), "2026-11-22T020000Z", "flow-run-2") == first + "-2"


# --- parts: packing, chunking, merging -------------------------------------------------------------


def test_plan_parts_packs_small_documents_and_chunks_big_ones(samples):
    names = ["chart.png", "corrupt.pdf", "multi.tiff", "report.pdf", "scan.bmp", "scanned.pdf"]
    items = list(discover([str(samples / n) for n in names]))
    parts = plan_parts(items, pages_per_part=2)
    assert [(p.part, [os.path.basename(d["path"]) for d in p.documents], p.first, p.last, p.doc_units)
            for p in parts] == [
        ("001", ["chart.png", "corrupt.pdf"], None, None, True),
        ("002", ["multi.tiff"], None, None, True),
        ("003", ["report.pdf"], 1, 2, True),
        ("004", ["report.pdf"], 3, 3, False),
        ("005", ["scan.bmp", "scanned.pdf"], None, None, True),
    ]
    assert [p.page_count() for p in parts] == [2, 2, 2, 1, 2]
    assert parts[1].documents[0]["pages"] == 2 and parts[0].documents[1]["pages"] is None
    assert len(plan_parts(items, pages_per_part=50)) == 1
    with pytest.raises(UsageError):
        plan_parts(items, pages_per_part=0)


def _part(run_dir: str, spec: PartSpec, docs: list[tuple[Document, int, list[Record]]]) -> None:
    """What a finished part leaves: results.jsonl and manifest.json in its folder."""
    w = OutputWriter(part_dir(run_dir, spec.part))
    for d, pages, recs in docs:
        w.add_document(d, pages, recs)
    w.finish({"inputs": w.documents})


def test_merge_joins_chunks_in_order_and_turns_a_lost_part_into_failed_records(tmp_path):
    run = str(tmp_path / "run")
    cfg = RunConfig(inputs=["x"], out=run)
    big, small, lost = doc("in/big.pdf", "b" * 64), doc("in/small.pdf", "s" * 64), doc("in/lost.pdf", "l" * 64)
    specs = [
        PartSpec("001", [{"path": small.path, "sha256": small.sha256, "pages": 1}]),
        PartSpec("002", [{"path": big.path, "sha256": big.sha256, "pages": 5}], 1, 2, True),
        PartSpec("003", [{"path": big.path, "sha256": big.sha256, "pages": 5}], 3, 4, False),
        PartSpec("004", [{"path": big.path, "sha256": big.sha256, "pages": 5}], 5, 5, False),
        PartSpec("005", [{"path": lost.path, "sha256": lost.sha256, "pages": 2}]),
    ]
    _part(run, specs[0], [(small, 1, [rec(small.path, small.sha256, 1)])])
    _part(run, specs[1], [(big, 5, [rec(big.path, big.sha256, 2), rec(big.path, big.sha256, 1)])])
    _part(run, specs[3], [(big, 5, [rec(big.path, big.sha256, 5)])])  # part 003 crashed; 005 never ran
    writer = OutputWriter(run)
    done = merge_parts(writer, cfg, run, specs, {"003": "crashed: worker lost", "005": "not finished after 24 h"})
    summary = writer.summary()
    writer.finish({"inputs": writer.documents})
    assert [(p, document_status(r)) for p, _, r in done] == [
        ("in/small.pdf", "ok"), ("in/big.pdf", "failed"), ("in/lost.pdf", "failed")]
    recs = read_results(run)
    assert [(r.document, r.page, r.status) for r in recs] == [
        ("in/small.pdf", 1, "ok"),
        ("in/big.pdf", 1, "ok"), ("in/big.pdf", 2, "ok"), ("in/big.pdf", 3, "failed"), ("in/big.pdf", 4, "failed"),
        ("in/big.pdf", 5, "ok"),
        ("in/lost.pdf", None, "failed")]
    assert recs[3].error.type == "part_failed" and "part 003 did not finish (crashed: worker lost)" in recs[3].error.message
    assert "not finished after 24 h" in recs[6].error.message
    assert summary["ledger"]["balanced"]
    assert summary["ledger"]["tasks"]["transcribe"]["pages_in"] == 1 + 5 + 1
    md = (tmp_path / "run" / "big.md").read_text()
    assert all(f"<!-- page {n} -->" in md for n in range(1, 6))
    layout = json.loads((tmp_path / "run" / "big.json").read_text())
    assert [a["error"]["type"] for p in layout["pages"] for a in p["answers"] if a["status"] == "failed"] == [
        "part_failed", "part_failed"]
    assert [d["status"] for d in writer.documents] == ["ok", "partial", "failed"]


def test_merge_keeps_one_failure_for_an_unreadable_document(tmp_path):
    run = str(tmp_path / "run")
    cfg = RunConfig(inputs=["x"], out=run)
    spec = PartSpec("001", [{"path": "in/bad.pdf", "sha256": "d" * 64, "pages": None}])
    w = OutputWriter(part_dir(run, "001"))
    w.add_failure([Record(document="in/bad.pdf", sha256="d" * 64, page=None, task="transcribe", route=None,
                          status="failed", error=ErrorInfo("unreadable_file", "in/bad.pdf: not a readable PDF"))], "pdf")
    w.finish({"inputs": w.documents})
    writer = OutputWriter(run)
    [(path, sha, recs)] = merge_parts(writer, cfg, run, [spec])
    assert (path, sha, [r.error.type for r in recs]) == ("in/bad.pdf", "d" * 64, ["unreadable_file"])
    assert writer.summary()["ledger"]["balanced"]
    assert json.loads(json.dumps(writer.documents))[0]["kind"] == "pdf"


def test_the_inbox_core_never_imports_prefect(samples):
    """pipeline/inbox.py (index, run folders, parts, merge) is plain Python: planning a real
    folder's parts loads neither Prefect nor the flows package."""
    import subprocess
    import sys

    code = ("import sys\nfrom pixtract.discover import discover\nfrom pixtract.inbox import plan_parts\n"
            "specs = plan_parts(discover([sys.argv[1]]), 2)\n"
            "print(len(specs) > 1, 'prefect' in sys.modules, 'pixtract.flows' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code, str(samples)], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["True", "False", "False"], done.stdout + done.stderr
