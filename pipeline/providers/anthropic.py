"""Anthropic Messages API (ModelsLab's /v1/messages; model-apis.md §3.5, §4)."""
from __future__ import annotations

import json

from pixtract.messages import ChatRequest, ChatResponse, ImagePart, Message, ToolCall, Usage
from pixtract.providers.base import Adapter, StreamAssembler, error_fields, request_id_from
from pixtract.providers.errors import MalformedResponse, error_for_status
from pixtract.providers.sse import SSEEvent

STOP_MAP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
            "refusal": "content_filter", "pause_turn": "stop", "model_context_window_exceeded": "length"}
DEFAULT_MAX_TOKENS = 4096  # max_tokens is required by this API (§4.1)
ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
                "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}


class AnthropicAdapter(Adapter):
    name = "anthropic"
    chat_path = "/v1/messages"
    models_path = "/v1/models"

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json", "anthropic-version": "2023-06-01"}
        if self.endpoint.api_key:
            h["x-api-key"] = self.endpoint.api_key
        return h

    def block(self, part) -> dict:
        if isinstance(part, ImagePart):
            # Raw base64, no "data:" prefix (§4.1).
            return {"type": "image", "source": {"type": "base64", "media_type": part.mime_type, "data": part.b64()}}
        return {"type": "text", "text": part.text}

    def message(self, m: Message) -> dict:
        if m.role == "tool":  # tool results are user-role blocks
            return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": m.tool_call_id or "",
                                                 "content": m.text}]}
        blocks = [self.block(p) for p in m.parts]
        if m.role == "assistant" and m.tool_calls:
            blocks += [{"type": "tool_use", "id": tc.id, "name": tc.name, "input": tc.args()} for tc in m.tool_calls]
        if m.role == "user" and any(isinstance(p, ImagePart) for p in m.parts):
            pass  # keep the caller's order
        elif len(blocks) == 1 and blocks[0]["type"] == "text":
            return {"role": m.role, "content": blocks[0]["text"]}
        return {"role": m.role, "content": blocks}

    def build_body(self, req: ChatRequest, model: str, stream: bool) -> dict:
        system = "\n\n".join(m.text for m in req.messages if m.role == "system")
        body: dict = {"model": model, "max_tokens": req.max_tokens or DEFAULT_MAX_TOKENS,
                      "messages": [self.message(m) for m in req.messages if m.role != "system"]}
        if system:
            body["system"] = system
        if req.temperature is not None:
            body["temperature"] = min(1.0, req.temperature)  # range 0-1 here (§3.5)
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.stop:
            body["stop_sequences"] = list(req.stop)
        tools = list(req.tools or [])
        rf = req.response_format
        if rf is not None and rf.type in ("json_schema", "json_object") and not tools:
            # No response_format in this API: force a single tool whose input is the schema.
            tools = [_schema_tool(rf)]
            body["tool_choice"] = {"type": "tool", "name": tools[0].name}
        if tools:
            body["tools"] = [{"name": t.name, "description": t.description or t.name, "input_schema": t.parameters}
                             for t in tools]
            if req.tool_choice and "tool_choice" not in body:
                c = req.tool_choice
                body["tool_choice"] = ({"type": c} if c in ("auto", "none") else {"type": "any"}
                                       if c in ("required", "any") else {"type": "tool", "name": c})
        if stream:
            body["stream"] = True
        body.update(self.endpoint.extra_body or {})
        body.update(req.extra)
        return body

    def parse_response(self, body: dict, headers) -> ChatResponse:
        if body.get("type") == "error":
            raise self.error_from_body(body, 500, headers, None)
        if not isinstance(body.get("content"), list):
            raise MalformedResponse("message has no content list", provider=self.name,
                                    request_id=request_id_from(headers))
        text, calls = [], []
        for b in body["content"]:
            if b.get("type") == "text":
                text.append(b.get("text", ""))
            elif b.get("type") == "tool_use":
                calls.append(ToolCall(b.get("id", ""), b.get("name", ""), json.dumps(b.get("input", {}))))
        resp = ChatResponse(text="".join(text), tool_calls=calls, finish_reason=STOP_MAP.get(body.get("stop_reason"),
                            body.get("stop_reason")), usage=_usage(body.get("usage")), model=body.get("model"),
                            request_id=request_id_from(headers) or body.get("id"), provider=self.name, raw=body)
        return _schema_answer(resp)

    def error_from_body(self, body: dict, status: int, headers, model: str | None):
        message, code, rid = error_fields(body)
        status = ERROR_STATUS.get(code or "", status)
        return error_for_status(status, message, provider=self.name, request_id=rid or request_id_from(headers),
                                code=code, model=model, body=body)

    def new_stream(self, model: str, headers) -> StreamAssembler:
        return EventAssembler(self, model, request_id_from(headers))


def _schema_tool(rf):
    from pixtract.messages import Tool

    schema = rf.schema if rf.type == "json_schema" and rf.schema else {"type": "object"}
    return Tool(name=f"json_{rf.name}"[:64], parameters=schema,
                description="Return the answer as this JSON object.")


def _schema_answer(resp: ChatResponse) -> ChatResponse:
    """A forced ``json_<name>`` tool call is the structured answer: expose it as text."""
    if len(resp.tool_calls) == 1 and resp.tool_calls[0].name.startswith("json_") and not resp.text:
        resp.text = resp.tool_calls[0].arguments
        resp.tool_calls = []
        resp.finish_reason = "stop" if resp.finish_reason == "tool_calls" else resp.finish_reason
    return resp


def _usage(u: dict | None) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    inp = int(u.get("input_tokens") or 0) + int(u.get("cache_read_input_tokens") or 0) + \
        int(u.get("cache_creation_input_tokens") or 0)
    return Usage(prompt_tokens=inp, completion_tokens=int(u.get("output_tokens") or 0))


class EventAssembler(StreamAssembler):
    """Anthropic named events; no [DONE] sentinel, ends with message_stop (§4.3)."""

    def __init__(self, adapter: AnthropicAdapter, model: str, request_id: str | None):
        self.adapter, self.model, self.request_id = adapter, model, request_id
        self.blocks: dict[int, dict] = {}
        self.stop_reason = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.done = False
        self.last: dict | None = None

    def feed(self, event: SSEEvent) -> list[str]:
        try:
            data = json.loads(event.data)
        except ValueError:
            raise MalformedResponse("stream event is not JSON", provider=self.adapter.name,
                                    request_id=self.request_id) from None
        kind = data.get("type") or event.event
        self.last = data
        if kind == "error":
            raise self.adapter.error_from_body(data, 500, {}, None)
        if kind == "message_start":
            msg = data.get("message") or {}
            self.request_id = self.request_id or msg.get("id")
            self.model = msg.get("model") or self.model
            u = msg.get("usage") or {}
            self.input_tokens = int(u.get("input_tokens") or 0)
            self.output_tokens = int(u.get("output_tokens") or 0)
        elif kind == "content_block_start":
            self.blocks[data.get("index", len(self.blocks))] = dict(data.get("content_block") or {}, partial="")
        elif kind == "content_block_delta":
            blk = self.blocks.setdefault(data.get("index", 0), {"type": "text", "text": "", "partial": ""})
            d = data.get("delta") or {}
            if d.get("type") == "text_delta":
                blk["text"] = blk.get("text", "") + d.get("text", "")
                return [d.get("text", "")] if d.get("text") else []
            if d.get("type") == "input_json_delta":
                blk["partial"] += d.get("partial_json", "")
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            u = data.get("usage") or {}
            self.output_tokens = int(u.get("output_tokens", self.output_tokens) or 0)  # cumulative (§4.3)
            if u.get("input_tokens"):
                self.input_tokens = int(u["input_tokens"])
        elif kind == "message_stop":
            self.done = True
        return []  # ping and unknown events are ignored

    def result(self) -> ChatResponse:
        if not self.done:
            raise MalformedResponse("stream ended before message_stop", provider=self.adapter.name,
                                    request_id=self.request_id)
        text, calls = [], []
        for _, b in sorted(self.blocks.items()):
            if b.get("type") == "text":
                text.append(b.get("text", ""))
            elif b.get("type") == "tool_use":
                args = b["partial"] or json.dumps(b.get("input") or {})
                calls.append(ToolCall(b.get("id", ""), b.get("name", ""), args))
        resp = ChatResponse(text="".join(text), tool_calls=calls,
                            finish_reason=STOP_MAP.get(self.stop_reason, self.stop_reason),
                            usage=Usage(self.input_tokens, self.output_tokens), model=self.model,
                            request_id=self.request_id, provider=self.adapter.name, raw=self.last)
        return _schema_answer(resp)
