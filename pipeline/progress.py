"""Who hears of a run's progress: a listener is told of each document as it is planned and each
record as it is finished (a progress bar, Prefect's artifacts, a JSON log, a stall watchdog).

A run's listeners belong to the run: its ``RunContext`` (pipeline/runcontext.py) holds a
``Listeners`` that the caller adds to and the batch tells; nothing is registered process-wide,
so two runs in one process (``pixtract serve``, a notebook) never hear each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from .records import Record


class Listener(Protocol):
    """``note(message)``, for run-level notices (a retired model), is optional."""

    def document(self, path: str, pages: int) -> None: ...

    def record(self, rec: Record) -> None: ...


class Listeners:
    """The listeners of one run, as one listener. ``add`` returns the function that removes the
    listener again; adding and telling may happen on different threads."""

    def __init__(self, *listeners: Listener) -> None:
        self._lock = threading.Lock()
        self._all: list[Listener] = list(listeners)

    def add(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._all.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._all:
                    self._all.remove(listener)

        return remove

    def _now(self) -> list[Listener]:
        with self._lock:
            return list(self._all)

    def document(self, path: str, pages: int) -> None:
        for listener in self._now():
            listener.document(path, pages)

    def record(self, rec: Record) -> None:
        for listener in self._now():
            listener.record(rec)

    def note(self, message: str) -> None:
        for listener in self._now():
            if hasattr(listener, "note"):
                listener.note(message)
