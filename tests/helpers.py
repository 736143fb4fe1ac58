"""Small helpers shared by tests."""

from __future__ import annotations

import re

# What tests/conftest.py sets for the whole session (Prefect's ephemeral API, so that no run
# starts a managed server in the user's own data folder): a test that clears pixtract's
# environment for a run keeps these.
TEST_SESSION_ENV = ("PIXTRACT_PREFECT",)


def words(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"[\w.,]+", text)} | {
        w.casefold() for w in re.findall(r"\w+", text)
    }


def missing_words(text: str, wanted: list[str]) -> list[str]:
    found = words(text)
    return [w for w in wanted if w.casefold() not in found]


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it (or a test calls
    ``advance``): retry and rate-limit tests assert exact waits and their order."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def without_root_rights() -> None:
    """``preexec_fn`` for a subprocess that must meet file permissions as an ordinary user does.

    As root, drops the two capabilities that let root read any file and list any folder
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from the bounding set, so the program started next has
    neither; it stays uid 0 and can still reach the interpreter under root's home (a switch to
    'nobody' could not). A user who is not root already lacks them: nothing to do. Fails loudly
    (never skips) if the kernel refuses.
    """
    import ctypes
    import os

    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH (linux/capability.h)
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed: cannot drop root's file rights")


def text_pdfs(folder, pages: dict[str, int], label: str = "Chunk test") -> None:
    """``<name>.pdf`` in ``folder`` (made) for each name, with that many pages of real text,
    each saying which document and page it is."""
    import pymupdf

    folder.mkdir()
    for name, n in pages.items():
        pdf = pymupdf.open()
        for p in range(n):
            page = pdf.new_page(width=300, height=200)
            page.insert_text((20, 40), f"{label}, document {name}, page {p + 1}.", fontsize=10)
            page.insert_text((20, 60), "The quick brown fox jumps over the lazy dog.", fontsize=10)
        pdf.save(folder / f"{name}.pdf")
