"""What belongs to a whole run rather than to one page worker or one process.

A run may be answered by several page workers and, for an inbox run, by parts in other
processes or on other machines. Its spending limit, its price table and who listens to its
progress are the run's: a ``RunContext`` is made once per process from the run's configuration
and handed to the page worker (``Router``, and through it to the ladder walk's callers) and the
batch (pipeline/batch.py), never kept in a module-level global, so a second run in the same
process (``pixtract serve``, a notebook) starts from its own figures and is heard only by its
own listeners.

Two registries stay process-wide, each for a reason written where it lives: the secrets that
redaction removes (pipeline/providers/errors.py) and the MuPDF worker pool (pipeline/workers.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .config import RunConfig
from .guards import Budget, budget_for
from .prices import PriceTable
from .progress import Listeners


@dataclass
class RunContext:
    budget: Budget
    prices: PriceTable
    listeners: Listeners = field(default_factory=Listeners)  # told of documents and records (progress.py)

    @classmethod
    def for_run(cls, cfg: RunConfig) -> "RunContext":
        """The context of this process's share of the run ``cfg`` describes. With
        ``cfg.budget_file`` (set by an inbox run for its parts) the budget is shared with every
        other part; each part keeps its entry under its own output folder's path."""
        return cls(budget=budget_for(cfg.budget_usd, cfg.budget_file, os.path.abspath(cfg.out)),
                   prices=cfg.prices_table())
