"""One outcome vocabulary for people and machines: the summary's first line, the exit status,
the manifest and the Prefect flow run all say which of these a run ended as.

=============  ====  ==========================================================================
outcome        exit  meaning
=============  ====  ==========================================================================
complete       0     every unit answered on its planned route (or truly empty: a blank page,
                     a page with no chart)
degraded       3     every unit answered, some by a fallback rung (the record says why)
pending        4     batch mode: nothing failed, but some units wait in a batch job (skipped,
                     ``batch_pending``); the same command run later collects them
incomplete     1     some units failed or were skipped (budget, errors), or the ledger has a gap
usage          2     nothing was done: bad usage or configuration, refused key, no documents
interrupted    130   stopped by SIGINT (143: SIGTERM); what was done is written, a rerun resumes
=============  ====  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMPLETE, DEGRADED, INCOMPLETE, USAGE, INTERRUPTED = "complete", "degraded", "incomplete", "usage", "interrupted"
PENDING = "pending"
EXIT_CODES = {COMPLETE: 0, INCOMPLETE: 1, USAGE: 2, DEGRADED: 3, PENDING: 4, INTERRUPTED: 130}
BATCH_PENDING = "batch_pending"  # the skip reason of a unit waiting in a batch job (pipeline/batchmode.py)
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def decide(summary: Mapping[str, Any]) -> str:
    """The outcome of a run from its summary (``OutputWriter.summary``)."""
    if summary.get("interrupted"):
        return INTERRUPTED
    ledger = summary.get("ledger") or {}
    waiting = _pending(summary)
    if waiting and summary.get("not_answered", 0) == waiting and ledger.get("balanced", True):
        return PENDING
    if summary.get("not_answered", 0) or not ledger.get("balanced", True):
        return INCOMPLETE
    if summary.get("degraded", 0):
        return DEGRADED
    return COMPLETE


def exit_code(summary: Mapping[str, Any]) -> int:
    outcome = decide(summary)
    if outcome == INTERRUPTED:
        return SIGNAL_EXIT.get(summary.get("interrupted") or "", 130)
    return EXIT_CODES[outcome]


_WHY = {"budget_exceeded": "budget reached", "interrupted": "interrupted", BATCH_PENDING: "waiting in a batch job"}


def _pending(summary: Mapping[str, Any]) -> int:
    return (summary.get("skipped_by_reason") or {}).get(BATCH_PENDING, 0)


def _counts(d: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


def headline(summary: Mapping[str, Any]) -> str:
    """The summary's first line: the outcome in capitals, then what a person needs to act."""
    outcome = decide(summary)
    records = summary.get("records", 0)
    route = summary.get("planned_route")
    planned = route or "the planned route"
    if outcome == INTERRUPTED:
        return (f"INTERRUPTED by {summary['interrupted']}: {records - summary.get('not_answered', 0)} of "
                f"{records} records answered and written; run the same command again to resume")
    if outcome == PENDING:
        return (f"PENDING: {_pending(summary)} of {records} records submitted in batch jobs and not answered yet "
                f"({records - summary.get('not_answered', 0)} answered); run the same command again later to "
                f"collect them")
    if outcome == COMPLETE:
        return f"COMPLETE: all {records} records answered on the planned route" + (f" ({route})" if route else "")
    parts = []
    failed_types = summary.get("failed_by_type") or {}
    if summary.get("failed"):
        parts.append(f"{summary['failed']} failed ({_counts(failed_types)})")
    skipped = {_WHY.get(k, k): v for k, v in (summary.get("skipped_by_reason") or {}).items() if k != "no_chart"}
    if skipped:
        parts.append(f"{sum(skipped.values())} skipped ({_counts(skipped)})")
    ledger = summary.get("ledger") or {}
    if not ledger.get("balanced", True):
        parts.append("LEDGER MISMATCH (records missing or duplicated: a bug)")
    if summary.get("degraded"):
        parts.append(f"{summary['degraded']} answered by a fallback instead of {planned} "
                     f"({_counts(summary.get('degraded_by_route') or {})})")
    if outcome == DEGRADED:
        return (f"DEGRADED: all {records} records answered, but " + "; ".join(parts)
                + "; a rerun retries them on the planned route (--accept-degraded keeps them)")
    return f"INCOMPLETE: {summary.get('not_answered', 0)} of {records} records not answered: " + "; ".join(parts)
