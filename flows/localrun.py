"""What an in-process caller hands a run besides its parameters. Kept free of Prefect, so that
the CLI can make one (and start answering the first pages) while Prefect is still importing."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pixtract.preflight import PreflightReport


@dataclass
class LocalRun:
    """What an in-process caller (the CLI) hands the flow besides its JSON parameters: the
    stop signal, and the preflight it already did. Not a flow parameter: it is not data."""

    stop: threading.Event = field(default_factory=threading.Event)
    signal: str | None = None  # SIGINT or SIGTERM, once stop is set by a signal
    preflight: PreflightReport | None = None
    router: Any = None  # the run's Router, when the caller made it (to answer the first pages early)
    written: threading.Event = field(default_factory=threading.Event)  # outputs are on disk
    api_lost: threading.Event = field(default_factory=threading.Event)  # the Prefect API went away
    summary: dict[str, Any] | None = None
