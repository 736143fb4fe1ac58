"""Run configuration: inputs, tasks, endpoints, rendering, budget, cache.

Precedence, highest first: command-line flags > environment (``PIXTRACT_*``) > job file (TOML)
> profile defaults. Secrets (API keys, PDF passwords) are never part of the configuration:
keys come from environment variables (or Prefect Secret blocks, named here by reference).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .ocr import OcrOptions
from .records import RenderSettings

TASKS = ("transcribe", "ask", "extract", "chart")
LOCAL_TASKS = ("transcribe",)
PROFILES = ("local", "mistral", "openrouter", "modelslab", "modelslab-anthropic", "openai")
DEFAULT_PROFILE = "local"
SCOPES = ("page", "document")
# The planned route of a remote job: a vision model reads each page image (the default), or
# Mistral's OCR endpoint does (per-page price, blocks with boxes), the ladder below it as usual.
ROUTES = ("vision", "ocr")
OCR_TASKS = ("transcribe", "extract")  # what /v1/ocr answers: Markdown, or a document annotation


@dataclass(frozen=True)
class Setting:
    """A scalar setting that can come from a flag, an environment variable and a job file key;
    its type and range are declared here once and checked at whichever layer gives it, so an
    error names where the bad value came from."""

    path: str  # "section.key" in the layered dict (and in the job file)
    flag: str | None
    env: str | None
    type: type
    lo: float | None = None
    hi: float | None = None
    help: str = ""  # the flag's help; "{default}" is replaced by the field's default
    metavar: str | None = None
    choices: tuple[str, ...] | None = None  # offered by the flag (the config's own checks enforce them)
    folder: bool = False  # a path: in a job file, relative to the job file's folder
    const: str | None = None  # the flag's value when given bare (``--batch`` means ``--batch on``)

    @property
    def default(self) -> Any:
        """The default of the field this setting fills, read from the dataclasses themselves."""
        return _get_path(RunConfig(inputs=[], out=""), self.path)

    @property
    def dest(self) -> str | None:
        """The flag's name in argparse's namespace."""
        return self.flag.removeprefix("--").replace("-", "_") if self.flag else None

    def help_text(self) -> str:
        return self.help.replace("{default}", str(self.default))

    def parse(self, raw: Any, origin: str) -> Any:
        """``raw`` as this setting's type, in range; UsageError naming ``origin`` otherwise."""
        if isinstance(raw, bool) and self.type is not bool:
            raise UsageError(f"{origin}: expected a {_TYPE_WORDS[self.type]}, got {raw!r}")
        try:
            value = self.type(raw) if self.type is not str else str(raw)
        except (TypeError, ValueError):
            raise UsageError(f"{origin}: expected a {_TYPE_WORDS[self.type]}, got {raw!r}") from None
        if self.type is int and isinstance(raw, float) and raw != int(raw):
            raise UsageError(f"{origin}: expected a whole number, got {raw!r}")
        if self.lo is not None and value < self.lo or self.hi is not None and value > self.hi:
            bounds = f"between {self.lo:g} and {self.hi:g}" if self.hi is not None else f"at least {self.lo:g}"
            raise UsageError(f"{origin}: must be {bounds} (got {raw!r})")
        return value


_TYPE_WORDS = {int: "whole number", float: "number", str: "text"}

SETTINGS = [
    Setting("profile", "--profile", "PIXTRACT_PROFILE", str, choices=PROFILES,
            help="{default} (the default: text layer + OCR, offline), or a model API"),
    Setting("out", "--out", "PIXTRACT_OUT", str, metavar="DIR", folder=True, help="output folder (created if missing)"),
    Setting("endpoint.base_url", "--base-url", "PIXTRACT_BASE_URL", str,
            help="override the profile's base URL (required for --profile openai)"),
    Setting("endpoint.vision_model", "--vision-model", "PIXTRACT_VISION_MODEL", str,
            help="vision model ID (default: the profile's Pixtral Large 2411 ID)"),
    Setting("endpoint.text_model", "--text-model", "PIXTRACT_TEXT_MODEL", str,
            help="text model ID for the text fallback (default: the profile's Mistral Large 2411 ID)"),
    Setting("route", "--route", "PIXTRACT_ROUTE", str, choices=ROUTES,
            help="the planned route (default {default}): vision, or ocr (Mistral's /v1/ocr, per-page price, "
                 "--profile mistral; transcribe and extract per page), the fallback ladder below it"),
    Setting("endpoint.ocr_model", "--ocr-model", "PIXTRACT_OCR_MODEL", str,
            help="OCR model ID for --route ocr (default: mistral-ocr-latest)"),
    Setting("endpoint.timeout", "--timeout", "PIXTRACT_TIMEOUT", float, 0.001, metavar="S",
            help="seconds per request (default {default})"),
    Setting("endpoint.max_retries", "--max-retries", "PIXTRACT_MAX_RETRIES", int, 0, metavar="N",
            help="retries per request (default {default})"),
    Setting("concurrency", "--concurrency", "PIXTRACT_CONCURRENCY", int, 1, 1024, metavar="N",
            help="requests/pages in flight (default 8; local: CPUs)"),
    Setting("render.max_edge", "--max-edge", "PIXTRACT_MAX_EDGE", int, 64, 10000, metavar="PX",
            help="long edge of page images (default {default})"),
    Setting("render.dpi_cap", "--dpi-cap", "PIXTRACT_DPI_CAP", int, 36, 1200, metavar="DPI",
            help="never render a PDF page above this DPI (default {default})"),
    Setting("budget_usd", "--budget-usd", "PIXTRACT_BUDGET_USD", float, 0, metavar="X",
            help="start no request that could take spending past X"),
    Setting("cache_dir", "--cache-dir", "PIXTRACT_CACHE_DIR", str, metavar="DIR", folder=True,
            help="answer cache (default: OUT/.pixtract/cache)"),
    # MuPDF worker processes (pipeline/workers.py): a step's deadline, and each worker's memory cap
    Setting("page_timeout", None, "PIXTRACT_PAGE_TIMEOUT", float, 0.001),
    Setting("worker_memory_mb", None, "PIXTRACT_WORKER_MEMORY_MB", int, 0),
    # a page still unanswered after this long is given up (pipeline/pagethreads.py); 0: never
    Setting("stall_timeout", None, "PIXTRACT_STALL_TIMEOUT", float, 0),
    # the local engine's OCR (pipeline/ocr.py): engine and languages
    Setting("ocr.engine", "--ocr-engine", "PIXTRACT_OCR_ENGINE", str, choices=("rapidocr", "tesseract"),
            help="OCR for scans and images (default {default}): tesseract, or rapidocr (bundled PP-OCR "
                 "models: reads better, costs ~4x the CPU)"),
    Setting("ocr.lang", "--ocr-lang", "PIXTRACT_OCR_LANG", str, metavar="LANGS",
            help="OCR languages as Tesseract codes joined by '+' (default {default}; e.g. eng+chi_sim, jpn, kor)"),
    # the report's viewer: full-resolution page images (pipeline/render.py review_image)
    Setting("review_dpi", "--review-dpi", "PIXTRACT_REVIEW_DPI", int, 0, 600, metavar="DPI",
            help="resolution of the page images the report's viewer zooms into (default {default}; long edge "
                 "at most 3200 px; about 45 ms of CPU and 260 KB of disk a page); 0: none, the viewer "
                 "shows the model's 1024-px image"),
    # outputs: the marker between pages in <stem>.md
    # Mistral's batch jobs (pipeline/batchmode.py): submit now at the batch price, collect on the next run
    Setting("batch", "--batch", "PIXTRACT_BATCH", str, choices=("off", "on"), const="on", metavar="on|off",
            help="send the planned route's requests in a Mistral batch job at about half the price "
                 "(--profile mistral); the run ends PENDING, and the same command run later collects "
                 "the answers (default {default})"),
    Setting("page_marker", "--page-marker", "PIXTRACT_PAGE_MARKER", str, metavar="TEXT",
            help="line between pages in <stem>.md; {page} is the page number (default '<!-- page {page} -->', "
                 "'' for none)"),
]
SETTING_BY_PATH = {s.path: s for s in SETTINGS}
SETTING_BY_FLAG = {s.flag: s for s in SETTINGS if s.flag}
# Environment variables, one per overridable setting.
ENV_VARS = {s.env: s.path for s in SETTINGS if s.env}


@dataclass
class EndpointSpec:
    """A model endpoint by reference: profile plus overrides. Holds no key."""

    profile: str = DEFAULT_PROFILE
    base_url: str | None = None
    vision_model: str | None = None
    text_model: str | None = None
    ocr_model: str | None = None  # --route ocr (default: the catalogue's OCR_MODEL)
    timeout: float = 120.0
    max_retries: int = 4
    backoff_base: float = 0.5  # seconds; retries wait base * 2^n with jitter (or Retry-After)
    backoff_max: float = 30.0
    api_key_env: str | None = None  # read the key from this variable instead of the profile's
    api_key_secret: str | None = None  # or from this Prefect Secret block (flows only)

    @property
    def remote(self) -> bool:
        return self.profile != "local"

    @property
    def key_env(self) -> str | None:
        """The environment variable that holds this endpoint's key: the spec's own, or its profile's."""
        from .providers.profiles import get_profile

        return self.api_key_env or get_profile(self.profile).key_env

    def endpoint(self, concurrency: int = 8, timeout: float | None = None, **overrides: Any):
        """The provider ``Endpoint`` of this spec: the one conversion from spec to endpoint. The
        key is read from the environment now, so neither the spec nor the job file holds it."""
        from .providers import Endpoint

        key = os.environ.get(self.api_key_env) if self.api_key_env else None  # else: the profile's variable
        return Endpoint(**{"profile": self.profile, "base_url": self.base_url, "vision_model": self.vision_model,
                           "text_model": self.text_model, "timeout": timeout or self.timeout,
                           "max_retries": self.max_retries, "backoff_base": self.backoff_base,
                           "backoff_max": self.backoff_max, "concurrency": concurrency, "api_key": key,
                           **overrides})


@dataclass
class TaskSpec:
    kind: str = "transcribe"
    questions: list[str] = field(default_factory=list)  # ask
    schema_path: str | None = None  # extract
    schema: dict | None = None
    scope: str = "page"
    prompt: str | None = None  # replaces the default task prompt
    max_tokens: int | None = None

    @property
    def schema_name(self) -> str | None:
        if self.schema is None:
            return None
        title = self.schema.get("title") if isinstance(self.schema, dict) else None
        base = title or (os.path.splitext(os.path.basename(self.schema_path))[0] if self.schema_path else "schema")
        return "".join(c if c.isalnum() or c in "_-" else "_" for c in base)[:64] or "schema"

    def units(self) -> list[str | None]:
        """The questions this task answers per page or document (None: the task itself)."""
        return list(self.questions) if self.kind == "ask" else [None]


@dataclass
class RunConfig:
    inputs: list[str]
    out: str
    profile: str = DEFAULT_PROFILE
    route: str = "vision"  # the planned route: "vision" or "ocr" (ROUTES)
    tasks: list[TaskSpec] = field(default_factory=lambda: [TaskSpec()])
    endpoint: EndpointSpec = field(default_factory=EndpointSpec)
    vision_alt: EndpointSpec | None = None  # second vision endpoint (ladder rung 2)
    render: RenderSettings = field(default_factory=RenderSettings)
    ocr: OcrOptions = field(default_factory=OcrOptions)  # the local engine's OCR ([ocr] in a job file)
    concurrency: int = 0  # 0: default for the profile
    budget_usd: float | None = None
    budget_file: str | None = None  # spend shared by the processes of one run (an inbox run's parts)
    cache: bool = True
    cache_dir: str | None = None  # default: <out>/.pixtract/cache
    stream: bool = False
    system_prompt: str | None = None
    temperature: float | None = 0.0
    seed: int | None = None
    local_fallback: bool = True  # transcribe falls back to the local engine
    accept_degraded: bool = False  # keep answers of a fallback rung as final (no retry on rerun)
    grounding_ocr: bool = False  # OCR pages without a text layer only to locate a model's answers on them
    page_marker: str = "<!-- page {page} -->"  # between pages in <stem>.md ("" for none)
    annotated_markdown: bool = False  # also write <stem>.annotated.md (routes, flags, agreement, grounding)
    batch: str = "off"  # "on": the planned route's requests go in Mistral batch jobs (pipeline/batchmode.py)
    review_dpi: int = 200  # full-resolution page images for the report's viewer (0: none)
    prices: dict[str, Any] = field(default_factory=dict)  # extra USD per 1M tokens: {model: {input, output}}
    page_timeout: float = 60.0  # wall-clock seconds for one step of one page, or opening a document
    worker_memory_mb: int = 4096  # address-space cap of each MuPDF worker process (0: none)
    stall_timeout: float = 900.0  # seconds one page may run in this process before it is given up (0: never)
    password: str | None = field(default=None, repr=False)  # secret: never written anywhere

    def __post_init__(self) -> None:
        self.endpoint.profile = self.profile
        if not self.concurrency:
            self.concurrency = max(1, os.cpu_count() or 1) if self.profile == "local" else 8

    @property
    def ocr_model(self) -> str:
        """The model of the OCR route's rung."""
        from .providers.catalog import OCR_MODEL

        return self.endpoint.ocr_model or OCR_MODEL

    @property
    def task(self) -> str:
        """The first task's kind (most runs have one)."""
        return self.tasks[0].kind

    def cache_path(self) -> str:
        return self.cache_dir or os.path.join(self.out, ".pixtract", "cache")

    def validate(self) -> "RunConfig":
        """Raise UsageError before any work for a configuration that cannot run."""
        if not self.inputs:
            raise UsageError("no inputs given: name files, folders or globs to read")
        if not self.out:
            raise UsageError("--out DIR is required")
        for ep in [self.endpoint] + ([self.vision_alt] if self.vision_alt else []):
            if ep.profile not in PROFILES:
                raise UsageError(f"unknown profile {ep.profile!r}; choose one of: {', '.join(PROFILES)}")
        if not self.tasks:
            raise UsageError("no task given")
        for t in self.tasks:
            _validate_task(t, self.profile)
        if self.render.image_format not in ("auto", "png", "jpeg"):
            raise UsageError(f"image format must be auto, png or jpeg (got {self.render.image_format!r})")
        for setting in SETTINGS:
            value = _get_path(self, setting.path)
            if value is not None and setting.type is not str:
                setting.parse(value, setting.flag or setting.path)
        self.prices_table()  # a bad [prices] entry is a usage error now, not mid-run
        if self.batch not in ("off", "on"):
            raise UsageError(f"batch must be on or off (got {self.batch!r})")
        if self.batch == "on" and self.endpoint.profile != "mistral":
            raise UsageError(f"--batch needs --profile mistral (Mistral's batch jobs); this job uses {self.profile!r}")
        if self.profile == "openai" and not self.endpoint.base_url:
            raise UsageError("profile 'openai' needs --base-url (e.g. http://localhost:8000/v1 for vLLM)")
        self._validate_route()
        return self

    def _validate_route(self) -> None:
        if self.route not in ROUTES:
            raise UsageError(f"unknown route {self.route!r}; choose one of: {', '.join(ROUTES)}")
        if self.route != "ocr":
            return
        if self.profile != "mistral":
            raise UsageError(f"--route ocr is Mistral's OCR endpoint: it needs --profile mistral "
                             f"(not {self.profile})")
        for t in self.tasks:
            if t.kind not in OCR_TASKS or t.scope != "page":
                raise UsageError(f"--route ocr answers {' and '.join(OCR_TASKS)} per page (one page per request); "
                                 f"task {t.kind!r} with scope {t.scope!r} needs the vision route")

    def fingerprint(self) -> str:
        return fingerprint(self.public())

    def prices_table(self):
        """The run's own price table: built-in prices plus the job's ``[prices]``; in batch
        mode the planned route's model at its batch price."""
        from .prices import PriceTable

        return PriceTable.for_job(self.prices, self.batched_models())

    def batched_models(self) -> list[str]:
        """The models whose requests go in batch jobs: the planned route's (``--batch``)."""
        if self.batch != "on" or self.endpoint.profile != "mistral":
            return []
        if self.route == "ocr":
            return [self.ocr_model]
        from .providers.profiles import get_profile

        return [self.endpoint.vision_model or get_profile("mistral").vision_model]

    def check_prices(self) -> None:
        """Prices are never guessed: a budget over a model with no known price is refused."""
        from .prices import PRICE_HINT

        if self.budget_usd is None:
            return
        missing = self.prices_table().missing(self.remote_models())
        if missing:
            raise UsageError(f"--budget-usd needs a price for every model of the job, and there is no price "
                             f"for model {', '.join(missing)}; {PRICE_HINT}")

    def remote_models(self) -> list[str]:
        """Every model a remote rung of this job may call (vision, alternate vision, text)."""
        from .providers.profiles import get_profile

        models: list[str] = [self.ocr_model] if self.route == "ocr" and self.endpoint.remote else []
        for spec in [self.endpoint] + ([self.vision_alt] if self.vision_alt else []):
            if spec.remote:
                prof = get_profile(spec.profile)
                models.append(spec.vision_model or prof.vision_model)
                if spec is self.endpoint:
                    models.append(spec.text_model or prof.text_model)
        return [m for m in dict.fromkeys(models) if m]

    def public(self) -> dict[str, Any]:
        """The effective configuration without secrets: for the manifest and flow parameters."""
        d = dataclasses.asdict(self)
        d["password"] = "***" if self.password else None
        for t in d["tasks"]:
            t["schema"] = None if t["schema_path"] else t["schema"]  # reloaded from the file
        return d

    @classmethod
    def from_public(cls, d: dict[str, Any], password: str | None = None) -> "RunConfig":
        d = dict(d)
        d["render"] = RenderSettings(**d.get("render") or {})
        d["ocr"] = OcrOptions(**d.get("ocr") or {})
        d["endpoint"] = EndpointSpec(**d.get("endpoint") or {})
        d["vision_alt"] = EndpointSpec(**d["vision_alt"]) if d.get("vision_alt") else None
        d["tasks"] = [_load_schema(TaskSpec(**t)) for t in d.get("tasks") or [{}]]
        d["password"] = password
        return cls(**d)


# What makes two runs "the same job" (a rerun or resume may write into the same --out);
# operational knobs like concurrency, budget, timeouts or the cache do not change the answers.
_JOB_IDENTITY = ("inputs", "profile", "route", "tasks", "render", "ocr", "system_prompt", "temperature", "seed")
_ENDPOINT_IDENTITY = ("profile", "vision_model", "text_model", "ocr_model")


def fingerprint(public: dict[str, Any]) -> str:
    import hashlib

    ident = {k: public.get(k) for k in _JOB_IDENTITY}
    if ident.get("ocr") in (None, dataclasses.asdict(OcrOptions())):
        # the default OCR is what every output folder before the OCR options was made with:
        # leaving it out keeps their fingerprints, so they still resume
        del ident["ocr"]
    if ident.get("route") in (None, "vision"):
        del ident["route"]  # the same: folders made before the OCR route keep their fingerprints
    for name in ("endpoint", "vision_alt"):
        ep = public.get(name) or {}
        ident[name] = {k: ep.get(k) for k in _ENDPOINT_IDENTITY if k != "ocr_model" or ep.get(k)}
    blob = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _validate_task(t: TaskSpec, profile: str) -> None:
    if t.kind not in TASKS:
        raise UsageError(f"unknown task {t.kind!r}; choose one of: {', '.join(TASKS)}")
    if profile == "local" and t.kind not in LOCAL_TASKS:
        raise UsageError(
            f"task {t.kind!r} needs a model endpoint; the local profile only does 'transcribe'. "
            f"Use e.g. --profile mistral (with MISTRAL_API_KEY set) or --profile openai --base-url URL"
        )
    if t.scope not in SCOPES:
        raise UsageError(f"--scope must be page or document (got {t.scope!r})")
    if t.kind == "ask" and not t.questions:
        raise UsageError("task 'ask' needs at least one --question")
    if t.kind == "extract" and t.schema is None:
        raise UsageError("task 'extract' needs --schema FILE (a JSON Schema)")
    if t.prompt is not None:
        from .prompts import check_placeholders

        check_placeholders(t.prompt, t.kind)
    if t.kind in ("transcribe", "chart") and t.scope != "page":
        raise UsageError(f"task {t.kind!r} works per page; --scope document is for ask and extract")


def _load_schema(t: TaskSpec) -> TaskSpec:
    if t.schema_path and t.schema is None:
        try:
            with open(t.schema_path, encoding="utf-8") as f:
                t.schema = json.load(f)
        except OSError as e:
            raise UsageError(f"cannot read schema {t.schema_path}: {e.strerror or e}") from None
        except json.JSONDecodeError as e:
            raise UsageError(f"schema {t.schema_path} is not valid JSON: {e}") from None
        from jsonschema import Draft202012Validator, SchemaError

        try:
            Draft202012Validator.check_schema(t.schema)
        except SchemaError as e:
            raise UsageError(f"schema {t.schema_path} is not a valid JSON Schema: {e.message}") from None
    return t


# --- layering: profile defaults < job file < environment < flags ---------------------------


def load_job(path: str) -> dict[str, Any]:
    """A job file as a layer. Relative paths in it are relative to the file's folder."""
    try:
        with open(path, "rb") as f:
            job = tomllib.load(f)
    except OSError as e:
        raise UsageError(f"cannot read job file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"job file {path} is not valid TOML: {e}") from None
    base = os.path.dirname(os.path.abspath(path))

    def rel(p: str) -> str:
        return p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))

    if "inputs" in job:
        job["inputs"] = [rel(p) for p in _as_list(job["inputs"])]
    for setting in SETTINGS:
        if setting.folder and isinstance(_get_path(job, setting.path), str):
            set_path(job, setting.path, rel(_get_path(job, setting.path)))
    for t in job.get("tasks", []):
        if t.get("schema"):
            t["schema_path"] = rel(t.pop("schema"))
    check_job_values(job, path)
    return job


def env_layer(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``PIXTRACT_*`` variables as a layer, typed and range-checked: a bad value is a
    UsageError naming the variable."""
    environ = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.env and environ.get(setting.env):
            set_path(layer, setting.path, setting.parse(environ[setting.env], setting.env))
    return layer


def check_job_values(job: dict[str, Any], path: str) -> None:
    """Type and range of a job file's scalar settings, naming the file and key."""
    for setting in SETTINGS:
        value = _get_path(job, setting.path)
        if value is not None:
            setting.parse(value, f"job file {path}: {setting.path}")


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win; nested tables merge key by key; lists are replaced."""
    out: dict[str, Any] = {}
    for layer in layers:
        for k, v in layer.items():
            if v is None:
                continue
            if isinstance(v, dict):
                out[k] = merge(out[k] if isinstance(out.get(k), dict) else {}, v)
            else:
                out[k] = v
    return out


def build_config(*layers: dict[str, Any], password: str | None = None) -> RunConfig:
    """A RunConfig from layers (lowest first), with types checked and schemas loaded."""
    d = merge(*layers)
    known = {f.name for f in dataclasses.fields(RunConfig)} - {"password"}
    unknown = set(d) - known
    if unknown:
        raise UsageError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    try:
        ep = d.get("endpoint", {})
        alt = d.get("vision_alt")
        tasks = d.get("tasks") or [{}]
        cfg = RunConfig(
            inputs=_as_list(d.get("inputs", [])),
            out=d.get("out", ""),
            profile=d.get("profile", DEFAULT_PROFILE),
            route=str(d.get("route", RunConfig.route)),
            tasks=[_load_schema(TaskSpec(**_typed_task(t))) for t in tasks],
            endpoint=EndpointSpec(**_typed_endpoint(ep)),
            vision_alt=EndpointSpec(**_typed_endpoint(alt)) if alt else None,
            render=RenderSettings(**_typed(d.get("render", {}), RenderSettings)),
            ocr=OcrOptions(**_typed(d.get("ocr", {}), OcrOptions)),
            concurrency=int(d.get("concurrency", 0) or 0),
            budget_usd=float(d["budget_usd"]) if d.get("budget_usd") is not None else None,
            cache=bool(d.get("cache", True)),
            cache_dir=d.get("cache_dir"),
            stream=bool(d.get("stream", False)),
            system_prompt=d.get("system_prompt"),
            temperature=float(d["temperature"]) if d.get("temperature") is not None else 0.0,
            seed=int(d["seed"]) if d.get("seed") is not None else None,
            local_fallback=bool(d.get("local_fallback", True)),
            accept_degraded=bool(d.get("accept_degraded", False)),
            grounding_ocr=_bool(d.get("grounding_ocr", False)),
            page_marker=str(d.get("page_marker", RunConfig.page_marker)),
            annotated_markdown=_bool(d.get("annotated_markdown", False)),
            batch=str(d.get("batch", RunConfig.batch)),
            review_dpi=int(d.get("review_dpi", RunConfig.review_dpi)),
            prices=dict(d.get("prices", {})),
            page_timeout=float(d.get("page_timeout", RunConfig.page_timeout)),
            worker_memory_mb=int(d.get("worker_memory_mb", RunConfig.worker_memory_mb)),
            stall_timeout=float(d.get("stall_timeout", RunConfig.stall_timeout)),
            password=password,
        )
    except (TypeError, ValueError) as e:
        raise UsageError(f"bad setting: {e}") from None
    return cfg


def _bool(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")


def _typed(d: dict[str, Any], cls) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for k, v in d.items():
        if k not in fields:
            raise UsageError(f"unknown setting {k!r} in [{cls.__name__}]")
        default = fields[k].default
        if isinstance(default, bool):
            out[k] = v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
        elif isinstance(default, int) and v is not None:
            out[k] = int(v)
        elif isinstance(default, float) and v is not None:
            out[k] = float(v)
        else:
            out[k] = v
    return out


def _typed_endpoint(d: dict[str, Any]) -> dict[str, Any]:
    return _typed(d, EndpointSpec)


def _typed_task(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    if "question" in d:
        d["questions"] = _as_list(d.pop("question"))
    if "schema" in d and isinstance(d["schema"], str):
        d["schema_path"] = d.pop("schema")
    return _typed(d, TaskSpec)


def _as_list(v: Any) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if obj is None:
            return None
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def set_path(d: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = value
