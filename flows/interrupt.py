"""Ctrl-C and SIGTERM for ``pixtract run``: stop new work at once, write what is done, exit.

The flow runs on a thread of its own, so the main thread is always free to take a signal.
On SIGINT (what a terminal sends to its foreground process group) or SIGTERM the run's stop
event is set: the router starts no new page or request, answers in flight get a few seconds,
every planned unit gets its record, and the outputs are written. Then the main thread stops
the temporary Prefect server, and the process exits 130 (SIGINT) or 143 (SIGTERM) without
waiting on Prefect: its API may be gone already (a terminal's Ctrl-C reaches the temporary
server too), and its clients would retry for a minute. A second signal exits at once.
"""

from __future__ import annotations

import faulthandler
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pixtract.outcome import SIGNAL_EXIT


API_LOST = "api-lost"
WRITE_WAIT_S = 3.5  # after the signal: time for the run to write its outputs (answers in flight get 2 s)


@dataclass
class Finished:
    value: Any = None
    error: BaseException | None = None


def run_stoppable(fn: Callable[[], Any], local, watch: "StallWatch | None" = None) -> Finished | str:
    """Run ``fn`` (the flow) on a thread; return its result, the signal's name once the run
    was stopped (its outputs written when ``local.written`` is set), or API_LOST once the
    outputs are written but the Prefect API is gone.

    While it runs, ``watch`` (a StallWatch) is kept pushed back as long as records come."""
    box = Finished()

    def target() -> None:
        try:
            box.value = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller as is
            box.error = e

    def on_signal(signum, frame) -> None:
        name = signal.Signals(signum).name
        if local.stop.is_set():  # a second Ctrl-C: leave now
            stop_prefect_server(wait=0.5)
            os._exit(SIGNAL_EXIT.get(name, 130))
        local.signal = name
        local.stop.set()
        # Whatever happens now, the process ends: faulthandler's watchdog needs no GIL.
        faulthandler.dump_traceback_later(WRITE_WAIT_S + 5, exit=True, file=_devnull())

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        # A shell's background job ignores SIGINT on purpose; keep it that way.
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, on_signal)
    worker = threading.Thread(target=target, name="pixtract-flow", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
            if watch is not None and not local.stop.is_set():
                watch.rearm()
            if local.stop.is_set():
                local.written.wait(WRITE_WAIT_S)
                return local.signal or "SIGINT"
            if local.api_lost.is_set() and local.written.is_set():
                return API_LOST  # the outputs are whole; Prefect's bookkeeping would only retry
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if watch is not None:
            watch.close(cancel=False)  # the caller cancels it (after a signal it must stay armed)
    faulthandler.cancel_dump_traceback_later()
    return box


class StallWatch:
    """The last guard against a run that never ends. A stalled page is given up by the page
    threads (pipeline/pagethreads.py), but when this process is frozen (native code holding the
    GIL) nothing in Python runs at all. faulthandler's watchdog needs no GIL: it is armed from
    the start, and pushed back (``rearm``, from the main thread) while records keep coming; once
    no document or record has come for ``stall_s`` seconds, it prints every thread's traceback
    and ends the process with exit status 1 (the answers so far are in the cache: a rerun
    resumes)."""

    def __init__(self, stall_s: float, startup_s: float, listeners) -> None:
        """``startup_s`` more are allowed before the first document (Prefect starts meanwhile);
        ``listeners``: the run's (``RunContext.listeners``), which tell it of documents and records."""
        self.stall_s = stall_s
        self.last = time.monotonic() + startup_s
        self._armed = 0.0
        self._starting = True
        self._lock = threading.Lock()  # faulthandler's watchdog is one per process: arm it from one thread at a time
        self._unsubscribe = listeners.add(self)
        self.rearm()

    def document(self, path: str, pages: int) -> None:
        self.last = time.monotonic()
        if self._starting:
            # The flow is running: the start-up allowance ends now, not at the next rearm (a page
            # that freezes the process within that second would else get the whole allowance).
            self._starting = False
            self._arm(self.last)

    def record(self, rec) -> None:
        self.last = time.monotonic()

    def rearm(self) -> None:
        now = time.monotonic()
        if now - self._armed >= 1.0:
            self._arm(now)

    def _arm(self, now: float) -> None:
        with self._lock:
            self._armed = now
            faulthandler.dump_traceback_later(max(1.0, self.last + self.stall_s - now), exit=True, file=_stderr())

    def close(self, cancel: bool = True) -> None:
        """Stop watching; ``cancel=False`` leaves the watchdog armed (a signal re-arms it to end
        the process after the outputs are written)."""
        self._unsubscribe()
        if cancel:
            with self._lock:
                faulthandler.cancel_dump_traceback_later()


def _stderr():
    """A standard error faulthandler can write to (it needs a file descriptor; a captured or
    replaced ``sys.stderr`` may have none)."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            stream.fileno()
            return stream
        except (AttributeError, OSError, ValueError):
            continue
    return _devnull()


@functools.lru_cache(maxsize=1)
def _devnull():
    return open(os.devnull, "w")


def stop_prefect_server(wait: float = 1.0) -> None:
    """Stop the temporary Prefect API server this process started, if any (what Prefect's own
    atexit hook does, which an immediate exit skips)."""
    server_module = sys.modules.get("prefect.server.api.server")
    if server_module is None:
        return
    for server in list(getattr(server_module.SubprocessASGIServer, "_instances", {}).values()):
        proc = getattr(server, "server_process", None)
        if proc is None or proc.poll() is not None:
            continue
        proc.terminate()
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(1)


def exit_now(code: int) -> None:
    """Flush and leave without waiting for Prefect's threads."""
    stop_prefect_server()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
