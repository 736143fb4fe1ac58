"""Mistral's files and batch-jobs APIs (the vendor's OpenAPI document: ``/v1/files``,
``/v1/files/{file_id}[/content]``, ``/v1/batch/jobs[/{job_id}[/cancel]]``).

The same seams as the chat client (pipeline/providers/client.py): an ``Endpoint`` (base URL,
key from the profile's environment variable), an httpx transport tests can replace, the
retry policy (429s, 5xx, dropped connections and timeouts are tried again; other errors are
final) and the error tree under PixtractError, with the key redacted from every message.
Answers are returned as the vendor's JSON objects (dicts); a body of the wrong shape is a
``MalformedResponse``.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import httpx

from pixtract.providers import tls
from pixtract.providers.base import decode_json
from pixtract.providers.endpoint import Endpoint
from pixtract.providers.errors import (ConfigError, ConnectionFailed, MalformedResponse, ProviderError,
                                       TimeoutError_)
from pixtract.providers.registry import ADAPTERS
from pixtract.providers.retry import RetryPolicy, RetryState

log = logging.getLogger("pixtract.providers")

CHAT_ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"})  # BatchJobStatus that end a job


class BatchAPI:
    """Files and batch jobs on one Mistral endpoint. Thread-safe; ``close()`` when done."""

    def __init__(self, endpoint: Endpoint, *, transport: httpx.BaseTransport | None = None,
                 policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep):
        ep = endpoint if endpoint.dialect and endpoint.base_url else endpoint.resolved()
        if ep.dialect != "mistral":
            raise ConfigError(f"batch jobs need the mistral dialect; profile {ep.profile!r} speaks {ep.dialect!r}")
        self.endpoint = ep
        self.adapter = ADAPTERS[ep.dialect](ep)
        self.policy = policy or RetryPolicy(max_retries=ep.max_retries, backoff_base=ep.backoff_base,
                                            backoff_max=ep.backoff_max, max_rate_limit_wait=ep.max_rate_limit_wait)
        self.sleep = sleep
        self._http = httpx.Client(verify=tls.context(), timeout=httpx.Timeout(max(ep.timeout, 120.0),
                                  connect=ep.connect_timeout), transport=transport, follow_redirects=False)

    # -- files ------------------------------------------------------------------------------
    def upload(self, filename: str, content: bytes, purpose: str = "batch") -> dict:
        """POST /v1/files (multipart): the file's UploadFileOut."""
        return self._json("POST", "/files", files={"file": (filename, content, "application/jsonl")},
                          data={"purpose": purpose})

    def list_files(self, *, purpose: str | None = None, search: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("purpose", purpose), ("search", search)) if v is not None}
        return _list(self._json("GET", "/files", params=params), self.adapter.name)

    def retrieve_file(self, file_id: str) -> dict:
        return self._json("GET", f"/files/{file_id}")

    def download(self, file_id: str) -> bytes:
        """GET /v1/files/{file_id}/content: the file's bytes."""
        return self._request("GET", f"/files/{file_id}/content").content

    def delete_file(self, file_id: str) -> dict:
        return self._json("DELETE", f"/files/{file_id}")

    # -- batch jobs ---------------------------------------------------------------------------
    def create_job(self, input_files: list[str], model: str, *, endpoint: str = CHAT_ENDPOINT,
                   metadata: dict[str, str] | None = None, timeout_hours: int = 24) -> dict:
        """POST /v1/batch/jobs (BatchJobIn): the job's BatchJobOut."""
        body = job_request(input_files, model, endpoint=endpoint, metadata=metadata, timeout_hours=timeout_hours)
        return _job(self._json("POST", "/batch/jobs", json=body), self.adapter.name)

    def get_job(self, job_id: str) -> dict:
        return _job(self._json("GET", f"/batch/jobs/{job_id}"), self.adapter.name)

    def list_jobs(self, *, model: str | None = None, status: list[str] | None = None) -> list[dict]:
        params: dict = {"page_size": 100}
        if model:
            params["model"] = model
        if status:
            params["status"] = status
        return [_job(j, self.adapter.name) for j in _list(self._json("GET", "/batch/jobs", params=params),
                                                           self.adapter.name)]

    def cancel_job(self, job_id: str) -> dict:
        return _job(self._json("POST", f"/batch/jobs/{job_id}/cancel"), self.adapter.name)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "BatchAPI":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one call, with retries ----------------------------------------------------------------
    def _json(self, method: str, path: str, **kw) -> dict:
        r = self._request(method, path, **kw)
        body = decode_json(r.content)
        if not isinstance(body, dict):
            raise MalformedResponse(f"{method} {path}: HTTP {r.status_code} body is not a JSON object",
                                    provider=self.adapter.name)
        return body

    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        url = self.endpoint.base_url + path
        headers = {k: v for k, v in {**self.adapter.headers(), **(self.endpoint.headers or {})}.items()
                   if not (k.lower() == "content-type" and "files" in kw)}  # httpx sets the multipart boundary
        state = RetryState(self.policy)
        while True:
            state.attempts += 1
            try:
                r = self._http.request(method, url, headers=headers, **kw)
                if r.status_code >= 400:
                    raise self.adapter.parse_error(r.status_code, r.headers, r.content, None)
                return r
            except httpx.TimeoutException as e:
                error: ProviderError = TimeoutError_(f"{method} {path} timed out ({type(e).__name__})",
                                                     provider=self.adapter.name)
                if _may_have_acted(method, e):
                    raise error from None
            except httpx.TransportError as e:
                error = ConnectionFailed(f"{method} {path} failed ({type(e).__name__})", provider=self.adapter.name)
                if _may_have_acted(method, e):
                    raise error from None
            except ProviderError as e:
                error = e
            delay = state.next_delay(error)
            if delay is None:
                raise error
            log.info("retrying %s %s in %.2fs (attempt %d): %s", method, path, delay, state.attempts, error)
            self.sleep(delay)


def _may_have_acted(method: str, error: httpx.TransportError) -> bool:
    """A POST (an upload, a new job, a cancel) whose connection broke after it was sent may have
    been carried out: sending it again could upload twice or start a second job that bills the
    same items again. Such a step is not retried here; the job store looks the file up by name
    and the job by its metadata before it repeats a step (pipeline/batchjobs.py)."""
    return method == "POST" and not isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))


def job_request(input_files: list[str], model: str, *, endpoint: str = CHAT_ENDPOINT,
                metadata: dict[str, str] | None = None, timeout_hours: int = 24) -> dict:
    """The BatchJobIn body pixtract sends (the contract tests check it against the schema)."""
    body: dict = {"input_files": list(input_files), "endpoint": endpoint, "model": model,
                  "timeout_hours": int(timeout_hours)}
    if metadata:
        body["metadata"] = {str(k)[:32]: str(v)[:512] for k, v in metadata.items() if str(v)}
    return body


def input_line(custom_id: str, body: dict) -> str:
    """One line of a batch input file: ``{"custom_id", "body"}`` (BatchJobIn.input_files)."""
    return json.dumps({"custom_id": custom_id, "body": body}, ensure_ascii=False, separators=(",", ":"))


def _job(body: dict, provider: str) -> dict:
    if not isinstance(body.get("id"), str) or not isinstance(body.get("status"), str):
        raise MalformedResponse("batch job answer has no id or status", provider=provider)
    return body


def _list(body: dict, provider: str) -> list[dict]:
    data = body.get("data")
    if not isinstance(data, list):
        raise MalformedResponse("list answer has no 'data' array", provider=provider)
    return [d for d in data if isinstance(d, dict)]
