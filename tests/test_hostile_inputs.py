"""Hostile and broken inputs: every file gets a clear per-file error record or a correct answer,
and none crashes or hangs the batch.

The corpus is generated into tmp_path by ``fixtures/hostile/make_hostile.py`` (see its docstring
for the cases and what each must give).

- Unit level: ``discover`` + ``count_pages`` + ``render_page`` for every file, in a worker
  subprocess so a render that never ends can be measured and killed (MuPDF's C code cannot be
  interrupted from Python). Only a typed ``InputError`` naming the file, or a valid ``Page``
  within ``STEP_LIMIT`` seconds of CPU, may come out. CPU time, not wall-clock time, so that a
  loaded machine does not fail a case; a step still running after ``HANG_LIMIT`` wall-clock
  seconds is killed and recorded as a hang.
- End to end: one ``pixtract run CORPUS --out OUT`` through the real Prefect flow.

Known pixtract defects are listed in ``UNIT_DEFECTS`` and ``E2E_DEFECTS``: the main tests leave
those cases out and a strict xfail test per defect shows it is still there (it turns into a
failure, asking for the entry to be removed, once the defect is fixed).

The module also runs as the unit-level worker: ``python tests/test_hostile_inputs.py --worker``.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures" / "hostile"))

STEP_LIMIT = 10.0  # CPU seconds per count_pages or render_page; legitimate cases take < 2 s
HANG_LIMIT = 60.0  # wall-clock seconds after which a step counts as never ending
PASSWORD_ENV = "PIXTRACT_PDF_PASSWORD"

# ------------------------------------------------------------------- known defects (see report)

# Known defects: path -> what is wrong. Each gets a strict xfail test; empty while none is known.
UNIT_DEFECTS: dict[str, str] = {}
E2E_DEFECTS: dict[str, str] = {}
# Inputs left out of the one end-to-end run because they would hang or crash it (none now).
QUARANTINE: dict[str, str] = {}

_REPR_JUNK = re.compile(r"Swig Object|proxy of|Traceback|\b\w+(Error|Exception)\(['\"]")


def unclear(message: str) -> bool:
    """An error message that is a Python repr or traceback rather than words for a user."""
    return bool(_REPR_JUNK.search(message))


# ------------------------------------------------------------------- unit-level worker


def _worker() -> None:
    """Read a JSON list of paths on stdin; for each, print a 'step' line before every step and
    a 'done' line with the outcome. Runs in its own process, with cwd = the corpus."""
    import traceback

    from pixtract.discover import DiscoveryFailure, discover
    from pixtract.errors import InputError
    from pixtract.records import RenderSettings
    from pixtract.render import count_pages, render_page

    proto = os.fdopen(os.dup(1), "w")  # the protocol; anything else printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def say(**kw) -> None:
        proto.write(json.dumps(kw) + "\n")
        proto.flush()

    def err(e: BaseException) -> dict:
        return {"cls": type(e).__name__, "input_error": isinstance(e, InputError), "message": str(e),
                "traceback": None if isinstance(e, InputError) else traceback.format_exc()}

    settings = RenderSettings()
    for i, path in enumerate(json.loads(sys.stdin.readline())):
        out: dict = {"path": path, "items": []}
        try:
            say(i=i, step="discover")
            for item in discover([path]):
                if isinstance(item, DiscoveryFailure):
                    out["items"].append({"path": item.path, "discovery": err(item.error)})
                    continue
                rec = {"path": item.path, "kind": item.kind, "fmt": item.fmt, "pages": []}
                out["items"].append(rec)
                say(i=i, step="count")
                t0 = time.process_time()
                try:
                    rec["count"] = count_pages(item)
                except BaseException as e:  # noqa: BLE001 - the point is to see what escapes
                    rec["count_error"] = err(e)
                    continue
                finally:
                    rec["count_cpu_s"] = time.process_time() - t0
                for n in range(1, rec["count"] + 1):
                    say(i=i, step=f"render page {n}")
                    t0 = time.process_time()
                    try:
                        page = render_page(item, n, settings)
                        rec["pages"].append({
                            "page": n, "width": page.width, "height": page.height, "mime": page.mime,
                            "bytes": len(page.image), "text": page.text[:2000], "number": page.number,
                            "cpu_s": time.process_time() - t0})
                    except BaseException as e:  # noqa: BLE001
                        rec["pages"].append({"page": n, "error": err(e), "cpu_s": time.process_time() - t0})
        except BaseException as e:  # noqa: BLE001
            out["escaped"] = err(e)
        say(i=i, done=out)


def run_unit_sweep(corpus: Path, paths: list[str], limit: float = HANG_LIMIT, preexec_fn=None) -> dict[str, dict]:
    """Run the worker over paths; a step still running after ``limit`` wall-clock seconds kills
    the worker (recorded as a timeout) and a fresh worker goes on with the next path."""
    results: dict[str, dict] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(PASSWORD_ENV, None)
    todo = list(paths)
    while todo:
        errors = tempfile.TemporaryFile()
        proc = subprocess.Popen([sys.executable, __file__, "--worker"], cwd=corpus, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, preexec_fn=preexec_fn)
        proc.stdin.write((json.dumps(todo) + "\n").encode())
        proc.stdin.close()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        current, step, started, buf = 0, "start", time.monotonic(), b""
        finished, heard = 0, False
        while True:
            ready = sel.select(timeout=max(0.0, started + limit - time.monotonic()))
            if not ready:  # the step ran over: kill it, record, go on with the rest
                proc.kill()
                proc.wait()
                results[todo[current]] = {"path": todo[current], "timeout": step,
                                          "seconds": time.monotonic() - started}
                todo = todo[current + 1:]
                break
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            if not chunk:  # worker ended (done, or died)
                proc.wait()
                if not heard:  # it could not even start: a broken set-up, not a hostile file
                    errors.seek(0)
                    raise RuntimeError(f"unit worker failed to start:\n{errors.read()[-3000:].decode(errors='replace')}")
                if finished < len(todo):
                    results[todo[finished]] = {"path": todo[finished],
                                               "died": f"worker exited {proc.returncode} during {step}"}
                    todo = todo[finished + 1:]
                else:
                    todo = []
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg, heard = json.loads(line), True
                if "done" in msg:
                    results[todo[msg["i"]]] = msg["done"]
                    finished = msg["i"] + 1
                else:
                    current, step, started = msg["i"], msg["step"], time.monotonic()
        sel.close()
        proc.stdout.close()
        errors.close()
    return results


if __name__ == "__main__" and "--worker" in sys.argv:
    sys.path.insert(0, str(ROOT))
    _worker()
    sys.exit(0)

# ------------------------------------------------------------------- tests

import pytest  # noqa: E402

import make_hostile  # noqa: E402

from tests.helpers import TEST_SESSION_ENV  # noqa: E402

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def expectation(case) -> str:
    return case.root_only if (IS_ROOT and case.root_only) else case.expect


def _link_tree(src: Path, dst: Path) -> None:
    """A copy of the corpus made of hard links (instant; symlinks recreated, the FIFO linked,
    nothing opened). Folder modes (the chmod-000 one) are copied last."""
    folders = []
    for dirpath, dirnames, filenames in os.walk(src):
        here = dst / os.path.relpath(dirpath, src)
        here.mkdir(parents=True, exist_ok=True)
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), here / name)
            elif name in dirnames:
                (here / name).mkdir(exist_ok=True)
                folders.append((path, here / name))
            else:
                os.link(path, here / name)
    for path, copy in reversed(folders):
        os.chmod(copy, os.lstat(path).st_mode & 0o7777)


class Corpus:
    """Two copies of the generated corpus: ``unit`` (never changed; unit-level and discovery
    tests) and ``target`` (the end-to-end run, from which QUARANTINE cases are moved out)."""

    def __init__(self, base: Path) -> None:
        self.base, self.unit, self.target = base, base / "unit", base / "corpus"
        self.cases = {c.path: c for c in make_hostile.generate(str(self.unit))}
        _link_tree(self.unit, self.target)
        paths = [p for p, c in self.cases.items() if expectation(c) != "not_discovered"]
        # The unit-level sweep runs in a worker process, in the background, while the
        # end-to-end run (mostly Prefect start-up and Tesseract) goes on.
        self._pool = ThreadPoolExecutor(1)
        self._sweep = self._pool.submit(run_unit_sweep, self.unit, paths)

    def sweep(self) -> dict[str, dict]:
        return self._sweep.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for top in (self.unit, self.target):  # chmod-000 folders would make clean-up noisy
            for dirpath, dirnames, _ in os.walk(top):
                for d in dirnames:
                    if not os.path.islink(os.path.join(dirpath, d)):
                        os.chmod(os.path.join(dirpath, d), 0o755)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    c = Corpus(tmp_path_factory.mktemp("hostile"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def sweep(corpus):
    return corpus.sweep()


def _known(defects: dict[str, str]) -> list:
    """Parameters for the known-defect tests: each a strict xfail with the defect as reason."""
    return [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=r),
                         id=p.encode("ascii", "backslashreplace").decode()) for p, r in sorted(defects.items())]


def unit_problems(case, result) -> list[str]:
    """Everything wrong with one file's unit-level outcome, in words."""
    p = case.path
    if "timeout" in result:
        return [f"{p!r}: {result['timeout']} still running after {result['seconds']:.0f} s (limit {HANG_LIMIT} s)"]
    if "died" in result:
        return [f"{p!r}: {result['died']}"]
    if "escaped" in result:
        return [f"{p!r}: escaped discover(): {result['escaped']['traceback']}"]
    items = result["items"]
    if len(items) != 1:
        return [f"{p!r}: discover yielded {len(items)} items, expected 1"]
    item = items[0]
    problems = []
    exp = expectation(case)

    def check_error(e: dict, where: str) -> None:
        if not e["input_error"]:
            problems.append(f"{p!r}: {where}: {e['cls']} is not an InputError:\n{e['traceback']}")
            return
        if p not in e["message"]:
            problems.append(f"{p!r}: {where}: message does not name the file: {e['message']!r}")
        if unclear(e["message"]):
            problems.append(f"{p!r}: {where}: unclear message {e['message']!r}")
        for word in case.error_has:
            if word.lower() not in e["message"].lower():
                problems.append(f"{p!r}: {where}: message lacks {word!r}: {e['message']!r}")

    if "discovery" in item:
        check_error(item["discovery"], "discover")
        if exp not in ("discovery_failure", "any"):
            problems.append(f"{p!r}: expected {exp}, got a discovery failure: {item['discovery']['message']!r}")
        return problems
    if exp == "discovery_failure":
        problems.append(f"{p!r}: expected a discovery failure, got a {item['fmt']} document")
    if item["count_cpu_s"] > STEP_LIMIT:
        problems.append(f"{p!r}: count_pages took {item['count_cpu_s']:.1f} s of CPU (limit {STEP_LIMIT} s)")
    if "count_error" in item:
        check_error(item["count_error"], "count_pages")
        if exp not in ("document_failure", "any"):
            problems.append(f"{p!r}: expected {exp}, count_pages failed: {item['count_error']['message']!r}")
        return problems
    if exp == "document_failure":
        problems.append(f"{p!r}: expected a document failure, count_pages gave {item['count']}")
    if case.pages is not None and exp in ("ok", "page_failure") and item["count"] != case.pages:
        problems.append(f"{p!r}: {item['count']} pages, expected {case.pages}")
    if item["count"] < 1 or len(item["pages"]) != item["count"]:
        problems.append(f"{p!r}: count {item['count']}, {len(item['pages'])} pages rendered")
    for pg in item["pages"]:
        where = f"render_page {pg['page']}"
        if pg["cpu_s"] > STEP_LIMIT:
            problems.append(f"{p!r}: {where} took {pg['cpu_s']:.1f} s of CPU (limit {STEP_LIMIT} s)")
        if "error" in pg:
            check_error(pg["error"], where)
            if exp == "ok":
                problems.append(f"{p!r}: expected ok, {where} failed: {pg['error']['message']!r}")
            continue
        if exp == "page_failure":
            problems.append(f"{p!r}: expected {where} to fail, it rendered")
        if not (0 < pg["width"] <= 1024 and 0 < pg["height"] <= 1024 and pg["bytes"] > 0
                and pg["mime"] in ("image/png", "image/jpeg") and pg["number"] == pg["page"]):
            problems.append(f"{p!r}: {where}: not a valid page {pg}")
        if case.text and exp == "ok" and item["kind"] == "pdf" and pg["page"] == 1 and case.text not in pg["text"]:
            problems.append(f"{p!r}: {where}: text layer lacks {case.text!r}: {pg['text'][:200]!r}")
    return problems


def test_generator_is_complete(corpus):
    for rel in corpus.cases:
        assert os.path.lexists(corpus.unit / rel), rel
    wanted = ["pdf/truncated_half.pdf", "pdf/broken_xref.pdf", "pdf/encrypted.pdf", "pdf/zero_pages.pdf",
              "pdf/page_200in.pdf", "pdf/drawings_50k.pdf", "pdf/pages_self_kids.pdf", "pdf/xobject_self.pdf",
              "img/bomb_1bit_30000.png", "img/bomb_65000.jpg", "img/cmyk.jpg", "img/grey16.png",
              "img/palette_trns.png", "img/la.png", "img/animated.gif", "mislabeled/png_named.pdf",
              "mislabeled/pdf_named.jpg", "mislabeled/text_named.png", "empty/empty.pdf", "empty/empty.png",
              "perm/unreadable.pdf", "links/loop_a.pdf", "links/parent", "names/$(rm -rf x) ;|&.pdf",
              "names/résumé 日本.pdf", "names/-rf.pdf", "same/a/report.pdf", "same/b/report.pdf",
              "real/invalid.pdf"]
    assert set(wanted) <= set(corpus.cases)
    assert (corpus.unit / "img/bomb_1bit_30000.png").stat().st_size < 200_000  # a bomb: a tiny file
    for name in ("SOURCES.md", "LICENSE.CC-BY-SA-4.0.txt", "REUSE.ocrmypdf.toml"):
        assert (ROOT / "fixtures/hostile/real" / name).is_file()


@pytest.mark.timeout(120)  # an endless walk (through links/parent) would not end at all
def test_discovery_walk_over_the_corpus(corpus, monkeypatch):
    """A folder walk finds each regular input once, does not follow folder symlinks (no endless
    loop through links/parent), reads a symlinked file once, and never opens the FIFO."""
    from pixtract.discover import discover

    monkeypatch.chdir(corpus.unit)
    paths = [os.path.normpath(i.path) for i in discover(["."])]
    assert len(paths) == len(set(paths))
    assert not any(p.startswith("links/parent/") for p in paths)
    assert "links/via_link.png" not in paths and "links/target.png" in paths
    from pixtract.discover import display_path

    for rel, case in corpus.cases.items():
        shown = display_path(rel)  # a name that is not UTF-8 is recorded with escapes
        if expectation(case) == "not_discovered":
            assert shown not in paths, rel
        else:
            assert shown in paths, f"{rel!r} ({case.what}) silently skipped by the folder walk"


# ------------------------------------------------------------------- end to end
# (before the unit-level tests, so the unit sweep runs in the background meanwhile)


@pytest.fixture(scope="module")
def batch(corpus):
    """One `pixtract run CORPUS --out OUT` over everything but the quarantined cases."""
    from pixtract.flows.cli import main

    base, target = corpus.base, corpus.target
    quarantine = base / "quarantine"
    quarantine.mkdir()
    for rel in QUARANTINE:
        if os.path.lexists(target / rel):
            shutil.move(str(target / rel), str(quarantine / quarantined_name(rel)))
    out = base / "out"
    cwd = base / "cwd"
    (cwd / "x").mkdir(parents=True)  # the canary `$(rm -rf x)` would remove if a shell ran names
    before = _tree(base, skip=out)
    mp = pytest.MonkeyPatch()
    try:
        for k in [k for k in os.environ if k.startswith("PIXTRACT_") and k not in TEST_SESSION_ENV]:
            mp.delenv(k)  # e.g. a password left behind by an earlier run (see the env-leak test)
        mp.chdir(cwd)
        code = main(["run", str(target), "--out", str(out), "--no-progress"])
    finally:
        mp.undo()
    after = _tree(base, skip=out)
    records = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return dict(code=code, out=out, target=target, cases=corpus.cases, records=records, manifest=manifest,
                before=before, after=after, cwd=cwd, units=corpus.sweep())


def quarantined_name(rel: str) -> str:
    return f"{list(QUARANTINE).index(rel)}{Path(rel).suffix}"


def _tree(base: Path, skip: Path) -> dict[str, tuple]:
    snap = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if Path(dirpath) == skip:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            snap[os.path.relpath(p, base)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return snap


def e2e_problems(b: dict, rel: str) -> list[str]:
    from pixtract.discover import display_path

    case = b["cases"][rel]
    doc = display_path(str(b["target"] / rel))  # names that are not UTF-8 are recorded with escapes
    recs = [r for r in b["records"] if r["document"] == doc]
    exp = expectation(case)
    unit = b["units"].get(rel, {})
    item = (unit.get("items") or [{}])[0]
    problems = []
    if exp == "not_discovered":
        return [f"{rel!r}: not expected in results, got {len(recs)} records"] if recs else []
    if not recs:
        return [f"{rel!r}: no record at all"]
    for r in recs:
        if r["status"] == "failed":
            msg = (r.get("error") or {}).get("message") or ""
            if doc not in msg:
                problems.append(f"{rel!r} page {r['page']}: error does not name the file: {msg!r}")
            if unclear(msg):
                problems.append(f"{rel!r} page {r['page']}: unclear error {msg!r}")
            for word in case.error_has:
                if word.lower() not in msg.lower():
                    problems.append(f"{rel!r}: error lacks {word!r}: {msg!r}")
    unreadable = "discovery" in item or "count_error" in item
    if exp in ("discovery_failure", "document_failure") or (exp == "any" and unreadable):
        if not (len(recs) == 1 and recs[0]["page"] is None and recs[0]["status"] == "failed"):
            problems.append(f"{rel!r}: expected one page-null failed record, got "
                            f"{[(r['page'], r['status']) for r in recs]}")
        return problems
    pages = case.pages if case.pages is not None else item.get("count")
    got = sorted(r["page"] or 0 for r in recs)
    if got != list(range(1, (pages or 0) + 1)):
        problems.append(f"{rel!r}: pages {got}, expected 1..{pages}")
    if exp == "ok":
        bad = [(r["page"], (r.get("error") or {}).get("message")) for r in recs if r["status"] != "ok"]
        if bad:
            problems.append(f"{rel!r}: expected every page ok, failed: {bad}")
        first = next((r for r in recs if r["page"] == 1), None)
        if case.text and first and case.text not in (first.get("answer") or ""):
            problems.append(f"{rel!r}: page 1 answer lacks {case.text!r}: {(first.get('answer') or '')[:120]!r}")
    if exp == "page_failure" and any(r["status"] != "failed" for r in recs):
        problems.append(f"{rel!r}: expected failed page records, got {[r['status'] for r in recs]}")
    if exp == "any" and case.text and all(r["status"] == "ok" for r in recs):
        if not any(case.text in (r.get("answer") or "") for r in recs):
            problems.append(f"{rel!r}: read, but no answer has {case.text!r}")
    entry = [d for d in b["manifest"]["inputs"] if d["path"] == doc]
    if len(entry) != 1 or not entry[0].get("markdown") or not (b["out"] / entry[0]["markdown"]).is_file():
        problems.append(f"{rel!r}: no Markdown file in the manifest: {entry}")
    return problems


@pytest.mark.prefect
@pytest.mark.timeout(240)
def test_e2e_exit_code_and_one_record_per_page_or_failed_file(batch):
    assert batch["code"] == 1
    problems = []
    for rel in batch["cases"]:
        if rel not in QUARANTINE and rel not in E2E_DEFECTS:
            problems += e2e_problems(batch, rel)
    assert not problems, "\n".join(problems)
    keys = [(r["document"], r["page"], r["task"]) for r in batch["records"]]
    assert len(keys) == len(set(keys)), "duplicate records"
    from pixtract.discover import display_path

    known = {display_path(str(batch["target"] / rel)) for rel in batch["cases"]}
    assert {r["document"] for r in batch["records"]} <= known


@pytest.mark.prefect
@pytest.mark.timeout(240)
def test_e2e_encrypted_pdf_without_password_says_use_password(batch):
    doc = str(batch["target"] / "pdf/encrypted.pdf")
    [rec] = [r for r in batch["records"] if r["document"] == doc]
    assert rec["page"] is None and rec["status"] == "failed"
    msg = rec["error"]["message"]
    assert doc in msg and "encrypted PDF" in msg and "--password" in msg


@pytest.mark.prefect
@pytest.mark.timeout(240)
def test_e2e_same_names_get_distinct_markdown(batch):
    by_path = {d["path"]: d for d in batch["manifest"]["inputs"]}
    docs = [by_path[str(batch["target"] / f"same/{x}")] for x in ("a/report.pdf", "b/report.pdf", "c/Report.PDF")]
    names = {d["markdown"] for d in docs}
    assert len(names) == 3 and len({n.casefold() for n in names}) == 3
    for d in docs:
        text = (batch["out"] / d["markdown"]).read_text(encoding="utf-8")
        layout = json.loads((batch["out"] / d["layout"]).read_text(encoding="utf-8"))
        assert layout["document"] == d["path"] and text.startswith("<!-- page 1 -->")


@pytest.mark.prefect
@pytest.mark.timeout(240)
def test_e2e_nothing_written_outside_out_and_names_are_safe(batch):
    assert batch["before"] == batch["after"], "files changed outside --out"
    assert (batch["cwd"] / "x").is_dir() and not os.listdir(batch["cwd"] / "x")
    assert sorted(os.listdir(batch["cwd"])) == ["x"]
    out = os.path.realpath(batch["out"])
    for dirpath, dirnames, filenames in os.walk(out):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            assert not os.path.islink(p) and os.path.realpath(p).startswith(out + os.sep), p
    for entry in os.scandir(out):  # Markdown names made from the hostile input names
        assert not any(c in entry.name for c in "\n\r\t/\\|\u200b\u202e"), repr(entry.name)
    for d in batch["manifest"]["inputs"]:
        if d.get("markdown"):
            assert os.path.dirname(d["markdown"]) == "" and os.path.isfile(os.path.join(out, d["markdown"]))


@pytest.mark.prefect
@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", _known(E2E_DEFECTS))
def test_e2e_known_defect(batch, path):
    """Strict xfail: fails while the defect is there; an XPASS asks to remove the entry."""
    problems = e2e_problems(batch, path)
    if path == "same/e/twin.png":
        mds = [d["markdown"] for d in batch["manifest"]["inputs"] if d["path"].endswith("twin.png")]
        if len(set(mds)) != len(mds):
            problems.append(f"same-named inputs share one Markdown file: {mds}")
    assert not problems, "\n".join(problems)


@pytest.mark.prefect
@pytest.mark.timeout(240)
def test_e2e_encrypted_pdf_with_password_is_answered(batch, tmp_path, monkeypatch):
    from pixtract.flows.cli import main

    monkeypatch.delenv(PASSWORD_ENV, raising=False)  # restored at teardown (see the env-leak test)
    out = tmp_path / "out"
    code = main(["run", str(batch["target"] / "pdf/encrypted.pdf"), "--out", str(out), "--no-progress",
                 "--password", make_hostile.PASSWORD])
    [rec] = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert code == 0 and rec["page"] == 1 and rec["status"] == "ok"
    assert make_hostile.WORD in rec["answer"]
    for dirpath, _, files in os.walk(out):
        for f in files:
            assert make_hostile.PASSWORD.encode() not in Path(dirpath, f).read_bytes(), f


@pytest.mark.prefect
@pytest.mark.timeout(240)
def test_e2e_password_not_left_in_environment(batch, tmp_path, monkeypatch):
    from pixtract.flows.cli import main

    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    main(["run", str(batch["target"] / "img/cmyk.jpg"), "--out", str(tmp_path / "o"), "--no-progress",
          "--password", "leak-check"])
    assert os.environ.get(PASSWORD_ENV) is None


@pytest.mark.prefect
@pytest.mark.timeout(240)
def test_e2e_undecodable_file_name_does_not_crash_the_batch(batch, tmp_path, monkeypatch):
    from pixtract.flows.cli import main

    src = batch["target"] / "names" / os.fsdecode(b"latin1-caf\xe9.pdf")
    if not src.exists():
        pytest.skip("this file system refused a non-UTF-8 name")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(src, folder / os.fsdecode(b"latin1-caf\xe9.pdf"))
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    code = main(["run", str(folder), "--out", str(tmp_path / "out"), "--no-progress"])
    recs = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert code == 0 and len(recs) == 1 and recs[0]["status"] == "ok"


# ------------------------------------------------------------------- unit level


@pytest.mark.timeout(120)
def test_unit_every_input_gives_typed_error_or_valid_page(corpus, sweep):
    results = sweep
    problems = []
    for path, res in results.items():
        if path not in UNIT_DEFECTS:
            problems += unit_problems(corpus.cases[path], res)
    assert not problems, "\n".join(problems)
    assert set(results) == {p for p, c in corpus.cases.items() if expectation(c) != "not_discovered"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", _known(UNIT_DEFECTS))
def test_unit_known_defect(corpus, sweep, path):
    """Strict xfail: fails while the defect is there; an XPASS asks to remove the entry."""
    results = sweep
    if path not in results:
        pytest.skip("case not generated on this file system")
    assert not (problems := unit_problems(corpus.cases[path], results[path])), "\n".join(problems)


@pytest.mark.timeout(120)
def test_unit_unreadable_file_when_not_root(corpus, sweep):
    """The permission cases as a user without root's rights (CI runs as root: the worker drops
    them), and, as root, the same files simply read."""
    from tests.helpers import without_root_rights

    results = sweep
    if IS_ROOT:
        assert results["perm/unreadable.pdf"]["items"][0].get("count") == 1  # root reads a chmod-000 file
    user = run_unit_sweep(corpus.unit, ["perm/unreadable.pdf", "perm"], preexec_fn=without_root_rights)
    assert "cannot read" in user["perm/unreadable.pdf"]["items"][0]["discovery"]["message"]
    walked = {os.path.normpath(i["path"]) for i in user["perm"]["items"]}
    assert "perm/unreadable.pdf" in walked and "perm/locked_dir/inside.pdf" not in walked
