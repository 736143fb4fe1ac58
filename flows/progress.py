"""Progress events from the flow to whoever listens (the CLI's progress bar)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_listeners: list[Any] = []


def subscribe(listener: Any) -> Callable[[], None]:
    """Register an object with ``document(path, pages)`` and ``record(rec)``; returns an unsubscribe."""
    _listeners.append(listener)

    def unsubscribe() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return unsubscribe


def document(path: str, pages: int) -> None:
    for listener in list(_listeners):
        listener.document(path, pages)


def emit(record) -> None:
    for listener in list(_listeners):
        listener.record(record)


def note(message: str) -> None:
    """A run-level notice (e.g. a retired model) for listeners that show such things."""
    for listener in list(_listeners):
        if hasattr(listener, "note"):
            listener.note(message)


class _Everyone:
    """Every subscriber as one listener: what the flow hands pipeline/batch.py's run."""

    def document(self, path: str, pages: int) -> None:
        document(path, pages)

    def record(self, rec) -> None:
        emit(rec)

    def note(self, message: str) -> None:
        note(message)


EVERYONE = _Everyone()
