"""ModelsLab LLM v7 native chat completions: ``key`` + ``model_id`` in the body (model-apis.md §3.2)."""
from __future__ import annotations

from pixtract.messages import ChatRequest
from pixtract.providers.base import error_fields, request_id_from
from pixtract.providers.errors import ProviderError, error_for_status
from pixtract.providers.openai import OpenAIAdapter
from pixtract.providers.retry import parse_retry_after


class ModelsLabAdapter(OpenAIAdapter):
    name = "modelslab"
    max_stop = 4  # §3.2
    models_path = "/v1/models"  # §3.1
    max_tokens_field = "max_tokens"

    def headers(self) -> dict[str, str]:
        # The key travels in the body (§3.2); no Authorization header.
        return {"Content-Type": "application/json", "Accept": "application/json"}

    def build_body(self, req: ChatRequest, model: str, stream: bool) -> dict:
        body = super().build_body(req, model, stream)
        body.pop("model", None)
        body.pop("stream_options", None)
        return {"key": self.endpoint.api_key or "", "model_id": model, **body}

    def extend_body(self, body: dict, req: ChatRequest, stream: bool) -> None:
        pass

    def body_error(self, body: dict, status: int, headers, model: str | None) -> ProviderError | None:
        # §3.4: an error whatever the HTTP status if status == "error", or "error" without "choices".
        if body.get("status") == "error" or ("error" in body and "choices" not in body):
            message, code, rid = error_fields(body)
            http = status if status >= 400 else _status_from_message(message, body)
            return error_for_status(http, message or "ModelsLab returned status error", provider=self.name,
                                    request_id=rid or request_id_from(headers), code=code, model=model,
                                    retry_after=parse_retry_after(headers, body), body=body)
        return None


def _status_from_message(message: str, body: dict) -> int:
    """ModelsLab may send errors with HTTP 200 (§3.4 [UNVERIFIED]); infer a status."""
    m = message.lower()
    if "retry_after" in body or "rate limit" in m:
        return 429
    if "api key" in m or "unauthori" in m:
        return 401
    if "credit" in m:
        return 402
    if "not found" in m or "retired" in m or "deprecated" in m:
        return 404
    if "try again" in m or "unavailable" in m or "server error" in m:
        return 503
    return 400
