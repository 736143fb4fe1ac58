"""Step 4: the fallback ladder. Every page (and task) ends as exactly one record per unit:
answered by some rung, skipped (budget), or failed with the error of every rung tried.

Rungs, in order: ``vision`` (the page image plus its text layer as a hint), ``vision-alt`` (a
second vision endpoint), ``text-fallback`` (the text model over the text layer or local OCR
text), ``local`` (the local engine; transcribe only). A rung is passed over when its model is
retired or unknown, its circuit breaker is open, or (text) there is no text; it fails over to
the next on a final error, on retryable errors once the client's retries are spent, and on an
answer that cannot count (empty, truncated, not JSON, no chart table).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from . import answers, grounding, local, request_plan
from .cache import AnswerCache, cache_key
from .config import OCR_TASKS, EndpointSpec, RunConfig, TaskSpec
from .errors import InputError, OCRError
from .guards import BudgetExceeded
from .messages import ChatRequest, ChatResponse, Usage
from .plan import DocumentPlan
from .pagethreads import PageThreads
from .preflight import PreflightReport, ladder_plan
from .runcontext import RunContext
from .units import Unit, units_of
from .ladder import Accounting, Interrupted, Rung, RungFailed, reason, worst_case_cost
from .batchmode import BATCH_PENDING, BatchPending
from .negotiate import OCR_BODY, Asker
from .records import (
    BUDGET_EXCEEDED, INTERRUPTED, NO_CHART, ROUTE_OCR, ROUTE_TEXT_FALLBACK, STATUS_FAILED, STATUS_OK, STATUS_SKIPPED,
    Document, ErrorInfo, Page, Record,
)
from .render import render_page
from .request_plan import nothing_to_send

RENDER_AHEAD = 2  # page threads beyond the request concurrency (bench/README.md, throughput)
STOP_NOTICE_S = 1.0  # how long a page whose worker died waits to learn whether the run is stopping


def page_threads(cfg: RunConfig) -> int:
    """The threads that answer pages: ``concurrency`` for requests, plus RENDER_AHEAD that render
    the next pages while the others wait on the model (remote routes only)."""
    return cfg.concurrency + (RENDER_AHEAD if cfg.endpoint.remote else 0)


def image_info(page: Page) -> dict:
    return {"width": page.width, "height": page.height, "bytes": len(page.image), "mime": page.mime}


class Router:
    """Answers pages for one run. Thread-safe; one per process."""

    def __init__(self, cfg: RunConfig, *, make_client=None, on_render=None, on_words=None, thumb_edge: int = 0,
                 stop: threading.Event | None = None, context: RunContext | None = None) -> None:
        """``on_render(page)`` sees every rendered page (the flow writes thumbnails with it);
        with ``thumb_edge`` each page also carries a thumbnail of that size. ``on_words(page,
        words)`` sees each answered page's words (``PageWords`` or None: the flow keeps them
        for the layout JSON). Once ``stop`` is set, no new page or request starts (pages not
        started are ``skipped: interrupted``). ``context`` holds what the whole run shares
        (budget, prices); by default it is made from ``cfg``."""
        self.cfg = cfg
        self.on_render = on_render
        self.on_words = on_words
        self.thumb_edge = thumb_edge
        self.stop = stop or threading.Event()
        self._pool: PageThreads | None = None
        self.cache = AnswerCache(cfg.cache_path(), cfg.cache)
        self.context = context or RunContext.for_run(cfg)
        self.budget = self.context.budget
        self.prices = self.context.prices
        self._make_client = make_client
        self._lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self.rungs = self._build_rungs()
        self._asker = Asker(cfg, self._answer_call, self.rungs)  # how one rung is asked (negotiate.py)
        # Records of finished pages and document units, by (path, page or (task, question)):
        # a stopped run writes them even when the task that holds them has not reported back.
        self.done: dict[tuple, Any] = {}
        self._prefetched: dict[tuple, Any] = {}  # (path, page) -> future, started before the flow
        self._claimed: set[tuple] = set()  # (path, page) the flow has taken: never prefetched again

    # -- set-up ---------------------------------------------------------------------------
    def _client_for(self, spec: EndpointSpec, dialect: str | None = None):
        from .providers import make_client

        extra = {"dialect": dialect} if dialect else {}  # the OCR rung: Mistral's /v1/ocr on the same endpoint
        return (self._make_client or make_client)(spec.endpoint(self.cfg.concurrency, **extra))

    def _build_rungs(self) -> list[Rung]:
        """The ladder: the remote rungs ``preflight.ladder_plan`` plans (one client per endpoint),
        then the local engine. The first rung is every unit's planned route."""
        rungs, clients = [], {}
        for plan in ladder_plan(self.cfg):
            key = (id(plan.spec), plan.dialect)
            if key not in clients:
                clients[key] = self._client_for(plan.spec, plan.dialect)
            rungs.append(Rung(plan.route, plan.spec, plan.model, clients[key]))
        rungs.append(Rung("local", model=self.cfg.ocr.key()))  # OCR settings change local answers
        return rungs

    @property
    def planned_route(self) -> str:
        return self.rungs[0].route

    def apply_preflight(self, report: PreflightReport) -> None:
        """Take the rungs that preflight found unusable out of the ladder."""
        for rung in self.rungs:
            if rung.route in report.unavailable:
                rung.unavailable = report.unavailable[rung.route]

    def serving(self, task: TaskSpec) -> list[Rung]:
        return [r for r in self.rungs if self._applies(r, task) and not r.unavailable]

    def _applies(self, rung: Rung, task: TaskSpec) -> bool:
        if rung.route == "local":
            return task.kind == "transcribe" and self.cfg.local_fallback
        if rung.route == ROUTE_OCR:
            return task.kind in OCR_TASKS and task.scope == "page"
        return True

    def close(self, wait: bool = True) -> None:
        """Stop the page threads (``wait=False``: a stopped run leaves requests in flight)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
        closed = set()
        for r in self.rungs:
            if r.client is not None and id(r.client) not in closed:
                closed.add(id(r.client))
                r.client.close()

    # -- page scope -----------------------------------------------------------------------
    def answer_pages(self, pages: list[tuple[DocumentPlan, int]]) -> list[list[Record]]:
        """``answer_page`` for several pages at once, on the router's worker threads: one list
        of records per page, in the order given. A page whose step raises gets failed records
        naming the error, and so does a page still running after ``stall_timeout`` (its thread
        is left behind, pipeline/pagethreads.py); the other pages go on."""
        pool = self._workers()
        with self._lock:  # against a late prefetch of the same page (it would be answered twice)
            futures = []
            for plan, number in pages:
                key = (plan.document.path, number)
                self._claimed.add(key)
                futures.append(self._prefetched.pop(key, None) or pool.submit(self.answer_page, plan, number))
        out = []
        for (plan, number), fut in zip(pages, futures):
            try:
                recs = pool.result(fut, self.cfg.stall_timeout, f"{plan.document.path} page {number}")
            except Exception as e:  # noqa: BLE001 - a bug or an odd page must not take the batch down
                recs = self.page_failures(plan, number, e)
            self.done[(plan.document.path, number)] = recs
            out.append(recs)
        return out

    def prefetch(self, plan: DocumentPlan, number: int):
        """Start answering a page now (while Prefect starts up); ``answer_pages`` picks it up.
        Returns its future, or None once the flow has taken any page (the flow feeds the page
        threads from then on) or this one is started already."""
        key = (plan.document.path, number)
        with self._lock:
            if self._claimed or key in self._prefetched:
                return None
            fut = self._prefetched[key] = self._workers().submit(self.answer_page, plan, number)
            return fut

    @property
    def taken(self) -> bool:
        """Has the flow taken any page yet (then nothing more is prefetched)?"""
        return bool(self._claimed)

    @property
    def page_threads(self) -> int:
        return page_threads(self.cfg)

    def _workers(self) -> PageThreads:
        """``concurrency`` threads for requests, plus RENDER_AHEAD that render the next pages
        while the others wait on the model (the client's limiter caps requests in flight)."""
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = PageThreads(self.page_threads)
        return self._pool

    def page_failures(self, plan: DocumentPlan, number: int, exc: BaseException) -> list[Record]:
        """One failed record per page-scope unit of a page whose step raised ``exc``."""
        doc = plan.document
        return [u.failed(exc) for u in units_of(self.cfg, doc.path, doc.sha256, [number], scopes=("page",))]

    def interrupted(self, plan: DocumentPlan, number: int | None, tasks: list[TaskSpec]) -> list[Record]:
        """Records for units that were not started because the run was stopped."""
        return [self._interrupted_record(plan.document, number, t, q, t.scope) for t in tasks for q in t.units()]

    def _interrupted_record(self, doc: Document, number: int | None, task: TaskSpec, question: str | None,
                            scope: str = "page") -> Record:
        where = f"{doc.path} page {number}" if number else doc.path
        return self._record(doc, number, task, question, status=STATUS_SKIPPED, scope=scope,
                            error=ErrorInfo(
                                INTERRUPTED, f"{where}: not answered, the run was interrupted (a rerun answers it)"))

    def answer_page(self, plan: DocumentPlan, number: int) -> list[Record]:
        """Every page-scope task for one page: a list of records, one per unit."""
        doc, cfg = plan.document, self.cfg
        page_tasks = [t for t in cfg.tasks if t.scope == "page"]
        if self.stop.is_set():
            return self.interrupted(plan, number, page_tasks)
        try:
            page = render_page(doc, number, cfg.render, cfg.password, self.thumb_edge)
        except InputError as e:
            if self._stopping(e):
                return self.interrupted(plan, number, page_tasks)
            return [self._record(doc, number, t, q, status=STATUS_FAILED, error=ErrorInfo.from_exception(e))
                    for t in page_tasks for q in t.units()]
        if self.on_render is not None:
            self.on_render(page)
        words = _Words(self, [page])
        if nothing_to_send(page):
            self._words_seen(page, words)
            return [self._blank_record(doc, page, t, q) for t in page_tasks for q in t.units()]
        page, turn = self._upright(page)
        words.turn = turn  # OCR boxes are read on the turned image (pipeline/grounding.py ground_ocr)
        out = []
        ocr_text = _Lazy(lambda: self._ocr_text(page, words))
        for task in page_tasks:
            for question in task.units():
                if task.kind == "chart":
                    out.extend(self._answer_charts(plan, page, task, words))
                else:
                    out.append(self._answer_unit(plan, task, question, [page], ocr_text, words=words))
        if turn:
            for rec in out:
                if f"rotated-{turn}" not in rec.flags:
                    rec.flags = [f"rotated-{turn}", *rec.flags]
        self._words_seen(page, words)
        return out

    def _stopping(self, e: InputError) -> bool:
        """Did the page's MuPDF worker die because the run is being stopped? A signal to the
        process group reaches the workers too, and the page thread may see the death a moment
        before the signal handler sets ``stop``: such a page is interrupted, not crashed."""
        return getattr(e, "type", None) == "render_crashed" and self.stop.wait(STOP_NOTICE_S)

    def _words_seen(self, page: Page, words: "_Words") -> None:
        if self.on_words is not None:
            self.on_words(page, words.found.get(page.number))

    def _upright(self, page: Page) -> tuple[Page, int]:
        """A scan or photo turned upright before a vision model sees it (the local engine turns
        its own OCR image): the page and the degrees it was turned clockwise."""
        if self.rungs[0].route == "local":
            return page, 0
        return request_plan.upright(page, self.cfg)

    def _blank_record(self, doc: Document, page: Page, task: TaskSpec, question: str | None) -> Record:
        """A page without ink: its empty answer is correct and costs nothing (no chart on it)."""
        if task.kind == "chart":
            return self._record(doc, page.number, task, None, status=STATUS_SKIPPED, image=image_info(page),
                                error=ErrorInfo(NO_CHART, f"{doc.path} page {page.number}: blank page, no chart"))
        return self._record(doc, page.number, task, question, status=STATUS_OK, answer="", blank=True,
                            image=image_info(page))

    def _ocr_text(self, page: Page, words: "_Words | None" = None) -> str:
        if page.has_text_layer:
            return page.text
        ans = local.transcribe(page, self.cfg.render, None, self.cfg.password, options=self.cfg.ocr)
        if words is not None:
            words.offer(page.number, ans.words)
        return ans.markdown

    def _answer_charts(self, plan: DocumentPlan, page: Page, task: TaskSpec, words: "_Words") -> list[Record]:
        from . import charts

        doc = plan.document
        regions = charts.chart_regions_for(doc, page.number, self.cfg.password)
        if not regions:
            return [self._record(doc, page.number, task, None, status=STATUS_SKIPPED, image=image_info(page),
                                 error=ErrorInfo(NO_CHART, f"{doc.path} page {page.number}: no chart found"))]
        out = []
        for region, crop in request_plan.chart_views(doc, page, regions, self.cfg):
            rec = self._answer_unit(plan, task, None, [crop], _Lazy(lambda c=crop: c.text),
                                    caption=region.caption, region=region.index, page_number=page.number,
                                    words=words, region_box=_region_box(region, page))
            out.append(rec)
        return out

    # -- document scope -------------------------------------------------------------------
    def answer_document(self, plan: DocumentPlan, task: TaskSpec, question: str | None) -> Record:
        """One answer for a whole document: its pages go together, 8 images per request."""
        doc, cfg = plan.document, self.cfg
        if self.stop.is_set():
            return self._interrupted_record(doc, None, task, question, "document")
        pages: list[Page] = []
        try:
            for n in range(1, plan.pages + 1):
                pages.append(render_page(doc, n, cfg.render, cfg.password))
        except InputError as e:
            if self._stopping(e):
                return self._interrupted_record(doc, None, task, question, "document")
            return self._record(doc, None, task, question, status=STATUS_FAILED, scope="document",
                                pages=list(range(1, plan.pages + 1)), error=ErrorInfo.from_exception(e))
        inked = [p for p in pages if not nothing_to_send(p)]  # blank pages are not sent to a model
        if not inked:
            return self._record(doc, None, task, question, status=STATUS_OK, answer="", blank=True,
                                scope="document", pages=[p.number for p in pages])
        pages = inked
        words = _Words(self, pages)
        text = _Lazy(lambda: "\n\n".join(f"[page {p.number}]\n{self._ocr_text(p, words)}" for p in pages))
        return self._answer_unit(plan, task, question, pages, text, scope="document", words=words)

    # -- one unit through the ladder ------------------------------------------------------
    def _answer_unit(self, plan: DocumentPlan, task: TaskSpec, question: str | None, pages: list[Page],
                     text: "_Lazy", *, caption: str = "", region: int | None = None,
                     page_number: int | None = None, scope: str = "page", words: "_Words | None" = None,
                     region_box: list[float] | None = None) -> Record:
        doc, cfg = plan.document, self.cfg
        number = None if scope == "document" else (page_number or pages[0].number)
        page_list = [p.number for p in pages] if scope == "document" else None
        key = self._cache_key(doc, number, page_list, region, task, question)
        hit = self.cache.get(key)
        if hit is not None:
            hit.document = doc.path  # the same bytes may sit under another name this time
            if hit.grounding is None or (cfg.grounding_ocr and hit.grounding.get("words") == "none"):
                self._ground(hit, words, region_box)  # answered before grounding, or before grounding_ocr
            if not hit.degraded or cfg.accept_degraded:
                return hit
        # A degraded answer from an earlier run: the rungs above it get another try; the
        # degraded answer stays only if they fail again.
        rungs = self.rungs if hit is None else self.rungs[:self._rung_index(hit)]
        where = f"{doc.path} page {number}" if number else doc.path
        t0 = time.perf_counter()
        acc = Accounting()
        tried: list[dict] = []
        base = dict(scope=scope, pages=page_list, region=region, planned_route=self.planned_route,
                    image=image_info(pages[0]) if len(pages) == 1 else None)
        for rung in rungs:
            if not self._applies(rung, task):
                continue
            if rung.unavailable:
                tried.append({"route": rung.route, "error": {"type": "unavailable", "message": rung.unavailable}})
                continue
            if rung.route == "local":
                rec = self._local(doc, pages[0], plan, task, tried, acc, base, words)
                if rec is not None:
                    self._ground(rec, words, region_box)
                    return self._done(key, self._ranked(rec, rung), t0)
                continue
            if not rung.breaker.allow():
                tried.append({"route": rung.route, "error": {"type": "circuit_open",
                              "message": f"{rung.spec.profile} endpoint failing; circuit breaker open"}})
                continue
            use_images = rung.route != ROUTE_TEXT_FALLBACK
            parts = self._parts(rung, scope, pages, text, tried)
            if parts is None:
                continue
            try:
                result = self._asker.answer(rung, task, question, parts, caption, acc)
            except BudgetExceeded as e:
                if hit is not None:
                    return self._kept(key, hit, tried, acc, t0)
                return self._done(None, self._record(
                    doc, number, task, question, status=STATUS_SKIPPED, fallback_reason=str(e),
                    error=ErrorInfo(BUDGET_EXCEEDED, f"{where}: not sent: {e}"), tried=tried,
                    **acc.fields(), **base), t0)
            except RungFailed as e:
                tried.append({"route": rung.route, "error": e.info})
                continue
            except Interrupted:
                return hit if hit is not None else self._interrupted_record(doc, number, task, question, scope)
            except BatchPending as e:  # --batch: the request waits in a batch job (pipeline/batchmode.py)
                e.claim(document=doc.path, sha256=doc.sha256, page=number, pages=page_list, task=task.kind,
                        question=question, region=region, cache_key=key)
                if hit is not None:  # an earlier degraded answer stays until the batch answers
                    return hit
                return self._done(None, self._record(
                    doc, number, task, question, status=STATUS_SKIPPED, error=ErrorInfo(BATCH_PENDING, f"{where}: {e}"),
                    tried=tried, **acc.fields(), **base), t0)
            ocr_body = result.pop(OCR_BODY, None)
            rec = self._record(doc, number, task, question, status=STATUS_OK, route=rung.route,
                               model=rung.model, provider=rung.spec.profile, tried=tried,
                               fallback_reason=reason(tried), **acc.fields(), **base, **result)
            if use_images and pages[0].has_text_layer and task.kind in ("transcribe", "ask"):
                rec.agreement, rec.flags = answers.cross_check(rec.answer or "", "\n".join(p.text for p in pages))
            if ocr_body is not None:
                rec.grounding = self._ocr_grounding(ocr_body, pages[0], words)
            if rec.grounding is None:
                self._ground(rec, words, region_box)
            return self._done(key, self._ranked(rec, rung), t0)
        if hit is not None:
            return self._kept(key, hit, tried, acc, t0)
        last = tried[-1]["error"] if tried else {"type": "no_route", "message": "no rung can serve this task"}
        return self._done(None, self._record(
            doc, number, task, question, status=STATUS_FAILED, tried=tried,
            error=ErrorInfo(last["type"], f"{where}: " + ("; ".join(f"{t['route']}: {t['error']['message']}"
                                                                    for t in tried) or last["message"])),
            **acc.fields(), **base), t0)

    def _cache_key(self, doc: Document, number: int | None, page_list: list[int] | None, region: int | None,
                   task: TaskSpec, question: str | None) -> str:
        """The unit's answer cache key: everything that can change its answer, the ladder included."""
        cfg = self.cfg
        return cache_key(
            sha256=doc.sha256, page=number, pages=page_list, region=region,
            render=dataclasses.asdict(cfg.render), task=task.kind, prompt=task.prompt, question=question,
            schema=task.schema, system=cfg.system_prompt, temperature=cfg.temperature, seed=cfg.seed,
            max_tokens=task.max_tokens,
            ladder=[(r.route, r.spec.profile if r.spec else None, r.model) for r in self.rungs],
        )

    def _parts(self, rung: Rung, scope: str, pages: list[Page], text: "_Lazy", tried: list[dict]) -> list | None:
        """What a remote rung is sent (request_plan.py): the page images, or for the text rung
        the pages' text; None (the reason added to ``tried``) when the text rung has no text."""
        if rung.route != ROUTE_TEXT_FALLBACK:
            return (list(request_plan.document_parts(pages)) if scope == "document"
                    else [request_plan.page_part(pages[0])])
        try:
            source_text = text.get()
        except OCRError as e:
            tried.append({"route": rung.route, "error": ErrorInfo.from_exception(e).__dict__})
            return None
        if not source_text.strip():
            tried.append({"route": rung.route, "error": {"type": "no_text",
                          "message": "page has no text layer and OCR found no text"}})
            return None
        return [request_plan.text_part(source_text)]

    def _rung_index(self, rec: Record) -> int:
        """Where on the ladder a record's answer came from (local-text/local-ocr: the local rung)."""
        route = "local" if (rec.route or "").startswith("local") else rec.route
        return next((i for i, r in enumerate(self.rungs) if r.route == route), len(self.rungs))

    def _ranked(self, rec: Record, rung: Rung) -> Record:
        rec.degraded = rung is not self.rungs[0]
        if rec.degraded and not rec.fallback_reason:
            rec.fallback_reason = f"{self.planned_route}: not tried"
        return rec

    def _kept(self, key: str, hit: Record, tried: list[dict], acc: "Accounting", t0: float) -> Record:
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

    def _ground(self, rec: Record, words: "_Words | None", region_box: list[float] | None) -> None:
        """Locate the answer on its page(s): ``rec.grounding`` (pipeline/grounding.py)."""
        if words is None or rec.status != STATUS_OK:
            return
        try:
            rec.grounding = grounding.ground_record(rec, words.get(), region_box)
        except Exception as e:  # noqa: BLE001 - an answer that cannot be located is still an answer
            rec.grounding = {"located": 0, "total": 0, "share": None, "words": "none", "items": [],
                             "error": f"{type(e).__name__}: {e}"[:300]}

    @staticmethod
    def _ocr_grounding(body: dict, page: Page, words: "_Words | None") -> dict | None:
        """The OCR endpoint's blocks as the answer's grounding, in the page's coordinates."""
        from .pagewords import page_frame

        turn = getattr(words, "turn", 0)
        width, height, unit, _ = page_frame(page)
        if page.words is None and turn in (90, 270):
            width, height = height, width  # an image's frame is its pixels: those of the page before it was turned
        return grounding.ground_ocr(body, page.number, (width, height, unit), turn)

    def _local(self, doc, page, plan, task, tried, acc, base, words=None) -> Record | None:
        try:
            ans = local.transcribe(page, self.cfg.render, plan.running_lines, self.cfg.password, options=self.cfg.ocr)
            if words is not None:
                words.offer(page.number, ans.words)
        except OCRError as e:
            tried.append({"route": "local", "error": ErrorInfo.from_exception(e).__dict__})
            return None
        if not ans.markdown.strip():  # the page has ink (blank pages never get here)
            tried.append({"route": "local", "error": {"type": "no_text_found", "message": (
                "the local engine found no text on a page that is not blank (a photo or a drawing?)")}})
            return None
        return self._record(doc, page.number, task, None, status=STATUS_OK, route=ans.route, answer=ans.markdown,
                            model=ans.model, provider="local", tried=tried, fallback_reason=reason(tried),
                            flags=ans.flags, **acc.fields(), **base)

    def _answer_call(self, rung: Rung, req: ChatRequest, acc: "Accounting", raw_errors=()) -> ChatResponse:
        """``_call``, and an answer that repeats itself (a loop until max_tokens, a known failure
        of vision models on dense tables) is asked once more with other sampling; a second loop
        fails the rung like an empty answer."""
        resp = self._call(rung, req, acc, raw_errors)
        loop = answers.degenerate(resp.text or "")
        if loop is None:
            return resp
        retry = dataclasses.replace(req, temperature=0.7 if (req.temperature or 0) < 0.5 else 0.2,
                                    seed=(req.seed or 0) + 1)
        resp = self._call(rung, retry, acc, raw_errors)
        again = answers.degenerate(resp.text or "")
        if again is not None:
            raise RungFailed(answers.AnswerError(f"{again}, also when asked again with other sampling",
                                                  "degenerate_answer"))
        return resp

    def _call(self, rung: Rung, req: ChatRequest, acc: "Accounting", raw_errors=()) -> ChatResponse:
        """One request on a rung, within the budget; provider errors become RungFailed
        (except ``raw_errors``, which the caller handles)."""
        from .providers.errors import FinalError, ModelGoneError, ProviderError, RetryableError

        if self.stop.is_set():
            raise Interrupted()
        # The exact prompt count costs milliseconds a page (mistral_common); only a limit needs it.
        reserved = self.budget.reserve(
            worst_case_cost(req, rung.model, self.prices) if self.budget.limit is not None else 0.0)
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
        self.budget.settle(reserved, actual)
        acc.add(resp, actual)
        return resp

    def _record(self, doc: Document, page: int | None, task: TaskSpec, question: str | None, **kw) -> Record:
        kw.setdefault("planned_route", self.planned_route)
        return Unit(doc.path, doc.sha256, page, task, question).record(**kw)


class _Words:
    """The words of the pages a unit is answered from: the text layer's where it is real; else
    OCR's, once a step of the ladder has OCRed the page (the local engine, the text rung), or
    when the job asks for OCR just to ground answers (``grounding_ocr``)."""

    def __init__(self, router: "Router", pages: list[Page]) -> None:
        self.router, self.pages = router, pages
        self.turn = 0  # degrees the page was turned before a model saw it (page scope)
        force = router.cfg.ocr.force
        self.found: dict[int, Any] = {p.number: p.words if p.has_text_layer and not force else None for p in pages}

    def offer(self, number: int, words) -> None:
        if words is not None and self.found.get(number) is None:
            self.found[number] = words

    def get(self) -> dict[int, Any]:
        if self.router.cfg.grounding_ocr:
            for p in self.pages:
                if self.found.get(p.number) is None and not nothing_to_send(p):
                    try:
                        self.router._ocr_text(_as_scan(p), self)
                    except OCRError:
                        continue
        return self.found


def _as_scan(page: Page) -> Page:
    """The page as the local engine sees a page without a text layer (so it OCRs it)."""
    return page if not page.has_text_layer else dataclasses.replace(page, text="")


def _region_box(region, page: Page) -> list[float]:
    """A chart region's box in page coordinates (the whole page for a chart image)."""
    if region.source == "whole-image":
        from .pagewords import page_frame

        w, h, _, _ = page_frame(page)
        return [0.0, 0.0, w, h]
    return [float(v) for v in region.bbox]


class _Lazy:
    """A value computed on first use (OCR text is only needed by the text rung)."""

    def __init__(self, fn) -> None:
        self.fn, self.done, self.value = fn, False, None

    def get(self):
        if not self.done:
            self.value, self.done = self.fn(), True
        return self.value


def failed_record(plan: DocumentPlan, number: int | None, task: TaskSpec, exc: BaseException,
                  question: str | None = None) -> Record:
    """The record for a unit whose step raised unexpectedly."""
    return Unit(plan.document.path, plan.document.sha256, number, task, question).failed(exc)
