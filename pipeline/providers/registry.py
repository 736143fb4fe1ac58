"""Dialect name -> adapter class. Adding a dialect = one module + one line here."""
from __future__ import annotations

from pipeline.providers.anthropic import AnthropicAdapter
from pipeline.providers.base import Adapter
from pipeline.providers.mistral import MistralAdapter
from pipeline.providers.modelslab import ModelsLabAdapter
from pipeline.providers.openai import OpenAIAdapter
from pipeline.providers.openrouter import OpenRouterAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    "mistral": MistralAdapter,
    "openrouter": OpenRouterAdapter,
    "modelslab": ModelsLabAdapter,
    "anthropic": AnthropicAdapter,
    "openai": OpenAIAdapter,
}
