"""Dialect name -> adapter class. Adding a dialect = one module + one line here."""
from __future__ import annotations

from pixtract.providers.anthropic import AnthropicAdapter
from pixtract.providers.base import Adapter
from pixtract.providers.mistral import MistralAdapter
from pixtract.providers.modelslab import ModelsLabAdapter
from pixtract.providers.openai import OpenAIAdapter
from pixtract.providers.openrouter import OpenRouterAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    "mistral": MistralAdapter,
    "openrouter": OpenRouterAdapter,
    "modelslab": ModelsLabAdapter,
    "anthropic": AnthropicAdapter,
    "openai": OpenAIAdapter,
}
