"""Typed provider errors with a stable taxonomy, and secret redaction.

``RetryableError``: rate limits, timeouts, 408/5xx/524/529, dropped connections,
truncated or malformed bodies. ``FinalError``: everything a retry cannot fix.
Every message passes through :func:`redact` so no API key can leak.
"""
from __future__ import annotations

import re
import threading

from ..errors import PixtractError
from . import catalog

# The secrets redaction removes stay process-wide on purpose, not in the run's context: an error
# message is redacted where the error is made (deep in a transport, a retry, a worker thread)
# and a log line where it is formatted, where no run is at hand; a registry per run would let
# any message made without it through, and in a process serving several runs (``pixtract
# serve``, a notebook) one run's key could reach another's log. The set only grows: it can
# remove more text, never less.
_SECRETS: set[str] = set()
_LOCK = threading.Lock()
# (pattern, keep group 1 as prefix)
_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{6,}"), True),
    (re.compile(r"(?i)(\"?\b(?:key|api_key|api-key|x-api-key|authorization)\"?\s*[:=]\s*\"?)[^\s\",}]{6,}"), True),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), False),
]


def register_secret(secret: str | None) -> None:
    """Remember a secret so :func:`redact` removes it from any text."""
    if secret and len(secret) >= 4:
        with _LOCK:
            _SECRETS.add(secret)


def redact(text: object) -> str:
    s = str(text)
    # Longest first: a key that contains another registered key must not leave its tail behind.
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in s:
            s = s.replace(secret, "***")
    for pat, keep in _PATTERNS:
        s = pat.sub((lambda m: m.group(1) + "***") if keep else "***", s)
    return s


def redact_body(body: object) -> object:
    """Copy of a JSON body with secret fields masked and image data shortened (for logs)."""
    if isinstance(body, dict):
        out = {}
        for k, v in body.items():
            if k.lower() in ("key", "api_key", "apikey", "authorization", "x-api-key"):
                out[k] = "***"
            else:
                out[k] = redact_body(v)
        return out
    if isinstance(body, list):
        return [redact_body(v) for v in body]
    if isinstance(body, str):
        if body.startswith("data:") and len(body) > 80:
            return body[:40] + f"...({len(body)} chars)"
        return redact(body) if len(body) < 10000 else redact(body[:10000]) + "..."
    return body


class ProviderError(PixtractError):
    """Base class. ``type`` is a stable machine-readable string."""

    type = "provider_error"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None,
                 provider: str | None = None, type: str | None = None, retry_after: float | None = None,
                 body: object = None):
        self.message = redact(message)
        self.status = status
        self.request_id = request_id
        self.provider = provider
        if type:
            self.type = type
        self.retry_after = retry_after
        self.body = redact_body(body) if body is not None else None
        super().__init__(self.message)

    def __str__(self) -> str:
        bits = [f"[{self.type}]"]
        if self.provider:
            bits.append(self.provider)
        if self.status is not None:
            bits.append(f"HTTP {self.status}")
        s = " ".join(bits) + f": {self.message}"
        if self.request_id:
            s += f" (request id {self.request_id})"
        return s

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self)!r})"


class ConfigError(ProviderError):
    type = "config"


class RetryableError(ProviderError):
    retryable = True
    type = "retryable"


class RateLimitError(RetryableError):
    type = "rate_limited"


class ServerError(RetryableError):
    type = "server_error"


class OverloadedError(ServerError):
    type = "overloaded"


class TimeoutError_(RetryableError):
    type = "timeout"


class ConnectionFailed(RetryableError):
    type = "connection"


class MalformedResponse(RetryableError):
    """Truncated/malformed body or a stream that ended early."""

    type = "malformed_response"


class FinalError(ProviderError):
    type = "final"


class BadRequest(FinalError):
    type = "invalid_request"


class ContextTooLong(BadRequest):
    type = "context_length_exceeded"


class AuthError(FinalError):
    type = "authentication"


class PaymentRequired(FinalError):
    type = "payment_required"


class PermissionDenied(FinalError):
    type = "permission_denied"


class NotFound(FinalError):
    type = "not_found"


class ModelGoneError(NotFound):
    """The model is retired, deprecated or unknown (model-apis.md §0)."""

    type = "model_gone"

    def __init__(self, message: str, *, model: str | None = None, replacement: str | None = None, **kw):
        self.model = model
        self.replacement = replacement
        super().__init__(message, **kw)


class PayloadTooLarge(FinalError):
    type = "payload_too_large"


class UnprocessableError(FinalError):
    type = "unprocessable"


class ClientLimitError(FinalError):
    """Raised before sending: the request breaks a documented client-side limit."""

    type = "client_limit"


class RequestTooLarge(ClientLimitError):
    type = "request_too_large"


_CONTEXT_RE = re.compile(r"prompt contains \d+ tokens?.*too large for model with \d+ maximum context length"
                         r"|context[_ ]length[_ ]exceeded|maximum context length|prompt is too long", re.I | re.S)
_GONE_RE = re.compile(r"model_deprecated|no_endpoints|deprecated|retired|decommissioned|no longer (available|supported)"
                      r"|invalid model|model_not_found|not a valid model|does not exist", re.I)


def error_for_status(status: int | None, message: str, *, provider: str | None = None,
                     request_id: str | None = None, code: str | None = None, model: str | None = None,
                     retry_after: float | None = None, body: object = None) -> ProviderError:
    """Map an HTTP status (+ message/code hints) onto the taxonomy."""
    kw = dict(status=status, request_id=request_id, provider=provider, retry_after=retry_after, body=body)
    hint = f"{code or ''} {message}"
    if status == 429 or code in ("rate_limited", "rate_limit_exceeded", "rate_limit_error", "capacity_exhausted"):
        return RateLimitError(message, **kw)
    if status in (529,) or code in ("overloaded_error", "provider_overloaded"):
        return OverloadedError(message, **kw)
    if status in (408, 504, 524) or code in ("timeout", "timeout_error"):
        return TimeoutError_(message, **kw)
    if status is not None and status >= 500:
        return ServerError(message, **kw)
    if status == 413:
        return PayloadTooLarge(message, **kw)
    if _CONTEXT_RE.search(hint):
        return ContextTooLong(message, **kw)
    if status == 401:
        return AuthError(message, **kw)
    if status == 402:
        return PaymentRequired(message, **kw)
    if status == 403:
        return PermissionDenied(message, **kw)
    unknown_model = status == 400 and (code in ("model_not_found", "invalid_model")
                                       or re.search(r"invalid model|not a valid model", message, re.I))
    if status == 404 or unknown_model:
        if unknown_model or _GONE_RE.search(hint) or model:
            text = message
            if model and model not in text:
                text = f"{text} (model {model})"
            repl = catalog.replacement(model)
            return ModelGoneError(f"{text}; likely replacement: {repl}", model=model, replacement=repl, **kw)
        return NotFound(message, **kw)
    if status == 422:
        return UnprocessableError(message, **kw)
    if status is not None and 400 <= status < 500:
        return BadRequest(message, **kw)
    return ProviderError(message, **kw)
