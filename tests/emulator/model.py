"""The emulator's "model": deterministic answers computed from the request.

- plain requests: a transcription of the text hint the request carries (the
  content of the last <tag>...</tag> or ``` block of the last user message, or
  that message's text), so pipelines that send the page's text layer get it back;
- ``json_object``: ``{"text": <transcription>}``; ``json_schema`` and tool calls:
  an object generated from the schema that validates against it;
- scripted answers (queue per model, ``"*"`` for any) or a callable override both.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from pixtract.messages import ChatRequest, ToolCall
from pixtract.tokens import count_text_tokens

_TAG = re.compile(r"<([A-Za-z_][\w\-]*)>\s*(.*?)\s*</\1>", re.S)
_FENCE = re.compile(r"```[\w-]*\n(.*?)```", re.S)


@dataclass
class Answer:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"  # neutral: stop | length | tool_calls


def transcription(req: ChatRequest) -> str:
    users = [m for m in req.messages if m.role == "user"]
    if not users:
        return "Hello."
    last = users[-1]
    text = last.text
    blocks = [m.group(2) for m in _TAG.finditer(text)] or _FENCE.findall(text)
    source = max(blocks, key=len).strip() if blocks else ""
    if "```csv" in text:  # a chart prompt: answer with a data table, as a model would
        return chart_answer(source)
    if source:
        return source
    if last.images:
        w, h = last.images[0].size()
        return f"(The {w}x{h} page image contains no legible text.)"
    if text.strip():
        return text.strip()
    return "Hello."


_PAIR = re.compile(r"([A-Za-z][\w ]{0,30}?)\s*[:=]?\s+(-?\d+(?:\.\d+)?)\b")


def chart_answer(hint: str) -> str:
    """A CSV block of (label, value) pairs read from the hint text, then a summary."""
    pairs = [(a.strip(), b) for a, b in _PAIR.findall(hint)][:20] or [("A", "1"), ("B", "2")]
    rows = "\n".join(f"{a},{b}" for a, b in pairs)
    top = max(pairs, key=lambda p: float(p[1]))[0]
    return f"```csv\nlabel,value\n{rows}\n```\n\nThe chart compares {len(pairs)} values; {top} is the largest."


def from_schema(schema: dict, hint: str = "", root: dict | None = None, depth: int = 0, name: str = "") -> object:
    """Minimal instance generator: the result validates against ``schema``."""
    root = root or schema
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "$ref" in schema:
        target: object = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return from_schema(target, hint, root, depth + 1, name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return from_schema(options[0], hint, root, depth + 1, name)
    if schema.get("allOf"):
        merged: dict = {}
        for s in schema["allOf"]:
            merged.update(s)
        return from_schema(merged, hint, root, depth + 1, name)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if typ == "object":
        props = schema.get("properties") or {}
        return {k: from_schema(v, hint, root, depth + 1, k) for k, v in props.items()}
    if typ == "array":
        n = max(1, int(schema.get("minItems", 1)))
        if "maxItems" in schema:
            n = min(n, int(schema["maxItems"]))
        return [from_schema(schema.get("items") or {}, hint, root, depth + 1, name) for _ in range(n)]
    if typ in ("integer", "number"):
        nums = re.findall(r"-?\d+(?:\.\d+)?", hint)
        lo = schema.get("minimum", schema.get("exclusiveMinimum", float("-inf")))
        hi = schema.get("maximum", schema.get("exclusiveMaximum", float("inf")))
        if nums and lo < float(nums[0]) < hi and (typ == "number" or float(nums[0]).is_integer()):
            value = float(nums[0])
        elif "minimum" in schema:
            value = schema["minimum"]
        elif "exclusiveMinimum" in schema:
            value = schema["exclusiveMinimum"] + 1
        else:
            value = min(0, schema.get("maximum", 0))
        return int(math.ceil(value)) if typ == "integer" else float(value)
    if typ == "boolean":
        return True
    if typ == "null":
        return None
    fmt = schema.get("format")
    if fmt == "date":
        return "2024-01-01"
    if fmt == "date-time":
        return "2024-01-01T00:00:00Z"
    value = (hint.splitlines()[0] if hint else name or "text")[: schema.get("maxLength", 200)]
    return value.ljust(schema.get("minLength", 0), "x")


def answer(req: ChatRequest, model: str) -> Answer:
    """Default behaviour for one request (before max_tokens/stop are applied)."""
    hint = transcription(req)
    last = req.messages[-1] if req.messages else None
    tools = req.tools or []
    choice = req.tool_choice or ("auto" if tools else "none")
    if tools and choice != "none" and not (last is not None and last.role == "tool"):
        tool = next((t for t in tools if t.name == choice), tools[0])
        args = json.dumps(from_schema(tool.parameters, hint))
        return Answer("", [ToolCall(_call_id(req, tool.name), tool.name, args)], "tool_calls")
    if last is not None and last.role == "tool":
        return Answer(f"The tool returned: {last.text}")
    rf = req.response_format
    if rf is not None and rf.type == "json_schema":
        return Answer(json.dumps(from_schema(rf.schema or {"type": "object"}, hint)))
    if rf is not None and rf.type == "json_object":
        return Answer(json.dumps({"text": hint}))
    return Answer(hint)


def _call_id(req: ChatRequest, name: str) -> str:
    import hashlib

    h = hashlib.sha256(f"{len(req.messages)}:{name}".encode()).hexdigest()
    return "".join(c for c in h if c.isalnum())[:9]  # Mistral-valid id (§1.7)


def finalize(ans: Answer, req: ChatRequest, model: str) -> Answer:
    """Apply stop sequences and max_tokens like a server would."""
    if ans.tool_calls:
        return ans
    text = ans.content
    for s in req.stop or []:
        if s and s in text:
            text = text[: text.index(s)]
    if req.max_tokens is not None and count_text_tokens(text, model) > req.max_tokens:
        words = text.split(" ")
        while words and count_text_tokens(" ".join(words), model) > req.max_tokens:
            words = words[: max(0, min(len(words) - 1, int(len(words) * 0.8)))]
        return Answer(" ".join(words), [], "length")
    return Answer(text, [], ans.finish_reason)
