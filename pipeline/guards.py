"""Guards around model calls: a circuit breaker per endpoint and the spending budget (one
process's, or one shared by the processes that answer parts of the same run)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any, Iterator

from .errors import PixtractError


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``cooldown`` seconds lets one probe
    through (half-open): success closes it, failure opens it again."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, clock=time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self.transitions: list[str] = []  # "open", "half-open", "closed", for the record
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        """May a request go to this endpoint now?"""
        with self._lock:
            if self.opened_at is None:
                return True
            if self.clock() - self.opened_at < self.cooldown or self.probing:
                return False
            self.probing = True
            self.transitions.append("half-open")
            return True

    def success(self) -> None:
        with self._lock:
            if self.opened_at is not None:
                self.transitions.append("closed")
            self.failures, self.opened_at, self.probing = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.probing or (self.opened_at is None and self.failures >= self.threshold):
                self.opened_at = self.clock()
                self.transitions.append("open")
            self.probing = False


class BudgetExceeded(PixtractError):
    type = "budget_exceeded"


class Budget:
    """Spending limit: a request starts only if its worst-case cost still fits.

    ``spent``, ``reserved`` and ``refused`` are this process's own figures (its manifest reports
    them); the limit is checked against ``_totals()``, which a shared budget takes from its file."""

    def __init__(self, limit_usd: float | None) -> None:
        self.limit = limit_usd
        self.spent = 0.0
        self.reserved = 0.0
        self.refused = 0
        self._lock = threading.Lock()

    def reserve(self, worst_case_usd: float) -> float:
        with self._lock, self._shared() as totals:
            spent, reserved = self._totals(totals)
            if self.limit is not None and spent + reserved + worst_case_usd > self.limit + 1e-12:
                self.refused += 1
                raise BudgetExceeded(
                    f"budget ${self.limit:.4f} would be exceeded (spent ${spent:.4f}, in flight "
                    f"${reserved:.4f}, this request up to ${worst_case_usd:.4f})"
                )
            self.reserved += worst_case_usd
            self._book(totals, worst_case_usd, 0.0)
            return worst_case_usd

    def settle(self, reserved: float, actual_usd: float) -> None:
        with self._lock, self._shared() as totals:
            self.reserved -= reserved
            self.spent += actual_usd
            self._book(totals, -reserved, actual_usd)

    # A budget of one process keeps its figures in memory only.
    @contextlib.contextmanager
    def _shared(self) -> Iterator[Any]:
        yield None

    def _totals(self, shared: Any) -> tuple[float, float]:
        return self.spent, self.reserved

    def _book(self, shared: Any, reserved: float, spent: float) -> None:
        pass


class SharedBudget(Budget):
    """One spending limit for every process that answers a part of the same run (an inbox run's
    parts, on any worker): their spend is kept in one JSON file beside the parts, read and
    rewritten under an exclusive ``flock`` (local disks and NFSv4), so together the parts never
    pass the limit. Each part (``holder``) keeps its own entry; a part that starts again after a
    crash starts with nothing in flight, since the requests it had reserved died with it."""

    def __init__(self, limit_usd: float | None, path: str, holder: str) -> None:
        super().__init__(limit_usd)
        self.path, self.holder = path, holder
        with self._shared() as totals:
            totals.setdefault(holder, {"spent": 0.0, "reserved": 0.0})["reserved"] = 0.0

    @contextlib.contextmanager
    def _shared(self) -> Iterator[dict[str, dict[str, float]]]:
        from .files import atomic_write, locked

        with locked(self.path + ".lock"):
            totals = read_shared_spend(self.path)
            yield totals
            # Whole or not at all, but no fsync: it is rewritten twice a request, and a crashed
            # process leaves it in the page cache (only a power loss could take the last write).
            atomic_write(self.path, json.dumps(totals, indent=1, sort_keys=True) + "\n", durable=False)

    def _totals(self, shared: dict[str, dict[str, float]]) -> tuple[float, float]:
        return (sum(e["spent"] for e in shared.values()), sum(e["reserved"] for e in shared.values()))

    def _book(self, shared: dict[str, dict[str, float]], reserved: float, spent: float) -> None:
        entry = shared.setdefault(self.holder, {"spent": 0.0, "reserved": 0.0})
        entry["reserved"] += reserved
        entry["spent"] += spent


def read_shared_spend(path: str) -> dict[str, dict[str, float]]:
    """A shared budget's file: holder -> {"spent", "reserved"} in USD ({} before the first part)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def budget_for(limit_usd: float | None, shared_file: str | None, holder: str) -> Budget:
    """The budget of one process of a run: shared through ``shared_file`` when the run has one
    and a limit (without a limit there is nothing to share)."""
    if shared_file and limit_usd is not None:
        return SharedBudget(limit_usd, shared_file, holder)
    return Budget(limit_usd)
