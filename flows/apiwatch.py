"""Is the Prefect API still there? A run asks once a second, so that losing the API mid-run
(the server killed, a terminal's Ctrl-C reaching only the server) costs no speed: artifacts
stop being written, Prefect's own retry tracebacks are silenced, and the run ends as soon as
its outputs are written, saying once that its Prefect history is incomplete."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import httpx

from pixtract.providers import tls

MISSES = 2  # failed health checks in a row that count as "gone"


class ApiWatch:
    def __init__(self, api_url: str | None, lost: threading.Event, every: float = 1.0) -> None:
        self.url = api_url.rstrip("/") + "/health" if api_url else None
        self.lost = lost
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_current_api(cls, lost: threading.Event) -> "ApiWatch":
        """Watch the API this process talks to (none for Prefect's ephemeral API, which lives
        and dies with this process)."""
        from prefect.settings import PREFECT_API_URL

        return cls(PREFECT_API_URL.value(), lost)

    def __enter__(self) -> "ApiWatch":
        if self.url:
            self._thread = threading.Thread(target=self._run, name="pixtract-api-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def _run(self) -> None:
        misses = 0
        with httpx.Client(timeout=self.every, verify=tls.context()) as client:
            while not self._stop.wait(self.every):
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                misses = 0 if ok else misses + 1
                if misses >= MISSES:
                    self.lost.set()
                    # Prefect's clients keep retrying in the background; their tracebacks say
                    # nothing the run's one line does not.
                    logging.getLogger("prefect").setLevel(logging.CRITICAL + 1)
                    return


def unreachable(error: BaseException | None) -> bool:
    """Prefect's own request to its API could not connect (the server went away)."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


class _HideApiLoss(logging.Filter):
    """Drops Prefect's own tracebacks about an API it cannot reach (its flow engine logs one when
    the server dies between the last page and the final state), and marks the API lost, so that
    the run ends with its one line instead, whether or not the watch noticed first."""

    def __init__(self, lost: threading.Event) -> None:
        super().__init__()
        self.lost = lost

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("prefect") and record.exc_info and unreachable(record.exc_info[1]):
            self.lost.set()
            return False
        return True


@contextlib.contextmanager
def quiet_api_loss(lost: threading.Event) -> Iterator[None]:
    """While a run lasts, the console shows no Prefect traceback about losing its API."""
    hide = _HideApiLoss(lost)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(hide)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(hide)
