"""Local emulator of the four model-API dialects, with fault injection.

In-process::

    with Emulator() as emu:
        ep = Endpoint(profile="mistral", base_url=emu.base_url("mistral"), api_key="k")
        emu.inject("429", count=2, retry_after=0.05)   # next 2 requests
        emu.inject("503", rate=0.05)                    # 5% of requests
        emu.script("pixtral-large-2411", "exact answer")
        ...; emu.requests                              # request log

Cross-process: ``python -m tests.emulator.emulator --port 8089`` and
:class:`RemoteEmulator` (admin endpoints under ``/_emulator/``), or the header
``X-Emulator-Fault: 503`` on a single request.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import random
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Callable
from urllib.parse import parse_qs, urlparse

from pixtract.messages import Usage
from pixtract.providers.errors import redact_body
from tests.emulator import batchjobs, model as core
from tests.emulator import ocr
from tests.emulator.faults import HEADER, FaultPlan
from tests.emulator.skins import ALIASES, CONTEXT, DEFAULT_MODELS, SKINS, Reject, Wire
from pixtract.tokens import count_text_tokens, estimate_prompt_tokens

log = logging.getLogger(__name__)

# Path prefix of each dialect; base_url(name) = http://host:port + prefix.
PREFIXES = {"mistral": "/mistral/v1", "openrouter": "/openrouter/api/v1", "modelslab": "/modelslab/api/v7/llm",
            "openai": "/openai/v1"}
BASE_ALIASES = {"anthropic": "modelslab", "modelslab-anthropic": "modelslab"}

DEFAULT_CONFIG = {
    "latency": 0.0,  # seconds: number, [lo, hi] (uniform) or {"mean": m, "sd": s} (normal, clipped at 0)
    "token_delay": 0.0,  # seconds between stream chunks
    "rpm_limit": None,  # requests per window -> 429 beyond it
    "rpm_window": 60.0,
    "max_concurrency": None,  # in-flight chat requests beyond this get 429
    "retry_after": None,  # Retry-After hint on rpm/concurrency 429s (None = computed for rpm, absent otherwise)
    "hang_seconds": 30.0,  # how long a "timeout" fault holds the request
    "retired_models": [],  # -> 404 model gone
    "models": None,  # {dialect: [ids]} to replace DEFAULT_MODELS
    "accept_any_model": ["openai"],  # dialects that serve whatever model is named
    "api_keys": None,  # accepted keys; None = any non-empty key
    "validate": True,
    "log_bodies": True,
    "log_secrets": False,  # keep the body's "key" in the log (never the Authorization header)
    "seed": 0,
    "script": {},  # {model or "*": [answers]} answers: str or {"content", "finish_reason", "tool_calls"}
    **batchjobs.CONFIG,  # Mistral's batch jobs: processing delay, item failures, expiry (batchjobs.py)
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # dropped connections are expected
        log.debug("connection error from %s", client_address, exc_info=True)


class Emulator:
    """The emulator server. Thread-safe; start()/stop() or use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **config):
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._logged = threading.Condition(self._lock)
        self._unlogged = 0  # answered, not yet in the log
        self._stop = threading.Event()
        self.faults = FaultPlan()
        self.responder: Callable | None = None  # in-process only: f(ChatRequest, model) -> str | dict | None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()
        if config:
            self.configure(**config)

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> "Emulator":
        if self._server is None:
            _warm_up()
            self._stop.clear()
            self._server = _Server((self.host, self.port), _make_handler(self))
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"emulator:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, dialect: str) -> str:
        """Base URL for a dialect or profile name (mistral, openrouter, modelslab,
        modelslab-anthropic/anthropic, openai)."""
        return self.url + PREFIXES[BASE_ALIASES.get(dialect, dialect)]

    # -- control ----------------------------------------------------------------
    def configure(self, **kw) -> dict:
        """Merge config keys (see DEFAULT_CONFIG); ``faults=[...]`` replaces the rules."""
        with self._lock:
            if "faults" in kw:
                self.faults.set(kw.pop("faults") or [])
            unknown = set(kw) - set(DEFAULT_CONFIG)
            if unknown:
                raise ValueError(f"unknown emulator config: {', '.join(sorted(unknown))}")
            if "script" in kw:
                self._script = {m: collections.deque(v) for m, v in (kw.pop("script") or {}).items()}
            self.config.update(kw)
            if "seed" in kw:
                self.faults.reseed(kw["seed"])
                self._rng = random.Random(kw["seed"])
            return self.get_config()

    def get_config(self) -> dict:
        return {**self.config, "faults": self.faults.rules(),
                "script": {m: list(q) for m, q in self._script.items()}}

    def inject(self, fault: str, *, count: int | None = None, rate: float | None = None, **params) -> None:
        """Add a fault rule: next ``count`` requests, or a ``rate`` fraction, or always."""
        self.faults.add({"fault": fault, "count": count, "rate": rate, **params})

    def script(self, model: str, *answers) -> None:
        """Queue exact answers for ``model`` (``"*"`` = any model)."""
        with self._lock:
            self._script.setdefault(model, collections.deque()).extend(answers)

    def reset(self) -> None:
        """Clear the log, faults, scripts and config."""
        with self._lock:
            self.config = json.loads(json.dumps(DEFAULT_CONFIG))
            self._script: dict[str, collections.deque] = {}
            self._log: list[dict] = []
            self._seq = 0
            self._generation = getattr(self, "_generation", 0) + 1
            self._in_flight = 0
            self._window: collections.deque = collections.deque()
            self._rng = random.Random(0)
            self.batches = batchjobs.BatchService(self)  # Mistral's files and batch jobs
        self.faults.set([])
        self.faults.reseed(0)
        self.responder = None

    @property
    def requests(self) -> list[dict]:
        """Copy of the request log (chat, models and count-token calls). Waits
        briefly for requests already answered but not yet logged."""
        deadline = time.monotonic() + 2.0
        with self._logged:
            while self._unlogged > 0 and time.monotonic() < deadline:
                self._logged.wait(0.05)
            return [dict(r) for r in self._log]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # -- internals used by the handler --------------------------------------------
    def _answering(self) -> None:
        with self._lock:
            self._unlogged += 1

    def _record(self, rec: dict, answered: bool) -> dict:
        with self._lock:
            self._seq += 1
            rec["seq"] = self._seq
            if rec.pop("generation", self._generation) == self._generation:
                self._log.append(rec)  # a request that arrived before reset() belongs to an older log
            if answered:
                self._unlogged -= 1
                self._logged.notify_all()
        return rec

    def _latency(self) -> float:
        lat = self.config["latency"]
        with self._lock:
            if isinstance(lat, (list, tuple)):
                return self._rng.uniform(float(lat[0]), float(lat[1]))
            if isinstance(lat, dict):
                return max(0.0, self._rng.gauss(float(lat.get("mean", 0)), float(lat.get("sd", 0))))
        return float(lat or 0.0)

    def _admit(self) -> tuple[bool, float | None, str]:
        """Rate and concurrency limits: (ok, retry_after, reason)."""
        cfg = self.config
        now = time.monotonic()
        with self._lock:
            if cfg["max_concurrency"] is not None and self._in_flight >= cfg["max_concurrency"]:
                return False, cfg["retry_after"], "concurrency_limit"
            if cfg["rpm_limit"] is not None:
                window = float(cfg["rpm_window"])
                while self._window and self._window[0] <= now - window:
                    self._window.popleft()
                if len(self._window) >= cfg["rpm_limit"]:
                    wait = self._window[0] + window - now
                    return False, cfg["retry_after"] if cfg["retry_after"] is not None else round(wait, 3), "rpm_limit"
                self._window.append(now)
            self._in_flight += 1
        return True, None, "ok"

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _models(self, dialect: str) -> list[str]:
        models = (self.config["models"] or {}).get(dialect) or DEFAULT_MODELS[dialect]
        return [m for m in models if m not in self.config["retired_models"]]

    def _scripted(self, model: str):
        with self._lock:
            for k in (model, "*"):
                q = self._script.get(k)
                if q:
                    return q.popleft()
        return None

    def answer(self, wire: Wire, fault: dict | None) -> core.Answer:
        req, model = wire.req, wire.model
        item = self._scripted(model)
        if item is None and self.responder is not None:
            item = self.responder(req, model)
        if item is None:
            ans = core.answer(req, model)
        elif isinstance(item, str):
            ans = core.Answer(item)
        else:
            from pixtract.messages import ToolCall

            calls = [ToolCall(c.get("id", "abcDEF123"), c["name"], c["arguments"] if isinstance(c["arguments"], str)
                              else json.dumps(c["arguments"])) for c in item.get("tool_calls") or []]
            ans = core.Answer(item.get("content", ""), calls, item.get("finish_reason") or
                              ("tool_calls" if calls else "stop"))
        kind = (fault or {}).get("fault")
        if kind == "empty_content":
            ans = core.Answer("", [], "stop")
        ans = core.finalize(ans, req, model)
        if kind == "length":
            words = ans.content.split(" ")[: int((fault or {}).get("words", 3))]
            ans = core.Answer(" ".join(words), [], "length")
        if wire.key and wire.key in ans.content:  # an answer never contains the API key
            ans.content = ans.content.replace(wire.key, "***")
        return ans


def _make_handler(emu: Emulator):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "pixtract-emulator/1.0"
        _answered = True  # only API requests are tracked for the log

        def log_message(self, fmt, *args):  # quiet
            log.debug("%s " + fmt, self.address_string(), *args)

        def finish(self):
            try:
                super().finish()
            except OSError:
                pass

        # -- plumbing -----------------------------------------------------------
        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _mark(self):
            if not self._answered:
                self._answered = True
                emu._answering()

        def _send(self, status: int, body: object, headers: dict | None = None, ctype="application/json"):
            self._mark()
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _drop(self):
            self._mark()
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True
            self.wfile = _Null()

        # -- routes -------------------------------------------------------------
        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_DELETE(self):
            self._route("DELETE")

        def _route(self, method: str):
            url = urlparse(self.path)
            path = url.path.rstrip("/")
            raw = self._body() if method == "POST" else b""
            if path.startswith("/_emulator"):
                return self._admin(method, path, raw, parse_qs(url.query))
            for dialect, prefix in PREFIXES.items():
                if path.startswith(prefix + "/"):
                    rest = path[len(prefix):]
                    if dialect == "modelslab" and rest.startswith("/v1/messages"):
                        dialect = "anthropic"
                    return self._api(method, dialect, rest, raw)
            self._send(404, {"message": "no Route matched with those values", "request_id": _rid()})  # §1.10 f

        def _admin(self, method, path, raw, query):
            data = json.loads(raw) if raw else {}
            try:
                if path == "/_emulator/health":
                    return self._send(200, {"ok": True, "port": emu.port})
                if path == "/_emulator/config":
                    return self._send(200, emu.configure(**data) if method == "POST" else emu.get_config())
                if path == "/_emulator/faults" and method == "POST":
                    rule = dict(data)
                    emu.inject(rule.pop("fault"), count=rule.pop("count", None), rate=rule.pop("rate", None), **rule)
                    return self._send(200, {"faults": emu.faults.rules()})
                if path == "/_emulator/script" and method == "POST":
                    emu.script(data.get("model", "*"), *data.get("answers", []))
                    return self._send(200, {"ok": True})
                if path == "/_emulator/requests":
                    since = int(query.get("since", ["0"])[0])
                    return self._send(200, [r for r in emu.requests if r["seq"] > since])
                if path == "/_emulator/reset" and method == "POST":
                    emu.reset()
                    return self._send(200, {"ok": True})
            except (ValueError, TypeError, KeyError) as e:
                return self._send(400, {"error": str(e)})
            self._send(404, {"error": f"unknown admin route {path}"})

        def _api(self, method: str, dialect: str, rest: str, raw: bytes):
            skin = SKINS[dialect]
            t0 = time.monotonic()
            self._answered = False
            rec = {"generation": emu._generation,
                   "time": time.time(), "method": method, "path": self.path, "dialect": dialect, "model": None,
                   "stream": False, "body": None, "status": None, "outcome": None, "duration": None,
                   "fault_header": self.headers.get(HEADER)}
            try:
                status, outcome = self._api_inner(method, skin, rest, raw, rec)
            except Reject as r:
                self._send(r.status, r.body, r.headers)
                status, outcome = r.status, r.outcome
            except OSError:  # client went away
                status, outcome = 0, "client_gone"
            except Exception as e:  # an emulator bug: answer 500 and keep serving
                log.exception("emulator error")
                status, outcome = 500, f"emulator_error: {type(e).__name__}"
                try:
                    self._send(500, {"error": {"message": "emulator internal error", "code": 500}})
                except OSError:
                    pass
            rec.update(status=status, outcome=outcome, duration=round(time.monotonic() - t0, 4))
            emu._record(rec, self._answered)

        def _api_inner(self, method, skin, rest, raw, rec):
            if skin.name == "mistral" and batchjobs.handles(rest):
                return self._batch_api(method, skin, rest, raw)
            if method == "GET" and rest.endswith("/models"):
                key = skin.key(self.headers, {})
                if emu.config["api_keys"] is not None and key not in emu.config["api_keys"]:
                    raise skin.reject(401, "Invalid API key", outcome="unauthorized")
                self._send(200, skin.models(emu._models(skin.name)))
                return 200, "models"
            if skin.name == "mistral" and method == "POST" and rest.endswith("/ocr"):
                return ocr.serve(self, emu, skin, raw, rec)
            if method != "POST" or not (rest.endswith("/chat/completions") or rest.endswith("/messages")
                                        or rest.endswith("/count_tokens")):
                raise Reject(404, {"message": "no Route matched with those values", "request_id": _rid()},
                             outcome="no_route")
            body = skin.json_body(raw)
            key = skin.key(self.headers, body)
            if emu.config["log_bodies"]:
                rec["body"] = body if emu.config["log_secrets"] else redact_body(body)
            rec["model"] = body.get("model") or body.get("model_id")
            if skin.key_required and (not key or (emu.config["api_keys"] is not None
                                                  and key not in emu.config["api_keys"])):
                raise skin.reject(401, "Unauthorized" if not key else "Invalid API key", outcome="unauthorized")
            if emu.config["validate"]:
                skin.schema_check(body)
            wire = skin.parse(body, self.headers)
            wire.key, wire.raw = key, raw
            rec.update(model=wire.model, stream=wire.stream)
            model = ALIASES.get(wire.model, wire.model)
            if model in emu.config["retired_models"]:
                raise skin.model_gone(wire.model)
            if skin.name not in emu.config["accept_any_model"] and (model not in emu._models(skin.name)
                                                                   or model in ocr.OCR_MODELS):
                raise skin.unknown_model(wire.model)
            if emu.config["validate"]:
                skin.validate(wire)
            prompt = estimate_prompt_tokens(wire.req, model)
            rec["prompt_tokens"] = prompt  # what an answered request (status 200) is billed
            if rest.endswith("/count_tokens"):
                self._send(200, {"input_tokens": prompt})
                return 200, "count_tokens"
            if prompt + (wire.req.max_tokens or 0) > CONTEXT:  # §6 emulator rule
                raise skin.context_too_long(prompt)
            fault = emu.faults.pick(skin.name, wire.model, self.headers.get(HEADER))
            ok, retry_after, why = emu._admit()
            if not ok:
                raise skin.reject(429, "Rate limit exceeded", "rate_limited", retry_after=retry_after, outcome=why)
            try:
                return self._respond(skin, wire, model, prompt, fault)
            finally:
                emu._done()

        def _batch_api(self, method, skin, rest, raw):
            """Files and batch jobs (tests/emulator/batchjobs.py), behind the same key check, with
            the chat faults that can happen to any request (status, drop, timeout, latency), for rules
            that name ``model="files"`` or ``model="batch"`` (or the fault header)."""
            key = skin.key(self.headers, {})
            if not key or (emu.config["api_keys"] is not None and key not in emu.config["api_keys"]):
                raise skin.reject(401, "Unauthorized", outcome="unauthorized")
            target = "files" if rest.startswith("/files") else "batch"
            fault = emu.faults.pick(skin.name, target, self.headers.get(HEADER), named_only=True)
            if fault and fault.get("fault") not in ("model_retired", "context_too_long", "status_error", "slow",
                                                    "empty_content", "length"):
                wire = SimpleNamespace(model=target, key=key, raw=raw)
                done = self._transport_fault(skin, wire, fault)
                if done is not None:
                    return done
            status, body, ctype = batchjobs.route(emu.batches, self, method, rest, raw, skin)
            slow = float(emu.config["batch_download_s"] or 0) if isinstance(body, bytes) else 0.0
            if slow <= 0:
                self._send(status, body, ctype=ctype)
                return status, "batch_api"
            self._mark()  # a download that trickles out over batch_download_s seconds
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            step = max(1, len(body) // 20)
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
                if emu._stop.wait(slow / 20):
                    break
            return status, "batch_api_slow"

        def _transport_fault(self, skin, wire, fault):
            """Latency, and the faults that end a request before any answer: (status, outcome),
            or None to go on and answer."""
            kind = (fault or {}).get("fault")
            delay = emu._latency() + float((fault or {}).get("seconds", 0) if kind == "slow" else 0)
            if delay > 0 and emu._stop.wait(delay):
                self._drop()
                return 0, "stopped"
            if kind == "timeout":
                emu._stop.wait(float(fault.get("hang", emu.config["hang_seconds"])))
                self._drop()
                return 0, "timeout"
            if kind == "drop":
                self._drop()
                return 0, "drop"
            if kind and kind.isdigit() or kind in ("model_retired", "context_too_long", "500_empty", "502_html",
                                                   "status_error", "401_echo", "echo"):
                return self._fault_status(skin, wire, kind, fault)
            return None

        def _send_answer(self, body: bytes, kind: str | None, headers: dict | None = None):
            """A whole JSON answer, or the body fault ``kind`` asks for: not JSON, or cut in half."""
            if kind == "malformed_json":
                self._send(200, body[: min(len(body) // 3, 60)])
                return 200, kind
            if kind in ("truncated_json", "stream_cut"):
                self._mark()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self._drop()
                return 200, kind
            self._send(200, body, headers)
            return 200, kind or "ok"

        def _respond(self, skin, wire, model, prompt, fault):
            early = self._transport_fault(skin, wire, fault)
            if early is not None:
                return early
            kind = (fault or {}).get("fault")
            ans = emu.answer(wire, fault)
            completion = count_text_tokens(ans.content, model) + sum(
                count_text_tokens(tc.name + tc.arguments, model) for tc in ans.tool_calls)
            usage = Usage(prompt, completion)
            if kind == "malformed_json":
                self._send(200, b'{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {')
                return 200, kind
            if not wire.stream:
                return self._send_answer(json.dumps(skin.ok(wire, ans, usage)).encode(), kind, skin.ok_headers())
            return self._stream(skin, wire, ans, usage, fault)

        def _stream(self, skin, wire, ans, usage, fault):
            kind = (fault or {}).get("fault")
            cut = int(fault.get("after_chunks", 2)) if kind in ("stream_cut", "truncated_json") else None
            err = dict(fault, status=int(fault.get("status", 503))) if kind == "midstream_error" else None
            self._mark()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            for k, v in skin.ok_headers().items():
                self.send_header(k, v)
            self.end_headers()
            token_delay = float(emu.config["token_delay"] or 0)
            for i, piece in enumerate(skin.stream(wire, ans, usage, cut_after=cut, error=err)):
                if i and token_delay and emu._stop.wait(token_delay):
                    break
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                except OSError:
                    return 200, "client_gone"
            if cut is not None:
                self._drop()  # no terminating chunk: the body is incomplete
                return 200, kind
            self.wfile.write(b"0\r\n\r\n")
            return 200, kind or "ok"

        def _fault_status(self, skin, wire, kind, fault):
            if kind == "model_retired" or kind == "404":
                r = skin.model_gone(wire.model)
            elif kind == "context_too_long":
                r = skin.context_too_long(140000)
            elif kind == "500_empty":
                self._send(500, b"", ctype="text/plain")
                return 500, kind
            elif kind == "502_html":
                self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", ctype="text/html")
                return 502, kind
            elif kind == "401_echo":
                echo = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "x-api-key", "key")}
                r = skin.reject(401, f"Invalid credentials in request: headers={echo} key={wire.key!r}")
            elif kind == "echo":  # a proxy or debug server that answers with the whole request
                status = int(fault.get("status", 400))
                r = skin.reject(status, f"cannot process {self.command} {self.path}: headers={dict(self.headers)} "
                                        f"body={wire.raw.decode('utf-8', 'replace')}")
            elif kind == "status_error":
                msg = fault.get("message", "Service temporarily unavailable. Please try again later.")
                self._send(200, {"status": "error", "message": msg})
                return 200, kind
            else:
                status = int(kind)
                r = skin.reject(status, fault.get("message") or _MESSAGES.get(status, "Error"), None,
                                retry_after=fault.get("retry_after"), model=wire.model)
            self._send(r.status, r.body, r.headers)
            return r.status, kind

    return Handler


_MESSAGES = {400: "Invalid request parameters", 401: "Unauthorized", 402: "Insufficient credits. Add more using "
             "https://openrouter.ai/credits", 403: "Forbidden: model not enabled for this workspace",
             408: "Operation timed out. Please try again later.", 413: "Request payload too large",
             422: "Invalid argument", 429: "Rate limit exceeded", 500: "Internal server error",
             502: "Provider returned error", 503: "Service temporarily unavailable", 504: "Gateway timeout",
             524: "A timeout occurred", 529: "Overloaded"}


def _warm_up() -> None:
    """Build the (slow) tokenizers before serving, so first requests are not slow."""
    from pixtract.messages import ChatRequest, Message

    for model in ("pixtral-large-2411", "mistral-large-2411"):
        estimate_prompt_tokens(ChatRequest([Message("user", "warm up")]), model)
        count_text_tokens("warm up", model)


def _rid() -> str:
    import uuid

    return uuid.uuid4().hex


class _Null:
    def write(self, *_):
        return 0

    def flush(self):
        pass


class RemoteEmulator:
    """Controls an emulator in another process through its admin endpoints."""

    def __init__(self, url: str):
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url + "/_emulator", timeout=10)

    def base_url(self, dialect: str) -> str:
        return self.url + PREFIXES[BASE_ALIASES.get(dialect, dialect)]

    def configure(self, **kw) -> dict:
        return self._http.post("/config", json=kw).raise_for_status().json()

    def inject(self, fault: str, *, count: int | None = None, rate: float | None = None, **params) -> None:
        self._http.post("/faults", json={"fault": fault, "count": count, "rate": rate, **params}).raise_for_status()

    def script(self, model: str, *answers) -> None:
        self._http.post("/script", json={"model": model, "answers": list(answers)}).raise_for_status()

    @property
    def requests(self) -> list[dict]:
        return self._http.get("/requests").raise_for_status().json()

    def reset(self) -> None:
        self._http.post("/reset").raise_for_status()

    def close(self) -> None:
        self._http.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="pixtract model-API emulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8089)
    ap.add_argument("--config", help="JSON object of config keys (see DEFAULT_CONFIG), e.g. '{\"latency\": 0.5}'")
    args = ap.parse_args(argv)
    emu = Emulator(args.host, args.port, **(json.loads(args.config) if args.config else {})).start()
    for d in list(PREFIXES) + ["modelslab-anthropic"]:
        print(f"{d:20s} {emu.base_url(d)}", flush=True)
    print(f"{'admin':20s} {emu.url}/_emulator/{{health,config,faults,script,requests,reset}}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        emu.stop()


if __name__ == "__main__":
    main()
