"""Guards around model calls: a circuit breaker per endpoint and the spending budget."""

from __future__ import annotations

import threading
import time


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


class BudgetExceeded(Exception):
    type = "budget_exceeded"


class Budget:
    """Spending limit: a request starts only if its worst-case cost still fits."""

    def __init__(self, limit_usd: float | None) -> None:
        self.limit = limit_usd
        self.spent = 0.0
        self.reserved = 0.0
        self.refused = 0
        self._lock = threading.Lock()

    def reserve(self, worst_case_usd: float) -> float:
        with self._lock:
            if self.limit is not None and self.spent + self.reserved + worst_case_usd > self.limit + 1e-12:
                self.refused += 1
                raise BudgetExceeded(
                    f"budget ${self.limit:.4f} would be exceeded (spent ${self.spent:.4f}, in flight "
                    f"${self.reserved:.4f}, this request up to ${worst_case_usd:.4f})"
                )
            self.reserved += worst_case_usd
            return worst_case_usd

    def settle(self, reserved: float, actual_usd: float) -> None:
        with self._lock:
            self.reserved -= reserved
            self.spent += actual_usd
