"""Plain OpenAI-compatible chat completions (vLLM, llama.cpp, Ollama); also the
base of the Mistral, OpenRouter and ModelsLab adapters."""
from __future__ import annotations

import json

from pixtract.messages import ChatRequest, ChatResponse, ImagePart, Message, TextPart, ToolCall, Usage
from pixtract.providers.base import Adapter, StreamAssembler, error_fields, request_id_from
from pixtract.providers.errors import MalformedResponse, ServerError, error_for_status
from pixtract.providers.sse import SSEEvent

FINISH_MAP = {"stop": "stop", "length": "length", "model_length": "length", "tool_calls": "tool_calls",
              "function_call": "tool_calls", "content_filter": "content_filter", "error": "error",
              "end_turn": "stop", "max_tokens": "length", "eos": "stop"}


def norm_finish(value: str | None) -> str | None:
    return FINISH_MAP.get(value, value) if value else None


class OpenAIAdapter(Adapter):
    name = "openai"
    max_stop = 4  # OpenAI: "up to 4 sequences" (model-apis.md §10, openai-python)
    max_tokens_field = "max_tokens"  # vLLM/llama.cpp/Ollama all accept it; newer OpenAI prefers max_completion_tokens
    seed_field = "seed"
    required_choice = "required"

    # -- request ------------------------------------------------------------
    def image_part(self, img: ImagePart) -> dict:
        return {"type": "image_url", "image_url": {"url": img.data_url()}}

    def message(self, m: Message) -> dict:
        out: dict = {"role": m.role}
        if m.role == "user" and any(isinstance(p, ImagePart) for p in m.parts):
            parts = m.parts
            out["content"] = [{"type": "text", "text": p.text} if isinstance(p, TextPart) else self.image_part(p)
                              for p in parts]
        else:
            out["content"] = m.text if (m.text or m.role != "assistant" or not m.tool_calls) else None
        if m.role == "assistant" and m.tool_calls:
            out["tool_calls"] = [{"id": tc.id, "type": "function",
                                  "function": {"name": tc.name, "arguments": tc.arguments}} for tc in m.tool_calls]
        if m.role == "tool":
            out["tool_call_id"] = m.tool_call_id
            if m.name:
                out["name"] = m.name
        return out

    def tool_choice(self, choice: str) -> object:
        if choice in ("auto", "none"):
            return choice
        if choice in ("required", "any"):
            return self.required_choice
        return {"type": "function", "function": {"name": choice}}

    def response_format(self, req: ChatRequest) -> dict | None:
        rf = req.response_format
        if rf is None or rf.type == "text":
            return None
        if rf.type == "json_object":
            return {"type": "json_object"}
        js: dict = {"name": rf.name, "schema": rf.schema or {"type": "object"}}
        if rf.strict:
            js["strict"] = True
        return {"type": "json_schema", "json_schema": js}

    def build_body(self, req: ChatRequest, model: str, stream: bool) -> dict:
        body: dict = {"model": model, "messages": [self.message(m) for m in req.messages]}
        for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
            value = getattr(req, name)
            if value is not None:
                body[name] = value
        if req.max_tokens is not None:
            body[self.max_tokens_field] = req.max_tokens
        if req.seed is not None:
            body[self.seed_field] = req.seed
        if req.stop:
            body["stop"] = list(req.stop)
        if (rf := self.response_format(req)) is not None:
            body["response_format"] = rf
        if req.tools:
            body["tools"] = [self.tool(t) for t in req.tools]
            if req.tool_choice:
                body["tool_choice"] = self.tool_choice(req.tool_choice)
        if stream:
            body["stream"] = True
        self.extend_body(body, req, stream)
        body.update(self.endpoint.extra_body or {})
        body.update(req.extra)
        return body

    def tool(self, t) -> dict:
        fn: dict = {"name": t.name, "parameters": t.parameters}
        if t.description:
            fn["description"] = t.description
        if t.strict:
            fn["strict"] = True
        return {"type": "function", "function": fn}

    def extend_body(self, body: dict, req: ChatRequest, stream: bool) -> None:
        """Dialect-specific additions (override)."""
        if stream:
            body["stream_options"] = {"include_usage": True}

    # -- response -----------------------------------------------------------
    def parse_response(self, body: dict, headers) -> ChatResponse:
        try:
            choice = body["choices"][0]
            msg = choice.get("message") or {}
        except (KeyError, IndexError, TypeError):
            raise MalformedResponse("response has no choices", provider=self.name,
                                    request_id=request_id_from(headers)) from None
        content = msg.get("content")
        if isinstance(content, list):  # Mistral may return content chunks
            content = "".join(c.get("text", "") for c in content if isinstance(c, dict))
        calls = [ToolCall(tc.get("id") or "", tc["function"]["name"], _args(tc["function"].get("arguments")))
                 for tc in (msg.get("tool_calls") or [])]
        return ChatResponse(text=content or "", tool_calls=calls, finish_reason=norm_finish(choice.get("finish_reason")),
                            usage=usage_from(body.get("usage")), model=body.get("model"),
                            request_id=request_id_from(headers) or body.get("id"), provider=self.name, raw=body)

    def new_stream(self, model: str, headers) -> StreamAssembler:
        return ChunkAssembler(self, model, request_id_from(headers))


def _args(a: object) -> str:
    if a is None:
        return "{}"
    return a if isinstance(a, str) else json.dumps(a)


def usage_from(u: dict | None) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    return Usage(prompt_tokens=int(u.get("prompt_tokens") or 0), completion_tokens=int(u.get("completion_tokens") or 0),
                 total_tokens=int(u.get("total_tokens") or 0),
                 cost_usd=float(u["cost"]) if isinstance(u.get("cost"), (int, float)) else None)


class ChunkAssembler(StreamAssembler):
    """OpenAI-style ``data:`` chunks ending with ``[DONE]`` (§1.6, §2.5, §3.3)."""

    def __init__(self, adapter: OpenAIAdapter, model: str, request_id: str | None):
        self.adapter = adapter
        self.text: list[str] = []
        self.calls: dict[int, dict] = {}
        self.finish: str | None = None
        self.usage = Usage()
        self.model = model
        self.request_id = request_id
        self.last: dict | None = None
        self.done = False

    def feed(self, event: SSEEvent) -> list[str]:
        if event.data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            chunk = json.loads(event.data)
        except ValueError:
            raise MalformedResponse("stream chunk is not JSON", provider=self.adapter.name,
                                    request_id=self.request_id) from None
        self.last = chunk
        self.request_id = self.request_id or chunk.get("id")
        self.model = chunk.get("model") or self.model
        if "error" in chunk or chunk.get("status") == "error":  # mid-stream error under HTTP 200 (§2.5)
            message, code, _ = error_fields(chunk)
            err = chunk.get("error") if isinstance(chunk.get("error"), dict) else {}
            status = err.get("code") if isinstance(err.get("code"), int) else 500
            raise error_for_status(status, f"error mid-stream: {message}", provider=self.adapter.name,
                                   request_id=self.request_id, code=code, body=chunk)
        if chunk.get("usage"):
            self.usage = usage_from(chunk["usage"])
        out = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                c = delta["content"]
                c = c if isinstance(c, str) else "".join(x.get("text", "") for x in c if isinstance(x, dict))
                self.text.append(c)
                out.append(c)
            for tc in delta.get("tool_calls") or []:
                slot = self.calls.setdefault(tc.get("index", len(self.calls)), {"id": "", "name": "", "arguments": ""})
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["name"] = fn.get("name") or slot["name"]
                slot["arguments"] += _args(fn.get("arguments")) if fn.get("arguments") is not None else ""
            if choice.get("finish_reason"):
                self.finish = norm_finish(choice["finish_reason"])
                if self.finish == "error":  # Mistral stream finish_reason "error" (§1.6)
                    raise ServerError("stream ended with finish_reason 'error'", provider=self.adapter.name,
                                      request_id=self.request_id)
        return out

    def result(self) -> ChatResponse:
        if not self.done and self.finish is None:
            raise MalformedResponse("stream ended before completion (no finish_reason, no [DONE])",
                                    provider=self.adapter.name, request_id=self.request_id)
        calls = [ToolCall(c["id"], c["name"], c["arguments"] or "{}") for _, c in sorted(self.calls.items())]
        return ChatResponse(text="".join(self.text), tool_calls=calls, finish_reason=self.finish, usage=self.usage,
                            model=self.model, request_id=self.request_id, provider=self.adapter.name, raw=self.last)
