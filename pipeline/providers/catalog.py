"""What pixtract knows about models, in one table: each ID's price, retirement date and the
replacement its vendor names. Prices, the models-list check and the "model gone" error all read
this table, so a new model or a new retirement is one line here.

Sources (read the dates): Pixtral Large 2411 and Mistral Large 2411 cost $2 / $6 per 1M tokens on
Mistral (mistralai/platform-docs-public, src/schema/models/models/pixtral-large-24-11.ts and
mistral-large-2-1-24-11.ts, read 2026-11), the same on OpenRouter (model pages, 2026-11) and on
ModelsLab's model page (2026-11); Mistral retired both on 2026-05-31 and names Mistral Medium 3.5
as their replacement (reference/model-apis.md section 0). Mistral Medium 3.5 costs $1.50 / $7.50
(mistralai/platform-docs-public, src/schema/models/models/mistral-medium-3-5-26-04.ts, API names
mistral-medium-3.5 and mistral-medium-3, read 2026-12-07); OpenRouter lists
mistralai/mistral-medium-3-5 at the same price (openrouter.ai, read 2026-12-07).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class ModelInfo:
    input_per_m: float | None  # USD per million input tokens (None: unknown, never guessed)
    output_per_m: float | None  # USD per million output tokens
    retired: str | None = None  # ISO date the vendor retired it
    replacement: str | None = None  # the model the vendor names in its place


MEDIUM_3_5 = "Mistral Medium 3.5"
_2411 = ModelInfo(2.0, 6.0, retired="2026-05-31", replacement=MEDIUM_3_5)
_MEDIUM = ModelInfo(1.5, 7.5)

MODELS: Mapping[str, ModelInfo] = MappingProxyType({
    # the 2411 pair under each provider's ID (Mistral, OpenRouter, ModelsLab)
    **{m: _2411 for m in (
        "pixtral-large-2411", "pixtral-large-latest", "mistral-large-pixtral-2411", "mistral-large-2411",
        "mistralai/pixtral-large-2411", "mistralai/mistral-large-2411",
        "mistralai-pixtral-large-2411", "mistralai-mistral-large-2411")},
    **{m: _MEDIUM for m in ("mistral-medium-3.5", "mistral-medium-3", "mistralai/mistral-medium-3-5")},
})

# The replacement named when a model is gone and neither the table nor the vendor says more:
# every retired model pixtract's profiles used is a 2411 model.
DEFAULT_REPLACEMENT = MEDIUM_3_5


def retired(model: str) -> str | None:
    """The retirement date of ``model``, if the table knows one."""
    info = MODELS.get(model)
    return info.retired if info else None


def replacement(model: str | None) -> str:
    info = MODELS.get(model or "")
    return (info.replacement if info and info.replacement else None) or DEFAULT_REPLACEMENT
