"""The page worker: renders a page (or a whole document's pages), turns a scan upright, keeps
its words, settles blank pages and pages without a chart at once, crops a page's charts, and
hands each unit of work to the ladder walk (pipeline/walk.py), on page threads of its own
(pipeline/pagethreads.py), the run's first pages possibly ahead of the flow (``prefetch``).
Every page ends as exactly one record per page-scope unit, whatever its step raised.
"""

from __future__ import annotations

import threading
from typing import Any

from . import request_plan
from .cache import AnswerCache
from .config import EndpointSpec, RunConfig, TaskSpec
from .errors import InputError
from .ladder import Rung
from .pagethreads import PageThreads
from .plan import DocumentPlan
from .preflight import PreflightReport, ladder_plan
from .records import NO_CHART, STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, Document, ErrorInfo, Page, Record
from .render import render_page
from .request_plan import nothing_to_send
from .runcontext import RunContext
from .unitpages import Lazy, UnitPages, Words, ocr_text
from .units import Unit, units_of
from .walk import Walk, image_info, serves

RENDER_AHEAD = 2  # page threads beyond the request concurrency (bench/README.md, throughput)
STOP_NOTICE_S = 1.0  # how long a page whose worker died waits to learn whether the run is stopping


def page_threads(cfg: RunConfig) -> int:
    """The threads that answer pages: ``concurrency`` for requests, plus RENDER_AHEAD that render
    the next pages while the others wait on the model (remote routes only)."""
    return cfg.concurrency + (RENDER_AHEAD if cfg.endpoint.remote else 0)


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
        self.closed = False
        self.cache = AnswerCache(cfg.cache_path(), cfg.cache)
        self.context = context or RunContext.for_run(cfg)
        self.budget = self.context.budget
        self._make_client = make_client
        self._lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self.rungs = self._build_rungs()
        self.walk = Walk(cfg, self.rungs, self.cache, self.context, self.stop)  # one unit up the ladder (walk.py)
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
            key = (id(plan.spec), plan.dialect)  # the OCR rung: Mistral's /v1/ocr on the same endpoint
            if key not in clients:
                clients[key] = self._client_for(plan.spec, plan.dialect)
            rungs.append(Rung(plan.route, plan.spec, plan.model, clients[key]))
        rungs.append(Rung("local", model=self.cfg.ocr.key(), kind="local"))  # OCR settings change local answers
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
        return [r for r in self.rungs if serves(self.cfg, r, task) and not r.unavailable]

    def close(self, wait: bool = True) -> None:
        """Stop the page threads (``wait=False``: a stopped run leaves requests in flight)."""
        self.closed = True
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
        return [self.interrupted_record(plan.document, number, t, q) for t in tasks for q in t.units()]

    def interrupted_record(self, doc: Document, number: int | None, task: TaskSpec, question: str | None) -> Record:
        """The record of one unit not started because the run was stopped."""
        return self.walk.interrupted(Unit(doc.path, doc.sha256, number, task, question))

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
        words = Words(cfg, [page])
        if nothing_to_send(page):
            self._words_seen(page, words)
            return [self._blank_record(doc, page, t, q) for t in page_tasks for q in t.units()]
        page, turn = self._upright(page)
        words.turn = turn  # OCR boxes are read on the turned image (pipeline/grounding.py ground_ocr)
        out = []
        given = UnitPages([page], Lazy(lambda: ocr_text(cfg, page, words)), words, running_lines=plan.running_lines)
        for task in page_tasks:
            for question in task.units():
                if task.kind == "chart":
                    out.extend(self._answer_charts(plan, page, task, words))
                else:
                    out.append(self.walk.answer(Unit(doc.path, doc.sha256, page.number, task, question), given))
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

    def _words_seen(self, page: Page, words: Words) -> None:
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

    def _answer_charts(self, plan: DocumentPlan, page: Page, task: TaskSpec, words: Words) -> list[Record]:
        from . import charts

        doc = plan.document
        regions = charts.chart_regions_for(doc, page.number, self.cfg.password)
        if not regions:
            return [self._record(doc, page.number, task, None, status=STATUS_SKIPPED, image=image_info(page),
                                 error=ErrorInfo(NO_CHART, f"{doc.path} page {page.number}: no chart found"))]
        out = []
        for region, crop in request_plan.chart_views(doc, page, regions, self.cfg):
            given = UnitPages([crop], Lazy(lambda c=crop: c.text), words, caption=region.caption, region=region.index,
                              region_box=_region_box(region, page), running_lines=plan.running_lines)
            out.append(self.walk.answer(Unit(doc.path, doc.sha256, page.number, task, None), given))
        return out

    # -- document scope -------------------------------------------------------------------
    def answer_document(self, plan: DocumentPlan, task: TaskSpec, question: str | None) -> Record:
        """One answer for a whole document: its pages go together, 8 images per request."""
        doc, cfg = plan.document, self.cfg
        if self.stop.is_set():
            return self.interrupted_record(doc, None, task, question)
        pages: list[Page] = []
        try:
            for n in range(1, plan.pages + 1):
                pages.append(render_page(doc, n, cfg.render, cfg.password))
        except InputError as e:
            if self._stopping(e):
                return self.interrupted_record(doc, None, task, question)
            return self._record(doc, None, task, question, status=STATUS_FAILED, scope="document",
                                pages=list(range(1, plan.pages + 1)), error=ErrorInfo.from_exception(e))
        inked = [p for p in pages if not nothing_to_send(p)]  # blank pages are not sent to a model
        if not inked:
            return self._record(doc, None, task, question, status=STATUS_OK, answer="", blank=True,
                                scope="document", pages=[p.number for p in pages])
        pages = inked
        words = Words(cfg, pages)
        text = Lazy(lambda: "\n\n".join(f"[page {p.number}]\n{ocr_text(cfg, p, words)}" for p in pages))
        return self.walk.answer(Unit(doc.path, doc.sha256, None, task, question),
                                UnitPages(pages, text, words, running_lines=plan.running_lines))

    def _record(self, doc: Document, page: int | None, task: TaskSpec, question: str | None, **kw) -> Record:
        return self.walk.record(Unit(doc.path, doc.sha256, page, task, question), **kw)


def _region_box(region, page: Page) -> list[float]:
    """A chart region's box in page coordinates (the whole page for a chart image)."""
    if region.source == "whole-image":
        from .pagewords import page_frame

        w, h, _, _ = page_frame(page)
        return [0.0, 0.0, w, h]
    return [float(v) for v in region.bbox]


def failed_record(plan: DocumentPlan, number: int | None, task: TaskSpec, exc: BaseException,
                  question: str | None = None) -> Record:
    """The record for a unit whose step raised unexpectedly."""
    return Unit(plan.document.path, plan.document.sha256, number, task, question).failed(exc)
