"""The Python API: process files from a notebook or a script, without the command line and
without Prefect::

    import pixtract

    result = pixtract.run(["report.pdf"])                     # transcribe, local engine
    for rec in result.records:
        print(rec.page, rec.status, (rec.answer or "")[:80])

It runs the batch core of ``pixtract run`` (pipeline/batch.py) on a thread pool, after the same
checks (pipeline/checks.py), so a run here and a run from the command line answer and write
alike. Nothing waits on an event loop: it works inside Jupyter's running loop too (it blocks
the cell until the run is done; ``await asyncio.to_thread(pixtract.run, ...)`` keeps the loop
free).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .batch import RunControl
from .progress import Listener
from .records import Record

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Result:
    """What a run gives back: every record in input order (as results.jsonl holds them), the run
    summary (``outcome``, ``headline``, counts, cost, ledger) and the output folder (None when
    the run wrote to a temporary folder)."""

    records: list[Record] = field(repr=False)
    summary: dict[str, Any] = field(repr=False)
    out: str | None

    @property
    def outcome(self) -> str:
        """complete, degraded, incomplete, failed or interrupted (pipeline/outcome.py)."""
        return self.summary["outcome"]

    @property
    def headline(self) -> str:
        return self.summary["headline"]

    @property
    def exit_code(self) -> int:
        """The exit code ``pixtract run`` would have ended with."""
        return self.summary["exit_code"]

    def __repr__(self) -> str:
        return f"Result(outcome={self.outcome!r}, records={len(self.records)}, out={self.out!r})"


def run(inputs: PathLike | Sequence[PathLike], *, task: str | Sequence[str] | None = None,
        profile: str | None = None, out: PathLike | None = None, question: str | Sequence[str] | None = None,
        schema: PathLike | dict | None = None, scope: str | None = None, prompt: str | None = None,
        job: PathLike | None = None, password: str | None = None, overwrite: bool = False,
        listener: Listener | None = None, control: RunControl | None = None, **settings: Any) -> Result:
    """Answer every page of ``inputs`` (files, folders, globs) and return the records.

    ``task``: transcribe (the default, unless ``question`` makes it ask or ``schema`` extract),
    ask, extract or chart, or a list of them; ``question`` (ask),
    ``schema`` (extract: a JSON Schema file or dict), ``scope`` ("page" or "document", for ask
    and extract) and ``prompt`` go with the tasks as ``--question``, ``--schema``, ``--scope``
    and ``--prompt`` do. ``profile``: local (default) or a model API; keys come from the
    environment (e.g. ``MISTRAL_API_KEY``), as for the command line. ``settings`` are any other
    job-file keys, e.g. ``concurrency=4``, ``budget_usd=2.0``, ``render={"max_edge": 1536}``,
    ``endpoint={"vision_model": "..."}``; precedence is the CLI's: job file < ``PIXTRACT_*``
    environment < these arguments.

    ``out``: write results.jsonl, the Markdown files, manifest.json and report.html there, as
    ``pixtract run --out`` does (and keep the answer cache there, so a rerun resumes). Without
    it the run writes to a temporary folder, deleted before this returns (no report, no cache).

    ``listener`` is told of each document and finished record (``document(path, pages)``,
    ``record(rec)``); ``control`` lets another thread stop the run (``control.stop.set()``).
    Raises UsageError (or ConfigError) for a run that cannot start, as the command line exits 2;
    a run that starts returns, whatever its outcome (see ``Result.outcome``)."""
    from . import malloc

    malloc.tune()  # what the command line does before its first thread (pipeline/malloc.py)
    if out is None:
        with tempfile.TemporaryDirectory(prefix="pixtract-") as tmp:
            return _run(inputs, os.path.join(tmp, "out"), None, locals(), settings, report=False)
    return _run(inputs, os.fspath(out), os.fspath(out), locals(), settings, report=True)


def _run(inputs, folder: str, out: str | None, a: dict[str, Any], settings: dict[str, Any], report: bool) -> Result:
    from . import batch
    from .checks import check_run
    from .config import build_config, env_layer, load_job
    from .outputs import read_results

    layer = {**settings, "inputs": _paths(inputs), "out": folder, "profile": a["profile"],
             "tasks": _tasks(a["task"], a["question"], a["schema"], a["scope"], a["prompt"])}
    job = load_job(os.fspath(a["job"])) if a["job"] else {}
    cfg = build_config(job, env_layer(), layer, password=a["password"])
    control = a["control"] or RunControl()
    control.preflight = check_run(cfg, a["overwrite"])
    summary = batch.run(cfg, listener=a["listener"], control=control, report=report)
    return Result(records=read_results(folder), summary=summary, out=out)


def _paths(inputs) -> list[str]:
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    return [os.fspath(p) for p in inputs]


def _tasks(task, question, schema, scope, prompt) -> list[dict[str, Any]] | None:
    """The task list, as the command line builds it from ``--task``, ``--question`` ... (None:
    the job file's tasks, or transcribe)."""
    from .errors import UsageError

    questions = [question] if isinstance(question, str) else list(question or [])
    kinds = [task] if isinstance(task, str) else list(task or [])
    if not kinds:
        if not (questions or schema is not None or scope or prompt):
            return None
        kinds = ["ask" if questions else "extract" if schema is not None else "transcribe"]
    if scope == "document" and not {"ask", "extract"} & set(kinds):
        raise UsageError("scope='document' is for the ask and extract tasks")
    if len(kinds) > 1 and prompt:
        raise UsageError("prompt= with several tasks: which task would it replace? Give each task's prompt "
                         "in a job file ([[tasks]] kind = ..., prompt = ...)")
    for given, kind in ((questions, "ask"), (schema, "extract")):
        if given and kind not in kinds:
            raise UsageError(f"{'question' if kind == 'ask' else 'schema'}= belongs to task {kind!r}, "
                             f"which is not among the tasks given")
    tasks = []
    for kind in kinds:
        t: dict[str, Any] = {"kind": kind, "prompt": prompt, "scope": scope if kind in ("ask", "extract") else None}
        if kind == "ask":
            t["questions"] = questions
        if kind == "extract" and schema is not None:
            t["schema"] = os.fspath(schema) if isinstance(schema, (str, os.PathLike)) else schema
        tasks.append({k: v for k, v in t.items() if v is not None})
    return tasks
