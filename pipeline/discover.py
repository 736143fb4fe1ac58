"""Step 1: inputs (files, folders, globs) to Documents, or records of why not."""

from __future__ import annotations

import errno
import glob
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import UnreadableFile, UnsupportedFile
from .records import Document

PDF_EXTS = {".pdf"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".tif", ".tiff", ".bmp"}
SUPPORTED_EXTS = PDF_EXTS | IMAGE_EXTS

# Magic numbers decide the kind; the extension only decides what to look at in folders.
_MAGIC = [
    (b"%PDF-", "pdf", "PDF"),
    (b"\x89PNG\r\n\x1a\n", "image", "PNG"),
    (b"\xff\xd8\xff", "image", "JPEG"),
    (b"GIF87a", "image", "GIF"),
    (b"GIF89a", "image", "GIF"),
    (b"II*\x00", "image", "TIFF"),
    (b"MM\x00*", "image", "TIFF"),
    (b"BM", "image", "BMP"),
]


@dataclass(frozen=True)
class DiscoveryFailure:
    """An input that is not a usable document; written as a failed record."""

    path: str
    sha256: str | None
    error: Exception


def sniff(head: bytes) -> tuple[str, str] | None:
    """(kind, format) from a file's first bytes, or None if not a supported format."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "WEBP"
    # A PDF header may sit after some junk bytes (the PDF spec allows 1024).
    if b"%PDF-" in head[:1024]:
        return "pdf", "PDF"
    for magic, kind, fmt in _MAGIC:
        if head.startswith(magic):
            return kind, fmt
    return None


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expand(inputs: Iterable[str], exclude: Iterable[str] = ()) -> Iterator[str]:
    """Paths from files, folders (recursive, sorted) and globs, without duplicates, and none
    inside an ``exclude`` folder (the output folder: a run never reads its own outputs)."""
    seen: set[str] = set()
    skip = [os.path.realpath(e) for e in exclude if e]

    def inside_excluded(p: str) -> bool:
        real = os.path.realpath(p)
        return any(real == e or real.startswith(e + os.sep) for e in skip)

    def emit(p: str) -> Iterator[str]:
        key = os.path.realpath(p)
        if key not in seen and not inside_excluded(p):
            seen.add(key)
            yield p

    for item in inputs:
        if os.path.isdir(item):
            if inside_excluded(item):
                continue
            for root, dirs, files in os.walk(item, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not inside_excluded(os.path.join(root, d)))
                for name in sorted(files):
                    if os.path.splitext(name)[1].lower() in SUPPORTED_EXTS:
                        yield from emit(os.path.join(root, name))
        elif os.path.lexists(item) or not glob.has_magic(item):
            # A missing plain path is reported by identify(), not silently dropped.
            yield from emit(item)
        else:
            for p in sorted(glob.glob(item, recursive=True)):
                if os.path.isdir(p):
                    yield from expand([p], exclude)
                else:
                    yield from emit(p)


def display_path(path: str) -> str:
    """The path as text for records and messages: bytes that are not UTF-8 shown as escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def identify(path: str) -> Document | DiscoveryFailure:
    """Read a file's header and hash; never raises for a bad file."""
    raw, path = path, display_path(path)
    try:
        if not os.path.exists(raw):
            if os.path.islink(raw):
                try:
                    os.stat(raw)
                except OSError as e:
                    if e.errno == errno.ELOOP:
                        raise UnreadableFile(f"{path}: symbolic link loop") from None
                raise UnreadableFile(f"{path}: no such file (dangling symbolic link)")
            raise UnreadableFile(f"{path}: no such file")
        if not os.path.isfile(raw):
            raise UnsupportedFile(f"{path}: not a regular file")
        with open(raw, "rb") as f:
            head = f.read(1024)
        digest = sha256_file(raw)
    except (UnreadableFile, UnsupportedFile) as e:
        return DiscoveryFailure(path, None, e)
    except OSError as e:
        return DiscoveryFailure(path, None, UnreadableFile(f"{path}: cannot read ({e.strerror or e})"))
    size = os.path.getsize(raw)
    if size == 0:
        return DiscoveryFailure(path, digest, UnreadableFile(f"{path}: empty file (0 bytes)"))
    found = sniff(head)
    if found is None:
        ext = os.path.splitext(path)[1] or "no extension"
        return DiscoveryFailure(
            path,
            digest,
            UnsupportedFile(
                f"{path}: not a supported document ({ext}); "
                "pixtract reads PDF, PNG, JPEG, WEBP, GIF, TIFF and BMP"
            ),
        )
    kind, fmt = found
    return Document(path=path, abspath=os.path.abspath(raw), sha256=digest, kind=kind, size=size, fmt=fmt)


def discover(inputs: Iterable[str], exclude: Iterable[str] = ()) -> Iterator[Document | DiscoveryFailure]:
    """Lazily identify every input (none under an ``exclude`` folder)."""
    for path in expand(inputs, exclude):
        yield identify(path)


def nothing_found(inputs: Iterable[str], exclude: Iterable[str] = ()) -> str | None:
    """Why ``inputs`` name no document at all (an empty folder, a glob matching nothing, a
    folder of other files, only missing paths), or None when at least one file is there.
    Cheap: it lists paths and hashes nothing."""
    inputs = list(inputs)
    for path in expand(inputs, exclude):
        if os.path.lexists(path):
            return None
    missing = [i for i in inputs if not os.path.lexists(i) and not glob.has_magic(i)]
    if missing == inputs:
        return f"no such file or folder: {', '.join(missing[:5])}" + (" and more" if len(missing) > 5 else "")
    shown = ", ".join(inputs[:5]) + (f" and {len(inputs) - 5} more" if len(inputs) > 5 else "")
    return (f"no documents found in {shown} (pixtract reads "
            f"{' '.join(sorted(SUPPORTED_EXTS))} files, in folders recursively)")
