"""Retry policy: exponential backoff with full jitter, and server wait hints.

Rate-limit waits (429) are counted against ``max_rate_limit_wait`` (seconds),
not against ``max_retries`` (the brief: waiting for a rate limit must not use
up the retry budget, but must not hang forever either).
"""
from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from datetime import datetime

from pixtract.providers.errors import ProviderError, RateLimitError


@dataclass
class RetryPolicy:
    max_retries: int = 4  # retries for non-rate-limit retryable errors
    backoff_base: float = 0.5  # seconds; attempt n waits up to base * 2**n
    backoff_max: float = 30.0
    max_rate_limit_wait: float = 300.0  # total seconds spent waiting on 429s per call
    # and a count, so that 429s with no (or zero) wait hint cannot loop forever
    max_rate_limit_retries: int = 50
    max_hint: float = 120.0  # never trust a single server hint beyond this
    rng: random.Random | None = field(default=None, repr=False, compare=False)  # seeded in tests

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential backoff for the given 0-based attempt."""
        cap = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return (rng or self.rng or random).uniform(cap / 2, cap)

    def delay_for(self, err: ProviderError, attempt: int) -> float:
        if err.retry_after is not None:
            return max(0.0, min(err.retry_after, self.max_hint))
        return self.backoff(attempt)


class RetryState:
    """Bookkeeping for one logical call (one ``complete``)."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.retries = 0  # non-rate-limit retries used
        self.rate_limited = 0  # 429s seen
        self.rate_limit_waited = 0.0
        self.attempts = 0

    def next_delay(self, err: ProviderError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not err.retryable:
            return None
        if isinstance(err, RateLimitError):
            delay = self.policy.delay_for(err, self.rate_limited)
            if (self.rate_limit_waited + delay > self.policy.max_rate_limit_wait
                    or self.rate_limited >= self.policy.max_rate_limit_retries):
                return None
            self.rate_limited += 1
            self.rate_limit_waited += delay
            return delay
        if self.retries >= self.policy.max_retries:
            return None
        delay = self.policy.delay_for(err, self.retries)
        self.retries += 1
        return delay


def _num(v: str | None) -> float | None:
    try:
        return float(v) if v is not None and v.strip() != "" else None
    except ValueError:
        return None


def parse_retry_after(headers, body: object = None, now: float | None = None) -> float | None:
    """Seconds to wait according to the response, or None.

    Honours ``retry-after-ms``, ``Retry-After`` (seconds or HTTP date),
    ``X-RateLimit-Reset`` (epoch s/ms, or relative seconds), Mistral's
    ``x-ratelimit-*reset*`` / ``ratelimitbysize-reset`` (relative seconds, §1.11),
    Anthropic's RFC 3339 ``anthropic-ratelimit-*-reset`` (§4.4) and ModelsLab's
    body ``retry_after`` (§3.4).
    """
    now = time.time() if now is None else now
    h = {k.lower(): v for k, v in (headers or {}).items()}
    if (ms := _num(h.get("retry-after-ms"))) is not None:
        return ms / 1000.0
    ra = h.get("retry-after")
    if ra is not None:
        if (s := _num(ra)) is not None:
            return s
        try:
            return max(0.0, email.utils.parsedate_to_datetime(ra).timestamp() - now)
        except (TypeError, ValueError):
            pass
    if (reset := _num(h.get("x-ratelimit-reset"))) is not None:
        return _reset_to_delay(reset, now)
    for k, v in h.items():
        if k.startswith(("x-ratelimit-reset", "ratelimitbysize-reset", "x-ratelimitbysize-reset")) and (s := _num(v)) is not None:
            return _reset_to_delay(s, now)
    resets = []
    for k, v in h.items():
        if k.startswith("anthropic-ratelimit-") and k.endswith("-reset"):
            try:
                resets.append(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() - now)
            except ValueError:
                pass
    if resets:
        return max(0.0, max(resets))
    if isinstance(body, dict) and (s := _num(str(body.get("retry_after", "")))) is not None:
        return s
    return None


def _reset_to_delay(value: float, now: float) -> float:
    if value > 1e12:  # epoch milliseconds (OpenRouter)
        return max(0.0, value / 1000.0 - now)
    if value > 1e9:  # epoch seconds (ModelsLab CLI, §3.2)
        return max(0.0, value - now)
    return max(0.0, value)  # relative seconds
