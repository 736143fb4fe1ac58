"""Fault rules for the emulator: by count (next N), by rate, or by request header.

A rule is a JSON-able dict: ``{"fault": "429", "count": 2}``,
``{"fault": "503", "rate": 0.05}``, optional filters ``dialect``/``model``
and fault parameters (``retry_after``, ``after_chunks``, ``seconds``...).
The header ``X-Emulator-Fault: 429;retry_after=0.2`` applies to one request.
"""
from __future__ import annotations

import random
import threading

FAULTS = {
    # status faults with the dialect's real error body
    "400", "401", "402", "403", "404", "408", "413", "422", "429", "500", "502", "503", "504", "524", "529",
    "model_retired",  # 404 model gone / model_deprecated (model-apis.md §0, §2.8)
    "context_too_long",  # 400 "Prompt contains N tokens, too large ..." (§1.10 e)
    "500_empty", "502_html",  # 5xx with an empty or HTML body (§1.10 table)
    "status_error",  # HTTP 200 with {"status": "error"} (ModelsLab, §3.4)
    "401_echo",  # 401 whose message echoes the request's credentials (as some proxies do)
    "echo",  # error (``status``, default 400) whose message echoes all request headers and the body
    # transport faults
    "timeout",  # hold the request without answering (client read timeout)
    "drop",  # reset the connection without a response
    "malformed_json",  # 200 with a body that is not JSON
    "truncated_json",  # 200, Content-Length announced, half the body sent, connection closed
    "stream_cut",  # stream stops mid-way without the terminator
    "midstream_error",  # error event inside a 200 stream (§2.5, §4.3)
    # content faults
    "empty_content", "length", "slow",
}

HEADER = "X-Emulator-Fault"


def parse_header(value: str) -> dict:
    """``"429;retry_after=0.5"`` -> ``{"fault": "429", "retry_after": 0.5}``."""
    name, *params = [p.strip() for p in value.split(";") if p.strip()]
    rule: dict = {"fault": name}
    for p in params:
        k, _, v = p.partition("=")
        try:
            rule[k.strip()] = float(v) if "." in v else int(v)
        except ValueError:
            rule[k.strip()] = v.strip()
    return rule


class FaultPlan:
    """Thread-safe ordered rule list; the first matching rule wins."""

    def __init__(self, seed: int = 0):
        self._rules: list[dict] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def set(self, rules: list[dict]) -> None:
        for r in rules:
            _check(r)
        with self._lock:
            self._rules = [dict(r) for r in rules]

    def add(self, rule: dict) -> None:
        _check(rule)
        with self._lock:
            self._rules.append(dict(rule))

    def rules(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._rules]

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def pick(self, dialect: str, model: str | None, header: str | None = None, named_only: bool = False) -> dict | None:
        """The fault for one request, or None. ``named_only``: only rules that name ``model``
        (the files and batch routes: a rule meant for model requests leaves them alone)."""
        if header:
            return parse_header(header)
        with self._lock:
            for rule in self._rules:
                if rule.get("dialect") not in (None, dialect) or rule.get("model") not in (
                        (model,) if named_only else (None, model)):
                    continue
                if rule.get("count") is not None:
                    if rule["count"] <= 0:
                        continue
                    rule["count"] -= 1
                    return dict(rule)
                if rule.get("rate") is not None:
                    if self._rng.random() < float(rule["rate"]):
                        return dict(rule)
                    continue
                return dict(rule)
            self._rules = [r for r in self._rules if r.get("count") is None or r["count"] > 0]
        return None


def _check(rule: dict) -> None:
    if rule.get("fault") not in FAULTS:
        raise ValueError(f"unknown fault {rule.get('fault')!r}; known: {', '.join(sorted(FAULTS))}")
