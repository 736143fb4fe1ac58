"""The run manifest: inputs, counts, totals, timings, versions, effective configuration."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib import metadata
from typing import Any

from . import __version__
from .ocr import tesseract_path


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def tesseract_version() -> str | None:
    exe = tesseract_path()
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split()[-1] if first else None


def versions() -> dict[str, str | None]:
    return {
        "pixtract": __version__,
        "python": platform.python_version(),
        "prefect": _version("prefect"),
        "pymupdf": _version("pymupdf"),
        "pymupdf4llm": _version("pymupdf4llm"),
        "pillow": _version("pillow"),
        "httpx": _version("httpx"),
        "tesseract": tesseract_version(),
    }


def build_manifest(
    *, config: dict[str, Any], documents: list[dict[str, Any]], summary: dict[str, Any],
    started: dt.datetime, finished: dt.datetime, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from .config import fingerprint

    return {
        "pixtract_manifest": 1,
        "config_fingerprint": fingerprint(config),
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "seconds": round((finished - started).total_seconds(), 3),
        "inputs": documents,
        "counts": summary,
        "versions": versions(),
        "config": config,
        **(extra or {}),
    }
