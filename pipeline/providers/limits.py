"""Per-endpoint adaptive concurrency (AIMD) and a shared rate-limit gate."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

RATE_HOLD = 2.0  # seconds without growth after a request-rate 429: a third of the 429s, same speed


class AdaptiveLimiter:
    """Concurrency limit that halves when 429s cluster and grows by ~1 per window of
    successes (additive increase, multiplicative decrease), within [1, max].

    A lone 429 among successes says nothing about the load (a stray fault, a hiccup behind a
    proxy), so it costs only its own request a retry: halving the whole window for it cost a
    third of the throughput at 5 % stray 429s (bench/README.md). The limit halves when 429s
    make up a quarter of the recent outcomes (the last ``2 * max``, at least two 429s), as
    they do from a server that is really overloaded. After a decrease the count starts again,
    so one burst of 429s halves the limit once, not once per rejected request."""

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
        self._recent: deque[bool] = deque(maxlen=max(8, 2 * self.max))  # True: throttled
        self.cluster = max(2, self._recent.maxlen // 4)  # 429s among them that mean "slow down"
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
            self._recent.append(False)
            if self._limit < self.max and self.clock() >= self._hold_until:
                self._limit = min(float(self.max), self._limit + 1.0 / max(1.0, self._limit))
                self._record()
                self._cond.notify_all()

    def on_throttle(self) -> None:
        with self._cond:
            self._recent.append(True)
            now = self.clock()
            if sum(self._recent) < self.cluster or now - self._last_decrease < self.cooldown:
                return
            self._last_decrease = now
            self._recent.clear()
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
