"""Before any page: ask each endpoint of the job once whether it will serve, and decide.

The ladder's remote rungs are planned here (``ladder_plan``) and checked with one models-list
request per endpoint (``preflight``). A refused key, an unreachable host or a model the user
chose that the endpoint does not list stops the run (UsageError: exit 2) with the profile, the
endpoint and the fix. A profile's default model that is retired or not offered only takes its
rung out of the ladder, and only while another model rung remains; otherwise the run stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import EndpointSpec, RunConfig
from .errors import UsageError
from .records import ROUTE_OCR, ROUTE_TEXT_FALLBACK, ROUTE_VISION, ROUTE_VISION_ALT

OCR_DIALECT = "mistral-ocr"  # pipeline/providers/mistral_ocr.py

MAX_LISTED = 25  # models named in an "unlisted model" error


@dataclass(frozen=True)
class RungPlan:
    """One remote rung as the job plans it."""

    route: str
    spec: EndpointSpec
    model: str
    chosen: bool  # named by the user (flag, environment, job file), not the profile's default
    dialect: str | None = None  # the wire dialect, when not the profile's (the OCR endpoint's)


@dataclass
class PreflightReport:
    unavailable: dict[str, str] = field(default_factory=dict)  # route -> why it left the ladder
    notes: list[str] = field(default_factory=list)  # one line per problem, for the user

    def as_dict(self) -> dict:
        return {"unavailable": dict(self.unavailable), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict | None) -> "PreflightReport":
        return cls(**d) if d else cls()


def ladder_plan(cfg: RunConfig) -> list[RungPlan]:
    """The remote rungs of a job, best first: ocr (``--route ocr``), vision, vision-alt,
    text-fallback."""
    from .providers.profiles import get_profile

    rungs: list[RungPlan] = []
    ep = cfg.endpoint
    if not ep.remote:
        return rungs
    if cfg.route == ROUTE_OCR:
        rungs.append(RungPlan(ROUTE_OCR, ep, cfg.ocr_model, bool(ep.ocr_model), OCR_DIALECT))
    prof = get_profile(ep.profile)
    if ep.vision_model or prof.vision_model:
        rungs.append(RungPlan(ROUTE_VISION, ep, ep.vision_model or prof.vision_model, bool(ep.vision_model)))
    alt = cfg.vision_alt
    if alt is not None and alt.remote:
        aprof = get_profile(alt.profile)
        if alt.vision_model or aprof.vision_model:
            rungs.append(RungPlan(ROUTE_VISION_ALT, alt, alt.vision_model or aprof.vision_model,
                                  bool(alt.vision_model)))
    if ep.text_model or prof.text_model:
        rungs.append(RungPlan(ROUTE_TEXT_FALLBACK, ep, ep.text_model or prof.text_model, bool(ep.text_model)))
    return rungs


def preflight(cfg: RunConfig, make_client=None, timeout: float = 15.0) -> PreflightReport:
    """Ask every endpoint of the job once; raise UsageError for what stops the run."""
    from .providers import ProviderError, make_client as default_make_client

    plan = ladder_plan(cfg)
    report = PreflightReport()
    listings: dict[tuple, tuple] = {}
    for rung in plan:
        spec = rung.spec
        key = (spec.profile, spec.base_url, spec.api_key_env, spec.api_key_secret)
        if key not in listings:
            try:
                client = (make_client or default_make_client)(spec.endpoint(timeout=timeout))
            except ProviderError as e:
                raise UsageError(f"profile {spec.profile}: {e}") from None
            with client:
                listings[key] = (client.endpoint.base_url,
                                 client.check_models([r.model for r in plan if r.spec is spec]))
        url, models = listings[key]
        _decide_endpoint(spec, url, models)
        why = _rung_problem(rung, models)
        if why:
            report.unavailable[rung.route] = why
            report.notes.append(f"{rung.route}: {why}")
    for rung in plan:
        url, models = listings[(rung.spec.profile, rung.spec.base_url, rung.spec.api_key_env,
                                   rung.spec.api_key_secret)]
        if rung.chosen and rung.route in report.unavailable:
            raise UsageError(_chosen_model_message(rung, url, models, report.unavailable[rung.route]))
    if plan and all(r.route in report.unavailable for r in plan):
        raise UsageError("no model of this job can be used: " + "; ".join(report.notes)
                         + ". Choose current models with --vision-model / --text-model "
                           "(see: pixtract models --profile " + cfg.endpoint.profile + ")")
    return report


def _decide_endpoint(spec: EndpointSpec, url: str, models) -> None:
    """A refused key or an unreachable host stops the run, naming profile, endpoint and fix."""

    err = models.exception
    if err is None:
        return
    status = getattr(err, "status", None)
    var = spec.key_env
    if status in (401, 403):
        raise UsageError(f"the key was refused by {url} ({status}, profile {spec.profile}): {err.message}. "
                         f"Fix: check {var}, or create a new key; `pixtract doctor --profile {spec.profile}` "
                         f"checks it")
    from .providers.errors import ConnectionFailed, TimeoutError_

    if isinstance(err, (ConnectionFailed, TimeoutError_)):
        raise UsageError(f"cannot reach {url} (profile {spec.profile}): {err.message}. "
                         f"Fix: check --base-url and the network; `pixtract doctor --profile {spec.profile}`")


def _rung_problem(rung: RungPlan, models) -> str | None:
    if models.error is not None:
        return None  # the listing did not work (e.g. no /models route): the requests will tell
    if rung.model in models.retired:
        return f"model {rung.model} is retired: {models.retired[rung.model]}"
    if rung.model in models.unknown:
        return f"model {rung.model} is not offered by {rung.spec.profile}"
    return None


def _chosen_model_message(rung: RungPlan, url: str, models, why: str) -> str:
    listed = sorted(models.listed)
    shown = ", ".join(listed[:MAX_LISTED]) + (f" and {len(listed) - MAX_LISTED} more" if len(listed) > MAX_LISTED
                                              else "")
    flag = {"vision": "--vision-model", "vision-alt": "--alt-vision-model", "ocr": "--ocr-model"}.get(
        rung.route, "--text-model")
    return (f"{why} (profile {rung.spec.profile}, {url}). The endpoint lists: {shown or 'no models'}. "
            f"Fix: choose one of them with {flag}")
