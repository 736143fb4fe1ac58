import json
import os

import pytest

from pixtract import outputs
from pixtract.files import atomic_write
from pixtract.outputs import MarkdownNames, OutputWriter, document_markdown, safe_name
from pixtract.records import Document, ErrorInfo, Record


def _rec(page, status="ok", answer="text", doc="a.pdf"):
    err = None if status == "ok" else ErrorInfo("render_error", f"{doc} page {page}: boom")
    return Record(document=doc, sha256="ab" * 32, page=page, task="transcribe",
                  route="local-text" if status == "ok" else None, status=status,
                  answer=answer if status == "ok" else None, error=err)


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "f.json"
    atomic_write(str(p), "old")
    atomic_write(str(p), "new")
    assert p.read_text() == "new"
    assert [x.name for x in tmp_path.iterdir()] == ["f.json"]
    assert oct(p.stat().st_mode & 0o777) != oct(0o600)


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "f.json"
    atomic_write(str(p), "old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write(str(p), "new")
    monkeypatch.undo()
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.json"]


def test_results_appear_only_when_the_run_finishes(tmp_path):
    w = OutputWriter(str(tmp_path))
    doc = Document("a.pdf", "/x/a.pdf", "ab" * 32, "pdf", 10, "PDF")
    w.add_document(doc, 2, [_rec(2), _rec(1)])
    assert not (tmp_path / outputs.RESULTS).exists()  # only the spool so far
    w.finish({"ok": True})
    lines = (tmp_path / outputs.RESULTS).read_text().splitlines()
    assert [json.loads(x)["page"] for x in lines] == [1, 2]
    assert json.loads((tmp_path / outputs.MANIFEST).read_text()) == {"ok": True}
    assert not os.path.exists(w.spool_path)


def test_clean_markdown_is_the_content_and_page_markers_only():
    recs = [_rec(1, answer="# Title\n\nHello"), _rec(2, "failed"), _rec(3, answer="Bye")]
    recs[0].flags, recs[0].agreement, recs[0].route = ["numbers not in text layer: 9"], 0.5, "vision"
    md = outputs.clean_markdown(recs)
    assert md == "<!-- page 1 -->\n\n# Title\n\nHello\n\n<!-- page 2 -->\n\n<!-- page 3 -->\n\nBye\n"
    assert "a.pdf" not in md and "vision" not in md and "numbers" not in md
    assert outputs.clean_markdown(recs, page_marker="") == "# Title\n\nHello\n\nBye\n"
    assert outputs.clean_markdown(recs, page_marker="--- {page} ---").startswith("--- 1 ---\n")


def test_a_stem_named_like_the_manifest_does_not_replace_it(tmp_path):
    w = OutputWriter(str(tmp_path))
    w.add_document(Document("manifest.pdf", "/x/manifest.pdf", "ab" * 32, "pdf", 10, "PDF"), 1, [_rec(1)])
    assert w.documents[0]["layout"] == "manifest-abababab.json"


def test_annotated_markdown_has_page_markers_and_failed_marker():
    md = document_markdown("a.pdf", [_rec(1, answer="Hello"), _rec(2, "failed")], 2)
    assert "## Page 1" in md and "Hello" in md
    assert "## Page 2" in md and "FAILED" in md and "boom" in md
    assert md.index("Page 1") < md.index("Page 2")


def test_markdown_names_distinct_for_same_stem():
    names = MarkdownNames()
    assert names.name_for("doc", "1" * 64, "a/doc.pdf") == "doc.md"
    assert names.name_for("doc", "2" * 64, "b/doc.pdf") == "doc-22222222.md"
    assert names.name_for("doc", "1" * 64, "a/doc.pdf") == "doc.md"
    # same bytes under two paths: still two files
    assert names.name_for("doc", "1" * 64, "c/doc.pdf") == "doc-11111111.md"
    assert names.name_for("doc", "1" * 64, "d/doc.pdf") == "doc-11111111-2.md"


@pytest.mark.parametrize("raw", ["../../etc/passwd", "/abs/path", "a\x00b", "..", "con:?*", "\u202eevil"])
def test_safe_name_cannot_escape(raw, tmp_path):
    name = safe_name(raw)
    assert "/" not in name and "\x00" not in name and name not in ("", ".", "..")
    assert os.path.dirname(os.path.normpath(os.path.join(tmp_path, name))) == str(tmp_path)


def test_output_options_from_job_file_env_and_flags_and_not_in_the_job_fingerprint(tmp_path):
    from pixtract.flows.cli import build_parser, flags_layer
    from pixtract.config import build_config, env_layer, load_job

    job = tmp_path / "job.toml"
    job.write_text('inputs = ["a.pdf"]\nout = "o"\nannotated_markdown = true\ngrounding_ocr = "yes"\n')
    cfg = build_config(load_job(str(job)))
    assert (cfg.page_marker, cfg.annotated_markdown, cfg.grounding_ocr) == ("<!-- page {page} -->", True, True)
    env = env_layer({"PIXTRACT_PAGE_MARKER": "## {page}"})
    assert build_config(load_job(str(job)), env).page_marker == "## {page}"
    args = build_parser().parse_args(["run", "a.pdf", "--out", "o", "--page-marker", ""])
    assert build_config(load_job(str(job)), env, flags_layer(args)).page_marker == ""
    plain = build_config({"inputs": ["a.pdf"], "out": "o"})
    assert (plain.annotated_markdown, plain.grounding_ocr) == (False, False)
    dressed = build_config({"inputs": ["a.pdf"], "out": "o", "page_marker": "", "annotated_markdown": True,
                            "grounding_ocr": True})
    assert plain.fingerprint() == dressed.fingerprint()  # how outputs look is not what the job answers


def test_the_writer_writes_annotated_markdown_when_asked(tmp_path):
    w = OutputWriter(str(tmp_path), page_marker="", annotated=True)
    r = _rec(1, answer="Hello")
    r.grounding = {"located": 0, "total": 1, "share": 0.0, "words": "text-layer", "items": [
        {"kind": "block", "value": "Hello", "located": False}]}
    w.add_document(Document("a.pdf", "/x/a.pdf", "ab" * 32, "pdf", 10, "PDF"), 1, [r])
    assert (tmp_path / "a.md").read_text() == "Hello\n"
    annotated = (tmp_path / "a.annotated.md").read_text()
    assert annotated.startswith("# a.pdf") and "## Page 1" in annotated
    assert "located on the page: 0 of 1" in annotated and "not found on the page: Hello" in annotated
    assert w.documents[0]["annotated"] == "a.annotated.md"
