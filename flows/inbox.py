"""Scheduled inbox runs, fanned out over Prefect workers.

A job file names an input folder (``inputs``) and an output root (``out``). Each run of the
``inbox-batch`` flow:

1. finds the documents that are new or changed since earlier runs, or failed last time, by the
   SHA-256 of their bytes, against ``<out>/index.json`` (sha256 -> {path, status, run, updated});
2. splits them into parts (one document, or a chunk of ``pages_per_part`` pages of a big one)
   and runs each part as its own ``extract-part`` flow run: on the work pool through the part
   deployment (``run_deployment(..., timeout=0)``, so any worker on any machine picks it up), or
   in this process when there is no part deployment;
3. waits for the parts, which write their records under ``<run>/.pixtract/parts/<NNN>/`` on the
   shared filesystem, and merges them with the ordinary output writer into one dated run folder
   ``<out>/runs/<YYYY-MM-DDTHHMMSSZ>/``: results.jsonl, one Markdown file per document,
   manifest.json with ONE ledger, report.html; thumbnails are shared under ``thumbs/``;
4. updates the index atomically: a document with any failed record is retried by the next run,
   one that succeeded is never sent again.

API keys never travel as parameters: a part reads them from its worker's environment, or from
the Prefect ``Secret`` block the job file names (``[endpoint] api_key_secret = "mistral-key"``),
resolved inside the part's own process into a process environment variable.

The index, run folders, part planning and merging are plain Python, in pipeline/inbox.py
(tests/test_inbox.py); this module holds the flows, ``run_deployment`` and its polling, and
the Secret blocks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger

from pixtract.config import RunConfig, build_config, env_layer, load_job
from pixtract.discover import discover
from pixtract.errors import UsageError
from pixtract.flows.artifacts import RunArtifacts
from pixtract.flows.batch import (
    Slice,
    extract_into,
    flow_state,
    pdf_password,
)
from pixtract.inbox import (  # noqa: F401 - InboxError and the plan/merge helpers are used from here too
    BUDGET_FILE,
    CONFIG_SNAPSHOT,
    DEFAULT_PAGES_PER_PART,
    INDEX,
    INDEX_OK,
    PART_INFO,
    InboxError,
    InboxIndex,
    PartSpec,
    _PartProgress,
    claim_run_dir,
    document_status,
    inbox_lock,
    index_entries,
    load_snapshot,
    merge_parts,
    part_dir,
    part_done,
    part_progress,
    plan_parts,
    run_name,
)
from pixtract.guards import read_shared_spend
from pixtract.ledger import format_ledger
from pixtract.manifest import build_manifest
from pixtract.files import atomic_write
from pixtract.outputs import MANIFEST, WORK_DIR, OutputWriter
from pixtract.report import build_report
from pixtract.workers import WorkerSettings, running_workers

PARENT_FLOW, PART_FLOW = "inbox-batch", "extract-part"


# --------------------------------------------------------------------------- secrets


def resolve_secrets(cfg: RunConfig) -> list[str]:
    """Load the Prefect Secret blocks the job names into process environment variables of
    this process and point the endpoints at them; the values go nowhere else. Returns the
    variables set."""
    set_vars = []
    for label, spec in (("ENDPOINT", cfg.endpoint), ("VISION_ALT", cfg.vision_alt)):
        if spec is None or not spec.remote or not spec.api_key_secret:
            continue
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(spec.api_key_secret).get()
        except Exception as e:  # noqa: BLE001 - the block is missing or unreadable
            raise UsageError(f"cannot load the Prefect Secret block {spec.api_key_secret!r}: "
                             f"{type(e).__name__}") from None
        var = f"PIXTRACT_SECRET_{label}"
        os.environ[var] = str(value)
        spec.api_key_env = var
        set_vars.append(var)
    return set_vars


def check_secret_blocks(cfg: RunConfig) -> None:
    """Fail before fanning out when a named Secret block does not exist (its value is not read)."""
    for spec in (cfg.endpoint, cfg.vision_alt):
        if spec is not None and spec.remote and spec.api_key_secret:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                try:
                    client.read_block_document_by_name(spec.api_key_secret, "secret", include_secrets=False)
                except Exception as e:  # noqa: BLE001
                    raise UsageError(f"the job names the Prefect Secret block {spec.api_key_secret!r}, "
                                     f"which cannot be read ({type(e).__name__}); create it with "
                                     f"Secret(value=...).save({spec.api_key_secret!r})") from None


# --------------------------------------------------------------------------- the flows


@flow(name=PART_FLOW, log_prints=False, retries=1, retry_delay_seconds=5)
def extract_part(run_dir: str, part: str, documents: list[str], first_page: int | None = None,
                 last_page: int | None = None, doc_units: bool = True) -> dict[str, Any]:
    """One part of an inbox run: ``documents`` (of one document, only pages ``first_page``..
    ``last_page``), with the run's configuration, into ``<run_dir>/.pixtract/parts/<part>/``."""
    log = get_run_logger()
    cfg = RunConfig.from_public(load_snapshot(run_dir), password=pdf_password())
    folder = part_dir(run_dir, part)
    cfg.inputs, cfg.out = list(documents), folder
    cfg.validate()
    secret_vars = resolve_secrets(cfg)
    who = {"part": part, "worker": os.environ.get("PREFECT__WORKER_NAME") or os.environ.get("PIXTRACT_WORKER"),
           "host": socket.gethostname(), "pid": os.getpid(), "flow_run_id": _flow_run_id(),
           "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    os.makedirs(folder, exist_ok=True)
    atomic_write(os.path.join(folder, PART_INFO), json.dumps(who, indent=2) + "\n")
    log.info("part %s: %d document(s)%s on %s (worker %s, pid %s)", part, len(documents),
             f", pages {first_page}-{last_page} of {documents[0]}" if first_page else "", who["host"], who["worker"],
             who["pid"])
    try:
        summary = extract_into(cfg, part=Slice(first_page, last_page, doc_units), report=False,
                               thumbs_dir=run_dir, extra={"part": who}, listener=_PartProgress(folder))
    finally:
        for var in secret_vars:  # in-process parts share the parent's environment
            os.environ.pop(var, None)
    return {"part": part, "records": summary["records"], "by_status": summary["by_status"],
            "worker": who["worker"], "host": who["host"], "pid": who["pid"]}


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.get_id()) if flow_run.get_id() else None


def _scheduled_time() -> dt.datetime:
    from prefect.runtime import flow_run

    try:
        when = flow_run.get_scheduled_start_time()
        return dt.datetime.fromisoformat(when.isoformat())
    except Exception:  # noqa: BLE001
        return dt.datetime.now(dt.timezone.utc)


def job_config(job: str) -> RunConfig:
    """The job file with the environment over it (``PIXTRACT_*``); raises UsageError."""
    return build_config(load_job(job), env_layer()).validate()


@flow(name=PARENT_FLOW, log_prints=False)
def inbox_batch(job: str, part_deployment: str | None = None, pages_per_part: int = DEFAULT_PAGES_PER_PART,
                wait_hours: float = 24.0, poll_seconds: float = 2.0) -> dict[str, Any]:
    """One scheduled run of the inbox the job file ``job`` describes (see the module doc).

    ``part_deployment`` (``extract-part/<name>``) sends every part to the work pool; without
    it the parts run one after another in this process."""
    log = get_run_logger()
    started = dt.datetime.now(dt.timezone.utc)
    cfg = job_config(job)
    root = os.path.abspath(cfg.out)
    with inbox_lock(root):
        summary = _inbox_run(log, cfg, root, started, part_deployment, pages_per_part, wait_hours, poll_seconds)
    # The night's outcome on the flow run itself: Completed, "Degraded" or "Incomplete".
    return flow_state(summary) if summary.get("outcome") else summary


def _inbox_run(log, cfg: RunConfig, root: str, started: dt.datetime, part_deployment: str | None,
               pages_per_part: int, wait_hours: float, poll_seconds: float) -> dict[str, Any]:
    index = InboxIndex(root)
    todo, unchanged = index.select(discover(cfg.inputs))
    art = RunArtifacts(f"pages answered in this inbox run ({len(todo)} documents)")
    inbox_info = {"root": root, "index": index.path, "selected": len(todo), "unchanged": len(unchanged)}
    if not todo:
        log.info("inbox %s: nothing new (%d documents unchanged)", root, len(unchanged))
        art.set_progress(1, 1, force=True)
        _nothing_new(root, index.path, len(unchanged))
        return {"run": None, "run_dir": None, "records": 0, "by_status": {}, "inbox": inbox_info}
    check_secret_blocks(cfg)
    owner = _flow_run_id() or f"local-{os.getpid()}-{time.time_ns()}"
    name = run_name(_scheduled_time())
    run_dir = claim_run_dir(root, name, owner)
    name = os.path.basename(run_dir)
    snapshot = cfg.public()
    snapshot.update(out=run_dir, cache_dir=os.path.abspath(cfg.cache_path()))
    if cfg.budget_usd is not None:  # one limit for the whole run: every part reserves against it
        snapshot["budget_file"] = os.path.join(run_dir, WORK_DIR, BUDGET_FILE)
    atomic_write(os.path.join(run_dir, WORK_DIR, CONFIG_SNAPSHOT), json.dumps(snapshot, indent=2) + "\n")
    plan_path = os.path.join(run_dir, WORK_DIR, "parts.json")
    if os.path.exists(plan_path):  # a retried run keeps its plan (and its finished parts)
        with open(plan_path, encoding="utf-8") as f:
            specs = [PartSpec(**d) for d in json.load(f)]
    else:
        with running_workers(WorkerSettings.for_run(cfg, 1)):  # counting pages opens every document
            specs = plan_parts(todo, pages_per_part, cfg.password)
        atomic_write(plan_path, json.dumps([asdict(s) for s in specs], indent=2) + "\n")
    total_pages = sum(s.page_count() for s in specs)
    log.info("inbox %s: %d new, changed or retried documents (%d unchanged) in %d parts, %d pages -> %s",
             root, len(todo), len(unchanged), len(specs), total_pages, run_dir)
    why = _run_parts(log, art, run_dir, specs, total_pages, part_deployment, wait_hours, poll_seconds)

    run_cfg = RunConfig.from_public(snapshot, password=cfg.password)
    writer = OutputWriter(run_dir, cfg.page_marker, cfg.annotated_markdown)
    try:
        documents = merge_parts(writer, run_cfg, run_dir, specs, why)
    except BaseException:
        writer.abort()
        raise
    summary = writer.summary()
    parts_info, problems, spent, refused = _parts_info(run_dir, specs, why)
    if snapshot.get("budget_file") and os.path.exists(snapshot["budget_file"]):
        # the shared spend also counts what parts spent in attempts that crashed
        spent = sum(e["spent"] for e in read_shared_spend(snapshot["budget_file"]).values())
    finished = dt.datetime.now(dt.timezone.utc)
    inbox_info.update(run=name, parts=len(specs), pages_per_part=pages_per_part)
    writer.finish(build_manifest(
        config=snapshot, documents=writer.documents, summary=summary, started=started, finished=finished,
        extra={"outcome": summary["outcome"], "headline": summary["headline"],
               "ledger": summary["ledger"], "model_problems": problems,
               "budget": {"limit_usd": cfg.budget_usd, "spent_usd": round(spent, 6), "refused_requests": refused,
                          "per": "run"},
               "inbox": inbox_info, "parts": parts_info}))
    build_report(run_dir)
    index.update(index_entries(documents, name, finished))
    for _, _, recs in documents:
        for r in recs:
            art.add(r)
    workers = sorted({p["worker"] or p["host"] for p in parts_info if p.get("host")})
    retried = sum(1 for _, _, recs in documents if document_status(recs) != INDEX_OK)
    art.finish(run_dir, summary, [d.get("markdown") for d in writer.documents], title=f"inbox run {name}",
               more=f"* inbox: {len(todo)} documents new, changed or retried; {len(unchanged)} unchanged; "
                    f"{retried} to retry next run\n* parts: {len(specs)} on {', '.join(workers) or 'no worker'}",
               links=[("index.json", index.path)])
    log.info("%s", summary["headline"])
    log.info("%s", format_ledger(summary["ledger"]))
    log.info("inbox run %s: %d records for %d documents", name, summary["records"], len(documents))
    return {**summary, "run": name, "run_dir": run_dir, "inbox": inbox_info, "workers": workers}


def _nothing_new(root: str, index_path: str, unchanged: int) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from pixtract.flows.artifacts import artifact_call, file_link

    artifact_call(create_table_artifact, key="pixtract-pages", description="records per task, route and status",
                   table=[{"task": "-", "route": "-", "status": "-", "records": 0, "cost_usd": 0.0}])
    artifact_call(create_markdown_artifact, key="pixtract-summary", description="where the outputs are",
                   markdown=f"# inbox run: nothing new\n\n* inbox: [{root}]({file_link(root)})\n"
                            f"* {unchanged} documents unchanged since earlier runs\n"
                            f"* [index.json]({file_link(index_path)})\n")


def _run_parts(log, art: RunArtifacts, run_dir: str, specs: list[PartSpec], total_pages: int,
               part_deployment: str | None, wait_hours: float, poll_seconds: float) -> dict[str, str]:
    """Run every unfinished part; returns {part: what happened} for parts that did not complete."""
    why: dict[str, str] = {}
    todo = [s for s in specs if not part_done(run_dir, s.part)]  # a retried run keeps finished parts
    params = {s.part: {"run_dir": run_dir, "part": s.part, "documents": [d["path"] for d in s.documents],
                       "first_page": s.first, "last_page": s.last, "doc_units": s.doc_units} for s in todo}

    def show() -> None:
        art.set_progress(sum(part_progress(run_dir, s) for s in specs), total_pages)

    if not part_deployment:
        for s in todo:
            state = extract_part(**params[s.part], return_state=True)
            if not state.is_completed():
                why[s.part] = f"{state.type.value.lower()}: {state.message or ''}".strip()
            show()
        return why

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    parent = f"{_flow_run_id() or 'local'}:{flow_run.get_run_count()}"  # a retried run starts new parts
    waiting = {}
    for s in todo:
        fr = run_deployment(name=part_deployment, parameters=params[s.part], timeout=0,
                            flow_run_name=f"part {s.part}: {s.label()}",
                            idempotency_key=f"{parent}:{s.part}")
        waiting[fr.id] = s.part
    log.info("submitted %d parts to %s", len(waiting), part_deployment)
    deadline = time.monotonic() + wait_hours * 3600
    with get_client(sync_client=True) as client:
        while waiting and time.monotonic() < deadline:
            time.sleep(poll_seconds)
            ids = list(waiting)
            for i in range(0, len(ids), 200):
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids[i:i + 200])),
                                             limit=200)
                for r in runs:
                    if r.state is not None and r.state.is_final():
                        part = waiting.pop(r.id)
                        if not r.state.is_completed():
                            why[part] = f"{r.state.type.value.lower()}: {r.state.message or ''}".strip()
                            log.warning("part %s ended %s", part, r.state.type.value)
            show()
    for part in waiting.values():
        why[part] = f"not finished after {wait_hours} h"
        log.warning("part %s: %s", part, why[part])
    return why


def _parts_info(run_dir: str, specs: list[PartSpec], why: dict[str, str]):
    info, problems, spent, refused = [], [], 0.0, 0
    for s in specs:
        folder = part_dir(run_dir, s.part)
        row: dict[str, Any] = {"part": s.part, "documents": [d["path"] for d in s.documents],
                               "first_page": s.first, "last_page": s.last}
        try:
            with open(os.path.join(folder, PART_INFO), encoding="utf-8") as f:
                row.update({k: v for k, v in json.load(f).items() if k in ("worker", "host", "pid", "flow_run_id")})
        except (OSError, ValueError):
            pass
        try:
            with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
                m = json.load(f)
            row["seconds"] = m.get("seconds")
            problems += [p for p in m.get("model_problems") or [] if p not in problems]
            spent += float((m.get("budget") or {}).get("spent_usd") or 0)
            refused += int((m.get("budget") or {}).get("refused_requests") or 0)
        except (OSError, ValueError):
            pass
        row["status"] = "completed" if s.part not in why else why[s.part]
        info.append(row)
    return info, problems, spent, refused


__all__ = [
    "INDEX", "InboxIndex", "PartSpec", "claim_run_dir", "document_status", "extract_part", "inbox_batch",
    "index_entries", "merge_parts", "plan_parts", "run_name",
]
