"""Mistral native chat completions (model-apis.md §1)."""
from __future__ import annotations

import hashlib
import re

from pixtract.messages import ChatRequest, ImagePart, Message
from pixtract.providers.openai import OpenAIAdapter

_TOOL_ID = re.compile(r"^[a-zA-Z0-9]{9}$")


def mistral_tool_id(tool_id: str) -> str:
    """Tool-call ids must match ^[a-zA-Z0-9]{9}$ or Mistral answers 400 (§1.7);
    foreign ids are mapped to a stable 9-character id."""
    if tool_id and _TOOL_ID.match(tool_id):
        return tool_id
    digest = hashlib.sha256((tool_id or "").encode()).hexdigest()
    return "".join(c for c in digest if c.isalnum())[:9]


class MistralAdapter(OpenAIAdapter):
    name = "mistral"
    max_images = 8  # §1.4
    max_image_bytes = 10 * 1024 * 1024  # §1.4 "10Mb"
    max_stop = None  # the schema sets no maximum (§1.2)
    max_tokens_field = "max_tokens"  # max_completion_tokens -> 422 extra_forbidden (§1.9)
    seed_field = "random_seed"  # seed -> 422 extra_forbidden (§1.9)
    required_choice = "any"

    def image_part(self, img: ImagePart) -> dict:
        # Mistral accepts a plain string or {"url": ...} (§1.3); its docs use the string form.
        return {"type": "image_url", "image_url": img.data_url()}

    def message(self, m: Message) -> dict:
        out = super().message(m)
        for tc in out.get("tool_calls") or []:
            tc["id"] = mistral_tool_id(tc["id"])
        if m.role == "tool":
            out["tool_call_id"] = mistral_tool_id(m.tool_call_id or "")
        return out

    def extend_body(self, body: dict, req: ChatRequest, stream: bool) -> None:
        # No stream_options: rejected with 422 (§1.9); usage arrives in the last chunk anyway (§1.6).
        if req.safe_prompt:
            body["safe_prompt"] = True  # only when true (§1.9)
