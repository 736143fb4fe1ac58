"""Endpoint configuration: a profile plus overrides."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from pixtract.providers.profiles import get_profile
from pixtract.providers.errors import ConfigError, register_secret


@dataclass(frozen=True)
class Endpoint:
    """Where and how to call a model API. ``None`` fields take the profile's
    defaults; ``api_key=None`` reads the profile's environment variable."""

    profile: str = "mistral"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    vision_model: str | None = None
    text_model: str | None = None
    timeout: float = 60.0
    max_retries: int = 4
    concurrency: int = 8
    dialect: str | None = None  # override the profile's dialect
    connect_timeout: float = 10.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_rate_limit_wait: float = 300.0
    headers: dict | None = field(default=None, repr=False)  # extra request headers (e.g. HTTP-Referer)
    extra_body: dict | None = None  # extra top-level body fields (e.g. OpenRouter "provider")

    def resolved(self) -> "Endpoint":
        """Fill defaults from the profile and the environment; raise ConfigError."""
        prof = get_profile(self.profile)
        dialect = self.dialect or prof.dialect
        if dialect is None:
            return dataclasses.replace(self, dialect=None)
        from pixtract.providers.registry import ADAPTERS

        if dialect not in ADAPTERS:
            raise ConfigError(f"unknown dialect {dialect!r}; known: {', '.join(ADAPTERS)}")
        base_url = (self.base_url or prof.base_url or "").rstrip("/")
        if not base_url:
            raise ConfigError(f"profile {self.profile!r} needs base_url (e.g. http://localhost:8000/v1)")
        key = self.api_key if self.api_key is not None else (os.environ.get(prof.key_env) if prof.key_env else None)
        if not key and prof.key_required:
            raise ConfigError(f"profile {self.profile!r} needs an API key: set {prof.key_env} or api_key")
        register_secret(key)
        vision = self.vision_model or prof.vision_model
        text = self.text_model or prof.text_model
        if not vision and not text:
            raise ConfigError(f"profile {self.profile!r} needs vision_model and/or text_model")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise ConfigError("concurrency must be >= 1, max_retries >= 0, timeout > 0")
        return dataclasses.replace(self, dialect=dialect, base_url=base_url, api_key=key or None,
                                   vision_model=vision, text_model=text)

    @property
    def models(self) -> list[str]:
        return [m for m in (self.vision_model, self.text_model) if m]
