"""What an in-process caller hands a run besides its parameters. Kept free of Prefect, so that
the CLI can make one (and start answering the first pages) while Prefect is still importing."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from pixtract.batch import RunControl


@dataclass
class LocalRun(RunControl):
    """What an in-process caller (the CLI) hands the flow besides its JSON parameters: the
    run's control (stop signal, the preflight it already did, ...), and whether the Prefect API
    went away. Not a flow parameter: it is not data."""

    api_lost: threading.Event = field(default_factory=threading.Event)  # the Prefect API went away
    # The PDF password for the flow run in this process: never a flow parameter (Prefect keeps
    # those in plain text), never left in os.environ for later runs or child processes.
    password: str | None = field(default=None, repr=False)
