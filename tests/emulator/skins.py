"""Per-dialect "skins" of the emulator: parse + validate the wire request,
render answers, streams, error bodies and model lists (model-apis.md §8.1)."""
from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import os
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pixtract.messages import (ChatRequest, ImagePart, Message, ResponseFormat, TextPart, Tool, ToolCall, Usage)
from tests.emulator.model import Answer
from pixtract.tokens import cost_usd

CONTEXT = 131072  # §6
SCHEMA_DIR = Path(os.environ.get("PIXTRACT_API_SCHEMAS") or Path(__file__).resolve().parents[2] / "fixtures" / "api")
_TOOL_ID = re.compile(r"^[a-zA-Z0-9]{9}$")


class Reject(Exception):
    """Raised while parsing/validating: carries the reply to send."""

    def __init__(self, status: int, body: object, headers: dict | None = None, outcome: str = "rejected"):
        super().__init__(f"{status}")
        self.status, self.body, self.headers, self.outcome = status, body, headers or {}, outcome


@dataclass
class Wire:
    """A parsed incoming chat request."""

    dialect: str
    model: str
    stream: bool
    req: ChatRequest
    body: dict
    key: str | None = None
    raw: bytes = b""  # the body as sent (the "echo" fault answers with it)
    include_usage: bool = True
    extra: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=8)
def validator(vendor: str, root: str):
    """jsonschema validator for a vendor schema extracted into fixtures/api (None if absent)."""
    path = SCHEMA_DIR / f"{vendor}_schemas.json"
    if not path.exists():
        return None
    import jsonschema

    doc = json.loads(path.read_text())
    return jsonschema.Draft202012Validator({"$defs": doc["$defs"], "$ref": f"#/$defs/{root}"})


def _decode_image(url: str) -> ImagePart:
    if not url.startswith("data:"):
        return ImagePart(b"", "image/png", 1024, 1024)  # remote URL: assume a full-size image
    head, _, data = url.partition(",")
    mime = head[5:].split(";")[0] or "image/png"
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raw = b""
    return _sized(raw, mime)


def _sized(raw: bytes, mime: str) -> ImagePart:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as im:
            w, h = im.size
    except Exception:
        w, h = 16, 16  # undecodable: count as a tiny image
    return ImagePart(raw, mime, w, h)


def _hex() -> str:
    return uuid.uuid4().hex


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text) or [text]


class Skin:
    name = "base"
    key_required = True
    vendor_schema: tuple[str, str] | None = None
    max_stop: int | None = None

    # -- auth ---------------------------------------------------------------
    def key(self, headers, body: dict) -> str | None:
        auth = headers.get("Authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else (headers.get("x-api-key") or None)

    # -- request ------------------------------------------------------------
    def parse(self, body: dict, headers) -> Wire:
        if not isinstance(body.get("messages"), list):
            raise self.reject(400, "messages is required and must be an array")
        model = body.get("model") or ""
        msgs = [self.message(m) for m in body["messages"]]
        rf = body.get("response_format") or None
        fmt = None
        if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
            js = rf.get("json_schema") or {}
            fmt = ResponseFormat(rf["type"], js.get("schema"), js.get("name", "response"), bool(js.get("strict")))
        tools = [Tool(t["function"]["name"], t["function"].get("parameters") or {}, t["function"].get("description", ""))
                 for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t]
        tc = body.get("tool_choice")
        choice = tc["function"]["name"] if isinstance(tc, dict) else ("required" if tc in ("any", "required") else tc)
        stop = body.get("stop")
        req = ChatRequest(msgs, model=model, temperature=body.get("temperature"), top_p=body.get("top_p"),
                          max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
                          seed=body.get("seed", body.get("random_seed")),
                          stop=[stop] if isinstance(stop, str) else stop, response_format=fmt, tools=tools or None,
                          tool_choice=choice)
        so = body.get("stream_options") or {}
        return Wire(self.name, model, bool(body.get("stream")), req, body,
                    include_usage=bool(so.get("include_usage", True)))

    def message(self, m: dict) -> Message:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool", "developer"):
            raise self.reject(400, f"invalid message role {m.get('role') if isinstance(m, dict) else m!r}")
        content = m.get("content")
        parts: list = []
        if isinstance(content, str):
            parts = [TextPart(content)] if content else []
        elif isinstance(content, list):
            for c in content:
                if c.get("type") == "text":
                    parts.append(TextPart(c.get("text", "")))
                elif c.get("type") == "image_url":
                    u = c.get("image_url")
                    parts.append(_decode_image(u if isinstance(u, str) else (u or {}).get("url", "")))
        calls = [ToolCall(t.get("id", ""), t["function"]["name"], t["function"].get("arguments") or "{}")
                 for t in m.get("tool_calls") or []]
        role = "system" if m["role"] == "developer" else m["role"]
        return Message(role, parts, tool_calls=calls or None, tool_call_id=m.get("tool_call_id"), name=m.get("name"))

    def validate(self, wire: Wire) -> None:
        """Raise Reject for what the real service rejects (after schema checks)."""
        if self.max_stop is not None and wire.req.stop and len(wire.req.stop) > self.max_stop:
            raise self.reject(400, f"stop: at most {self.max_stop} sequences are allowed")

    def schema_check(self, body: dict) -> None:
        if not self.vendor_schema:
            return
        v = validator(*self.vendor_schema)
        if v is None:
            return
        errors = sorted(v.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            self.schema_errors(errors)

    def schema_errors(self, errors) -> None:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path) or "body"
        raise self.reject(400, f"Invalid request: {where}: {e.message[:200]}")

    # -- replies --------------------------------------------------------------
    def json_body(self, raw: bytes) -> dict:
        """A request's JSON object, or the dialect's 400 for a body that is not one."""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self.reject(400, "Invalid JSON body")
        return body

    def reject(self, status: int, message: str, kind: str | None = None, **kw) -> Reject:
        return Reject(status, self.error_body(status, message, kind, **kw), self.error_headers(status, kw),
                      outcome=kw.get("outcome", f"error_{status}"))

    def error_body(self, status: int, message: str, kind: str | None, **kw) -> dict:  # pragma: no cover
        raise NotImplementedError

    def error_headers(self, status: int, kw: dict) -> dict:
        h = {}
        if status == 429 and kw.get("retry_after") is not None:
            h["Retry-After"] = _fmt(kw["retry_after"])
        return h

    def model_gone(self, model: str) -> Reject:
        return self.reject(404, f"Model '{model}' has been retired; use its replacement (Mistral Medium 3.5)",
                           "model_deprecated", model=model, outcome="model_retired")

    def unknown_model(self, model: str) -> Reject:
        return self.reject(400, f"Invalid model: {model}", "model_not_found", model=model, outcome="unknown_model")

    def context_too_long(self, prompt: int) -> Reject:
        return self.reject(400, f"Prompt contains {prompt} tokens, too large for model with {CONTEXT} maximum "
                                f"context length", "context_length_exceeded", outcome="context_too_long")

    def ok(self, wire: Wire, ans: Answer, usage: Usage) -> dict:  # pragma: no cover
        raise NotImplementedError

    def stream(self, wire: Wire, ans: Answer, usage: Usage, cut_after: int | None = None,
               error: dict | None = None) -> Iterator[bytes]:  # pragma: no cover
        raise NotImplementedError

    def models(self, ids: list[str]) -> dict:
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 1731974400,
                                            "owned_by": "mistralai"} for m in ids]}

    def ok_headers(self) -> dict:
        return {}


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def sse(data: object, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    return ((f"event: {event}\n" if event else "") + f"data: {payload}\n\n").encode()


# -- OpenAI family ----------------------------------------------------------------

class OpenAISkin(Skin):
    name = "openai"
    key_required = False
    max_stop = 4
    id_prefix = "chatcmpl-"

    def error_body(self, status, message, kind, **kw):
        return {"error": {"message": message, "type": kind or _OPENAI_TYPES.get(status, "invalid_request_error"),
                          "param": None, "code": kind if kind in ("model_not_found", "context_length_exceeded") else None}}

    def finish(self, ans: Answer) -> str:
        return ans.finish_reason

    def tool_calls(self, ans: Answer) -> list[dict] | None:
        if not ans.tool_calls:
            return None
        return [{"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
                for tc in ans.tool_calls]

    def usage(self, usage: Usage, model: str) -> dict:
        return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens}

    def message(self, m):  # noqa: D401 - parse side is inherited
        return super().message(m)

    def assistant(self, ans: Answer) -> dict:
        msg = {"role": "assistant", "content": ans.content if not ans.tool_calls else (ans.content or None),
               "refusal": None}
        if ans.tool_calls:
            msg["tool_calls"] = self.tool_calls(ans)
        return msg

    def choice_extra(self, ans: Answer) -> dict:
        return {"logprobs": None}

    def top_extra(self) -> dict:
        return {"system_fingerprint": None}

    def ok(self, wire, ans, usage):
        return {"id": self.id_prefix + _hex()[:24], "object": "chat.completion", "created": int(time.time()),
                "model": wire.model, **self.top_extra(),
                "choices": [{"index": 0, "message": self.assistant(ans), "finish_reason": self.finish(ans),
                             **self.choice_extra(ans)}],
                "usage": self.usage(usage, wire.model)}

    def chunk(self, cid: str, wire: Wire, delta: dict, finish: str | None, **extra) -> dict:
        return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": wire.model,
                **self.top_extra(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                                 **self.choice_extra_stream(finish)}], **extra}

    def choice_extra_stream(self, finish):
        return {"logprobs": None}

    def stream_error(self, cid: str, wire: Wire, error: dict) -> bytes:
        return sse({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": wire.model,
                    "error": {"code": error.get("status", 503), "message": error.get("message", "Provider returned error"),
                              "metadata": {"error_type": "provider_unavailable"}},
                    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]})

    def stream(self, wire, ans, usage, cut_after=None, error=None):
        cid = self.id_prefix + _hex()[:24]
        yield from self.preamble()
        events = [self.chunk(cid, wire, {"role": "assistant", "content": ""}, None)]
        pieces = _words(ans.content) if ans.content else []
        for p in pieces:
            events.append(self.chunk(cid, wire, self.delta(p), None))
        if ans.tool_calls:
            events.append(self.chunk(cid, wire, {"tool_calls": [dict(tc, index=i) for i, tc in
                                                                enumerate(self.tool_calls(ans))]}, None))
        events.append(self.final_chunk(cid, wire, ans, usage))
        for i, ev in enumerate(events):
            if cut_after is not None and i >= cut_after:
                return
            if error is not None and i >= error.get("after_chunks", 2):
                yield self.stream_error(cid, wire, error)
                yield from self.after_error()
                return
            yield sse(ev)
        yield from self.trailer(cid, wire, usage)

    def delta(self, piece: str) -> dict:
        return {"content": piece}

    def preamble(self) -> Iterator[bytes]:
        return iter(())

    def final_chunk(self, cid, wire, ans, usage) -> dict:
        return self.chunk(cid, wire, {}, self.finish(ans))

    def trailer(self, cid, wire, usage) -> Iterator[bytes]:
        if wire.include_usage and wire.body.get("stream_options"):
            yield sse({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": wire.model,
                       "choices": [], "usage": self.usage(usage, wire.model)})
        yield sse("[DONE]")

    def after_error(self) -> Iterator[bytes]:
        return iter(())


_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
                 403: "permission_error", 404: "not_found_error", 408: "timeout", 413: "invalid_request_error",
                 422: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error", 502: "server_error",
                 503: "server_error", 504: "timeout", 524: "timeout", 529: "overloaded"}


class MistralSkin(OpenAISkin):
    name = "mistral"
    key_required = True
    max_stop = None
    vendor_schema = ("mistral", "ChatCompletionRequest")
    id_prefix = ""

    def error_body(self, status, message, kind, **kw):
        if status == 401:
            return {"message": "Unauthorized", "request_id": _hex()}  # §1.10 c
        if status == 429:
            return {"object": "error", "message": "Rate limit exceeded", "type": "rate_limited", "param": None,
                    "code": "1300"}  # §1.10 d
        if status == 422 and kw.get("detail"):
            return {"object": "error", "message": {"detail": kw["detail"]}, "type": "invalid_request_error",
                    "param": None, "code": None}  # §1.10 b
        types = {500: "internal_server_error", 502: "internal_server_error", 503: "internal_server_error"}
        return {"object": "error", "message": message, "type": kind if kind in ("invalid_function_call",) else
                types.get(status, "invalid_request_error"), "param": None, "code": kw.get("code")}

    def error_headers(self, status, kw):
        return {}  # no Retry-After observed on Mistral 429s (§1.11)

    def schema_errors(self, errors) -> None:
        detail = []
        for e in errors:
            for sub in _leaf_errors(e):
                path = ["body", *sub.absolute_path]
                if sub.validator == "additionalProperties":
                    allowed = set((sub.schema.get("properties") or {}))
                    for extra in (k for k in sub.instance if k not in allowed):
                        loc = path + ([sub.instance.get("role")] if "role" in sub.instance and len(path) > 1 else [])
                        detail.append({"type": "extra_forbidden", "loc": loc + [extra],
                                       "msg": "Extra inputs are not permitted", "input": sub.instance[extra]})
                else:
                    detail.append({"type": str(sub.validator), "loc": path, "msg": sub.message[:200],
                                   "input": sub.instance if not isinstance(sub.instance, (dict, list)) else None})
        if not detail:
            detail = [{"type": "value_error", "loc": ["body"], "msg": errors[0].message[:200], "input": None}]
        raise Reject(422, self.error_body(422, "", None, detail=detail[:5]), outcome="error_422")

    def validate(self, wire):
        super().validate(wire)
        imgs = wire.req.images
        if len(imgs) > 8:  # §1.4
            raise self.reject(400, f"Too many images in request: {len(imgs)}. Max allowed is 8.")
        for img in imgs:
            if len(img.data) > 10 * 1024 * 1024:
                raise self.reject(400, "Image is too large: maximum size is 10MB.")
            if (img.width or 0) > 10000 or (img.height or 0) > 10000:
                raise self.reject(400, "Image resolution exceeds 10000x10000.")
        for m in wire.req.messages:
            ids = [tc.id for tc in m.tool_calls or []] + ([m.tool_call_id] if m.role == "tool" else [])
            for tid in ids:
                if not _TOOL_ID.match(tid or ""):
                    raise self.reject(400, f"Tool call id was {tid} but must be a-z, A-Z, 0-9, with a length of 9.",
                                      "invalid_function_call", code="3280")  # §1.7
            if m.role == "assistant" and not m.text and not m.tool_calls:
                raise self.reject(400, "Assistant message must have either content or tool_calls, but not none.")

    def unknown_model(self, model):
        return self.reject(400, f"Invalid model: {model}", "invalid_model", code="1500", outcome="unknown_model")

    def assistant(self, ans):
        return {"role": "assistant", "tool_calls": [dict(tc, index=i) for i, tc in enumerate(self.tool_calls(ans))]
                if ans.tool_calls else None, "content": ans.content, "prefix": False}

    def choice_extra(self, ans):
        return {}

    def choice_extra_stream(self, finish):
        return {}

    def top_extra(self):
        return {}

    def ok(self, wire, ans, usage):
        body = super().ok(wire, ans, usage)
        body["id"] = _hex()  # 32 hex chars, no prefix (§1.5)
        return body

    def final_chunk(self, cid, wire, ans, usage):
        # Usage rides on the last chunk, with finish_reason, no stream_options needed (§1.6).
        return self.chunk(cid, wire, {"content": ""}, self.finish(ans), usage=self.usage(usage, wire.model))

    def stream_error(self, cid, wire, error):
        return sse(self.chunk(cid, wire, {"content": ""}, "error"))  # §1.6 [UNVERIFIED] design choice

    def after_error(self):
        yield sse("[DONE]")

    def trailer(self, cid, wire, usage):
        yield sse("[DONE]")

    def models(self, ids):
        data = []
        for m in ids:
            vision = "pixtral" in m
            data.append({"id": m, "object": "model", "created": 1767094366, "owned_by": "mistralai",
                         "capabilities": {"completion_chat": True, "function_calling": True, "completion_fim": False,
                                          "fine_tuning": not vision, "vision": vision, "ocr": False,
                                          "classification": False, "moderation": False, "audio": False},
                         "name": m, "description": f"Official {m} Mistral AI model", "max_context_length": CONTEXT,
                         "aliases": ["pixtral-large-latest"] if m == "pixtral-large-2411" else [],
                         "deprecation": None, "deprecation_replacement_model": None,
                         "default_model_temperature": 0.7, "type": "base"})
        return {"object": "list", "data": data}

    def ok_headers(self):
        return {"x-ratelimit-limit-req-minute": "600", "x-ratelimit-remaining-req-minute": "599"}


def _leaf_errors(e):
    """Most specific sub-errors of a oneOf/anyOf failure (for pydantic-like detail)."""
    if not e.context:
        return [e]
    extra = [c for c in e.context if c.validator == "additionalProperties"]
    if extra:
        return extra[:1]
    best = max(e.context, key=lambda c: len(c.absolute_path))
    return _leaf_errors(best)


class OpenRouterSkin(OpenAISkin):
    name = "openrouter"
    key_required = True
    vendor_schema = ("openrouter", "ChatRequest")
    id_prefix = "gen-"

    def error_body(self, status, message, kind, **kw):
        if kind in ("model_deprecated", "model_not_found"):  # §2.8
            return {"error": {"message": message, "code": status, "error_type": "not_found" if status == 404 else
                              "invalid_request", "http_status": status,
                              "availability": {"code": kind, "retryable": False,
                                               "requested_models": [kw.get("model")],
                                               "docs_url": f"https://openrouter.ai/docs/errors#{kind}"}}}
        meta_type = {429: "rate_limit_exceeded", 402: "payment_required", 401: "authentication",
                     408: "timeout", 502: "provider_unavailable", 503: "provider_overloaded",
                     400: kind or "invalid_request"}.get(status, "server")
        return {"error": {"code": status, "message": message, "metadata": {
            "error_type": meta_type, "provider_name": "Mistral", "provider_code": kind,
            "raw": None}}}

    def error_headers(self, status, kw):
        h = super().error_headers(status, kw)
        if status == 429 and kw.get("retry_after") is not None:  # §2.7
            h.update({"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0",
                      "X-RateLimit-Reset": str(int((time.time() + float(kw["retry_after"])) * 1000))})
        return h

    def usage(self, usage, model):
        cost_in = usage.prompt_tokens * 2e-6
        cost_out = usage.completion_tokens * 6e-6
        return {**super().usage(usage, model), "cost": round(cost_usd(model, usage) or cost_in + cost_out, 8),
                "is_byok": False, "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
                "cost_details": {"upstream_inference_cost": None, "upstream_inference_prompt_cost": cost_in,
                                 "upstream_inference_completions_cost": cost_out}}

    def assistant(self, ans):
        return {**super().assistant(ans), "reasoning": None}

    def choice_extra(self, ans):
        return {"logprobs": None, "native_finish_reason": self.finish(ans)}

    def choice_extra_stream(self, finish):
        return {"logprobs": None, "native_finish_reason": finish}

    def top_extra(self):
        return {"provider": "Mistral", "system_fingerprint": "fp_emulator"}  # schema: string (doc example: null)

    def delta(self, piece):
        return {"role": "assistant", "content": piece}

    def preamble(self):
        yield b": OPENROUTER PROCESSING\n\n"  # keep-alive comment (§2.5)

    def trailer(self, cid, wire, usage):
        # Usage always sent, in a final chunk with empty choices (§2.5).
        yield sse({"id": cid, "provider": "Mistral", "model": wire.model, "object": "chat.completion.chunk",
                   "created": int(time.time()), "choices": [], "usage": self.usage(usage, wire.model)})
        yield sse("[DONE]")

    def ok_headers(self):
        return {"X-Generation-Id": "gen-" + _hex()[:24]}


class ModelsLabSkin(OpenAISkin):
    name = "modelslab"
    key_required = True
    max_stop = 4
    id_prefix = "gen-"

    def key(self, headers, body):
        return body.get("key") or headers.get("key") or super().key(headers, body)  # §8.3

    def parse(self, body, headers):
        body = dict(body)
        body.pop("key", None)
        if "model_id" in body:
            body["model"] = body.pop("model_id")
        if "streaming" in body:
            body["stream"] = body.pop("streaming")
        if not body.get("model"):
            raise self.reject(400, "model_id is required")
        return super().parse(body, headers)

    def error_body(self, status, message, kind, **kw):
        body = {"status": "error", "message": message}  # §3.4
        if status == 429 and kw.get("retry_after") is not None:
            body["retry_after"] = kw["retry_after"]
        return body

    def error_headers(self, status, kw):
        return {}

    def trailer(self, cid, wire, usage):
        yield sse({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": wire.model,
                   "choices": [], "usage": self.usage(usage, wire.model)})
        yield sse("[DONE]")


# -- Anthropic Messages --------------------------------------------------------------

_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                    403: "permission_error", 404: "not_found_error", 408: "timeout_error", 413: "request_too_large",
                    422: "invalid_request_error", 429: "rate_limit_error", 500: "api_error", 502: "api_error",
                    503: "overloaded_error", 504: "timeout_error", 524: "timeout_error", 529: "overloaded_error"}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_MEDIA = ("image/jpeg", "image/png", "image/gif", "image/webp")


class AnthropicSkin(Skin):
    name = "anthropic"
    key_required = True

    def key(self, headers, body):
        return headers.get("x-api-key") or super().key(headers, body)

    def parse(self, body, headers):
        for f in ("model", "max_tokens", "messages"):
            if f not in body:
                raise self.reject(400, f"{f}: Field required")
        if not isinstance(body.get("max_tokens"), int):
            raise self.reject(400, "max_tokens: Input should be a valid integer")
        msgs: list[Message] = []
        system = body.get("system")
        if isinstance(system, list):
            system = "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
        if system:
            msgs.append(Message("system", system))
        for i, m in enumerate(body["messages"]):
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                raise self.reject(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
            content = m.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else (content or [])
            parts, calls = [], []
            for j, b in enumerate(blocks):
                t = b.get("type")
                if t == "text":
                    parts.append(TextPart(b.get("text", "")))
                elif t == "image":
                    src = b.get("source") or {}
                    if src.get("type") == "base64":
                        data = src.get("data", "")
                        if data.startswith("data:"):  # §4.1: raw base64, no data-URL prefix
                            raise self.reject(400, f"messages.{i}.content.{j}.image.source.base64.data: "
                                                   "Image does not match the provided media type")
                        if src.get("media_type") not in _MEDIA:
                            raise self.reject(400, f"messages.{i}.content.{j}.image.source.base64.media_type: "
                                                   f"Input should be {', '.join(_MEDIA)}")
                        try:
                            raw = base64.b64decode(data, validate=True)
                        except (binascii.Error, ValueError):
                            raise self.reject(400, f"messages.{i}.content.{j}.image.source.base64: "
                                                   "invalid base64 data") from None
                        parts.append(_sized(raw, src["media_type"]))
                    else:
                        parts.append(ImagePart(b"", "image/png", 1024, 1024))
                elif t == "tool_use":
                    calls.append(ToolCall(b.get("id", ""), b.get("name", ""), json.dumps(b.get("input", {}))))
                elif t == "tool_result":
                    c = b.get("content")
                    text = c if isinstance(c, str) else "".join(x.get("text", "") for x in c or [])
                    msgs.append(Message("tool", text, tool_call_id=b.get("tool_use_id")))
            if parts or calls:
                msgs.append(Message(m["role"], parts, tool_calls=calls or None))
        t = body.get("temperature")
        if t is not None and not (0 <= t <= 1):
            raise self.reject(400, "temperature: Input should be less than or equal to 1")
        tools = [Tool(t["name"], t.get("input_schema") or {}, t.get("description", "")) for t in body.get("tools") or []]
        tc = body.get("tool_choice") or {}
        choice = {"auto": "auto", "any": "required", "none": "none"}.get(tc.get("type"), tc.get("name"))
        req = ChatRequest(msgs, model=body["model"], temperature=t, top_p=body.get("top_p"),
                          max_tokens=body["max_tokens"], stop=body.get("stop_sequences"), tools=tools or None,
                          tool_choice=choice if tools else None)
        return Wire(self.name, body["model"], bool(body.get("stream")), req, body)

    def error_body(self, status, message, kind, **kw):
        return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message},
                "request_id": "req_" + _hex()[:24]}

    def error_headers(self, status, kw):
        h = {"request-id": "req_" + _hex()[:24]}
        if status == 429 and kw.get("retry_after") is not None:
            h["retry-after"] = _fmt(kw["retry_after"])
        return h

    def content(self, ans: Answer) -> list[dict]:
        blocks = [{"type": "text", "text": ans.content}] if ans.content or not ans.tool_calls else []
        blocks += [{"type": "tool_use", "id": "toolu_" + tc.id, "name": tc.name, "input": tc.args()}
                   for tc in ans.tool_calls]
        return blocks

    def ok(self, wire, ans, usage):
        return {"id": "msg_" + _hex()[:24], "type": "message", "role": "assistant", "model": wire.model,
                "content": self.content(ans), "stop_reason": _STOP.get(ans.finish_reason, "end_turn"),
                "stop_sequence": None,
                "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}}

    def stream(self, wire, ans, usage, cut_after=None, error=None):
        mid = "msg_" + _hex()[:24]
        events: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "content": [], "model": wire.model,
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": 1}}})]
        for idx, block in enumerate(self.content(ans)):
            if block["type"] == "text":
                events.append(("content_block_start", {"type": "content_block_start", "index": idx,
                                                       "content_block": {"type": "text", "text": ""}}))
                if idx == 0:
                    events.append(("ping", {"type": "ping"}))
                for w in _words(block["text"]) if block["text"] else []:
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": idx,
                                                           "delta": {"type": "text_delta", "text": w}}))
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": idx,
                                                       "content_block": {"type": "tool_use", "id": block["id"],
                                                                         "name": block["name"], "input": {}}}))
                events.append(("content_block_delta", {"type": "content_block_delta", "index": idx, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps(block["input"])}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": idx}))
        events.append(("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": _STOP.get(ans.finish_reason, "end_turn"), "stop_sequence": None},
            "usage": {"output_tokens": usage.completion_tokens}}))
        events.append(("message_stop", {"type": "message_stop"}))
        for i, (name, data) in enumerate(events):
            if cut_after is not None and i >= cut_after:
                return
            if error is not None and i >= error.get("after_chunks", 2):
                yield sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")
                return
            yield sse(data, name)

    def models(self, ids):
        return {"data": [{"id": m, "type": "model", "display_name": m, "created_at": "2024-11-18T00:00:00Z"}
                         for m in ids], "has_more": False, "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None}

    def ok_headers(self):
        return {"request-id": "req_" + _hex()[:24]}


SKINS: dict[str, Skin] = {s.name: s for s in (MistralSkin(), OpenRouterSkin(), ModelsLabSkin(), AnthropicSkin(),
                                               OpenAISkin())}

DEFAULT_MODELS = {
    "mistral": ["pixtral-large-2411", "mistral-large-2411", "mistral-ocr-latest", "mistral-ocr-4", "mistral-ocr-4-1",
                "mistral-ocr-4-0"],  # the OCR models answer on /v1/ocr only (tests/emulator/ocr.py)
    "openrouter": ["mistralai/pixtral-large-2411", "mistralai/mistral-large-2411"],
    "modelslab": ["mistralai-pixtral-large-2411", "mistralai-mistral-large-2411"],
    "anthropic": ["mistralai-pixtral-large-2411", "mistralai-mistral-large-2411"],
    "openai": ["local-vision", "local-text"],
}
ALIASES = {"pixtral-large-latest": "pixtral-large-2411", "mistral-large-pixtral-2411": "pixtral-large-2411"}


def new_key() -> str:
    return secrets.token_hex(8)
