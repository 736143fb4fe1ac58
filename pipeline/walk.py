"""Step 4: the fallback ladder walk. One unit of work (pipeline/units.py) goes up the rungs until
one answers; it ends as exactly one record: answered by some rung, skipped (budget, a stopped
run), or failed with the error of every rung tried.

Rungs, in order: ``ocr`` (``--route ocr`` only: Mistral's OCR endpoint, page-scope transcribe
and extract), ``vision`` (the page image plus its text layer as a hint), ``vision-alt`` (a
second vision endpoint), ``text-fallback`` (the text model over the text layer or local OCR
text), ``local`` (the local engine; transcribe only). A rung is passed over when its model is
retired or unknown, its circuit breaker is open, or (text) there is no text; it fails over to
the next on a final error, on retryable errors once the client's retries are spent, and on an
answer that cannot count (empty, truncated, not JSON, no chart table).

The walk also owns the unit's answer cache (an earlier degraded answer gives the rungs above it
another try) and the grounding of the answer on its pages. How one rung is asked is its
caller's business (pipeline/callers.py, by ``Rung.kind``), so a new kind of rung needs no
change here. A module of its own, not pipeline/ladder.py: the ladder's types are shared with
pipeline/negotiate.py, which the walk uses through its callers, and ladder.py imports neither.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from . import grounding
from .batchmode import BatchPending
from .cache import AnswerCache, cache_key
from .callers import Caller, callers_for
from .config import OCR_TASKS, RunConfig, TaskSpec
from .guards import BudgetExceeded
from .ladder import Accounting, Interrupted, Rung, RungFailed, reason
from .negotiate import OCR_BODY
from .outcome import BATCH_PENDING
from .records import (
    BUDGET_EXCEEDED, INTERRUPTED, ROUTE_OCR, STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, ErrorInfo, Page, Record,
)
from .runcontext import RunContext
from .unitpages import UnitPages
from .units import Unit


def image_info(page: Page) -> dict:
    return {"width": page.width, "height": page.height, "bytes": len(page.image), "mime": page.mime}


def serves(cfg: RunConfig, rung: Rung, task: TaskSpec) -> bool:
    """Can this rung answer this task at all (the local engine only transcribes, when allowed;
    the OCR endpoint transcribes and extracts, a page at a time)?"""
    if rung.kind == "local":
        return task.kind == "transcribe" and cfg.local_fallback
    if rung.route == ROUTE_OCR:
        return task.kind in OCR_TASKS and task.scope == "page"
    return True


def _where(unit: Unit) -> str:
    return f"{unit.document} page {unit.page}" if unit.page else unit.document


class Walk:
    """Takes units up one run's ladder. Thread-safe as its parts are (the cache, the budget,
    the breakers); one per page worker."""

    def __init__(self, cfg: RunConfig, rungs: list[Rung], cache: AnswerCache, context: RunContext,
                 stop: threading.Event, callers: dict[str, Caller] | None = None) -> None:
        """``callers``: how each kind of rung is asked (default: ``callers.callers_for``)."""
        self.cfg, self.rungs, self.cache = cfg, rungs, cache
        self.callers = callers if callers is not None else callers_for(cfg, rungs, context, stop)

    @property
    def planned_route(self) -> str:
        return self.rungs[0].route

    def record(self, unit: Unit, **fields) -> Record:
        fields.setdefault("planned_route", self.planned_route)
        return unit.record(**fields)

    def interrupted(self, unit: Unit) -> Record:
        """The record of a unit not answered because the run was stopped."""
        return self.record(unit, status=STATUS_SKIPPED, scope=unit.task.scope, error=ErrorInfo(
            INTERRUPTED, f"{_where(unit)}: not answered, the run was interrupted (a rerun answers it)"))

    def answer(self, unit: Unit, given: UnitPages) -> Record:
        """The unit's record: from the cache, or from the first rung that answers."""
        cfg, scope = self.cfg, unit.task.scope
        page_list = [p.number for p in given.pages] if scope == "document" else None
        key = self.cache_key(unit, page_list, given.region)
        hit = self.cache.get(key)
        if hit is not None:
            hit.document = unit.document  # the same bytes may sit under another name this time
            if hit.grounding is None or (cfg.grounding_ocr and hit.grounding.get("words") == "none"):
                self.ground(hit, given)  # answered before grounding, or before grounding_ocr
            if not hit.degraded or cfg.accept_degraded:
                return hit
        # A degraded answer from an earlier run: the rungs above it get another try; the
        # degraded answer stays only if they fail again.
        rungs = self.rungs if hit is None else self.rungs[:self._rung_index(hit)]
        base = dict(scope=scope, pages=page_list, region=given.region, planned_route=self.planned_route,
                    image=image_info(given.pages[0]) if len(given.pages) == 1 else None)
        return self._climb(unit, given, rungs, key, hit, base)

    def _climb(self, unit: Unit, given: UnitPages, rungs: list[Rung], key: str, hit: Record | None,
               base: dict) -> Record:
        t0 = time.perf_counter()
        acc = Accounting()
        tried: list[dict] = []
        for rung in rungs:
            if not serves(self.cfg, rung, unit.task):
                continue
            if rung.unavailable:
                tried.append({"route": rung.route, "error": {"type": "unavailable", "message": rung.unavailable}})
                continue
            try:
                fields = self.callers[rung.kind].answer(rung, unit, given, acc)
            except RungFailed as e:
                tried.append({"route": rung.route, "error": e.info})
                continue
            except BudgetExceeded as e:
                if hit is not None:
                    return self._kept(key, hit, tried, acc)
                return self._done(None, self.record(
                    unit, status=STATUS_SKIPPED, fallback_reason=str(e), tried=tried,
                    error=ErrorInfo(BUDGET_EXCEEDED, f"{_where(unit)}: not sent: {e}"), **acc.fields(), **base), t0)
            except Interrupted:
                return hit if hit is not None else self.interrupted(unit)
            except BatchPending as e:  # --batch: the request waits in a batch job (pipeline/batchmode.py)
                e.claim(document=unit.document, sha256=unit.sha256, page=unit.page, pages=base["pages"],
                        task=unit.task.kind, question=unit.question, region=base["region"], cache_key=key)
                if hit is not None:  # an earlier degraded answer stays until the batch answers
                    return hit
                return self._done(None, self.record(
                    unit, status=STATUS_SKIPPED, error=ErrorInfo(BATCH_PENDING, f"{_where(unit)}: {e}"),
                    tried=tried, **acc.fields(), **base), t0)
            ocr_body = fields.pop(OCR_BODY, None)
            rec = self.record(unit, status=STATUS_OK, tried=tried, fallback_reason=reason(tried),
                              **acc.fields(), **base, **fields)
            if ocr_body is not None:
                rec.grounding = _ocr_grounding(ocr_body, given.pages[0], given.words)
            if rec.grounding is None:
                self.ground(rec, given)
            return self._done(key, self._ranked(rec, rung), t0)
        if hit is not None:
            return self._kept(key, hit, tried, acc)
        return self._done(None, self._failed(unit, tried, acc, base), t0)

    def _failed(self, unit: Unit, tried: list[dict], acc: Accounting, base: dict) -> Record:
        """No rung answered: the error of every rung tried."""
        last = tried[-1]["error"] if tried else {"type": "no_route", "message": "no rung can serve this task"}
        why = "; ".join(f"{t['route']}: {t['error']['message']}" for t in tried) or last["message"]
        return self.record(unit, status=STATUS_FAILED, tried=tried, error=ErrorInfo(last["type"], f"{_where(unit)}: {why}"),
                           **acc.fields(), **base)

    def cache_key(self, unit: Unit, page_list: list[int] | None, region: int | None) -> str:
        """The unit's answer cache key: everything that can change its answer, the ladder included."""
        cfg, task = self.cfg, unit.task
        return cache_key(
            sha256=unit.sha256, page=unit.page, pages=page_list, region=region,
            render=dataclasses.asdict(cfg.render), task=task.kind, prompt=task.prompt, question=unit.question,
            schema=task.schema, system=cfg.system_prompt, temperature=cfg.temperature, seed=cfg.seed,
            max_tokens=task.max_tokens,
            ladder=[(r.route, r.spec.profile if r.spec else None, r.model) for r in self.rungs],
        )

    def _rung_index(self, rec: Record) -> int:
        """Where on the ladder a record's answer came from (local-text/local-ocr: the local rung)."""
        route = "local" if (rec.route or "").startswith("local") else rec.route
        return next((i for i, r in enumerate(self.rungs) if r.route == route), len(self.rungs))

    def _ranked(self, rec: Record, rung: Rung) -> Record:
        rec.degraded = rung is not self.rungs[0]
        if rec.degraded and not rec.fallback_reason:
            rec.fallback_reason = f"{self.planned_route}: not tried"
        return rec

    def _kept(self, key: str, hit: Record, tried: list[dict], acc: Accounting) -> Record:
        """The planned route failed again: the degraded answer stays, with what this try cost."""
        hit.tried = tried
        hit.fallback_reason = reason(tried) or hit.fallback_reason
        hit.paid_usd = round(acc.cost, 8)
        hit.cost_usd = round(hit.cost_usd + acc.cost, 8)
        self.cache.put(key, hit)
        return hit

    def _done(self, key: str | None, rec: Record, t0: float) -> Record:
        rec.latency_ms = round((time.perf_counter() - t0) * 1000, 1)
        if key is not None:
            self.cache.put(key, rec)
        return rec

    def ground(self, rec: Record, given: UnitPages) -> None:
        """Locate the answer on its page(s): ``rec.grounding`` (pipeline/grounding.py)."""
        if given.words is None or rec.status != STATUS_OK:
            return
        try:
            rec.grounding = grounding.ground_record(rec, given.words.get(), given.region_box)
        except Exception as e:  # noqa: BLE001 - an answer that cannot be located is still an answer
            rec.grounding = {"located": 0, "total": 0, "share": None, "words": "none", "items": [],
                             "error": f"{type(e).__name__}: {e}"[:300]}


def _ocr_grounding(body: dict, page: Page, words) -> dict | None:
    """The OCR endpoint's blocks as the answer's grounding, in the page's coordinates."""
    from .pagewords import page_frame

    turn = getattr(words, "turn", 0)
    width, height, unit, _ = page_frame(page)
    if page.words is None and turn in (90, 270):
        width, height = height, width  # an image's frame is its pixels: those of the page before it was turned
    return grounding.ground_ocr(body, page.number, (width, height, unit), turn)
