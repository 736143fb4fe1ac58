"""Model prices: a built-in table for the models pixtract's profiles use or recommend, plus
the job's own additions. Prices are never guessed: a model with no price has no cost estimate,
and a budget over it is refused before anything is sent (``missing``).

A ``PriceTable`` is a value owned by one run; a job's ``[prices]`` make a new table, so one
run's prices never leak into another run in the same process (``pixtract serve``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import UsageError
from .providers.catalog import MODELS
from .messages import Usage


@dataclass(frozen=True)
class Price:
    input_per_m: float  # USD per million input tokens
    output_per_m: float  # USD per million output tokens
    per_page: float = 0.0  # USD per page billed (an OCR API bills pages, not tokens)
    per_annotated_page: float | None = None  # USD per page of an annotated request (None: per_page)

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.input_per_m / 1e6 + usage.completion_tokens * self.output_per_m / 1e6
                + self.pages_cost(usage.pages, usage.annotated_pages))

    def pages_cost(self, pages: int, annotated: int = 0) -> float:
        """USD for ``pages`` billed pages, ``annotated`` of them at the annotation price."""
        annotated_price = self.per_page if self.per_annotated_page is None else self.per_annotated_page
        return (pages - annotated) * self.per_page + annotated * annotated_price

    @property
    def by_page(self) -> bool:
        return bool(self.per_page or self.per_annotated_page)


# The built-in prices: every model of the catalogue with a known price (sources there).
BUILTIN: Mapping[str, Price] = MappingProxyType({
    m: Price(i.input_per_m, i.output_per_m, i.per_page or 0.0, i.per_annotated_page) for m, i in MODELS.items()
    if i.input_per_m is not None and i.output_per_m is not None})
# The same models' prices in Mistral's batch jobs (about half; pipeline/providers/catalog.py).
BATCH: Mapping[str, Price] = MappingProxyType({
    m: Price(i.batch_input_per_m, i.batch_output_per_m, i.batch_per_page or 0.0, i.batch_per_annotated_page)
    for m, i in MODELS.items()
    if i.batch_input_per_m is not None and i.batch_output_per_m is not None})

PRICE_HINT = ('give one with --price MODEL=INPUT,OUTPUT (USD per million tokens) or a [prices] table '
              'in the job file: "MODEL" = {input = 1.0, output = 3.0} (a per-page API: '
              '{input = 0, output = 0, page = 0.004})')
_PRICE_KEYS = {"input", "output", "page", "annotated_page"}


def parse_price(value: Any, where: str) -> Price:
    """``{"input": 1.0, "output": 3.0}``, ``(1.0, 3.0)``, ``"1.0,3.0"`` or a Price; UsageError
    naming ``where`` otherwise."""
    try:
        if isinstance(value, Price):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - _PRICE_KEYS
            if unknown or not {"input", "output"} <= set(value):
                raise ValueError("needs the keys input and output (and optionally page, annotated_page)")
            annotated = value.get("annotated_page")
            price = Price(float(value["input"]), float(value["output"]), float(value.get("page", 0.0)),
                          None if annotated is None else float(annotated))
        else:
            inp, out = value.split(",") if isinstance(value, str) else value
            price = Price(float(inp), float(out))
    except (TypeError, ValueError) as e:
        raise UsageError(f"bad price {where}: {value!r} ({e}); {PRICE_HINT}") from None
    if min(price.input_per_m, price.output_per_m, price.per_page, price.per_annotated_page or 0.0) < 0:
        raise UsageError(f"bad price {where}: prices cannot be negative")
    return price


@dataclass(frozen=True)
class PriceTable:
    prices: Mapping[str, Price] = field(default_factory=lambda: BUILTIN)

    @classmethod
    def for_job(cls, extra: Mapping[str, Any] | None, batched: Iterable[str] = ()) -> "PriceTable":
        """The built-in table with the job's prices added (they win); the ``batched`` models
        (those a batch-mode run sends in batch jobs) at their batch prices."""
        batch = {m: BATCH[m] for m in batched if m in BATCH}
        if not extra and not batch:
            return cls()
        merged = {**BUILTIN, **batch}
        for model, p in (extra or {}).items():
            merged[model] = parse_price(p, f"for model {model!r}")
        return cls(MappingProxyType(merged))

    def get(self, model: str | None) -> Price | None:
        return self.prices.get(model or "")

    def cost(self, model: str | None, usage: Usage) -> float | None:
        """USD for ``usage`` on ``model``, or None when the model has no price."""
        p = self.get(model)
        return None if p is None else p.cost(usage)

    def missing(self, models: Iterable[str | None]) -> list[str]:
        """The models (in order, once each) that have no price."""
        return [m for m in dict.fromkeys(m for m in models if m) if m not in self.prices]
