"""Run configuration: what to read, which task, which profile, how to render."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .records import RenderSettings

TASKS = ("transcribe", "ask", "extract", "chart")
LOCAL_TASKS = ("transcribe",)
PROFILES = ("local", "mistral", "openrouter", "modelslab", "modelslab-anthropic", "openai")
DEFAULT_PROFILE = "local"


def default_concurrency(profile: str) -> int:
    # The local engine is CPU-bound (rendering, Tesseract); model calls wait on the network.
    return max(1, os.cpu_count() or 1) if profile == "local" else 8


@dataclass
class RunConfig:
    inputs: list[str]
    out: str
    profile: str = DEFAULT_PROFILE
    task: str = "transcribe"
    render: RenderSettings = field(default_factory=RenderSettings)
    concurrency: int = 0  # 0: default for the profile
    password: str | None = None  # secret: never written anywhere

    def __post_init__(self) -> None:
        if not self.concurrency:
            self.concurrency = default_concurrency(self.profile)

    def validate(self) -> "RunConfig":
        """Raise UsageError before any work for a configuration that cannot run."""
        if not self.inputs:
            raise UsageError("no inputs given: name files, folders or globs to read")
        if self.profile not in PROFILES:
            raise UsageError(f"unknown profile {self.profile!r}; choose one of: {', '.join(PROFILES)}")
        if self.task not in TASKS:
            raise UsageError(f"unknown task {self.task!r}; choose one of: {', '.join(TASKS)}")
        if self.profile == "local" and self.task not in LOCAL_TASKS:
            raise UsageError(
                f"task {self.task!r} needs a model endpoint; the local profile only does "
                f"'transcribe'. Use e.g. --profile mistral (with MISTRAL_API_KEY set) or "
                f"--profile openai --base-url URL"
            )
        if self.profile != "local":
            raise UsageError(
                f"profile {self.profile!r} is not available in this version yet; use --profile local"
            )
        r = self.render
        if not 64 <= r.max_edge <= 10000:
            raise UsageError(f"--max-edge must be between 64 and 10000 px (got {r.max_edge})")
        if not 36 <= r.dpi_cap <= 1200:
            raise UsageError(f"--dpi-cap must be between 36 and 1200 (got {r.dpi_cap})")
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if not self.out:
            raise UsageError("--out DIR is required")
        return self

    def public(self) -> dict[str, Any]:
        """The effective configuration with secrets removed, for the manifest and Prefect."""
        d = dataclasses.asdict(self)
        d["password"] = "***" if self.password else None
        return d

    @classmethod
    def from_public(cls, d: dict[str, Any], password: str | None = None) -> "RunConfig":
        d = dict(d)
        d["render"] = RenderSettings(**d.get("render", {}))
        d["password"] = password
        return cls(**d)
