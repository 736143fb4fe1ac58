"""OpenRouter chat completions (model-apis.md §2)."""
from __future__ import annotations

from pixtract.messages import ChatRequest
from pixtract.providers.openai import OpenAIAdapter


class OpenRouterAdapter(OpenAIAdapter):
    name = "openrouter"
    max_stop = 4  # schema maxItems 4 (§2.2)
    max_tokens_field = "max_completion_tokens"  # max_tokens is deprecated (§2.2)
    seed_field = "seed"
    required_choice = "required"

    def headers(self) -> dict[str, str]:
        h = super().headers()
        h.setdefault("X-Title", "pixtract")  # app attribution (§2.1), optional
        return h

    def extend_body(self, body: dict, req: ChatRequest, stream: bool) -> None:
        # stream_options.include_usage is deprecated/no-op: usage is always sent (§2.2).
        if req.safe_prompt:
            body["safe_prompt"] = True  # passed through to Mistral (§2.2)
        if req.structured_outputs:
            # Unsupported parameters are silently ignored unless require_parameters (§2.2),
            # so asking for structured outputs means routing only to providers that honour them.
            body.setdefault("provider", {})["require_parameters"] = True
