import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pixtract.discover import DiscoveryFailure, discover, expand, identify
from pixtract.records import Document
from tests.helpers import without_root_rights

ROOT = Path(__file__).resolve().parent.parent

KINDS = {
    "report.pdf": ("pdf", "PDF"),
    "scanned.pdf": ("pdf", "PDF"),
    "chart.png": ("image", "PNG"),
    "alpha.png": ("image", "PNG"),
    "photo_exif.jpg": ("image", "JPEG"),
    "scan.webp": ("image", "WEBP"),
    "anim.gif": ("image", "GIF"),
    "multi.tiff": ("image", "TIFF"),
    "scan.bmp": ("image", "BMP"),
}


@pytest.mark.parametrize("name,kind", sorted(KINDS.items()))
def test_every_input_kind_is_identified(samples, name, kind):
    doc = identify(str(samples / name))
    assert isinstance(doc, Document)
    assert (doc.kind, doc.fmt) == kind
    assert doc.sha256 == hashlib.sha256((samples / name).read_bytes()).hexdigest()
    assert doc.size == (samples / name).stat().st_size


@pytest.mark.parametrize(
    "name,error_type",
    [("notes.txt", "unsupported_file"), ("empty.pdf", "unreadable_file")],
)
def test_bad_files_become_failures_naming_the_file(samples, name, error_type):
    got = identify(str(samples / name))
    assert isinstance(got, DiscoveryFailure)
    assert got.error.type == error_type
    assert name in str(got.error)


def test_missing_file_is_a_failure_not_a_crash(tmp_path):
    got = identify(str(tmp_path / "nope.pdf"))
    assert isinstance(got, DiscoveryFailure)
    assert "no such file" in str(got.error)


def test_unreadable_permissions(tmp_path, samples):
    """Runs without root's right to read any file (tests run as root on CI), in a subprocess."""
    p = tmp_path / "locked.pdf"
    shutil.copy(samples / "report.pdf", p)
    p.chmod(0)
    code = ("import sys; from pixtract.discover import identify; g = identify(sys.argv[1]); "
            "print(type(g).__name__, g.error.type if hasattr(g, 'error') else '-', g.error if hasattr(g, 'error') else '')")
    done = subprocess.run([sys.executable, "-c", code, str(p)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, preexec_fn=without_root_rights)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("DiscoveryFailure unreadable_file ") and "cannot read" in done.stdout


def test_kind_comes_from_content_not_extension(tmp_path, samples):
    disguised = tmp_path / "really_a_png.pdf"
    shutil.copy(samples / "chart.png", disguised)
    text_as_pdf = tmp_path / "text.pdf"
    text_as_pdf.write_text("hello, I am not a PDF")
    assert identify(str(disguised)).kind == "image"
    assert isinstance(identify(str(text_as_pdf)), DiscoveryFailure)


def test_folders_are_recursive_sorted_and_filtered(tmp_path, samples):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    shutil.copy(samples / "report.pdf", tmp_path / "b" / "deep" / "r.pdf")
    shutil.copy(samples / "chart.png", tmp_path / "a.png")
    (tmp_path / "readme.md").write_text("not an input")
    paths = list(expand([str(tmp_path)]))
    assert paths == [str(tmp_path / "a.png"), str(tmp_path / "b" / "deep" / "r.pdf")]


def test_globs_and_duplicates(samples):
    pattern = str(samples / "*.pdf")
    paths = list(expand([pattern, str(samples / "report.pdf")]))
    names = [os.path.basename(p) for p in paths]
    assert names == sorted(n for n in os.listdir(samples) if n.endswith(".pdf"))
    assert names.count("report.pdf") == 1


def test_discover_is_lazy(samples):
    it = discover([str(samples)])
    first = next(it)
    assert isinstance(first, (Document, DiscoveryFailure))


def test_same_name_in_two_folders_are_two_documents(tmp_path, samples):
    for sub, src in (("x", "report.pdf"), ("y", "scanned.pdf")):
        (tmp_path / sub).mkdir()
        shutil.copy(samples / src, tmp_path / sub / "doc.pdf")
    docs = list(discover([str(tmp_path)]))
    assert len(docs) == 2 and docs[0].sha256 != docs[1].sha256


def test_a_folder_named_like_a_pdf_given_directly_is_expanded_not_crashing(tmp_path, samples):
    d = tmp_path / "odd.pdf"
    d.mkdir()
    assert list(discover([str(d)])) == []
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    got = identify(str(fifo))
    assert isinstance(got, DiscoveryFailure) and "not a regular file" in str(got.error)
