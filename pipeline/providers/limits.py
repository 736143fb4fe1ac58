"""Per-endpoint adaptive concurrency (AIMD) and a shared rate-limit gate."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

RATE_HOLD = 2.0  # seconds without growth after a request-rate 429: a third of the 429s, same speed


class AdaptiveLimiter:
    """Concurrency limit that halves on a 429 and grows by ~1 per window of
    successes (additive increase, multiplicative decrease), within [1, max]."""

    def __init__(self, max_concurrency: int, min_concurrency: int = 1, decrease_factor: float = 0.5,
                 cooldown: float = 0.0, clock: Callable[[], float] = time.monotonic):
        self.max = max(1, int(max_concurrency))
        self.min = max(1, min(min_concurrency, self.max))
        self.factor = decrease_factor
        self.cooldown = cooldown  # min seconds between two decreases
        self.rate_hold = RATE_HOLD
        self.clock = clock
        self._limit = float(self.max)
        self._in_flight = 0
        self._last_decrease = 0.0
        self._hold_until = 0.0
        self._cond = threading.Condition()
        self.history: list[int] = []  # limit after each change (for tests/metrics)

    @property
    def limit(self) -> int:
        return max(self.min, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else self.clock() + timeout
        with self._cond:
            while self._in_flight >= self.limit:
                remaining = None if deadline is None else deadline - self.clock()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            self._in_flight += 1
            return True

    def release(self) -> None:
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            self._cond.notify_all()

    def on_success(self) -> None:
        with self._cond:
            if self._limit < self.max and self.clock() >= self._hold_until:
                self._limit = min(float(self.max), self._limit + 1.0 / max(1.0, self._limit))
                self._record()
                self._cond.notify_all()

    def on_throttle(self) -> None:
        with self._cond:
            now = self.clock()
            if now - self._last_decrease < self.cooldown:
                return
            self._last_decrease = now
            self._limit = max(float(self.min), self._limit * self.factor)
            self._record()

    def on_rate_limited(self) -> None:
        """A request-rate 429 (one with a Retry-After): the requests still in flight were
        admitted, this one was not, so the limit comes down to their number (never halved)."""
        with self._cond:
            self._hold_until = self.clock() + self.rate_hold
            trimmed = max(float(self.min), min(self._limit, float(self._in_flight)))
            if trimmed < self._limit:
                self._limit = trimmed
                self._record()

    def _record(self) -> None:
        if not self.history or self.history[-1] != self.limit:
            self.history.append(self.limit)

    def __enter__(self) -> "AdaptiveLimiter":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class RateGate:
    """Endpoint-wide "blocked until" time: after a 429 with a reset hint, every
    caller on the endpoint waits instead of hammering the server."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.clock, self.sleep = clock, sleep
        self._until = 0.0
        self._lock = threading.Lock()

    def block_for(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self.clock() + max(0.0, seconds))

    def wait(self, max_wait: float) -> float:
        """Sleep until the gate opens (at most ``max_wait``); return the time slept."""
        delay = min(max_wait, self._until - self.clock())
        if delay > 0:
            self.sleep(delay)
            return delay
        return 0.0


_REGISTRY: dict[tuple, tuple[AdaptiveLimiter, RateGate]] = {}
_REG_LOCK = threading.Lock()


def for_endpoint(key: tuple, max_concurrency: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[AdaptiveLimiter, RateGate]:
    """Shared limiter + gate per endpoint key, so several clients of one
    endpoint in a process adapt together (clients on another clock, in tests, get their own)."""
    key = (key, clock, sleep)
    with _REG_LOCK:
        pair = _REGISTRY.get(key)
        if pair is None or pair[0].max != max(1, int(max_concurrency)):
            pair = (AdaptiveLimiter(max_concurrency, clock=clock), RateGate(clock, sleep))
            _REGISTRY[key] = pair
        return pair
