"""Small helpers for tests that use the emulator."""
from __future__ import annotations

import io

from pixtract.providers import Endpoint

# No "sk-" prefix: a generic pattern would hide it; only pixtract's secret registry may remove it.
FAKE_KEY = "Test0SECRET0key0123"
PROFILES = ["mistral", "openrouter", "modelslab", "modelslab-anthropic", "openai"]


def png(width: int = 64, height: int = 48, color: str = "white") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def endpoint_for(emu, profile: str, **kw) -> Endpoint:
    """An Endpoint aimed at the emulator, with fast backoffs for tests."""
    defaults = dict(profile=profile, base_url=emu.base_url(profile), api_key=FAKE_KEY, timeout=5.0,
                    backoff_base=0.01, backoff_max=0.05, max_retries=3, max_rate_limit_wait=5.0)
    if profile == "openai":
        defaults.update(vision_model="local-vision", text_model="local-text")
    defaults.update(kw)
    return Endpoint(**defaults)
