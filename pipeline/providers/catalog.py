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
Mistral OCR (``/v1/ocr``) is billed per page, not per token: $4 per 1,000 pages and $5 per 1,000
annotated pages (a request with a document annotation) for OCR 4 / 4.1, whose API names include
mistral-ocr-latest (mistralai/platform-docs-public @222f4ba9, 2026-08-21,
src/schema/models/models/ocr-4-1.ts and ocr-4-0.ts, read 2026-12-07). That batch jobs cost half
is stated in the same snapshot (docs/studio/batch-processing: "a 50% discount on batch API").
Whether an annotated page pays the page price too is not stated; pixtract bills it at the
annotated price alone (the emulator does the same). In batch jobs OCR pages cost half, like
every batched model (BATCH_SHARE below).

Batch prices (Mistral's own IDs only: batch jobs are Mistral's API): Mistral's batch inference
documentation (docs.mistral.ai/capabilities/batch and the "run a batch job" quickstart, read
2026-12-07) says batch requests cost less than the same requests sent one by one and points to
its pricing page, which is not in this repository's reference material; third-party pricing
summaries read the same day give "Batch API (any model): 50 % off" input and output. The batch
prices below are therefore the live prices halved: derived, not quoted. A job can override them
with its own [prices] table.
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
    per_page: float | None = None  # USD per page, for APIs billed by the page (OCR)
    per_annotated_page: float | None = None  # USD per page of a request with a document annotation
    batch_input_per_m: float | None = None  # USD per million input tokens in a batch job (None: no batch)
    batch_output_per_m: float | None = None
    batch_per_page: float | None = None  # USD per page in a batch job (OCR)
    batch_per_annotated_page: float | None = None


BATCH_SHARE = 0.5  # batch price / live price on Mistral (see the module's sources)


def _with_batch(info: ModelInfo) -> ModelInfo:
    """The same model as sold in Mistral's batch jobs."""
    from dataclasses import replace

    def half(price: float | None) -> float | None:
        return None if price is None else price * BATCH_SHARE

    return replace(info, batch_input_per_m=half(info.input_per_m), batch_output_per_m=half(info.output_per_m),
                   batch_per_page=half(info.per_page), batch_per_annotated_page=half(info.per_annotated_page))


MEDIUM_3_5 = "Mistral Medium 3.5"
_2411 = ModelInfo(2.0, 6.0, retired="2026-05-31", replacement=MEDIUM_3_5)
_MEDIUM = ModelInfo(1.5, 7.5)
_OCR_4 = ModelInfo(0.0, 0.0, per_page=4.0 / 1000, per_annotated_page=5.0 / 1000)  # no token is billed
OCR_MODEL = "mistral-ocr-latest"  # the OCR route's default model

MODELS: Mapping[str, ModelInfo] = MappingProxyType({
    # the 2411 pair under each provider's ID (Mistral, with batch prices; OpenRouter, ModelsLab)
    **{m: _with_batch(_2411) for m in (
        "pixtral-large-2411", "pixtral-large-latest", "mistral-large-pixtral-2411", "mistral-large-2411")},
    **{m: _2411 for m in (
        "mistralai/pixtral-large-2411", "mistralai/mistral-large-2411",
        "mistralai-pixtral-large-2411", "mistralai-mistral-large-2411")},
    **{m: _with_batch(_MEDIUM) for m in ("mistral-medium-3.5", "mistral-medium-3")},
    "mistralai/mistral-medium-3-5": _MEDIUM,
    **{m: _with_batch(_OCR_4) for m in (OCR_MODEL, "mistral-ocr-4", "mistral-ocr-4-1", "mistral-ocr-4-0")},
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
