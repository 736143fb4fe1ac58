"""Scheduled batches: deployments, serving, inbox runs (filled in by the scheduling work)."""

from __future__ import annotations


def add_commands(sub, add_config_flags) -> None:
    """Add ``deploy`` and ``serve`` to the ``pixtract`` command (none yet)."""
    return None
