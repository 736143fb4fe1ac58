"""MuPDF work in worker processes that the run can kill, so no file can stall a batch.

MuPDF can loop inside ``fz_run_page`` while holding Python's GIL: then no thread of that
process runs again, so neither a timer thread (MuPDF's cookie) nor a signal handler can stop
it. During a run, every entry point that reaches MuPDF or Pillow (open and count pages, render
a page, chart regions and crops, the OCR image, pymupdf4llm's layout, running lines) is marked
with :func:`isolated`; while a pool is started (:func:`start_workers`, by the batch) a call runs
in a worker process and the calling thread waits on a pipe, with a wall-clock deadline, from
outside:

- past the deadline the worker is killed and the page fails with ``render_timeout`` (opening a
  document: ``open_timeout``); a fresh worker takes the next page;
- a worker that dies (segfault, abort) fails that page with ``render_crashed``; one over its
  address-space cap (``RLIMIT_AS``) fails it with ``render_out_of_memory``.

Only encoded images, text, the page's words with boxes and small records cross the pipe
(pickled dataclasses). A worker keeps the documents it opened (``mupdf.open_pdf``'s cache), and calls for a
document go to the worker that has it open when that one is free. Without a started pool the
functions run in the calling process, as library calls and unit tests use them.

A worker dies with the run (``PR_SET_PDEATHSIG``); SIGTERM and SIGINT to the run kill the
workers at once, and if the run has not ended ``STOP_GRACE`` seconds later, a C-level
watchdog (faulthandler) ends the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import functools
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from .errors import OpenTimeout, PixtractError, RenderCrashed, RenderOutOfMemory, RenderTimeout

START_TIMEOUT = 60.0  # seconds for a fresh worker to import its modules and say it is ready
GRACE = 2.0  # on top of the step deadline: MuPDF's own cookie (same limit) stops it cleanly first
STOP_GRACE = 4.0  # after SIGTERM/SIGINT, the process ends within this many seconds, whatever runs
TEST_HOOK_ENV = "PIXTRACT_TEST_WORKER_HOOK"  # tests only; see _TestHook
_READY = b"ready"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.I)


@dataclass(frozen=True)
class WorkerSettings:
    """How many workers, and the limits each step and each worker runs under."""

    size: int  # workers at most: the render threads, at most one per CPU
    page_timeout: float  # wall-clock seconds per step (open a document, or one page's step)
    memory_mb: int  # address-space cap of each worker (0: none); a worker idles at about 600 MB of it

    @classmethod
    def for_run(cls, cfg, threads: int) -> "WorkerSettings":
        """From a RunConfig and the number of threads that render pages."""
        return cls(max(1, min(threads, os.cpu_count() or 1)), cfg.page_timeout, cfg.worker_memory_mb)


@dataclass(frozen=True)
class _Call:
    fn: Callable  # a module-level function marked @isolated (pickled by name)
    args: tuple
    kwargs: dict
    step: str  # "open" or "page"
    path: str  # the document's path and page, for the test hook
    page: int | None


@dataclass
class _Reply:
    value: Any = None
    error: BaseException | None = None
    restart: bool = False  # the worker should not be reused (after running out of memory)


class RemoteError(Exception):
    """An unexpected error inside a worker, with the original's type name (as records show it)."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type = type_name

    def __reduce__(self):
        return RemoteError, (self.type, str(self))


# --- marking entry points ------------------------------------------------------------------

# The started pool is the process's, not a run's: its workers are child processes of this process
# (they die with it and with its SIGTERM/SIGINT, _SignalGuard), runs in one process share them
# (start_workers counts its users), and the functions marked @isolated are called deep in render,
# charts and the local engine, from page threads that hold no run.
_ACTIVE: "WorkerPool | None" = None  # the started pool of this process (see start_workers)
_ACTIVE_LOCK = threading.Lock()


def isolated(step: str) -> Callable[[Callable], Callable]:
    """Run the decorated function in a worker process while a pool is started. ``step`` is
    "open" (a whole document: its deadline fails the document with ``open_timeout``) or "page"
    (the deadline fails the page with ``render_timeout``). The first argument must be the
    Document; the second, when given, the page number or something with a ``page`` attribute."""

    def mark(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def call(*args, **kwargs):
            pool = _ACTIVE
            if pool is None:
                return fn(*args, **kwargs)
            return pool.call(call, args, kwargs, step)

        return call

    return mark


def start_workers(settings: WorkerSettings, prestart: bool = False) -> Callable[[], None]:
    """Start (or share) this process's pool; returns the function that stops it. Runs in one
    process share the first run's pool; the last one to stop ends it. ``prestart`` starts the
    first worker now, in the background, so that the first page does not wait for it."""
    global _ACTIVE
    with _ACTIVE_LOCK:
        if _ACTIVE is None:
            _ACTIVE = WorkerPool(settings)
        pool = _ACTIVE
        pool.users += 1
    if prestart:
        pool.prestart()
    once = threading.Lock()

    def stop() -> None:
        global _ACTIVE
        if not once.acquire(blocking=False):
            return
        with _ACTIVE_LOCK:
            pool.users -= 1
            if pool.users:
                return
            _ACTIVE = None
        pool.close()

    return stop


def worker_pids() -> list[int]:
    """Process ids of the started pool's live workers (benchmarks read their CPU time)."""
    pool = _ACTIVE
    return pool.pids() if pool is not None else []


@contextlib.contextmanager
def running_workers(settings: WorkerSettings) -> Iterator[None]:
    """``start_workers`` for the length of a ``with`` block."""
    stop = start_workers(settings)
    try:
        yield
    finally:
        stop()


# --- the pool (in the run's process) --------------------------------------------------------


class _Stalled(Exception):
    pass


class _Died(Exception):
    pass


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self, settings: WorkerSettings) -> None:
        from_parent, to_child = os.pipe()
        from_child, to_parent = os.pipe()
        # Workers need no keys; -P: a module in the current folder cannot shadow pixtract's.
        env = {k: v for k, v in os.environ.items() if not _SECRET_NAME.search(k)}
        env["PIXTRACT_WORKER_LIMITS"] = f"{settings.page_timeout}:{settings.memory_mb}:{os.getpid()}"
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-c", "from pixtract.workers import serve; serve()", str(from_parent), str(to_parent)],
            pass_fds=(from_parent, to_parent), stdin=subprocess.DEVNULL, env=env)
        os.close(from_parent)
        os.close(to_parent)
        self.send = Connection(to_child, readable=False)
        self.recv = Connection(from_child, writable=False)
        self.docs: OrderedDict[str, None] = OrderedDict()  # documents it has opened, newest last
        self.killed = False

    def wait_ready(self) -> None:
        if not self.recv.poll(START_TIMEOUT):
            raise _Stalled()
        try:
            if self.recv.recv_bytes() != _READY:
                raise _Died()
        except (EOFError, OSError):
            raise _Died() from None

    def ask(self, payload: bytes, timeout: float) -> _Reply:
        try:
            self.send.send_bytes(payload)
            if not self.recv.poll(timeout):
                raise _Stalled()
            return pickle.loads(self.recv.recv_bytes())
        except (EOFError, OSError, pickle.UnpicklingError):
            raise _Died() from None

    def kill(self) -> None:
        self.killed = True
        try:
            self.proc.kill()
        except OSError:
            pass

    def end(self) -> int | None:
        """Wait for the process (killed or dead) and close the pipes; its return code."""
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        self.send.close()
        self.recv.close()
        return code


class WorkerPool:
    """Up to ``settings.size`` workers, started on demand; thread-safe."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.users = 0
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._starting = 0
        self._closed = False
        self._cond = threading.Condition()
        # Workers are started from this one long-lived thread: PR_SET_PDEATHSIG fires when the
        # thread that started a process ends, and page threads come and go.
        self._launcher = ThreadPoolExecutor(1, thread_name_prefix="pixtract-worker-launcher")
        self._signals = _SignalGuard(self.kill_all)

    def call(self, fn: Callable, args: tuple, kwargs: dict, step: str) -> Any:
        doc, page = args[0], _page_of(args)
        where = f"{doc.path} page {page}" if page is not None else doc.path
        payload = pickle.dumps(_Call(fn, args, kwargs, step, doc.path, page), pickle.HIGHEST_PROTOCOL)
        limit = self.settings.page_timeout
        worker = self._take(doc.sha256, where)
        reuse = False
        try:
            reply = worker.ask(payload, limit + GRACE)
            reuse = not reply.restart
            worker.docs[doc.sha256] = None
            worker.docs.move_to_end(doc.sha256)
            while len(worker.docs) > 8:
                worker.docs.popitem(last=False)
        except _Stalled:
            worker.kill()
            if step == "open":
                raise OpenTimeout(f"{where}: opening the document took longer than {limit:g} s; "
                                  "stopped (the per-step time limit)") from None
            raise RenderTimeout(f"{where}: stopped after {limit:g} s of rendering (the per-page time limit; "
                                "MuPDF did not return)") from None
        except _Died:
            raise self._death(worker, where) from None
        finally:
            self._give_back(worker, reuse)
        if reply.error is not None:
            raise reply.error
        return reply.value

    def _death(self, worker: _Worker, where: str) -> Exception:
        killed_by_us = worker.killed
        code = worker.end()
        if self._closed or killed_by_us:
            return RenderCrashed(f"{where}: the MuPDF worker was stopped (the run is ending)")
        if code == -signal.SIGKILL:  # not ours: the kernel's out-of-memory killer (a cgroup limit)
            return RenderOutOfMemory(f"{where}: the MuPDF worker was killed for using too much memory")
        how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
        return RenderCrashed(f"{where}: the MuPDF worker died ({how}) on this page")

    def _take(self, key: str, where: str) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RenderCrashed(f"{where}: not rendered, the run is ending")
                if self._idle:
                    pick = next((w for w in reversed(self._idle) if key in w.docs), self._idle[-1])
                    self._idle.remove(pick)
                    return pick
                if len(self._all) + self._starting < self.settings.size:
                    self._starting += 1
                    break
                self._cond.wait()
        try:
            worker = self._launcher.submit(self._start_one).result()
        finally:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
        return worker

    def prestart(self) -> None:
        """Start one worker in the background (a worker takes about 0.6 s to start), unless one
        is running or starting already; a failure is left to the first page to meet."""
        with self._cond:
            if self._closed or self._all or self._starting:
                return
            self._starting += 1

        def start() -> None:
            try:
                worker = self._start_one()
            except RenderCrashed:
                return
            finally:
                with self._cond:
                    self._starting -= 1
                    self._cond.notify()
            self._give_back(worker, reuse=True)

        self._launcher.submit(start)

    def _start_one(self) -> _Worker:
        worker = _Worker(self.settings)
        with self._cond:
            self._all.add(worker)
            closed = self._closed
        if closed:
            worker.kill()
        try:
            worker.wait_ready()
        except (_Stalled, _Died):
            worker.kill()
            code = worker.end()
            with self._cond:
                self._all.discard(worker)
            raise RenderCrashed(f"a MuPDF worker process could not start (exit code {code})") from None
        return worker

    def _give_back(self, worker: _Worker, reuse: bool) -> None:
        with self._cond:
            if reuse and not self._closed:
                self._idle.append(worker)
            else:
                self._all.discard(worker)
            self._cond.notify()
        if not reuse:
            worker.kill()
            worker.end()

    def pids(self) -> list[int]:
        return [w.proc.pid for w in list(self._all)]

    def kill_all(self) -> None:
        """Kill every worker at once (also from a signal handler): threads waiting on one
        return at once."""
        self._closed = True
        for w in list(self._all):
            w.kill()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers, self._idle = list(self._all), []
            self._cond.notify_all()
        for w in workers:
            w.kill()
        for w in workers:
            if w.proc.poll() is None:
                w.proc.wait(timeout=10)
        self._launcher.shutdown(wait=True)
        self._signals.restore()


def _page_of(args: tuple) -> int | None:
    if len(args) < 2:
        return None
    second = args[1]
    return second if isinstance(second, int) else getattr(second, "page", None)


class _SignalGuard:
    """SIGTERM and SIGINT kill the workers first, then go to the handler there was before
    (Prefect's, Python's); from then on the process has STOP_GRACE seconds to end, enforced by
    faulthandler's watchdog thread, which needs no GIL. Installed only from the main thread."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, kill_all: Callable[[], None]) -> None:
        self.kill_all = kill_all
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.SIGNALS:
            self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame) -> None:
        self.kill_all()
        faulthandler.dump_traceback_later(STOP_GRACE, exit=True, file=_devnull())
        prev = self.previous.get(signum)
        if callable(prev):
            prev(signum, frame)
        elif prev == signal.SIG_IGN:
            return
        else:  # the default action: end the process the way the signal would
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def restore(self) -> None:
        for sig, prev in self.previous.items():
            try:
                if signal.getsignal(sig) == self._handle:
                    signal.signal(sig, prev)
            except ValueError:  # not the main thread
                pass
        self.previous = {}


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While a run goes on in this process, SIGTERM unwinds the stack as Ctrl-C does (SystemExit
    143) instead of ending the process on the spot, so exit handlers run: Prefect's ephemeral
    API server is a child process, and would outlive the run otherwise. The process still
    ends within STOP_GRACE seconds (faulthandler's watchdog). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum: int, frame) -> None:
        faulthandler.dump_traceback_later(STOP_GRACE, exit=True, file=_devnull())
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@functools.lru_cache(maxsize=1)
def _devnull():
    return open(os.devnull, "w")


# --- the worker process ------------------------------------------------------------------------


def serve() -> None:
    """A worker's main loop: calls in on one pipe, replies out on the other, until EOF."""
    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    timeout, memory_mb, parent = os.environ.pop("PIXTRACT_WORKER_LIMITS").split(":")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the run decides
    _die_with_parent(int(parent))
    os.dup2(2, 1)  # stray prints (pymupdf4llm's notes) go to stderr, never into the pipe
    sys.stdout = sys.stderr

    from . import malloc, mupdf
    from . import charts, local, render  # noqa: F401 - imported once here, not inside a page's deadline

    malloc.tune()
    mupdf.PAGE_TIME_LIMIT = float(timeout)  # MuPDF's cookie stops a slow page cleanly, before the kill
    _cap_memory(int(memory_mb))
    hook = _TestHook.from_env()
    inbox, outbox = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    outbox.send_bytes(_READY)
    while True:
        try:
            call: _Call = pickle.loads(inbox.recv_bytes())
        except EOFError:
            return
        reply = _run(call, hook)
        try:
            data = pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 - an error object that cannot cross the pipe
            data = pickle.dumps(_Reply(error=RemoteError(type(reply.error).__name__, str(reply.error) or repr(e))))
        outbox.send_bytes(data)
        if reply.restart:
            return


def _run(call: _Call, hook: "_TestHook | None") -> _Reply:
    try:
        if hook is not None:
            hook.maybe_fire(call)
        return _Reply(value=call.fn(*call.args, **call.kwargs))
    except BaseException as e:  # noqa: BLE001 - everything goes back as a reply
        if _out_of_memory(e):
            where = f"{call.path} page {call.page}" if call.page is not None else call.path
            return _Reply(error=RenderOutOfMemory(
                f"{where}: needs more memory than the worker's limit allows"), restart=True)
        if isinstance(e, PixtractError):
            return _Reply(error=e)
        return _Reply(error=RemoteError(type(e).__name__, str(e)))


def _out_of_memory(e: BaseException | None) -> bool:
    """A MemoryError or MuPDF's failed malloc, also behind the error that wrapped it."""
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, MemoryError):
            return True
        text = str(e)
        if type(e).__name__.startswith("FzError") and "malloc" in text and "failed" in text:
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _cap_memory(memory_mb: int) -> None:
    if memory_mb <= 0:
        return
    import resource

    limit = memory_mb * 2**20
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this worker when the run's process (its launcher thread) ends,
    even by SIGKILL. Elsewhere the closed pipe ends an idle worker."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the run ended before the line above
        os._exit(1)


@dataclass
class _TestHook:
    """TEST ONLY: makes a worker misbehave on one step, to test the pool from outside. Read
    from PIXTRACT_TEST_WORKER_HOOK, and only inside a worker: ``ACTION@STEP:PATH-SUFFIX[:PAGE]``,
    several separated by ``;`` (ACTION: freeze, segv, oom; STEP: open, page). No input file
    can set it."""

    rules: list[tuple[str, str, str, int | None]] = field(default_factory=list)

    @classmethod
    def from_env(cls) -> "_TestHook | None":
        spec = os.environ.pop(TEST_HOOK_ENV, "")
        rules = []
        for part in filter(None, spec.split(";")):
            action, _, rest = part.partition("@")
            step, _, target = rest.partition(":")
            suffix, _, page = target.partition(":")
            rules.append((action, step, suffix, int(page) if page else None))
        return cls(rules) if rules else None

    def maybe_fire(self, call: _Call) -> None:
        for action, step, suffix, page in self.rules:
            if step == call.step and call.path.endswith(suffix) and (page is None or page == call.page):
                getattr(self, action)()

    @staticmethod
    def freeze() -> None:
        """Block in C while holding the GIL (PyDLL keeps it; CDLL would release it), as MuPDF
        looping in fz_run_page does: no thread of this process runs again."""
        libc = ctypes.PyDLL(None)
        os.write(2, b"pixtract test hook: worker %d frozen\n" % os.getpid())
        while True:
            libc.pause()

    @staticmethod
    def segv() -> None:
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(5)

    @staticmethod
    def oom() -> None:
        """Ask MuPDF for pixmaps until they pass the worker's address-space cap (at most the
        cap plus 512 MB, so a worker without a cap cannot take the machine)."""
        import resource

        import pymupdf

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        chunk, held = 2**28, []  # 256 MB each
        limit = (soft if soft != resource.RLIM_INFINITY else 4 * 2**30) + 2 * chunk
        while len(held) * chunk < limit:
            held.append(pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8192, chunk // (3 * 8192))))
