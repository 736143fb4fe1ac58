"""Is the Prefect API still there? A run asks once a second, so that losing the API mid-run
(the server killed, a terminal's Ctrl-C reaching only the server) costs no speed: artifacts
stop being written, Prefect's own retry tracebacks are silenced, and the run ends as soon as
its outputs are written, saying once that its Prefect history is incomplete."""

from __future__ import annotations

import logging
import threading

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
