"""Prefect flows, tasks and the ``pixtract`` command, over the ``pipeline`` library."""

from pixtract import malloc as _malloc

_malloc.tune()  # before any worker thread exists: see pipeline/malloc.py
