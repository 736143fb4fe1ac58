"""Provider-neutral chat request/response model.

Adapters in ``pixtract.providers`` map these objects onto each wire dialect;
nothing here knows about a particular API.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Union

Role = Literal["system", "user", "assistant", "tool"]
# Neutral finish reasons; adapters map dialect values onto these.
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "error")


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    """Raw image bytes; adapters build data URLs or base64 blocks from them."""

    data: bytes = field(repr=False)
    mime_type: str = "image/png"
    width: int | None = None
    height: int | None = None

    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.b64()}"

    def size(self) -> tuple[int, int]:
        """(width, height), read from the bytes with Pillow when not given."""
        if self.width and self.height:
            return self.width, self.height
        import io

        from PIL import Image

        with Image.open(io.BytesIO(self.data)) as im:
            return im.size

    def __repr__(self) -> str:
        return f"ImagePart({self.mime_type}, {len(self.data)} bytes, {self.width}x{self.height})"


Part = Union[TextPart, ImagePart]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str = "{}"  # JSON text, as on the wire

    def args(self) -> Any:
        return json.loads(self.arguments) if self.arguments else {}


@dataclass(frozen=True)
class Tool:
    name: str
    parameters: dict = field(default_factory=lambda: {"type": "object", "properties": {}})
    description: str = ""
    strict: bool = False


@dataclass(frozen=True)
class ResponseFormat:
    """``text``, ``json_object`` or ``json_schema`` (with ``schema``, ``name``, ``strict``)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict | None = None
    name: str = "response"
    strict: bool = False


@dataclass
class Message:
    role: Role
    content: str | list[Part] = ""
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None  # for role == "tool"
    name: str | None = None  # tool name for role == "tool"

    @property
    def parts(self) -> list[Part]:
        if isinstance(self.content, str):
            return [TextPart(self.content)] if self.content else []
        return list(self.content)

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def images(self) -> list[ImagePart]:
        return [p for p in self.parts if isinstance(p, ImagePart)]

    @classmethod
    def user(cls, *parts: str | bytes | Part, mime_type: str = "image/png") -> "Message":
        """Shortcut: strings become text parts, bytes become image parts."""
        out: list[Part] = []
        for p in parts:
            if isinstance(p, str):
                out.append(TextPart(p))
            elif isinstance(p, (bytes, bytearray)):
                out.append(ImagePart(bytes(p), mime_type))
            else:
                out.append(p)
        return cls("user", out)


# tool_choice: "auto" | "none" | "required" | a tool name (forces that tool).
ToolChoice = str


@dataclass
class ChatRequest:
    """One chat completion call. ``model=None`` lets the client pick the
    endpoint's vision model when any image is present, else its text model."""

    messages: list[Message]
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    structured_outputs: bool | None = None  # OpenRouter capability flag (§2.2)
    safe_prompt: bool = False  # Mistral only; sent only when True (§1.9)
    extra: dict = field(default_factory=dict)  # raw top-level fields merged into the body

    @property
    def images(self) -> list[ImagePart]:
        return [img for m in self.messages for img in m.images]

    def has_images(self) -> bool:
        return any(m.images for m in self.messages)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None  # provider-reported cost when given (OpenRouter)
    pages: int = 0  # pages billed by a per-page API (Mistral OCR's usage_info.pages_processed)
    annotated_pages: int = 0  # of those, pages billed at the annotation price (a document annotation)

    def __post_init__(self) -> None:
        if not self.total_tokens:
            self.total_tokens = self.prompt_tokens + self.completion_tokens


@dataclass
class ChatResponse:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None  # one of FINISH_REASONS (or None if unknown)
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    request_id: str | None = None
    provider: str | None = None  # dialect name
    raw: dict | None = field(default=None, repr=False)  # parsed body (non-stream) or last chunk
    attempts: int = 1
    latency_s: float = 0.0

    def json(self) -> Any:
        """Parse ``text`` as JSON (structured outputs come back as a string, §1.8)."""
        return json.loads(self.text)
