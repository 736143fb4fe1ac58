"""Dialect name -> adapter class. Adding a dialect = one module + one line here."""
from __future__ import annotations

from pixtract.providers.anthropic import AnthropicAdapter
from pixtract.providers.base import Adapter
from pixtract.providers.mistral import MistralAdapter
from pixtract.providers.mistral_ocr import MistralOCRAdapter
from pixtract.providers.modelslab import ModelsLabAdapter
from pixtract.providers.openai import OpenAIAdapter
from pixtract.providers.openrouter import OpenRouterAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    "mistral": MistralAdapter,
    "mistral-ocr": MistralOCRAdapter,  # the OCR route's requests, on a Mistral endpoint
    "openrouter": OpenRouterAdapter,
    "modelslab": ModelsLabAdapter,
    "anthropic": AnthropicAdapter,
    "openai": OpenAIAdapter,
}
