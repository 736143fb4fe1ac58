"""The fallback ladder's parts: a rung (one route to an answer: a model on an endpoint, or the
local engine), the signals a rung's attempt ends with, and what a unit's attempts cost.

The ladder walk (pipeline/walk.py) takes each unit up the rungs; a caller per kind of rung
(pipeline/callers.py) asks one rung, and pipeline/negotiate.py negotiates a chat rung's answer.
They share these types, so none imports another's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import tokens
from .config import EndpointSpec
from .guards import CircuitBreaker
from .messages import ChatRequest, ChatResponse
from .errors import PixtractError
from .records import INTERRUPTED, ErrorInfo


@dataclass
class Rung:
    route: str  # vision, vision-alt, text-fallback, local
    spec: EndpointSpec | None = None
    model: str | None = None
    client: Any = None
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    unavailable: str | None = None  # why this rung cannot serve (retired model, bad config)
    json_mode: int = 0  # index into negotiate.JSON_MODES that this endpoint accepts
    kind: str = "chat"  # which caller asks it (pipeline/callers.py): "chat" or "local"

    @property
    def remote(self) -> bool:
        return self.spec is not None


class Interrupted(PixtractError):
    """The run was stopped before this unit's next request."""

    type = INTERRUPTED


class RungFailed(PixtractError):
    """This rung gave no answer that counts; the ladder tries the next one (``info``: why)."""

    type = "rung_failed"

    def __init__(self, exc: BaseException | ErrorInfo) -> None:
        """``exc``: the error the rung ended with, or (no error behind it: no text to send,
        nothing found) the reason itself."""
        info = exc if isinstance(exc, ErrorInfo) else ErrorInfo.from_exception(exc)
        super().__init__(info.message)
        self.info = {"type": info.type, "message": info.message}


@dataclass
class Accounting:
    """Tokens, cost and attempts of one unit, over every request of every rung tried."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    attempts: int = 0
    pages: int = 0  # pages billed by a per-page API (the OCR route)

    def add(self, resp: ChatResponse, cost: float) -> None:
        self.input_tokens += resp.usage.prompt_tokens
        self.output_tokens += resp.usage.completion_tokens
        self.pages += resp.usage.pages
        self.cost += cost
        self.attempts += resp.attempts or 1

    def fields(self) -> dict:
        usage = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.pages:
            usage["pages"] = self.pages
        return {"usage": usage,
                "cost_usd": round(self.cost, 8), "paid_usd": round(self.cost, 8), "attempts": self.attempts}


def worst_case_cost(req: ChatRequest, model: str | None, prices) -> float:
    """Exact prompt tokens plus the whole max_tokens, at the model's price (a budget is only
    accepted when every model of the job has one: ``RunConfig.validate_budget``); for a per-page
    API (the OCR route), exactly the pages it bills."""
    price = prices.get(model)
    if price is None:
        return 0.0
    if price.by_page:
        from .request_plan import pages_billed

        return price.pages_cost(*pages_billed(req))
    prompt = tokens.estimate_prompt_tokens(req, model)
    return prompt * price.input_per_m / 1e6 + (req.max_tokens or 0) * price.output_per_m / 1e6


def reason(tried: list[dict]) -> str | None:
    """The rungs tried before the answer, as the record's ``fallback_reason``."""
    if not tried:
        return None
    return "; ".join(f"{t['route']}: {t['error']['type']}: {t['error']['message']}" for t in tried)[:2000]
