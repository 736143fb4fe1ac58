"""Profile presets: dialect, default base URL, key variable and model IDs.

Every field can be overridden on ``pixtract.providers.Endpoint``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    dialect: str | None  # adapter name in pixtract.providers.registry; None = no endpoint
    base_url: str | None
    key_env: str | None
    vision_model: str | None
    text_model: str | None
    key_required: bool = True


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile("mistral", "mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY",
                "pixtral-large-2411", "mistral-large-2411"),
        Profile("openrouter", "openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY",
                "mistralai/pixtral-large-2411", "mistralai/mistral-large-2411"),
        # model-apis.md §3.2: the Mistral Large ID is by analogy [UNVERIFIED].
        Profile("modelslab", "modelslab", "https://modelslab.com/api/v7/llm", "MODELSLAB_API_KEY",
                "mistralai-pixtral-large-2411", "mistralai-mistral-large-2411"),
        Profile("modelslab-anthropic", "anthropic", "https://modelslab.com/api/v7/llm", "MODELSLAB_API_KEY",
                "mistralai-pixtral-large-2411", "mistralai-mistral-large-2411"),
        Profile("openai", "openai", None, "OPENAI_API_KEY", None, None, key_required=False),
        Profile("local", None, None, None, None, None, key_required=False),
    ]
}


def get_profile(name: str) -> Profile:
    from pixtract.providers.errors import ConfigError

    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
