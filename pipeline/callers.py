"""How a rung of each kind answers one unit, for the ladder walk (pipeline/walk.py).

A caller's ``answer(rung, unit, given, acc)`` returns the answer's record fields (route, model,
provider, answer, and data, flags ... as the kind has them), spending what it sends through
``acc``. A rung that gives nothing that counts raises ``ladder.RungFailed`` (the walk notes
why and tries the next rung); a request the budget refuses raises ``BudgetExceeded``; a
stopped run, ``ladder.Interrupted``.

Two kinds today, by ``Rung.kind``: ``chat`` and ``local`` (the local engine). ``chat`` is any
request through a provider client, within the run's budget and the rung's circuit breaker
(pipeline/negotiate.py shapes the requests and the answer): the OCR rung is one too, its
client speaking Mistral's ``/v1/ocr`` dialect (providers/mistral_ocr.py), and in batch mode
the planned rung's client hands its requests to a batch job (pipeline/batchmode.py). A rung
that needs neither is one more caller in ``callers_for``: the walk, the records and the
outputs stay as they are.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Protocol

from . import answers, local, request_plan
from .config import RunConfig
from .errors import OCRError
from .ladder import Accounting, Interrupted, Rung, RungFailed, worst_case_cost
from .messages import ChatRequest, ChatResponse, Usage
from .negotiate import Asker
from .records import ROUTE_TEXT_FALLBACK, ErrorInfo
from .request_plan import Part
from .runcontext import RunContext
from .unitpages import UnitPages
from .units import Unit


class Caller(Protocol):
    def answer(self, rung: Rung, unit: Unit, given: UnitPages, acc: Accounting) -> dict: ...


def callers_for(cfg: RunConfig, rungs: list[Rung], context: RunContext, stop: threading.Event) -> dict[str, Caller]:
    """The caller of each kind of rung, for one run."""
    return {"chat": ChatCaller(cfg, rungs, context, stop), "local": LocalCaller(cfg)}


class ChatCaller:
    """A chat-completion rung: the unit's requests (the page images, or for the text rung the
    pages' text), each within the budget and the rung's circuit breaker."""

    def __init__(self, cfg: RunConfig, rungs: list[Rung], context: RunContext, stop: threading.Event) -> None:
        self.cfg, self.stop = cfg, stop
        self.budget, self.prices = context.budget, context.prices
        self.asker = Asker(cfg, self.call_once_more_if_looping, rungs)  # how one rung is asked (negotiate.py)

    def answer(self, rung: Rung, unit: Unit, given: UnitPages, acc: Accounting) -> dict:
        if not rung.breaker.allow():
            raise RungFailed(ErrorInfo("circuit_open", f"{rung.spec.profile} endpoint failing; circuit breaker open"))
        task, pages = unit.task, given.pages
        result = self.asker.answer(rung, task, unit.question, self.parts(rung, task.scope, given), given.caption, acc)
        fields = dict(route=rung.route, model=rung.model, provider=rung.spec.profile, **result)
        if rung.route != ROUTE_TEXT_FALLBACK and pages[0].has_text_layer and task.kind in ("transcribe", "ask"):
            fields["agreement"], fields["flags"] = answers.cross_check(result.get("answer") or "",
                                                                       "\n".join(p.text for p in pages))
        return fields

    def parts(self, rung: Rung, scope: str, given: UnitPages) -> list[Part]:
        """What the rung is sent (request_plan.py): the page images, or for the text rung the
        pages' text; RungFailed when the text rung has no text."""
        if rung.route != ROUTE_TEXT_FALLBACK:
            return (list(request_plan.document_parts(given.pages)) if scope == "document"
                    else [request_plan.page_part(given.pages[0])])
        try:
            source_text = given.text.get()
        except OCRError as e:
            raise RungFailed(e) from None
        if not source_text.strip():
            raise RungFailed(ErrorInfo("no_text", "page has no text layer and OCR found no text"))
        return [request_plan.text_part(source_text)]

    def call_once_more_if_looping(self, rung: Rung, req: ChatRequest, acc: Accounting, raw_errors=()) -> ChatResponse:
        """``call``, and an answer that repeats itself (a loop until max_tokens, a known failure
        of vision models on dense tables) is asked once more with other sampling; a second loop
        fails the rung like an empty answer."""
        resp = self.call(rung, req, acc, raw_errors)
        loop = answers.degenerate(resp.text or "")
        if loop is None:
            return resp
        retry = dataclasses.replace(req, temperature=0.7 if (req.temperature or 0) < 0.5 else 0.2,
                                    seed=(req.seed or 0) + 1)
        resp = self.call(rung, retry, acc, raw_errors)
        again = answers.degenerate(resp.text or "")
        if again is not None:
            raise RungFailed(answers.AnswerError(f"{again}, also when asked again with other sampling",
                                                  "degenerate_answer"))
        return resp

    def call(self, rung: Rung, req: ChatRequest, acc: Accounting, raw_errors=()) -> ChatResponse:
        """One request on a rung, within the budget; provider errors become RungFailed
        (except ``raw_errors``, which the caller handles)."""
        from .providers.errors import FinalError, ModelGoneError, ProviderError, RetryableError

        if self.stop.is_set():
            raise Interrupted()
        # An answer waiting in a finished batch job was paid for by the run that submitted it:
        # this run records its cost but spends nothing of its own budget on it.
        prepaid = getattr(rung.client, "prepaid", None)
        prepaid = bool(prepaid and prepaid(req))
        # The exact prompt count costs milliseconds a page (mistral_common); only a limit needs it.
        reserved = self.budget.reserve(
            worst_case_cost(req, rung.model, self.prices) if self.budget.limit is not None and not prepaid else 0.0)
        try:
            resp = rung.client.complete(req, stream=self.cfg.stream)
        except BaseException as e:
            self.budget.settle(reserved, 0.0)
            acc.attempts += 1
            if isinstance(e, raw_errors) or not isinstance(e, ProviderError):
                raise
            if isinstance(e, ModelGoneError):
                rung.unavailable = f"model {rung.model} is gone: {e}"
            elif isinstance(e, RetryableError) or not isinstance(e, FinalError):
                rung.breaker.failure()
            elif getattr(e, "status", None) in (401, 402, 403, 404):
                rung.breaker.failure()  # the endpoint itself is unusable, not just this request
            raise RungFailed(e) from None
        rung.breaker.success()
        usage = resp.usage or Usage()
        actual = usage.cost_usd if usage.cost_usd is not None else (self.prices.cost(rung.model, usage) or 0.0)
        self.budget.settle(reserved, 0.0 if prepaid else actual)
        acc.add(resp, actual)
        return resp


class LocalCaller:
    """The local engine (transcribe only): the text layer where it is real, else OCR."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg

    def answer(self, rung: Rung, unit: Unit, given: UnitPages, acc: Accounting) -> dict:
        page, cfg = given.pages[0], self.cfg
        try:
            ans = local.transcribe(page, cfg.render, given.running_lines, cfg.password, options=cfg.ocr)
            if given.words is not None:
                given.words.offer(page.number, ans.words)
        except OCRError as e:
            raise RungFailed(e) from None
        if not ans.markdown.strip():  # the page has ink (blank pages never get here)
            raise RungFailed(ErrorInfo("no_text_found", (
                "the local engine found no text on a page that is not blank (a photo or a drawing?)")))
        return dict(route=ans.route, answer=ans.markdown, model=ans.model, provider="local", flags=ans.flags)
