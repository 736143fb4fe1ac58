"""End to end through the real Prefect flow (ephemeral API) and the ``pixtract`` command."""

import asyncio
import json
import os
import socket
import subprocess
import sys

import pytest

from pixtract.flows.cli import EXIT_FAILURES, EXIT_OK, EXIT_USAGE, main
from pixtract.outputs import read_results

pytestmark = pytest.mark.prefect

SECRET_PASSWORD = "pw-SECRET-4711"


def expected_pages(expected: dict, name: str) -> int | None:
    e = expected[name]
    if e.get("opens") is False:
        return None
    if e["kind"] == "pdf":
        return e["pages"]
    return e["frames"] if e["format"] == "TIFF" else 1


@pytest.fixture(scope="module")
def batch(tmp_path_factory, samples, real):
    out = tmp_path_factory.mktemp("out")
    inputs = [str(samples), str(real), str(samples / "notes.txt")]
    code = main(["run", *inputs, "--out", str(out), "--no-progress", "--password", SECRET_PASSWORD])
    return code, out


def test_exit_code_1_when_some_inputs_fail(batch):
    code, _ = batch
    assert code == EXIT_FAILURES


def test_one_record_per_page_and_one_per_failed_document(batch, expected, samples):
    _, out = batch
    records = read_results(str(out))
    by_doc: dict[str, list] = {}
    for r in records:
        by_doc.setdefault(r.document, []).append(r)
    for name in expected:
        pages = expected_pages(expected, name)
        recs = by_doc[str(samples / name)]
        if pages is None:
            assert len(recs) == 1 and recs[0].page is None and recs[0].status == "failed"
            assert name in recs[0].error.message
        else:
            assert sorted(r.page for r in recs) == list(range(1, pages + 1)), name
            assert all(r.status == "ok" and r.answer for r in recs), name
    keys = [(r.document, r.page, r.task) for r in records]
    assert len(keys) == len(set(keys))


def test_record_fields(batch):
    _, out = batch
    required = {"document", "sha256", "page", "task", "route", "status", "answer", "model", "provider",
                "usage", "cost_usd", "latency_ms", "error"}
    for line in (out / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert required <= rec.keys()
        assert set(rec["usage"]) == {"input_tokens", "output_tokens"}
        if rec["status"] == "ok":
            assert rec["route"] in ("local-text", "local-ocr") and rec["error"] is None
            assert rec["image"]["width"] <= 1024 and rec["image"]["bytes"] > 0


def test_routes_recorded(batch, samples):
    _, out = batch
    route = {(r.document, r.page): r.route for r in read_results(str(out))}
    assert route[(str(samples / "report.pdf"), 1)] == "local-text"
    assert route[(str(samples / "scanned.pdf"), 1)] == "local-ocr"
    assert route[(str(samples / "chart.png"), 1)] == "local-ocr"


def test_markdown_per_document(batch, expected):
    _, out = batch
    md = (out / "report.md").read_text()
    # two inputs named chart.png (samples/ and real/): two distinct Markdown files
    assert {p.name for p in out.glob("chart*.md")} - {"chart_page.md"} == {"chart.md", "chart-becd8678.md"}
    assert [f"<!-- page {n} -->" in md for n in (1, 2, 3)] == [True] * 3
    assert "manufacturing" in md
    assert not (out / "corrupt.md").exists()
    assert "Harbour" in (out / "scanned.md").read_text()


def test_manifest_counts_and_no_secret(batch):
    _, out = batch
    m = json.loads((out / "manifest.json").read_text())
    records = read_results(str(out))
    c = m["counts"]
    assert c["records"] == len(records)
    assert sum(c["by_status"].values()) == len(records)
    assert sum(c["ok_by_route"].values()) == c["by_status"]["ok"]
    assert m["versions"]["prefect"] and m["versions"]["tesseract"]
    assert m["config"]["password"] == "***"
    assert len(m["inputs"]) == len({r.document for r in records})
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET_PASSWORD.encode() not in path.read_bytes(), path


def test_flow_ran_in_prefect(batch):
    """This batch's own flow run (found by its output folder, not any run in the database)
    completed, with the job's configuration and its page tasks."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId

    from pixtract.config import fingerprint

    _, out = batch

    async def runs():
        async with get_client() as client:
            flows = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["extract-batch"])))
            ours = [r for r in flows if os.path.abspath((r.parameters.get("config") or {}).get("out") or "")
                    == os.path.abspath(out)]
            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[r.id for r in ours]))) if ours else []
            return ours, tasks, flows

    ours, tasks, flows = asyncio.run(runs())
    assert len(ours) == 1, [(r.name, r.state_type, str(r.parameters)[:300]) for r in flows]
    # the batch has broken inputs on purpose: the flow run says so, as the exit code does
    assert (ours[0].state.type.value, ours[0].state.name) == ("FAILED", "Incomplete")
    assert ours[0].state.message.startswith("INCOMPLETE:") and "unreadable_file" in ours[0].state.message
    manifest = json.loads((out / "manifest.json").read_text())
    assert fingerprint(ours[0].parameters["config"]) == manifest["config_fingerprint"]
    assert ours[0].parameters["config"]["password"] == "***"
    assert tasks and all(t.state_type.value == "COMPLETED" for t in tasks), [(t.name, t.state_type) for t in tasks]


def test_exit_code_0_when_every_page_answered(samples, tmp_path):
    assert main(["run", str(samples / "report.pdf"), "--out", str(tmp_path), "--no-progress"]) == EXIT_OK
    assert len(read_results(str(tmp_path))) == 3


@pytest.mark.parametrize(
    "args",
    [
        ["run", "x.pdf", "--out", "o", "--task", "ask"],  # local profile cannot ask
        ["run", "x.pdf", "--out", "o", "--max-edge", "10"],
        ["run", "x.pdf", "--out", "o", "--profile", "nope"],
        ["run", "x.pdf"],  # no --out
    ],
)
def test_exit_code_2_on_bad_usage(args, capsys):
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "error" in err


def test_local_profile_explains_what_other_tasks_need(capsys):
    assert main(["run", "x.pdf", "--out", "o", "--task", "extract"]) == EXIT_USAGE
    assert "needs a model endpoint" in capsys.readouterr().err


def test_console_script_runs(samples, tmp_path):
    """The installed ``pixtract`` entry point, as a user runs it: help, then a real run."""
    exe = os.path.join(os.path.dirname(sys.executable), "pixtract")
    proc = subprocess.run([exe, "run", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--max-edge" in proc.stdout and "examples:" in proc.stdout
    out = tmp_path / "out"
    proc = subprocess.run([exe, "run", str(samples / "report.pdf"), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    records = read_results(str(out))
    assert [(r.page, r.status) for r in records] == [(1, "ok"), (2, "ok"), (3, "ok")]
    assert "manufacturing" in (out / "report.md").read_text()


def test_a_prefect_api_that_cannot_be_reached_does_not_cost_the_run(samples, tmp_path):
    """Prefect's server gone before the flow wrote anything (here: never there): the run itself
    needs no Prefect, so it goes on without it, says so once, and exits as its outcome says."""
    out = tmp_path / "out"
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    proc = subprocess.run([sys.executable, "-m", "pixtract.flows.cli", "run", str(samples / "report.pdf"),
                           "--out", str(out), "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("the Prefect API could not be reached, so the run went on without it") == 1
    assert [(r.page, r.status) for r in read_results(str(out))] == [(1, "ok"), (2, "ok"), (3, "ok")]
    assert json.loads((out / "manifest.json").read_text())["outcome"] == "complete"


def test_pages_go_to_prefect_in_chunks_across_documents(tmp_path, monkeypatch):
    """One Prefect task run per PAGES_PER_TASK pages (a task run costs ~7-10 ms of CPU), filled
    across document boundaries; every page still ends as its own record, in order."""
    from pixtract.flows.batch import PAGES_PER_TASK
    from pixtract.route import Router
    from tests.helpers import text_pdfs

    inputs = tmp_path / "in"
    text_pdfs(inputs, {"a": 10, "b": 10, "c": 15})
    chunks = []
    real = Router.answer_pages

    def spy(self, pages):
        chunks.append([(os.path.basename(p.document.path), n) for p, n in pages])
        return real(self, pages)

    monkeypatch.setattr(Router, "answer_pages", spy)
    out = tmp_path / "out"
    assert main(["run", str(inputs), "--out", str(out), "--no-progress"]) == EXIT_OK
    assert PAGES_PER_TASK == 16 and [len(c) for c in chunks] == [16, 16, 3]
    assert chunks[0][9:11] == [("a.pdf", 10), ("b.pdf", 1)]
    records = read_results(str(out))
    assert [(os.path.basename(r.document), r.page) for r in records] == [p for c in chunks for p in c]
    assert all(r.status == "ok" and f"page {r.page}" in r.answer for r in records)


def test_pixtract_does_not_load_the_layout_model_until_the_local_engine_needs_it():
    """PyMuPDF imports its layout package (ONNX Runtime, ~80 MB) eagerly; pixtract defers it."""
    code = ("import sys, pixtract.flows.cli, pixtract.flows.batch\n"
            "print('onnxruntime' in sys.modules, 'pymupdf4llm' in sys.modules)\n"
            "from pixtract import local\nfrom pixtract.discover import identify\n"
            "md = local.text_layer_markdown(identify('fixtures/samples/report.pdf'), 1)\n"
            "import pymupdf4llm\nprint(pymupdf4llm._use_layout, md.startswith('# **Northwind'))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False", "True", "True"], done.stdout + done.stderr


def test_malloc_settings_keep_the_local_engine_flat_across_threads(samples, tmp_path):
    """pipeline/malloc.py: with glibc's defaults, 8 threads of the local engine's layout model
    leave ~400 MB more RSS cached in per-thread arenas (bench/README.md has the figures). Tuned,
    the threads share at most ARENA_MAX arenas: counted exactly from glibc's malloc_info, not
    from an RSS window that moves with the machine's load."""
    code = ("import ctypes, sys, pixtract.flows\nfrom pixtract import malloc\nfrom concurrent.futures import ThreadPoolExecutor\n"
            "from pixtract import local\nfrom pixtract.discover import identify\n"
            "doc = identify(sys.argv[1]); local.text_layer_markdown(doc, 1)\n"
            "with ThreadPoolExecutor(8) as ex: list(ex.map(lambda i: local.text_layer_markdown(doc, 1 + i % 3), range(48)))\n"
            "libc = ctypes.CDLL(None); libc.fopen.restype = ctypes.c_void_p\n"
            "f = libc.fopen(sys.argv[2].encode(), b'w'); libc.malloc_info(0, ctypes.c_void_p(f)); libc.fclose(ctypes.c_void_p(f))\n"
            "print(malloc._done, malloc.ARENA_MAX, open(sys.argv[2]).read().count('<heap nr='))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code, str(samples / "report.pdf"), str(tmp_path / "malloc.xml")],
                          cwd=root, capture_output=True, text=True, timeout=300)
    applied, arena_max, arenas = done.stdout.split()
    assert applied == "True" and 1 <= int(arenas) <= int(arena_max) == 2, done.stdout + done.stderr
