"""A warm local Prefect server that pixtract manages, so that an ad hoc run starts at once and
its history is kept.

Prefect's ephemeral API starts a temporary uvicorn + SQLite server for every run (8-15 s) and
stops it before its task-run recorder has caught up, so most task runs never reach the
database. Instead, when no ``PREFECT_API_URL`` is set, the first ``pixtract run`` starts
``prefect server start`` on 127.0.0.1 in the background, under a small supervisor, and later
runs reuse it:

* everything lives in one folder (``PIXTRACT_DATA_DIR``, default
  ``$XDG_DATA_HOME/pixtract`` or ``~/.local/share/pixtract``): ``prefect-server/state.json``
  (supervisor pid, port, URL), its Prefect home (the database), ``server.log``, a lock file,
  and ``clients/<pid>``, one file per run in progress;
* starting is done under an exclusive file lock, so two runs started together share one
  server; a run registers itself (``clients/<pid>``) before the lock is released;
* the supervisor stops the server once no run has been in progress for the idle time
  (``PIXTRACT_SERVER_IDLE``, seconds, default 1800), removes its state and exits; a run that
  died leaves a ``clients`` file whose pid is gone, which does not count;
* the supervisor and the server run in their own session: a terminal's Ctrl-C for a run
  never reaches them;
* ``PIXTRACT_PREFECT=ephemeral`` keeps Prefect's ephemeral API (CI, containers), and a set
  ``PREFECT_API_URL`` always wins; ``pixtract server start|stop|status`` shows and controls it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

MODE_ENV = "PIXTRACT_PREFECT"  # managed (default) | ephemeral
IDLE_ENV = "PIXTRACT_SERVER_IDLE"
DEFAULT_IDLE_S = 1800.0
START_TIMEOUT_S = 120.0  # a fresh database takes 10-15 s on 2 cores, much more under load


def data_dir() -> Path:
    root = os.environ.get("PIXTRACT_DATA_DIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "pixtract")
    return Path(root) / "prefect-server"


def mode() -> str:
    """``external`` (PREFECT_API_URL is set), ``ephemeral`` or ``managed``."""
    if os.environ.get("PREFECT_API_URL"):
        return "external"
    chosen = (os.environ.get(MODE_ENV) or "managed").strip().lower()
    if chosen not in ("managed", "ephemeral"):
        from pixtract.errors import UsageError

        raise UsageError(f"{MODE_ENV}={chosen!r}: choose managed or ephemeral")
    return chosen


def idle_seconds() -> float:
    raw = os.environ.get(IDLE_ENV)
    if not raw:
        return DEFAULT_IDLE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if value <= 0:
        from pixtract.errors import UsageError

        raise UsageError(f"{IDLE_ENV}={raw!r}: give the idle time in seconds (a positive number)")
    return value


@dataclass
class ServerState:
    pid: int  # the supervisor
    port: int
    started: float
    idle_s: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api"


def read_state(folder: Path | None = None) -> ServerState | None:
    try:
        return ServerState(**json.loads(((folder or data_dir()) / "state.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def healthy(state: ServerState, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(state.api_url + "/health", timeout=timeout, verify=False).status_code == 200  # plain http
    except httpx.HTTPError:
        return False


def running(folder: Path | None = None) -> ServerState | None:
    """The managed server, if its supervisor is alive and it answers."""
    state = read_state(folder)
    if state is None or not _alive(state.pid) or not healthy(state):
        return None
    return state


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure(register: bool = True) -> tuple[ServerState, bool]:
    """The managed server's state, starting it if needed (returns whether it was started), with
    this process registered as a run in progress."""
    folder = data_dir()
    with _locked(folder):
        state = running(folder)
        started = state is None
        if started:
            state = _start(folder)
        if register:
            (folder / "clients").mkdir(exist_ok=True)
            (folder / "clients" / str(os.getpid())).write_text(str(time.time()))
    return state, started


def release() -> None:
    """This run is over (the supervisor's idle time starts when the last run is)."""
    with contextlib.suppress(OSError):
        (data_dir() / "clients" / str(os.getpid())).unlink()


def _start(folder: Path) -> ServerState:
    stale = read_state(folder)
    if stale is not None and _alive(stale.pid):  # alive but not answering: replace it
        _stop_supervisor(stale)
    with contextlib.suppress(OSError):
        (folder / "state.json").unlink()
    state = ServerState(pid=0, port=_free_port(), started=time.time(), idle_s=idle_seconds())
    log = open(folder / "server.log", "ab")
    try:
        # This file run as a script: the supervisor imports nothing of pixtract (a few MB).
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--supervise", str(folder), str(state.port),
             str(state.idle_s)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=str(folder), env=_server_env(folder))
    finally:
        log.close()
    state.pid = proc.pid
    _write_state(folder, state)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (folder / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the Prefect server pixtract starts exited (code {proc.returncode}); "
                               f"{folder / 'server.log'} ends with:\n{tail}")
        if healthy(state, timeout=1.0):
            return state
        time.sleep(0.2)
    _stop_supervisor(state)
    raise RuntimeError(f"the Prefect server did not answer within {START_TIMEOUT_S:.0f} s; see "
                       f"{folder / 'server.log'}, or run with {MODE_ENV}=ephemeral")


def _server_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env.update(PREFECT_HOME=str(folder / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               PREFECT_SERVER_LOGGING_LEVEL=os.environ.get("PREFECT_SERVER_LOGGING_LEVEL", "WARNING"))
    for secret in [k for k in env if k.endswith("_API_KEY") or k.startswith("PIXTRACT_SECRET")]:
        env.pop(secret)  # the server needs no model key
    return env


def _write_state(folder: Path, state: ServerState) -> None:
    tmp = folder / f".state.{os.getpid()}"
    tmp.write_text(json.dumps(asdict(state)))
    os.replace(tmp, folder / "state.json")


def _stop_supervisor(state: ServerState, wait: float = 20.0) -> bool:
    if not _alive(state.pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _alive(state.pid):
        time.sleep(0.1)
    if _alive(state.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGKILL)
    return True


def stop() -> ServerState | None:
    """Stop the managed server; returns the state it had, or None when none was running."""
    folder = data_dir()
    with _locked(folder):
        state = read_state(folder)
        if state is None:
            return None
        was = _stop_supervisor(state)
        with contextlib.suppress(OSError):
            (folder / "state.json").unlink()
        return state if was else None


def active_clients(folder: Path) -> list[int]:
    out = []
    for f in (folder / "clients").glob("*") if (folder / "clients").is_dir() else []:
        try:
            pid = int(f.name)
        except ValueError:
            continue
        if _alive(pid):
            out.append(pid)
        else:
            with contextlib.suppress(OSError):
                f.unlink()
    return out


# --------------------------------------------------------------------------- the supervisor


def supervise(folder: Path, port: int, idle_s: float) -> int:
    """Run ``prefect server start`` until no run has been in progress for ``idle_s`` seconds,
    or until SIGTERM; then stop it and remove the state, so nothing is left behind."""
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], stdin=subprocess.DEVNULL)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    last_busy = time.monotonic()
    try:
        while not stopping and server.poll() is None:
            time.sleep(0.5)
            if active_clients(folder):
                last_busy = time.monotonic()
            elif time.monotonic() - last_busy >= idle_s:
                with _locked(folder):  # no run may register while the server goes away
                    if not active_clients(folder):
                        break
                    last_busy = time.monotonic()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)
        state = read_state(folder)
        if state is not None and state.pid == os.getpid():
            with contextlib.suppress(OSError):
                (folder / "state.json").unlink()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--supervise":
        sys.exit(supervise(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    sys.exit("usage: server.py --supervise FOLDER PORT IDLE_SECONDS (started by pixtract run)")
