"""Batch mode (``--batch``, Mistral): the run plans and asks exactly as it would live, but the
planned route's requests go into a Mistral batch job at about half price, and a later run of
the same command collects the answers.

How: every request the page worker sends on the planned route's model goes through a
``BatchingClient`` instead of straight to the API. The client looks the request up by the
fingerprint of its wire body (the body the live client would send, so the same planner, cache
keys and JSON modes decide it):

* answered by a finished job: the job's answer is returned as the live answer would be, and the
  page worker parses, checks, grounds and caches it with the same code, at the batch price;
* in a job still queued or running: ``BatchPending``, the unit is recorded as pending;
* failed in a finished job (the item's error, or a job that failed as a whole): asked live now,
  at the live price (the ladder goes on from there as for any live error);
* anything else (new, or left unanswered by a job that expired or was cancelled): kept for this
  run's new job, and ``BatchPending``.

After the pages, :meth:`BatchRound.submit` writes the new jobs' items to the store
(pipeline/batchjobs.py) before uploading anything, uploads, creates the jobs and records them.
A run that opens the store first finishes whatever a killed run left half done, then polls the
jobs, saving finished jobs' output and error files whole before any answer is used. A cached
answer is never asked again, and a batch answer is read from the saved file, so nothing is paid
twice. Requests to other models (the text rung, merge requests) go live.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import batchjobs
from .batchjobs import FINISHED, PLANNED, SUBMITTED, UPLOADED, Item, JobEntry, JobStore
from .errors import PixtractError, UsageError
from .messages import ChatRequest, ChatResponse
from .outcome import BATCH_PENDING  # the error type of a pending unit's record (skipped, not failed)
from .prices import BUILTIN, PriceTable
from .providers.errors import ProviderError

log = logging.getLogger("pixtract.batch")
OCR_ENDPOINT = "/v1/ocr"  # a batch job of the OCR route (BatchJobIn.endpoint)


class BatchPending(PixtractError):
    """The unit's request waits in a batch job: it is recorded as pending, not failed."""

    type = BATCH_PENDING

    def __init__(self, message: str, pending: "_New | None" = None) -> None:
        super().__init__(message)
        self.pending = pending

    def claim(self, **unit: Any) -> None:
        """Name the unit this request answers (stored with the item before upload)."""
        if self.pending is not None:
            with self.pending.lock:
                self.pending.units.append(unit)


@dataclass
class _New:
    """A request kept for this run's new job."""

    fingerprint: str
    body: dict
    model: str
    units: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def fingerprint(body: dict) -> str:
    """The identity of a request: its wire body, canonical JSON, hashed."""
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class BatchRound:
    """One run's batch jobs: what the store's jobs answered, what still waits, and the new
    requests of this run. Thread-safe (the page threads ask it)."""

    def __init__(self, api, store: JobStore, model: str, *, timeout_hours: int = 24,
                 prices: PriceTable | None = None, ocr: bool = False) -> None:
        """``ocr``: the planned route is the OCR endpoint's (``--route ocr``): the jobs run on
        /v1/ocr and their answers are read as OCR answers."""
        self.api, self.store, self.model = api, store, model
        self.ocr = ocr
        self.timeout_hours = timeout_hours
        self.prices = prices or PriceTable.for_job(None, [model])
        self.batch_price = self.prices.get(model)
        self.live_price = BUILTIN.get(model)
        self._lock = threading.Lock()
        self.answered: dict[str, dict] = {}  # fingerprint -> chat completion body
        self.failed: dict[str, str] = {}  # fingerprint -> why the batch did not answer it
        self.waiting: dict[str, str] = {}  # fingerprint -> the job (name, status) it waits in
        self.new: dict[str, _New] = {}
        self.stats = {"from_batch": 0, "live_retries": 0, "pending": 0, "submitted": 0}
        self.submitted: list[JobEntry] = []

    # -- at the start: finish, poll, collect ---------------------------------------------------
    def refresh(self) -> None:
        """Finish what a killed run left half done, poll unfinished jobs, save finished jobs'
        files, and index every job's answers."""
        with self.store.exclusive():
            for entry in self.store.jobs():
                if entry.state == PLANNED:
                    entry = self._upload(entry)
                if entry.state == UPLOADED:
                    entry = self._create(entry)
                if entry.state == SUBMITTED:
                    self._poll(entry)
            self._index()

    def _upload(self, entry: JobEntry) -> JobEntry:
        """Upload a planned job's input file, unless a killed run already did (found by name)."""
        found = [f for f in self.api.list_files(purpose="batch", search=entry.upload_name)
                 if f.get("filename") == entry.upload_name]
        file_id = found[0]["id"] if found else self.api.upload(entry.upload_name,
                                                               self.store.input_bytes(entry.name))["id"]
        return self.store.update(entry.name, state=UPLOADED, input_file=file_id)

    def _create(self, entry: JobEntry) -> JobEntry:
        """Create the job, unless a killed run already did (found by its metadata)."""
        found = [j for j in self.api.list_jobs(model=entry.model)
                 if (j.get("metadata") or {}).get("pixtract_job") == entry.name]
        job = found[0] if found else self.api.create_job(
            [entry.input_file], entry.model, metadata={"pixtract_job": entry.name}, timeout_hours=self.timeout_hours,
            **({"endpoint": OCR_ENDPOINT} if self.ocr else {}))
        entry = self.store.update(entry.name, state=SUBMITTED, job_id=job["id"], status=job["status"],
                                  counts=_counts(job))
        self.store.drop_input(entry.name)  # the vendor holds it now; page images need not stay on disk twice
        return entry

    def _poll(self, entry: JobEntry) -> JobEntry:
        from .providers.batchapi import TERMINAL

        job = self.api.get_job(entry.job_id)
        if job["status"] not in TERMINAL:
            return self.store.update(entry.name, status=job["status"], counts=_counts(job))
        for kind, key in (("output", "output_file"), ("errors", "error_file")):
            if job.get(key):  # saved whole before the job counts as finished: a killed download is redone
                self.store.save_result(entry.name, kind, self.api.download(job[key]))
        return self.store.update(entry.name, state=FINISHED, status=job["status"], counts=_counts(job),
                                 errors=[e.get("message", "") for e in job.get("errors") or []])

    def _index(self) -> None:
        for entry in self.store.jobs():
            items = self.store.items(entry.name)
            if entry.state != FINISHED:
                for item in items.values():
                    self.waiting[item.fingerprint] = f"batch job {entry.job_id or entry.name} ({entry.status or 'not created yet'})"
                continue
            seen = set()
            for line in self.store.result_lines(entry.name, "output"):
                item = items.get(line.get("custom_id"))
                body = ((line.get("response") or {}).get("body"))
                if item is not None and isinstance(body, dict) and (line.get("response") or {}).get("status_code") == 200:
                    self.answered[item.fingerprint] = body
                    seen.add(item.custom_id)
            for line in self.store.result_lines(entry.name, "errors"):
                item = items.get(line.get("custom_id"))
                if item is not None and item.custom_id not in seen:
                    self.failed.setdefault(item.fingerprint, f"batch job {entry.job_id}: {_why(line)}")
                    seen.add(item.custom_id)
            if entry.status == "FAILED":  # the job failed as a whole: its items are asked live, not again in batch
                for item in items.values():
                    if item.custom_id not in seen:
                        self.failed.setdefault(item.fingerprint, f"batch job {entry.job_id} failed: "
                                                                 + ("; ".join(entry.errors) or "no reason given"))
            # items of a job that expired or was cancelled before answering them: asked again in batch
        for fp in self.answered:
            self.failed.pop(fp, None)
            self.waiting.pop(fp, None)

    # -- during the run --------------------------------------------------------------------------
    def has_answer(self, fp: str) -> bool:
        """Whether a finished job answered the request of this fingerprint."""
        with self._lock:
            return fp in self.answered

    def ask(self, body: dict, live, commit=None, fp: str | None = None) -> ChatResponse:
        """The answer to ``body`` (``fp``: its fingerprint, when the caller has it) from a
        finished job, a live answer (``live()``) for an item the batch failed, or BatchPending.
        ``commit()`` is called before a new request is kept for this run's job (it counts the
        request's worst case against the budget, or raises)."""
        fp = fp or fingerprint(body)
        with self._lock:
            done = self.answered.get(fp)
            why_failed = self.failed.get(fp)
            waiting = self.waiting.get(fp)
        if done is not None:
            return self._from_batch(done)
        if why_failed is not None:
            with self._lock:
                self.stats["live_retries"] += 1
            log.info("asking live: %s", why_failed)
            return live()
        if waiting is not None:
            with self._lock:
                self.stats["pending"] += 1
            raise BatchPending(f"waiting in {waiting}; the next run collects it")
        with self._lock:
            known = fp in self.new
        if not known and commit is not None:
            commit()
        with self._lock:
            pending = self.new.setdefault(fp, _New(fp, body, self.model))
            self.stats["pending"] += 1
        raise BatchPending("sent in a new batch job at the batch price; the next run collects it", pending)

    def _from_batch(self, body: dict) -> ChatResponse:
        from .providers.registry import ADAPTERS

        resp = ADAPTERS["mistral-ocr" if self.ocr else "mistral"](None).parse_response(body, {})
        if self.batch_price is not None:
            resp.usage.cost_usd = self.batch_price.cost(resp.usage)
        resp.attempts = 1
        with self._lock:
            self.stats["from_batch"] += 1
        return resp

    def live_cost(self, resp: ChatResponse) -> ChatResponse:
        """A live answer of the batched model, at the live price (the run's table has batch prices)."""
        if resp.usage.cost_usd is None and self.live_price is not None:
            resp.usage.cost_usd = self.live_price.cost(resp.usage)
        return resp

    # -- at the end: submit ----------------------------------------------------------------------
    def submit(self) -> list[JobEntry]:
        """This run's new requests as one job: items stored, then uploaded, then the job created."""
        from .providers.batchapi import input_line

        with self._lock:
            new = [n for n in self.new.values() if n.units]  # a request no unit claimed was not sent
            self.new = {}
        if not new:
            return []
        name = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
        items = [Item(n.fingerprint[:40], n.fingerprint, tuple(n.units)) for n in new]
        lines = [input_line(i.custom_id, n.body) for i, n in zip(items, new)]
        entry = JobEntry(name, self.model, len(items), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        with self.store.exclusive():
            self.store.plan(entry, items, lines)  # before anything leaves the machine
            entry = self._create(self._upload(entry))
        self.submitted.append(entry)
        self.stats["submitted"] += len(items)
        log.info("submitted %d requests in batch job %s", len(items), entry.job_id)
        return [entry]

    def summary(self) -> dict[str, Any]:
        """For the manifest: every job of the folder, and what this run did with them."""
        return {"model": self.model, **self.stats,
                "jobs": [{"name": j.name, "job_id": j.job_id, "state": j.state, "status": j.status,
                          "items": j.items, **j.counts} for j in self.store.jobs()]}

    def close(self) -> None:
        self.api.close()


class BatchingClient:
    """A chat client whose requests on the batched model go through the round; the others,
    and live retries, go to the real client. With ``budget``, a request kept for a new job
    counts its worst case at the batch price as spent by this run (the job will be paid)."""

    def __init__(self, inner, round_: BatchRound, budget=None, prices: PriceTable | None = None) -> None:
        self.inner, self.round, self.budget, self.prices = inner, round_, budget, prices
        self._last = threading.local()  # this thread's last request, its wire body and fingerprint

    def complete(self, request: ChatRequest, on_token=None, stream: bool = False) -> ChatResponse:
        model = self._model(request)
        if model != self.round.model:
            return self.inner.complete(request, on_token=on_token, stream=stream)
        self.inner.adapter.check_limits(request, model)
        body, fp = self._wire(request, model)
        return self.round.ask(body, lambda: self.round.live_cost(
            self.inner.complete(request, on_token=on_token, stream=stream)),
            commit=lambda: self._commit(request, model), fp=fp)

    def prepaid(self, request: ChatRequest) -> bool:
        """Whether a finished batch job already holds the answer to ``request`` (so asking costs
        this run nothing: the run that submitted the job spent its budget on it)."""
        model = self._model(request)
        return model == self.round.model and self.round.has_answer(self._wire(request, model)[1])

    def _wire(self, request: ChatRequest, model: str) -> tuple[dict, str]:
        """The request's wire body and fingerprint, made once although the page worker asks
        ``prepaid`` and then ``complete`` for the same request (an image body is megabytes)."""
        last = self._last
        if getattr(last, "request", None) is not request:
            body = self.inner.adapter.build_body(request, model, False)
            last.request, last.body, last.fp = request, body, fingerprint(body)
        return last.body, last.fp

    def _model(self, request: ChatRequest) -> str | None:
        ep = self.inner.endpoint
        return request.model or (ep.vision_model if request.has_images() else ep.text_model)

    def _commit(self, request: ChatRequest, model: str) -> None:
        if self.budget is None or self.budget.limit is None:
            return
        from .ladder import worst_case_cost

        worst = worst_case_cost(request, model, self.prices or self.round.prices)
        self.budget.settle(self.budget.reserve(worst), worst)  # BudgetExceeded: not submitted, skipped

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def wrap_clients(cfg, round_: BatchRound, context):
    """The ``make_client`` of a batch-mode run's page worker: the planned route's endpoint
    behind a BatchingClient, every other endpoint as it is."""
    from .providers import make_client

    def make(ep):
        client = make_client(ep)
        if ep.profile == cfg.endpoint.profile and ep.base_url == cfg.endpoint.base_url:
            return BatchingClient(client, round_, context.budget, context.prices)
        return client
    return make


def open_round(cfg, api=None) -> BatchRound:
    """The batch round of a run in batch mode: its store opened, half-done steps finished,
    unfinished jobs polled, finished jobs' files saved."""
    from .providers.batchapi import BatchAPI

    if cfg.endpoint.profile != "mistral":
        raise UsageError(f"--batch needs --profile mistral (Mistral's batch jobs); this job uses {cfg.profile!r}")
    ep = cfg.endpoint.endpoint(cfg.concurrency).resolved()
    ocr = cfg.route == "ocr"
    round_ = BatchRound(api or BatchAPI(ep), JobStore.for_run(cfg), cfg.ocr_model if ocr else ep.vision_model,
                        prices=cfg.prices_table(), ocr=ocr)
    try:
        round_.refresh()
    except ProviderError as e:  # going on blind would submit again what a job already holds
        round_.close()
        raise UsageError(f"--batch: the batch jobs in {round_.store.root} could not be checked ({e}); "
                         f"nothing was sent: run the same command again") from None
    return round_


def _counts(job: dict) -> dict[str, int]:
    return {k: int(job.get(k) or 0) for k in ("total_requests", "completed_requests", "succeeded_requests",
                                               "failed_requests")}


def _why(line: dict) -> str:
    err = line.get("error") or {}
    resp = line.get("response") or {}
    msg = err.get("message") if isinstance(err, dict) else str(err)
    return f"HTTP {resp.get('status_code', '?')}: {msg or 'no message'}"[:300]


__all__ = ["BATCH_PENDING", "BatchPending", "BatchRound", "BatchingClient", "batchjobs", "fingerprint", "open_round"]
