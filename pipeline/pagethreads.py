"""The threads that answer pages, and the guard that stops a run from waiting forever on one.

MuPDF work already runs in worker processes with hard deadlines (pipeline/workers.py). What
is left in this process (requests, OCR, parsing) has limits of its own, but a bug or an odd
input could still block one page thread for good. Then the run must not block with it: a page
that has been running for ``stall_timeout`` seconds is given up (``page_stalled`` for that page)
and the batch goes on. Its thread cannot be killed, so it is left behind: the pool starts a
replacement, and its threads are daemon threads, which the interpreter does not wait for at
exit (``ThreadPoolExecutor`` joins every thread at exit, so one stuck page would keep the
process alive).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .errors import PageStalled

_POLL_S = 1.0  # how often a waiting caller checks a running page's age


class PageThreads:
    """``submit`` / ``shutdown`` like ``ThreadPoolExecutor``, on daemon threads, plus
    ``result``: wait for a page, giving up once it has run ``stall_timeout`` seconds."""

    def __init__(self, size: int, name: str = "pixtract-page") -> None:
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)  # released by a thread that waits for work (as ThreadPoolExecutor)
        self._started: dict[Future, tuple[float, threading.Thread]] = {}  # running: since when, on which thread
        self._stuck: set[threading.Thread] = set()  # threads left behind on a stalled page
        self._closed = False

    @property
    def abandoned(self) -> int:
        return len(self._stuck)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("page threads are shut down")
            self._queue.put((fut, fn, args))
            if not self._idle.acquire(timeout=0) and len(self._threads) - len(self._stuck) < self.size:
                self._start_thread()
        return fut

    def result(self, fut: Future, stall_timeout: float | None, where: str) -> Any:
        """``fut.result()``, except that a page running longer than ``stall_timeout`` raises
        PageStalled naming ``where`` (its thread is left behind and replaced)."""
        while True:
            try:
                return fut.result(timeout=_POLL_S if stall_timeout else None)
            except FutureTimeout:
                started = self._started.get(fut)
                if started is not None and time.monotonic() - started[0] > stall_timeout:
                    self._abandon(fut)
                    raise PageStalled(
                        f"{where}: no answer after {stall_timeout:g} s; pixtract stopped waiting for this page "
                        f"and went on (stall_timeout, PIXTRACT_STALL_TIMEOUT)") from None

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    fut, _, _ = self._queue.get_nowait()
                except queue.Empty:
                    break
                fut.cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for t in threads:
                if t not in self._stuck:
                    t.join()

    # -- inside ---------------------------------------------------------------------------
    def _start_thread(self) -> None:
        t = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
        self._threads.append(t)
        t.start()

    def _abandon(self, fut: Future) -> None:
        with self._lock:
            started = self._started.pop(fut, None)
            if started is None:
                return
            self._stuck.add(started[1])
            if not self._closed:
                self._start_thread()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            item = self._queue.get()
            if item is None:
                return
            fut, fn, args = item
            if not fut.set_running_or_notify_cancel():
                continue
            with self._lock:
                self._started[fut] = (time.monotonic(), me)
            try:
                value = fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the future
                self._finish(fut)
                fut.set_exception(e)
            else:
                self._finish(fut)
                fut.set_result(value)
            with self._lock:
                if me in self._stuck:
                    return  # a replacement took its place
            self._idle.release()

    def _finish(self, fut: Future) -> None:
        with self._lock:
            self._started.pop(fut, None)

