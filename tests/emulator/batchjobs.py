"""Mistral's files and batch-jobs APIs in the emulator (the vendor's OpenAPI document:
``/v1/files``, ``/v1/files/{file_id}``, ``/v1/files/{file_id}/content``, ``/v1/batch/jobs``,
``/v1/batch/jobs/{job_id}``, ``/v1/batch/jobs/{job_id}/cancel``).

A job's life is computed from the clock whenever it is looked at (no background thread):
QUEUED for the first tenth of ``batch_delay``, RUNNING until ``batch_delay`` has passed (items
are answered in input order as the run goes on), then SUCCESS, or FAILED when no item
succeeded. A job still running after ``timeout_hours`` (an emulated hour lasts
``batch_hour_s`` seconds) ends TIMEOUT_EXCEEDED; a cancel request makes it
CANCELLATION_REQUESTED, then CANCELLED ``batch_cancel_delay`` seconds later. Items answered
before a job stops are in its output file; the others are in no file (the job's counters say
how many). Each item's body is checked like a live request (schema, model, images, context)
and answered by the same model logic as live chat; ``batch_item_failure_rate`` of the items
fail on purpose (chosen by their custom_id and the seed, so a rerun fails the same ones).

Design choices where the vendor's document says nothing [UNVERIFIED]: output and error lines
are ``{"id", "custom_id", "response": {"status_code", "body"}, "error"}`` (the shape the SDKs
read); a line the emulator cannot parse fails the whole job with the line named in ``errors``;
unknown fields in a job or an upload form are refused with 422 ``extra_forbidden`` like the
chat endpoint's ``additionalProperties: false``, although BatchJobIn does not declare it.
"""
from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from pixtract.messages import Usage
from pixtract.tokens import count_text_tokens, estimate_prompt_tokens
from tests.emulator.skins import ALIASES, CONTEXT, Reject, validator

STATUSES = ("QUEUED", "RUNNING", "SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLATION_REQUESTED", "CANCELLED")
TERMINAL = {"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"}
UPLOAD_FIELDS = {"file", "purpose", "expiry", "visibility"}  # MultiPartBodyParams of POST /v1/files
PURPOSES = ("fine-tune", "batch", "ocr")  # FilePurpose
VISIBILITIES = ("workspace", "user")
ENDPOINTS = ("/v1/chat/completions", "/v1/ocr")  # the batch endpoints the emulator answers (ApiEndpoint has more)

CONFIG = {
    "batch_delay": 0.0,  # seconds from creation to the end of a job's run
    "batch_item_failure_rate": 0.0,  # share of items that fail (500) on purpose
    "batch_hour_s": 3600.0,  # seconds an emulated hour lasts (timeout_hours are counted in these)
    "batch_cancel_delay": 0.0,  # seconds from a cancel request to CANCELLED
    "batch_download_s": 0.0,  # seconds a file download takes (its bytes trickle out: a test can kill mid-way)
}


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int
    sample_type: str
    source: str
    visibility: str = "workspace"
    expiry: int | None = None
    deleted: bool = False

    def out(self, deleted_field: bool = False) -> dict:
        body = {"id": self.id, "object": "file", "bytes": len(self.content), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "sample_type": self.sample_type,
                "num_lines": self.content.count(b"\n") + (not self.content.endswith(b"\n") and bool(self.content)),
                "mimetype": "application/jsonl", "source": self.source, "signature": None,
                "expires_at": self.created_at + self.expiry * 3600 if self.expiry else None,
                "visibility": self.visibility}
        if deleted_field:
            body["deleted"] = self.deleted
        return body


@dataclass
class Job:
    id: str
    input_files: list[str]
    endpoint: str
    model: str
    metadata: dict | None
    timeout_hours: int
    items: list[dict]  # {"custom_id", "body"} in input order
    created: float  # monotonic
    created_at: int  # epoch seconds
    problems: list[str] = field(default_factory=list)  # a job that cannot run: FAILED with these
    done: list[dict] = field(default_factory=list)  # output or error lines of the items answered so far
    cancel_at: float | None = None
    status: str = "QUEUED"
    started_at: int | None = None
    completed_at: int | None = None
    output_file: str | None = None
    error_file: str | None = None


class BatchService:
    """The files and jobs of one emulator (cleared by its reset)."""

    def __init__(self, emu) -> None:
        self.emu = emu
        self.lock = threading.RLock()
        self.files: dict[str, StoredFile] = {}
        self.jobs: dict[str, Job] = {}
        self.downloads = 0  # file downloads started (a test waits for one to kill its client)

    def cfg(self, key: str):
        return self.emu.config.get(key, CONFIG[key])

    # -- files --------------------------------------------------------------------------
    def upload(self, headers, raw: bytes) -> dict:
        form = _multipart(headers, raw)
        extra = sorted(set(form) - UPLOAD_FIELDS)
        if extra:
            raise _unprocessable([_extra(["body", k], form[k][1]) for k in extra])
        if "file" not in form or form["file"][0] is None:
            raise _unprocessable([{"type": "missing", "loc": ["body", "file"], "msg": "Field required",
                                   "input": None}])
        purpose = _text(form.get("purpose")) or "fine-tune"
        if purpose not in PURPOSES:
            raise _unprocessable([_enum(["body", "purpose"], purpose, PURPOSES)])
        visibility = _text(form.get("visibility")) or "workspace"
        if visibility not in VISIBILITIES:
            raise _unprocessable([_enum(["body", "visibility"], visibility, VISIBILITIES)])
        expiry = _text(form.get("expiry"))
        try:
            expiry_h = int(expiry) if expiry not in (None, "") else None
        except ValueError:
            raise _unprocessable([{"type": "int_parsing", "loc": ["body", "expiry"],
                                   "msg": "Input should be a valid integer", "input": expiry}]) from None
        name, content = form["file"]
        f = StoredFile(str(uuid.uuid4()), name or "upload.jsonl", purpose, content, int(time.time()),
                       "batch_request" if purpose == "batch" else "instruct", "upload", visibility, expiry_h)
        with self.lock:
            self.files[f.id] = f
        return f.out()

    def file(self, file_id: str) -> StoredFile:
        with self.lock:
            f = self.files.get(file_id)
        if f is None or f.deleted:
            raise Reject(404, {"detail": "File not found"}, outcome="not_found")
        return f

    def list_files(self, query: dict) -> dict:
        page, size = int(_q(query, "page", 0)), int(_q(query, "page_size", 100))
        purpose, search = _q(query, "purpose"), _q(query, "search")
        with self.lock:
            files = [f for f in self.files.values() if not f.deleted and (purpose is None or f.purpose == purpose)
                     and (search is None or search in f.filename)]
        files.sort(key=lambda f: f.created_at, reverse=True)
        return {"data": [f.out() for f in files[page * size:(page + 1) * size]], "object": "list",
                "total": len(files)}

    def delete(self, file_id: str) -> dict:
        f = self.file(file_id)
        f.deleted = True
        return {"id": f.id, "object": "file", "deleted": True}

    # -- jobs ---------------------------------------------------------------------------
    def create(self, body: dict, skin) -> dict:
        errors = sorted(validator("mistral", "BatchJobIn").iter_errors(body), key=lambda e: list(e.absolute_path))
        known = set((validator("mistral", "BatchJobIn").schema["$defs"]["BatchJobIn"]).get("properties", {}))
        detail = [_extra(["body", k], body[k]) for k in body if k not in known]
        detail += [{"type": str(e.validator), "loc": ["body", *e.absolute_path], "msg": e.message[:200],
                    "input": None} for e in errors]
        if detail:
            raise _unprocessable(detail)
        if body["endpoint"] not in ENDPOINTS:
            raise skin.reject(400, f"endpoint {body['endpoint']} is not served by this emulator in batch jobs")
        model = body.get("model")
        if not model:
            raise skin.reject(400, f"model is required for a batch job on {body['endpoint']}")
        if ALIASES.get(model, model) in self.emu.config["retired_models"]:
            raise skin.model_gone(model)
        if ALIASES.get(model, model) not in self.emu._models("mistral"):
            raise skin.unknown_model(model)
        items, problems = [], []
        for fid in body.get("input_files") or []:
            with self.lock:
                f = self.files.get(fid)
            if f is None or f.deleted:
                raise Reject(404, {"detail": f"File {fid} not found"}, outcome="not_found")
            if f.purpose != "batch":
                raise skin.reject(400, f"file {fid} has purpose {f.purpose!r}, not 'batch'")
            for n, line in enumerate(f.content.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    assert isinstance(item, dict) and isinstance(item.get("body"), dict)
                except (ValueError, AssertionError):
                    problems.append(f"{f.filename} line {n}: not a JSON object with a 'body' object")
                    continue
                items.append({"custom_id": item.get("custom_id"), "body": item["body"]})
        items += [{"custom_id": r.get("custom_id"), "body": r["body"]} for r in body.get("requests") or []]
        if not items and not problems:
            raise skin.reject(400, "a batch job needs input_files or requests with at least one item")
        ids = [i["custom_id"] for i in items if i["custom_id"] is not None]
        if len(ids) != len(set(ids)):
            problems.append("custom_id values repeat")
        job = Job(str(uuid.uuid4()), list(body.get("input_files") or []), body["endpoint"], model,
                  body.get("metadata"), int(body.get("timeout_hours", 24)), items, time.monotonic(),
                  int(time.time()), problems)
        with self.lock:
            self.jobs[job.id] = job
            return self.out(job)

    def job(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise Reject(404, {"detail": "Batch job not found"}, outcome="not_found")
        return job

    def get(self, job_id: str, inline: bool = False) -> dict:
        job = self.job(job_id)
        with self.lock:
            self.advance(job)
            out = self.out(job)
        if inline:
            out["outputs"] = [line for line in job.done if line["error"] is None]
        return out

    def list_jobs(self, query: dict) -> dict:
        page, size = int(_q(query, "page", 0)), int(_q(query, "page_size", 100))
        statuses = query.get("status")
        model = _q(query, "model")
        with self.lock:
            jobs = list(self.jobs.values())
            for job in jobs:
                self.advance(job)
            jobs = [j for j in jobs if (not statuses or j.status in statuses) and (model is None or j.model == model)]
            jobs.sort(key=lambda j: j.created, reverse=_q(query, "order_by", "-created") == "-created")
            return {"data": [self.out(j) for j in jobs[page * size:(page + 1) * size]], "object": "list",
                    "total": len(jobs)}

    def cancel(self, job_id: str) -> dict:
        job = self.job(job_id)
        with self.lock:
            self.advance(job)
            if job.status not in TERMINAL and job.cancel_at is None:
                job.cancel_at = time.monotonic() + float(self.cfg("batch_cancel_delay"))
                job.status = "CANCELLATION_REQUESTED"
            self.advance(job)
            return self.out(job)

    # -- a job's life -------------------------------------------------------------------
    def advance(self, job: Job) -> None:
        """Bring a job's status, answered items and files up to the present."""
        if job.status in TERMINAL:
            return
        now = time.monotonic()
        if job.problems:
            return self._end(job, "FAILED")
        delay = float(self.cfg("batch_delay"))
        deadline = job.created + job.timeout_hours * float(self.cfg("batch_hour_s"))
        stop = min(now, deadline, job.cancel_at if job.cancel_at is not None else now)
        start = job.created + delay * 0.1
        if job.started_at is None and stop >= start:
            job.started_at = job.created_at + int(delay * 0.1)
        share = 1.0 if delay <= 0 else max(0.0, min(1.0, (stop - start) / (delay * 0.9)))
        due = len(job.items) if stop >= job.created + delay else int(len(job.items) * share)
        while len(job.done) < due:
            job.done.append(self._answer(job, job.items[len(job.done)]))
        if job.cancel_at is not None and now >= job.cancel_at:
            return self._end(job, "CANCELLED")
        if len(job.done) == len(job.items) and now >= job.created + delay:
            return self._end(job, "SUCCESS" if any(d["error"] is None for d in job.done) else "FAILED")
        if now >= deadline:
            return self._end(job, "TIMEOUT_EXCEEDED")
        if job.cancel_at is not None:
            job.status = "CANCELLATION_REQUESTED"
        elif job.started_at is not None:
            job.status = "RUNNING"

    def _end(self, job: Job, status: str) -> None:
        job.status, job.completed_at = status, int(time.time())
        if job.started_at is None:
            job.started_at = job.completed_at
        ok = [d for d in job.done if d["error"] is None]
        bad = [d for d in job.done if d["error"] is not None]
        if ok:
            job.output_file = self._result_file(job, ok, "batch_result")
        if bad:
            job.error_file = self._result_file(job, bad, "batch_error")

    def _result_file(self, job: Job, lines: list[dict], sample_type: str) -> str:
        content = "".join(json.dumps(d) + "\n" for d in lines).encode()
        f = StoredFile(str(uuid.uuid4()), f"{job.id}.{sample_type}.jsonl", "batch", content, int(time.time()),
                       sample_type, "mistral")
        self.files[f.id] = f
        return f.id

    def _answer(self, job: Job, item: dict) -> dict:
        """One item, answered like a live request of the job's model, or its error line."""
        from tests.emulator.skins import SKINS

        skin, cid = SKINS["mistral"], item["custom_id"]
        line = {"id": f"batch-{uuid.uuid4().hex[:12]}", "custom_id": cid}
        rec = {"generation": self.emu._generation, "time": time.time(), "method": "BATCH",
               "path": f"/v1/batch/jobs/{job.id}#{cid}", "dialect": "mistral", "model": job.model,
               "stream": False, "body": None, "status": None, "outcome": None, "duration": 0.0,
               "fault_header": None, "batch_job": job.id, "custom_id": cid}
        try:
            body = dict(item["body"])
            body.setdefault("model", job.model)
            if job.endpoint == "/v1/ocr":  # an OCR item: read and billed per page as live (ocr.py)
                from tests.emulator import ocr

                ocr.check(skin, body)
                if body["model"] not in ocr.OCR_MODELS:
                    raise skin.unknown_model(body["model"])
                if _fails(cid, self.emu.config["seed"], float(self.cfg("batch_item_failure_rate"))):
                    raise skin.reject(500, "Internal server error")
                answer = ocr.answer_body(skin, body, body["model"])
                rec.update(status=200, outcome="ok", **ocr.billing(body, answer))
                line.update(response={"status_code": 200, "body": answer}, error=None)
                self.emu._record(rec, False)
                return line
            if body.get("stream"):
                raise skin.reject(400, "stream is not allowed in a batch item")
            skin.schema_check(body)
            wire = skin.parse(body, {})
            model = ALIASES.get(wire.model, wire.model)
            if model not in self.emu._models("mistral"):
                raise skin.unknown_model(wire.model)
            skin.validate(wire)
            prompt = estimate_prompt_tokens(wire.req, model)
            if prompt + (wire.req.max_tokens or 0) > CONTEXT:
                raise skin.context_too_long(prompt)
            if _fails(cid, self.emu.config["seed"], float(self.cfg("batch_item_failure_rate"))):
                raise skin.reject(500, "Internal server error")
            ans = self.emu.answer(wire, None)
            usage = Usage(prompt, count_text_tokens(ans.content, model))
            rec.update(status=200, outcome="ok", prompt_tokens=prompt, completion_tokens=usage.completion_tokens)
            line.update(response={"status_code": 200, "body": skin.ok(wire, ans, usage)}, error=None)
        except Reject as r:
            rec.update(status=r.status, outcome=r.outcome)
            line.update(response={"status_code": r.status, "body": r.body},
                        error={"message": _message(r.body), "code": str(r.status)})
        self.emu._record(rec, False)
        return line

    def out(self, job: Job) -> dict:
        ok = sum(1 for d in job.done if d["error"] is None)
        return {"id": job.id, "object": "batch", "input_files": job.input_files, "metadata": job.metadata,
                "endpoint": job.endpoint, "model": job.model, "agent_id": None, "output_file": job.output_file,
                "error_file": job.error_file,
                "errors": [{"message": p, "count": 1} for p in job.problems] + (
                    [{"message": "the job timed out before all its requests were processed", "count":
                      len(job.items) - len(job.done)}] if job.status == "TIMEOUT_EXCEEDED" else []),
                "outputs": None, "status": job.status, "created_at": job.created_at,
                "total_requests": len(job.items), "completed_requests": len(job.done), "succeeded_requests": ok,
                "failed_requests": len(job.done) - ok, "started_at": job.started_at,
                "completed_at": job.completed_at}


def handles(rest: str) -> bool:
    """Is this path (after the dialect's ``/v1`` prefix) one of the files or batch routes?"""
    return rest.startswith(("/files", "/batch/jobs"))


def route(service: BatchService, handler, method: str, rest: str, raw: bytes, skin) -> tuple[int, object, str]:
    """(status, body, content type) of one files or batch request; Reject for errors."""
    query = parse_qs(urlparse(handler.path).query)
    parts = rest.strip("/").split("/")  # files[/id[/content]] or batch/jobs[/id[/cancel]]
    js = "application/json"
    if parts[0] == "files":
        if len(parts) == 1 and method == "POST":
            return 200, service.upload(handler.headers, raw), js
        if len(parts) == 1 and method == "GET":
            return 200, service.list_files(query), js
        if len(parts) == 2 and method == "GET":
            return 200, service.file(parts[1]).out(deleted_field=True), js
        if len(parts) == 2 and method == "DELETE":
            return 200, service.delete(parts[1]), js
        if len(parts) == 3 and parts[2] == "content" and method == "GET":
            content = service.file(parts[1]).content
            with service.lock:
                service.downloads += 1
            return 200, content, "application/octet-stream"
    elif parts[:2] == ["batch", "jobs"]:
        if len(parts) == 2 and method == "POST":
            return 200, service.create(skin.json_body(raw), skin), js
        if len(parts) == 2 and method == "GET":
            return 200, service.list_jobs(query), js
        if len(parts) == 3 and method == "GET":
            return 200, service.get(parts[2], (_q(query, "inline") or "").lower() == "true"), js
        if len(parts) == 4 and parts[3] == "cancel" and method == "POST":
            return 200, service.cancel(parts[2]), js
    raise Reject(404, {"message": "no Route matched with those values", "request_id": uuid.uuid4().hex},
                 outcome="no_route")


# -- helpers ----------------------------------------------------------------------------------
def _fails(custom_id, seed, rate: float) -> bool:
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{custom_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < rate


def _multipart(headers, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename or None, bytes)."""
    ctype = headers.get("Content-Type") or ""
    if not ctype.lower().startswith("multipart/form-data"):
        raise _unprocessable([{"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": None}])
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            out[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return out


def _text(value) -> str | None:
    return None if value is None else value[1].decode("utf-8", "replace")


def _q(query: dict, key: str, default=None):
    v = query.get(key)
    return v[0] if v else default


def _extra(loc: list, value) -> dict:
    return {"type": "extra_forbidden", "loc": loc, "msg": "Extra inputs are not permitted",
            "input": value if isinstance(value, (str, int, float, bool)) or value is None else None}


def _enum(loc: list, value, allowed) -> dict:
    return {"type": "enum", "loc": loc, "msg": "Input should be " + " or ".join(f"'{a}'" for a in allowed),
            "input": value}


def _unprocessable(detail: list[dict]) -> Reject:
    return Reject(422, {"object": "error", "message": {"detail": detail[:5]}, "type": "invalid_request_error",
                        "param": None, "code": None}, outcome="error_422")


def _message(body) -> str:
    if isinstance(body, dict):
        m = body.get("message", body.get("detail", body))
        return m if isinstance(m, str) else json.dumps(m)[:500]
    return str(body)[:500]
