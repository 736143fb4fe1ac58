"""``pixtract doctor``: is this machine ready for the chosen profile? Each check says how to fix."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from . import ocr


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_python() -> Check:
    v = sys.version_info
    ok = v >= (3, 11)
    return Check("python", ok, f"Python {v.major}.{v.minor}.{v.micro}",
                 "" if ok else "install Python 3.11 or newer and recreate the venv (make clean setup)")


def check_tesseract() -> Check:
    from .manifest import tesseract_version

    exe = ocr.tesseract_path()
    if exe is None:
        return Check("tesseract", False, "tesseract not found on PATH", ocr.INSTALL_HINT + " (or run make setup)")
    return Check("tesseract", True, f"{exe} {tesseract_version() or '(version unknown)'}")


def check_prefect() -> Check:
    try:
        from importlib.metadata import version

        v = version("prefect")
    except Exception:
        return Check("prefect", False, "prefect is not installed", "pip install -e . (or make setup)")
    api = os.environ.get("PREFECT_API_URL")
    where = f"server at {api}" if api else "ephemeral API (a temporary local server per run)"
    return Check("prefect", True, f"Prefect {v}, {where}")


def check_endpoint(spec, timeout: float = 10.0) -> list[Check]:
    """Key present, endpoint reachable, configured models available."""
    from .providers.profiles import get_profile
    from .providers import ProviderError, make_client

    prof = get_profile(spec.profile)
    if prof.dialect is None:
        return [Check("profile", True, "local profile: no endpoint needed")]
    var = spec.key_env
    key = os.environ.get(var) if var else None
    checks = []
    if prof.key_required:
        checks.append(Check("api key", bool(key), f"{var} is {'set' if key else 'not set'}",
                            "" if key else f"export {var}=... (your {spec.profile} API key)"))
        if not key:
            return checks
    try:
        client = make_client(spec.endpoint(timeout=timeout, max_retries=0, max_rate_limit_wait=timeout))
    except ProviderError as e:
        return checks + [Check("endpoint", False, str(e), "fix the profile settings (see pixtract config show)")]
    with client:
        url = client.endpoint.base_url
        try:
            client.list_models()
        except ProviderError as e:
            fix = ("the key was refused: check it, or create a new one" if getattr(e, "status", None) in (401, 403)
                   else f"check --base-url ({url}) and the network")
            return checks + [Check("endpoint", False, f"{url}: {e}", fix)]
        checks.append(Check("endpoint", True, f"{url} answers"))
        report = client.check_models()
        for m in client.endpoint.models:
            if m in report.retired:
                checks.append(Check(f"model {m}", False, f"retired: {report.retired[m]}",
                                    "choose a current model with --vision-model/--text-model (pixtract models)"))
            elif m in report.unknown:
                checks.append(Check(f"model {m}", False, "not offered by this endpoint",
                                    "pick one listed by: pixtract models --profile " + spec.profile))
            else:
                checks.append(Check(f"model {m}", True, "available"))
    return checks


def run_checks(spec) -> list[Check]:
    return [check_python(), check_tesseract(), check_prefect(), *check_endpoint(spec)]


def format_checks(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"       fix: {c.fix}")
    return "\n".join(lines)
