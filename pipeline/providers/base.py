"""Adapter interface: one subclass per wire dialect (see registry.py)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable

from pixtract.messages import ChatRequest, ChatResponse
from pixtract.providers.errors import (ClientLimitError, MalformedResponse, ProviderError, RequestTooLarge,
                                       error_for_status)
from pixtract.providers.retry import parse_retry_after
from pixtract.providers.sse import SSEEvent

if TYPE_CHECKING:
    from pixtract.providers.endpoint import Endpoint

TokenCallback = Callable[[str], None]


class StreamAssembler:
    """Consumes SSE events of one stream; emits text deltas; builds the response."""

    done = False

    def feed(self, event: SSEEvent) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def result(self) -> ChatResponse:  # pragma: no cover - interface
        raise NotImplementedError


class Adapter:
    """Maps the neutral model onto one dialect. Subclasses override the hooks."""

    name = "base"
    chat_path = "/chat/completions"
    models_path = "/models"
    max_images: int | None = None
    max_image_bytes: int | None = None
    max_stop: int | None = None

    def __init__(self, endpoint: "Endpoint"):
        self.endpoint = endpoint

    # -- request side -------------------------------------------------------
    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.endpoint.api_key:
            h["Authorization"] = f"Bearer {self.endpoint.api_key}"
        return h

    def check_limits(self, req: ChatRequest, model: str) -> None:
        """Raise a ClientLimitError for what the API would reject, before sending."""
        images = req.images
        if self.max_images is not None and len(images) > self.max_images:
            raise RequestTooLarge(f"{len(images)} images in one request; {self.name} allows at most "
                                  f"{self.max_images}", provider=self.name)
        if self.max_image_bytes is not None:
            for i, img in enumerate(images):
                if len(img.data) > self.max_image_bytes:
                    raise RequestTooLarge(f"image {i} is {len(img.data)} bytes; {self.name} allows at most "
                                          f"{self.max_image_bytes} bytes per image", provider=self.name)
        if self.max_stop is not None and req.stop and len(req.stop) > self.max_stop:
            raise ClientLimitError(f"{len(req.stop)} stop sequences; {self.name} allows at most {self.max_stop}",
                                   provider=self.name)

    def build_body(self, req: ChatRequest, model: str, stream: bool) -> dict:  # pragma: no cover
        raise NotImplementedError

    # -- response side ------------------------------------------------------
    def parse_response(self, body: dict, headers) -> ChatResponse:  # pragma: no cover
        raise NotImplementedError

    def new_stream(self, model: str, headers) -> StreamAssembler:  # pragma: no cover
        raise NotImplementedError

    def body_error(self, body: dict, status: int, headers, model: str | None) -> ProviderError | None:
        """An error carried by a body that came with a success status (none by default)."""
        return None

    def parse_error(self, status: int, headers, raw: bytes, model: str | None) -> ProviderError:
        body = decode_json(raw)
        message, code, rid = error_fields(body, raw)
        rid = rid or request_id_from(headers)
        if not message:
            message = f"HTTP {status} with {'an empty' if not raw else 'a non-JSON'} body"
        return error_for_status(status, message, provider=self.name, request_id=rid, code=code,
                                model=model, retry_after=parse_retry_after(headers, body), body=body)

    def parse_models(self, body: dict) -> list[dict]:
        data = body.get("data", body) if isinstance(body, dict) else body
        if not isinstance(data, list):
            raise MalformedResponse("models list has no 'data' array", provider=self.name)
        return [m for m in data if isinstance(m, dict) and "id" in m]


# -- helpers shared by adapters ----------------------------------------------

def decode_json(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None


def request_id_from(headers) -> str | None:
    if not headers:
        return None
    for k in ("x-request-id", "request-id", "x-generation-id", "mistral-correlation-id", "cf-ray"):
        v = headers.get(k)
        if v:
            return v
    return None


def error_fields(body: object, raw: bytes = b"") -> tuple[str, str | None, str | None]:
    """(message, code/type, request_id) from any of the error shapes in model-apis.md
    §1.10 (Mistral a-f), §2.6/§2.8 (OpenRouter), §3.4 (ModelsLab), §4.4 (Anthropic)."""
    if not isinstance(body, dict):
        text = raw.decode("utf-8", "replace").strip() if raw else ""
        return (text[:300] if text and not text.lstrip().startswith("<") else ""), None, None
    rid = body.get("request_id")
    code = body.get("type") if body.get("type") not in ("error", None) else None
    msg: object = None
    err = body.get("error")
    if isinstance(err, dict):
        msg = err.get("message")
        avail = err.get("availability") or {}
        meta = err.get("metadata") or {}
        code = (avail.get("code") or err.get("error_type") or meta.get("error_type") or err.get("type")
                or code)
        if meta.get("raw") and msg == "Provider returned error":
            inner = decode_json(str(meta["raw"]).encode())
            inner_msg = error_fields(inner)[0] if isinstance(inner, dict) else str(meta["raw"])
            if inner_msg:
                msg = f"{msg}: {inner_msg}"
    elif isinstance(err, str):
        msg = err
    if msg is None:
        msg = body.get("message", body.get("messege"))
    if msg is None and "detail" in body:
        msg = body["detail"]
    if isinstance(msg, dict) and "detail" in msg:
        msg = msg["detail"]
    if isinstance(msg, list):  # pydantic detail list (§1.10 b)
        items = []
        for d in msg:
            if isinstance(d, dict):
                loc = ".".join(str(x) for x in d.get("loc", []))
                items.append(f"{d.get('type', '')} at {loc}: {d.get('msg', '')}".strip())
                code = code or d.get("type")
            else:
                items.append(str(d))
        msg = "; ".join(items)
    if body.get("code") and not code:
        code = str(body["code"])
    return (str(msg) if msg is not None else ""), (str(code) if code else None), rid
