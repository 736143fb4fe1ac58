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

# Environment variables, one per overridable setting ("section.key" paths into the layered dict).
ENV_VARS = {
    "PIXTRACT_PROFILE": "profile",
    "PIXTRACT_OUT": "out",
    "PIXTRACT_BASE_URL": "endpoint.base_url",
    "PIXTRACT_VISION_MODEL": "endpoint.vision_model",
    "PIXTRACT_TEXT_MODEL": "endpoint.text_model",
    "PIXTRACT_TIMEOUT": "endpoint.timeout",
    "PIXTRACT_MAX_RETRIES": "endpoint.max_retries",
    "PIXTRACT_CONCURRENCY": "concurrency",
    "PIXTRACT_MAX_EDGE": "render.max_edge",
    "PIXTRACT_BUDGET_USD": "budget_usd",
    "PIXTRACT_CACHE_DIR": "cache_dir",
    "PIXTRACT_OCR_ENGINE": "ocr.engine",
    "PIXTRACT_OCR_LANG": "ocr.lang",
}


@dataclass
class EndpointSpec:
    """A model endpoint by reference: profile plus overrides. Holds no key."""

    profile: str = DEFAULT_PROFILE
    base_url: str | None = None
    vision_model: str | None = None
    text_model: str | None = None
    timeout: float = 120.0
    max_retries: int = 4
    backoff_base: float = 0.5  # seconds; retries wait base * 2^n with jitter (or Retry-After)
    backoff_max: float = 30.0
    api_key_env: str | None = None  # read the key from this variable instead of the profile's
    api_key_secret: str | None = None  # or from this Prefect Secret block (flows only)

    @property
    def remote(self) -> bool:
        return self.profile != "local"


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
    tasks: list[TaskSpec] = field(default_factory=lambda: [TaskSpec()])
    endpoint: EndpointSpec = field(default_factory=EndpointSpec)
    vision_alt: EndpointSpec | None = None  # second vision endpoint (ladder rung 2)
    render: RenderSettings = field(default_factory=RenderSettings)
    ocr: OcrOptions = field(default_factory=OcrOptions)  # the local engine's OCR ([ocr] in a job file)
    concurrency: int = 0  # 0: default for the profile
    budget_usd: float | None = None
    cache: bool = True
    cache_dir: str | None = None  # default: <out>/.pixtract/cache
    stream: bool = False
    system_prompt: str | None = None
    temperature: float | None = 0.0
    seed: int | None = None
    local_fallback: bool = True  # transcribe falls back to the local engine
    prices: dict[str, Any] = field(default_factory=dict)  # extra USD per 1M tokens: {model: {input, output}}
    password: str | None = field(default=None, repr=False)  # secret: never written anywhere

    def __post_init__(self) -> None:
        self.endpoint.profile = self.profile
        if not self.concurrency:
            self.concurrency = max(1, os.cpu_count() or 1) if self.profile == "local" else 8

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
        r = self.render
        if not 64 <= r.max_edge <= 10000:
            raise UsageError(f"--max-edge must be between 64 and 10000 px (got {r.max_edge})")
        if not 36 <= r.dpi_cap <= 1200:
            raise UsageError(f"--dpi-cap must be between 36 and 1200 (got {r.dpi_cap})")
        if r.image_format not in ("auto", "png", "jpeg"):
            raise UsageError(f"image format must be auto, png or jpeg (got {r.image_format!r})")
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.budget_usd is not None and self.budget_usd < 0:
            raise UsageError("--budget-usd must not be negative")
        if self.endpoint.timeout <= 0 or self.endpoint.max_retries < 0:
            raise UsageError("--timeout must be positive and --max-retries at least 0")
        if self.profile == "openai" and not self.endpoint.base_url:
            raise UsageError("profile 'openai' needs --base-url (e.g. http://localhost:8000/v1 for vLLM)")
        return self

    def fingerprint(self) -> str:
        return fingerprint(self.public())

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
_JOB_IDENTITY = ("inputs", "profile", "tasks", "render", "ocr", "system_prompt", "temperature", "seed")
_ENDPOINT_IDENTITY = ("profile", "vision_model", "text_model")


def fingerprint(public: dict[str, Any]) -> str:
    import hashlib

    ident = {k: public.get(k) for k in _JOB_IDENTITY}
    for name in ("endpoint", "vision_alt"):
        ep = public.get(name) or {}
        ident[name] = {k: ep.get(k) for k in _ENDPOINT_IDENTITY}
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
    if "out" in job:
        job["out"] = rel(job["out"])
    for t in job.get("tasks", []):
        if t.get("schema"):
            t["schema_path"] = rel(t.pop("schema"))
    return job


def env_layer(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    for var, path in ENV_VARS.items():
        if environ.get(var):
            _set_path(layer, path, environ[var])
    return layer


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
            prices=dict(d.get("prices", {})),
            password=password,
        )
    except (TypeError, ValueError) as e:
        raise UsageError(f"bad setting: {e}") from None
    return cfg


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


def _set_path(d: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = value
