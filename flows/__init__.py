"""Prefect flows, tasks and the ``pixtract`` command, over the ``pipeline`` library."""
