"""``pixtract estimate``: the input tokens and cost range of a run, before anything is sent.

The requests counted are the run's own, built by the run's planner (pipeline/request_plan.py)
from the same rendered inputs: blank pages left out, scans turned upright, charts as the crops
that chart detection finds (a page without a chart sends nothing), a document in chunks of 8
page images. They are the planned route's (the first rung's) and are counted with
mistral_common (pipeline/tokens.py), as the API bills them. Every request's input tokens are
exact, but one kind: the merge request of a document-scope ``ask`` over more than 8 pages,
whose text is the chunks' answers. It is counted at its upper bound, each chunk answer at its
``max_tokens`` (MERGE_JOIN_SLACK covers re-tokenising the answers inside the merge prompt).

On the OCR route (``--route ocr``) a request is billed by the pages it sends, one per page
image, at the annotated price for ``extract`` (its JSON Schema goes as the document
annotation), and no token: the cost is exact, the same from "every answer empty" to "every
answer at max_tokens".

Not counted: what only a failure or a bad answer brings (a fallback rung, the repair turn of an
invalid extraction, a second ask after a looping answer, a resend in another JSON mode after an
endpoint refuses JSON Schema). Answers in the cache are counted as if sent. Output tokens are
an upper bound: every answer at ``max_tokens``.

Pages stream through one at a time; a document-scope unit holds at most one chunk of pages.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from . import prompts, tokens
from .config import RunConfig, TaskSpec
from .discover import DiscoveryFailure, discover
from .errors import InputError, UsageError
from .messages import ChatRequest
from .records import ROUTE_OCR, ROUTE_VISION, Document, Page
from .render import count_pages, render_page
from .request_plan import (
    Chunks, Part, chart_views, merge_model, merge_request, merges_by_request, nothing_to_send, page_part, pages_billed,
    request, upright,
)
from .workers import WorkerSettings, running_workers

MERGE_JOIN_SLACK = 2  # tokens per chunk answer: where it meets the merge prompt's own text

NOTE_MERGE = ("merge requests (document-scope ask over more than 8 pages) are counted at their upper bound: "
              "every chunk answer at max_tokens")
NOTE_NOT_COUNTED = ("not counted: requests only a failure or a bad answer brings (fallback rungs, repair turns, "
                    "asking again after a looping answer); cached answers are counted as if sent")


@dataclass
class _Tally:
    """Requests, tokens and cost of a document (or of one part of it)."""

    requests: int = 0
    input_tokens: int = 0  # exact, plus the merge requests' upper bound
    max_output_tokens: int = 0
    merge_requests: int = 0
    merge_input_tokens_max: int = 0  # the part of input_tokens that is an upper bound
    cost_min: float = 0.0  # input only, every answer empty
    cost_max: float = 0.0  # every answer at max_tokens
    billed_pages: int = 0  # pages a per-page API bills (the OCR route): exact

    def add(self, req: ChatRequest, model: str, prices, answers_max: int = 0) -> None:
        """One request; ``answers_max``: tokens its text gains at most from earlier answers."""
        price = prices.get(model)
        self.requests += 1
        if price.by_page:  # the OCR endpoint bills the pages it reads, no token, whatever the answer
            pages, annotated = pages_billed(req)
            self.billed_pages += pages
            self.cost_min += price.pages_cost(pages, annotated)
            self.cost_max += price.pages_cost(pages, annotated)
            return
        n = tokens.estimate_prompt_tokens(req, model)
        out = req.max_tokens or 0
        self.input_tokens += n + answers_max
        self.max_output_tokens += out
        self.cost_min += n * price.input_per_m / 1e6
        self.cost_max += ((n + answers_max) * price.input_per_m + out * price.output_per_m) / 1e6
        if answers_max:
            self.merge_requests += 1
            self.merge_input_tokens_max += n + answers_max

    def merge(self, other: "_Tally") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("cost")}
        return {**d, "cost_usd_min": round(self.cost_min, 6), "cost_usd_max": round(self.cost_max, 6)}


@dataclass
class _Route:
    """The planned route's models and the job's prices."""

    model: str
    merge_model: str
    prices: Any


def estimate(cfg: RunConfig) -> dict[str, Any]:
    """Per document and in total: the requests of the planned route, their input tokens (exact;
    merge requests at their upper bound) and cost from nothing (empty answers) to everything
    (every answer at max_tokens)."""
    route = _route(cfg)
    docs, total = [], _Tally()
    with running_workers(WorkerSettings.for_run(cfg, 1)):  # MuPDF in a killable process
        for item in discover(cfg.inputs):
            if isinstance(item, DiscoveryFailure):
                docs.append({"document": item.path, "error": str(item.error)})
                continue
            try:
                pages = count_pages(item, cfg.password)
            except InputError as e:
                docs.append({"document": item.path, "error": str(e)})
                continue
            tally, unreadable = _document(item, pages, cfg, route)
            total.merge(tally)
            docs.append({"document": item.path, "pages": pages, **tally.as_dict(),
                         **({"unreadable_pages": unreadable} if unreadable else {})})
    price = route.prices.get(route.model)
    notes = [NOTE_MERGE] if total.merge_requests else []
    return {"profile": cfg.profile, "model": route.model, "tasks": [t.kind for t in cfg.tasks],
            "price_per_million": {"input": price.input_per_m, "output": price.output_per_m},
            **({"price_per_page": {"page": price.per_page, "annotated_page": price.pages_cost(1, 1)}}
               if price.by_page else {}),
            "documents": docs, "total": total.as_dict(), "notes": [*notes, NOTE_NOT_COUNTED]}


def _route(cfg: RunConfig) -> _Route:
    from .preflight import ladder_plan
    from .prices import PRICE_HINT

    if not cfg.endpoint.remote:
        raise UsageError("estimate needs a model profile (e.g. --profile mistral); the local profile costs nothing")
    rungs = ladder_plan(cfg)
    if not rungs or rungs[0].route not in (ROUTE_VISION, ROUTE_OCR):
        raise UsageError(f"estimate prices the vision route; profile {cfg.profile} has no vision model "
                         f"(give one with --vision-model)")
    prices = cfg.prices_table()
    route = _Route(rungs[0].model, merge_model(rungs, rungs[0].model), prices)
    merging = any(merges_by_request(t) and t.scope == "document" for t in cfg.tasks)
    for model in {route.model, *([route.merge_model] if merging else [])}:
        if prices.get(model) is None:  # prices are never guessed
            raise UsageError(f"no price for model {model}, so no cost can be estimated; {PRICE_HINT}")
    return route


def _document(doc: Document, pages: int, cfg: RunConfig, route: _Route) -> tuple[_Tally, list[int]]:
    """The requests of one document, its pages rendered one at a time, as the run renders them.
    A page that cannot be rendered sends nothing, and then neither does a document-scope unit
    (the run fails both unsent)."""
    page_units = [(t, q) for t in cfg.tasks if t.scope == "page" for q in t.units()]
    doc_units = [(t, q, Chunks()) for t in cfg.tasks if t.scope == "document" for q in t.units()]
    tally, whole_doc, unreadable = _Tally(), _Tally(), []
    for number in range(1, pages + 1):
        try:
            page = render_page(doc, number, cfg.render, cfg.password)
        except InputError:
            unreadable.append(number)
            continue
        if nothing_to_send(page):
            continue
        for task, question, chunks in doc_units:
            part = chunks.add(page)
            if part is not None:
                whole_doc.add(request(cfg, task, part, question=question, model=route.model), route.model, route.prices)
        if page_units:
            _page(doc, page, page_units, cfg, route, tally)
    for task, question, chunks in doc_units:
        _close(task, question, chunks, cfg, route, whole_doc)
    if not unreadable:
        tally.merge(whole_doc)
    return tally, unreadable


def _page(doc: Document, page: Page, units: list, cfg: RunConfig, route: _Route, tally: _Tally) -> None:
    """The page-scope requests of one page: the page upright, or each chart's crop."""
    from .charts import chart_regions_for

    shown, _ = upright(page, cfg)
    for task, question in units:
        if task.kind != "chart":
            tally.add(request(cfg, task, page_part(shown), question=question, model=route.model),
                      route.model, route.prices)
            continue
        try:
            regions = chart_regions_for(doc, page.number, cfg.password)
            for region, crop in chart_views(doc, shown, regions, cfg):
                tally.add(request(cfg, task, page_part(crop), caption=region.caption, model=route.model),
                          route.model, route.prices)
        except InputError:
            continue  # the run fails this page's charts unsent


def _close(task: TaskSpec, question: str | None, chunks: Chunks, cfg: RunConfig, route: _Route,
           tally: _Tally) -> None:
    """A document-scope unit's last chunk, and its merge request at the upper bound."""
    last: Part | None = chunks.close()
    if last is not None:
        tally.add(request(cfg, task, last, question=question, model=route.model), route.model, route.prices)
    if chunks.count > 1 and merges_by_request(task):
        chunk_max = prompts.max_tokens(task)
        req = merge_request(cfg, task, question, [""] * chunks.count, model=route.merge_model)
        tally.add(req, route.merge_model, route.prices, answers_max=chunks.count * (chunk_max + MERGE_JOIN_SLACK))


def format_estimate(r: dict[str, Any]) -> str:
    def money(v):
        return f"${v:,.4f}"

    lines = [f"estimate for {r['profile']} / {r['model']}, tasks: {', '.join(r['tasks'])}"]
    for d in r["documents"]:
        if "error" in d:
            lines.append(f"  {d['document']}: cannot read ({d['error']})")
            continue
        lines.append(f"  {d['document']}: {d['pages']} page{'s' if d['pages'] != 1 else ''}, {d['requests']} requests, "
                     f"{d['input_tokens']:,} input tokens{_bounded(d)}, {money(d['cost_usd_min'])} to "
                     f"{money(d['cost_usd_max'])}")
        if d.get("unreadable_pages"):
            lines.append(f"    pages that cannot be rendered send nothing: {d['unreadable_pages']}")
    t = r["total"]
    lines.append(f"total: {t['requests']} requests, {t['input_tokens']:,} input tokens "
                 f"({'exact' if not t['merge_requests'] else _bounded(t).strip(' ()')}), "
                 f"up to {t['max_output_tokens']:,} output tokens; cost {money(t['cost_usd_min'])} "
                 f"(every answer empty) to {money(t['cost_usd_max'])} (every answer at max_tokens)")
    if t.get("billed_pages"):
        lines.append(f"pages billed by the OCR endpoint: {t['billed_pages']:,} (exact; ${t['cost_usd_max']:,.4f})")
    lines += [f"note: {n}" for n in r.get("notes", [])]
    return "\n".join(lines)


def _bounded(d: dict[str, Any]) -> str:
    if not d["merge_requests"]:
        return ""
    exact = d["input_tokens"] - d["merge_input_tokens_max"]
    return (f" ({exact:,} exact + at most {d['merge_input_tokens_max']:,} for "
            f"{d['merge_requests']} merge request{'s' if d['merge_requests'] > 1 else ''})")
