"""Files that appear whole or not at all: the outputs, the answer cache, the inbox's index and
run folders, the shared budget. A reader (a report, a rerun, another part of the run) never
sees half a file, whatever killed the writer. And the lock that lets processes (an inbox run's
parts, two runs of one inbox) take turns at a file they all rewrite.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str, data: str | bytes, durable: bool = True) -> None:
    """Write a whole file or nothing: temp file in the same folder, fsync (unless not
    ``durable``: files that can be made again), rename."""
    with atomic_file(path, "wb", durable) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


@contextmanager
def atomic_file(path: str, mode: str = "w", durable: bool = True) -> Iterator[IO]:
    """A file to write in pieces that appears at ``path`` whole, or not at all."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are ordinary files
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextmanager
def locked(path: str, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (made, with its folder, if missing) for
    the ``with`` block: one holder at a time across processes (local disks and NFSv4). Without
    ``wait``, BlockingIOError at once while another process holds it."""
    import fcntl

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
