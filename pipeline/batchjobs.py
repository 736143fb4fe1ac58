"""The batch jobs of one output folder, on disk: what was submitted, to which job, for which
pages, and what came back. A run in batch mode (pipeline/batchmode.py) writes a job's items
here before anything is uploaded, and every later step (uploaded, job created, output saved)
is one more atomic write, so a process killed at any moment leaves a store the next run can
finish from: a job planned but not uploaded is uploaded (or found by its file name), a job
uploaded but not created is created (or found by its metadata), a job whose output was being
downloaded is downloaded again.

The store sits beside the answer cache (``OUT/.pixtract/batch/`` for a run of its own; for a
scheduled inbox, whose runs each write a dated folder, beside the inbox's shared cache), so the
next run finds the jobs of the last one. Several processes may share it (an inbox run's parts):
``exclusive()`` holds a file lock for a whole step.

Layout::

    jobs.json              every job: name, model, state, vendor IDs, status, counters
    NAME.items.json        custom_id -> the request's fingerprint and the units it answers
                           (document path and SHA-256, page, task, question, region, cache key)
    NAME.input.jsonl       the input file as uploaded ({"custom_id", "body"} lines), until the
                           job exists (the page images need not stay on disk twice)
    NAME.output.jsonl      the job's output file, once downloaded whole
    NAME.errors.jsonl      the job's error file, once downloaded whole
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from .files import atomic_write, locked
from .outputs import WORK_DIR

# A job's own states in the store (the vendor's status is kept beside them):
PLANNED = "planned"  # items and input file written here; nothing uploaded yet (or not known to be)
UPLOADED = "uploaded"  # the input file is on the vendor's side (input_file); no job known yet
SUBMITTED = "submitted"  # the job exists (job_id); not finished when last looked at
FINISHED = "finished"  # the job ended (status); its output and error files are saved here
STATES = (PLANNED, UPLOADED, SUBMITTED, FINISHED)


@dataclass
class JobEntry:
    name: str  # pixtract's name for the job: the input file's name and the job's metadata carry it
    model: str
    items: int
    created: str  # ISO time of planning
    state: str = PLANNED
    input_file: str | None = None
    job_id: str | None = None
    status: str | None = None  # the vendor's BatchJobStatus, last seen
    counts: dict[str, int] = field(default_factory=dict)  # total/completed/succeeded/failed requests
    errors: list[str] = field(default_factory=list)  # the job's own errors (a job that failed as a whole)

    @property
    def upload_name(self) -> str:
        return f"pixtract-{self.name}.jsonl"


@dataclass(frozen=True)
class Item:
    """One request of a job: its custom_id, the fingerprint of its body, and the units it answers."""

    custom_id: str
    fingerprint: str
    units: tuple[dict[str, Any], ...]


class JobStore:
    """The store of one output folder. Thread-safe within a process; one process at a time."""

    def __init__(self, out: str, root: str | None = None) -> None:
        self.root = root or os.path.join(out, WORK_DIR, "batch")
        self._lock = threading.Lock()

    @classmethod
    def for_run(cls, cfg) -> "JobStore":
        """The store of a run: beside its answer cache (shared by an inbox's runs and parts)."""
        return cls(cfg.out, os.path.join(os.path.dirname(os.path.abspath(cfg.cache_path())), "batch"))

    def exclusive(self):
        """One process at a time through a step that reads, calls the API and writes."""
        return locked(os.path.join(self.root, ".lock"))

    def path(self, name: str, suffix: str) -> str:
        return os.path.join(self.root, f"{name}.{suffix}")

    # -- jobs ------------------------------------------------------------------------------
    def jobs(self) -> list[JobEntry]:
        try:
            with open(os.path.join(self.root, "jobs.json"), encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return []
        return [JobEntry(**j) for j in data.get("jobs", [])]

    def _write_jobs(self, jobs: list[JobEntry]) -> None:
        atomic_write(os.path.join(self.root, "jobs.json"),
                     json.dumps({"version": 1, "jobs": [dataclasses.asdict(j) for j in jobs]}, indent=1))

    def plan(self, entry: JobEntry, items: list[Item], lines: list[str]) -> None:
        """Write a new job's items and input file, then its entry (in that order: an entry is
        never without its items)."""
        atomic_write(self.path(entry.name, "items.json"),
                     json.dumps({i.custom_id: {"fingerprint": i.fingerprint, "units": list(i.units)}
                                 for i in items}, ensure_ascii=False))
        atomic_write(self.path(entry.name, "input.jsonl"), "".join(line + "\n" for line in lines))
        with self._lock:
            jobs = [j for j in self.jobs() if j.name != entry.name]
            self._write_jobs(jobs + [entry])

    def update(self, name: str, **changes: Any) -> JobEntry:
        with self._lock:
            jobs = self.jobs()
            entry = next(j for j in jobs if j.name == name)
            for k, v in changes.items():
                setattr(entry, k, v)
            self._write_jobs(jobs)
            return entry

    # -- a job's files ---------------------------------------------------------------------
    def items(self, name: str) -> dict[str, Item]:
        with open(self.path(name, "items.json"), encoding="utf-8") as f:
            data = json.load(f)
        return {cid: Item(cid, d["fingerprint"], tuple(d["units"])) for cid, d in data.items()}

    def input_bytes(self, name: str) -> bytes:
        with open(self.path(name, "input.jsonl"), "rb") as f:
            return f.read()

    def drop_input(self, name: str) -> None:
        """Remove a created job's input file (its items stay: they map the answers to pages)."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path(name, "input.jsonl"))

    def save_result(self, name: str, kind: str, content: bytes) -> None:
        """A downloaded output or error file (``kind``: output, errors), whole or not at all."""
        atomic_write(self.path(name, f"{kind}.jsonl"), content)

    def result_lines(self, name: str, kind: str) -> list[dict]:
        """The saved lines of a job's output or error file ([] when it had none)."""
        try:
            with open(self.path(name, f"{kind}.jsonl"), encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
