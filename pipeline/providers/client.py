"""Thread-safe sync client: adapters + httpx + retries + adaptive concurrency."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx

from pixtract.messages import ChatRequest, ChatResponse
from pixtract.providers.base import TokenCallback, decode_json
from pixtract.providers.endpoint import Endpoint
from pixtract.providers.errors import (ConfigError, ConnectionFailed, MalformedResponse, ProviderError, RateLimitError, TimeoutError_, redact, redact_body)
from pixtract.providers.limits import for_endpoint
from pixtract.providers.registry import ADAPTERS
from pixtract.providers.retry import RetryPolicy, RetryState
from pixtract.providers import catalog, tls
from pixtract.providers.sse import iter_sse

log = logging.getLogger("pixtract.providers")



@dataclass
class ModelReport:
    """Result of :meth:`ChatClient.check_models`."""

    available: list[str] = field(default_factory=list)
    retired: dict[str, str] = field(default_factory=dict)  # model -> explanation incl. replacement
    unknown: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # listing failed
    exception: ProviderError | None = field(default=None, repr=False)  # why it failed
    listed: list[str] = field(default_factory=list)  # every model the endpoint lists

    @property
    def ok(self) -> bool:
        return not self.retired and not self.unknown and self.error is None

    def summary(self) -> str:
        lines = [f"available: {', '.join(self.available) or '-'}"]
        lines += [f"RETIRED {m}: {why}" for m, why in self.retired.items()]
        lines += [f"UNKNOWN {m}: not offered by this endpoint" for m in self.unknown]
        lines += [f"warning: {w}" for w in self.warnings]
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


class ChatClient:
    """One endpoint. Use from many threads; ``close()`` or use as a context manager."""

    def __init__(self, endpoint: Endpoint, *, transport: httpx.BaseTransport | None = None,
                 policy: RetryPolicy | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        """``clock`` and ``sleep`` drive every wait (backoff, Retry-After, the rate gate, AIMD
        holds); tests pass a fake pair to assert exact waits without waiting."""
        ep = endpoint if endpoint.dialect and endpoint.base_url else endpoint.resolved()
        if ep.dialect is None:
            raise ConfigError(f"profile {ep.profile!r} has no remote endpoint")
        self.endpoint = ep
        self.adapter = ADAPTERS[ep.dialect](ep)
        self.policy = policy or RetryPolicy(max_retries=ep.max_retries, backoff_base=ep.backoff_base,
                                            backoff_max=ep.backoff_max, max_rate_limit_wait=ep.max_rate_limit_wait)
        self.clock, self.sleep = clock, sleep
        self.limiter, self.gate = for_endpoint((ep.dialect, ep.base_url), ep.concurrency, clock, sleep)
        self._http = httpx.Client(
            verify=tls.context(), timeout=httpx.Timeout(ep.timeout, connect=ep.connect_timeout),
            limits=httpx.Limits(max_connections=ep.concurrency + 4, max_keepalive_connections=ep.concurrency),
            transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return f"ChatClient({self.endpoint.profile!r}, {self.endpoint.dialect!r}, {self.endpoint.base_url!r})"

    # -- public API -----------------------------------------------------------
    def complete(self, request: ChatRequest, on_token: TokenCallback | None = None,
                 stream: bool = False) -> ChatResponse:
        """Send one chat request (retrying as the policy allows). ``on_token``
        implies streaming; after a retried stream the callback sees the new
        attempt's tokens again, so treat the returned text as authoritative."""
        stream = stream or on_token is not None
        model = request.model or (self.endpoint.vision_model if request.has_images() else self.endpoint.text_model) \
            or self.endpoint.vision_model or self.endpoint.text_model
        if not model:
            raise ConfigError("no model: set request.model or the endpoint's models")
        self.adapter.check_limits(request, model)  # raises before any network use
        body = self.adapter.build_body(request, model, stream)
        url = self.endpoint.base_url + self.adapter.chat_path
        headers = {**self.adapter.headers(), **(self.endpoint.headers or {})}
        if log.isEnabledFor(logging.DEBUG):
            log.debug("POST %s body=%s", url, redact(json.dumps(redact_body(body))[:2000]))
        state = RetryState(self.policy)
        t0 = self.clock()
        while True:
            state.rate_limit_waited += self.gate.wait(self.policy.max_rate_limit_wait - state.rate_limit_waited)
            state.attempts += 1
            self.limiter.acquire()
            try:
                resp = self._send(url, headers, body, model, stream, on_token)
            except ProviderError as err:
                error = err
            else:
                error = None
            finally:
                self.limiter.release()
            if error is None:
                self.limiter.on_success()
                break
            if isinstance(error, RateLimitError):
                if error.retry_after:
                    # The server said when to come back: every thread waits that long at the gate,
                    # and concurrency comes down to what the server admitted. Halving it would
                    # cost throughput for nothing (measured: 0.74 vs 0.94 of the limit, bench/README.md).
                    self.gate.block_for(min(error.retry_after, self.policy.max_hint))
                    self.limiter.on_rate_limited()
                else:
                    self.limiter.on_throttle()
            delay = state.next_delay(error)
            if delay is None:
                log.warning("giving up after %d attempt(s): %s", state.attempts, error)
                raise error
            log.info("retrying in %.2fs (attempt %d): %s", delay, state.attempts, error)
            self.sleep(delay)
        resp.attempts = state.attempts
        resp.latency_s = self.clock() - t0
        return resp

    def list_models(self) -> list[str]:
        return [m["id"] for m in self.list_model_info()]

    def list_model_info(self) -> list[dict]:
        url = self.endpoint.base_url + self.adapter.models_path
        headers = {**self.adapter.headers(), **(self.endpoint.headers or {})}
        if self.endpoint.api_key and self.endpoint.dialect in ("modelslab", "anthropic"):
            headers["x-api-key"] = self.endpoint.api_key  # /v1/models uses apiKeyAuth (§3.1)
        try:
            r = self._http.get(url, headers=headers)
        except httpx.TimeoutException as e:
            raise TimeoutError_(f"listing models timed out: {type(e).__name__}", provider=self.adapter.name) from None
        except httpx.TransportError as e:
            raise ConnectionFailed(f"listing models failed: {type(e).__name__}", provider=self.adapter.name) from None
        if r.status_code >= 400:
            raise self.adapter.parse_error(r.status_code, r.headers, r.content, None)
        body = decode_json(r.content)
        if body is None:
            raise MalformedResponse("models list is not JSON", provider=self.adapter.name)
        return self.adapter.parse_models(body)

    def check_models(self, models: list[str] | None = None) -> ModelReport:
        """Report which of ``models`` (default: the endpoint's) are available,
        retired (with the likely replacement) or unknown."""
        models = models or self.endpoint.models
        report = ModelReport()
        try:
            info = {m["id"]: m for m in self.list_model_info()}
            for m in list(info.values()):
                for alias in m.get("aliases") or []:
                    info.setdefault(alias, m)
        except ProviderError as e:
            report.error, report.exception = str(e), e
            return report
        report.listed = sorted(info)
        now = datetime.now(timezone.utc)
        for m in models:
            entry = info.get(m)
            if entry is not None:
                dep = entry.get("deprecation")
                when = _parse_date(dep) if isinstance(dep, str) else None
                repl = entry.get("deprecation_replacement_model") or catalog.replacement(m)
                if when and when <= now:
                    report.retired[m] = f"retired since {dep}; likely replacement: {repl}"
                else:
                    report.available.append(m)
                    if when:
                        report.warnings.append(f"{m} is deprecated, retirement {dep}; likely replacement: {repl}")
            elif catalog.retired(m):
                report.retired[m] = (f"not offered (deprecated, retirement {catalog.retired(m)}); "
                                     f"likely replacement: {catalog.replacement(m)}")
            else:
                report.unknown.append(m)
        return report

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ChatClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one attempt --------------------------------------------------------------
    def _send(self, url: str, headers: dict, body: dict, model: str, stream: bool,
              on_token: TokenCallback | None) -> ChatResponse:
        name = self.adapter.name
        try:
            if not stream:
                r = self._http.post(url, json=body, headers=headers)
                return self._finish(r.status_code, r.headers, r.content, model)
            with self._http.stream("POST", url, json=body, headers=headers) as r:
                ctype = r.headers.get("content-type", "")
                if r.status_code >= 400 or "text/event-stream" not in ctype:
                    resp = self._finish(r.status_code, r.headers, r.read(), model)
                    if on_token and resp.text:
                        on_token(resp.text)
                    return resp
                asm = self.adapter.new_stream(model, r.headers)
                for event in iter_sse(r.iter_lines()):
                    for delta in asm.feed(event):
                        if on_token:
                            on_token(delta)
                    if asm.done:
                        break
                return asm.result()
        except httpx.TimeoutException as e:
            raise TimeoutError_(f"request timed out ({type(e).__name__})", provider=name) from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as e:
            raise ConnectionFailed(f"connection dropped or body truncated ({type(e).__name__})",
                                   provider=name) from None
        except httpx.TransportError as e:
            raise ConnectionFailed(f"connection failed ({type(e).__name__})", provider=name) from None
        except ProviderError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            # A body of the wrong shape (e.g. ``data: null`` or a list where an object belongs):
            # adapters read the documented shapes, and anything else is a malformed response.
            raise MalformedResponse(f"unexpected response shape ({type(e).__name__})", provider=name) from None

    def _finish(self, status: int, headers, raw: bytes, model: str) -> ChatResponse:
        if status >= 400:
            raise self.adapter.parse_error(status, headers, raw, model)
        body = decode_json(raw)
        if not isinstance(body, dict):
            raise MalformedResponse(f"HTTP {status} body is not a JSON object ({len(raw)} bytes)",
                                    provider=self.adapter.name)
        err = self.adapter.body_error(body, status, headers, model)
        if err is not None:
            raise err
        return self.adapter.parse_response(body, headers)


def _parse_date(s: str) -> datetime | None:
    try:
        d = datetime.fromisoformat(s.replace("Z", "+00:00"))
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def make_client(endpoint: Endpoint, **kw) -> ChatClient:
    """Build a client for ``endpoint`` (resolved here). ``transport=`` for tests."""
    return ChatClient(endpoint.resolved(), **kw)
