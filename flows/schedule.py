"""Scheduled batches: ``pixtract deploy`` and ``pixtract serve``.

Both register two deployments named after the job (``--name``):

* ``inbox-batch/<name>`` (flows/inbox.py ``inbox_batch``) on the cron schedule; its only
  parameters are the job file's absolute path, the part deployment's name and the chunk size;
* ``extract-part/<name>`` (``extract_part``), the child the inbox run fans its parts out to.

``deploy`` puts both on a process work pool, so ``prefect worker start --pool POOL`` on any
number of machines runs them (the code is pulled from this checkout's folder, which every
worker must see at the same path, like the inbox and the output root). ``serve`` runs both from
this one process instead, no pool or worker needed.

This module imports Prefect only inside the commands (``pixtract run`` sets Prefect's settings
before Prefect is imported).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: flows/ and pipeline/ live here
PARENT_ENTRYPOINT = "pixtract.flows.inbox.inbox_batch"  # module paths: importable on every worker
PART_ENTRYPOINT = "pixtract.flows.inbox.extract_part"
DEFAULT_POOL = "pixtract"
EXIT_OK, EXIT_USAGE = 0, 2

EXAMPLES = """examples:
  export PREFECT_API_URL=http://127.0.0.1:4200/api
  pixtract deploy --job /srv/inbox/job.toml --cron "0 2 * * *" --pool pixtract
  prefect worker start --pool pixtract --limit 4        # on every machine
  prefect deployment run inbox-batch/job                 # a run now, besides the schedule
  pixtract serve --job /srv/inbox/job.toml --cron "0 2 * * *"   # or: everything in one process
"""


def add_commands(sub, add_config_flags) -> None:
    """Add ``deploy`` and ``serve`` to the ``pixtract`` command.

    Only ``--job`` configures them: a deployment's parameter is the job file, read afresh by
    every run, so command-line overrides of ``pixtract run`` would have nowhere to live."""
    dep = sub.add_parser(
        "deploy", help="register a scheduled inbox batch on a Prefect work pool",
        description="Register the deployments inbox-batch/NAME (cron-scheduled; processes the job's "
                    "inputs that are new, changed or failed last time into OUT/runs/<time>/) and "
                    "extract-part/NAME (its per-document children) on a process work pool. Needs a "
                    "Prefect server (PREFECT_API_URL). API keys stay in the workers' environment or in "
                    "Prefect Secret blocks named by the job file; they are never parameters.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(dep)
    dep.add_argument("--pool", default=DEFAULT_POOL,
                     help=f"process work pool (default {DEFAULT_POOL}; created if missing)")
    dep.add_argument("--paused", action="store_true", help="register the schedule paused")
    dep.add_argument("--check-seconds", type=float, default=20.0, metavar="S",
                     help="wait up to S seconds for the server to schedule the first run (default 20; 0: skip)")
    dep.set_defaults(handler=cmd_deploy)

    srv = sub.add_parser(
        "serve", help="run a scheduled inbox batch from this process (no work pool)",
        description="Register inbox-batch/NAME and extract-part/NAME and run their flow runs (scheduled "
                    "or triggered) from this process until stopped (Ctrl-C). Needs a Prefect server "
                    "(PREFECT_API_URL): its scheduler creates the runs.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(srv)
    srv.add_argument("--limit", type=int, metavar="N", default=None,
                     help="flow runs at a time in this process (default: no limit; needs at least 2)")
    srv.set_defaults(handler=cmd_serve)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job", required=True, metavar="FILE",
                   help="job file (TOML): inputs = the inbox folder(s), out = the output root, models, tasks")
    p.add_argument("--cron", required=True, metavar="EXPR", help='schedule, e.g. "0 2 * * *" (02:00 daily)')
    p.add_argument("--timezone", default="UTC", help="time zone of the cron expression (default UTC)")
    p.add_argument("--name", help="deployment name (default: the job file's name without .toml)")
    p.add_argument("--pages-per-part", type=int, default=None, metavar="N",
                   help="split documents longer than N pages into parts of N pages (default 50)")


class _Usage(Exception):
    pass


def _prepare(args: argparse.Namespace) -> tuple[str, str, dict]:
    """(job path, deployment name, parent parameters); raises _Usage."""
    _prefect_env()  # before anything imports Prefect
    from pixtract.errors import UsageError

    job = os.path.abspath(args.job)
    try:
        from pixtract.flows.inbox import DEFAULT_PAGES_PER_PART
        from pixtract.config import build_config, env_layer, load_job

        build_config(load_job(job), env_layer()).validate()
    except UsageError as e:
        raise _Usage(str(e)) from None
    name = args.name or re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(job).stem).strip("-") or "inbox"
    ppp = args.pages_per_part or DEFAULT_PAGES_PER_PART
    if ppp < 1:
        raise _Usage("--pages-per-part must be at least 1")
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise _Usage("a schedule needs a running Prefect server: start one (prefect server start) and set "
                     "PREFECT_API_URL=http://HOST:4200/api (see docs/scheduling.md)")
    params = {"job": job, "part_deployment": f"extract-part/{name}", "pages_per_part": ppp}
    return job, name, params


def _schedule(args: argparse.Namespace):
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.schedules import Cron

    try:
        CronSchedule(cron=args.cron, timezone=args.timezone)  # validates both
    except Exception as e:  # noqa: BLE001 - pydantic says which and why
        why = "; ".join(err.get("msg", "") for err in getattr(e, "errors", list)()) or str(e)
        raise _Usage(f"bad --cron {args.cron!r} or --timezone {args.timezone!r}: {why}") from None
    return Cron(args.cron, timezone=args.timezone)


def _prefect_env() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def ensure_process_pool(name: str) -> bool:
    """Create the process work pool ``name`` if it does not exist; True if it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(
                name=name, type="process", base_job_template=ProcessWorker.get_default_base_job_template(),
                description="pixtract inbox batches (pixtract deploy)"))
            return True
    if pool.type != "process":
        print(f"pixtract: warning: work pool {name!r} is of type {pool.type!r}; pixtract deploys to process "
              f"pools (the code is pulled from {ROOT})", file=sys.stderr)
    return False


def cmd_deploy(args: argparse.Namespace) -> int:
    _prefect_env()
    try:
        schedule = _schedule(args)
        job, name, params = _prepare(args)
    except _Usage as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    from prefect import flow

    created = ensure_process_pool(args.pool)
    common = dict(work_pool_name=args.pool, build=False, push=False, print_next_steps=False,
                  ignore_warnings=True, tags=["pixtract"])
    flow.from_source(source=str(ROOT), entrypoint=PART_ENTRYPOINT).deploy(
        name=name, description=f"One part (a document or a chunk of pages) of the inbox run of {job}", **common)
    flow.from_source(source=str(ROOT), entrypoint=PARENT_ENTRYPOINT).deploy(
        name=name, schedules=[schedule], parameters=params, concurrency_limit=1, paused=args.paused,
        description=f"Scheduled inbox run of {job}: new, changed and failed documents", **common)
    print(f"pixtract: {'created work pool ' + repr(args.pool) + ' (process); ' if created else ''}"
          f"deployed inbox-batch/{name} ({args.cron}, {args.timezone}{', paused' if args.paused else ''}) "
          f"and extract-part/{name} to pool {args.pool!r}")
    print(f"pixtract: job file {job} (read by every run); code from {ROOT}")
    if not args.paused:
        _check_scheduled(name, args.check_seconds)
    print(f"pixtract: start workers on every machine that sees these paths:\n"
          f"  prefect worker start --pool {args.pool} --limit 4\n"
          f"run one now:\n  prefect deployment run inbox-batch/{name}")
    return EXIT_OK


def _check_scheduled(name: str, seconds: float) -> bool:
    """Wait for the server's scheduler to create the deployment's next runs, and say when the
    first one is due; warn when it does not (e.g. a Prefect 3.8 server with SQLAlchemy 2.1,
    whose scheduler fails on every insert: pin sqlalchemy<2.1 where the server runs)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    if seconds <= 0:
        return True
    deadline = time.monotonic() + seconds
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(f"inbox-batch/{name}")
        while True:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))), limit=10)
            runs = [r for r in runs if r.auto_scheduled and r.expected_start_time]  # not runs started by hand
            if runs:
                first = min(r.expected_start_time for r in runs)
                print(f"pixtract: next scheduled run: {first.isoformat()}")
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(1)
    print(f"pixtract: warning: the Prefect server has not scheduled any run of inbox-batch/{name} after "
          f"{seconds:g} s. Check the server's log for scheduler errors; a Prefect 3.8 server with "
          f"SQLAlchemy 2.1 cannot insert scheduled runs (install sqlalchemy<2.1 where the server runs). "
          f"Runs started by hand (prefect deployment run inbox-batch/{name}) work either way.", file=sys.stderr)
    return False


def cmd_serve(args: argparse.Namespace) -> int:
    _prefect_env()
    try:
        schedule = _schedule(args)
        job, name, params = _prepare(args)
        if args.limit is not None and args.limit < 2:
            raise _Usage("--limit must be at least 2 (the inbox run waits for its parts)")
    except _Usage as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    from prefect import serve
    from prefect.types.entrypoint import EntrypointType

    from pixtract.flows.inbox import extract_part, inbox_batch

    parent = inbox_batch.to_deployment(name=name, schedules=[schedule], parameters=params, concurrency_limit=1,
                                       entrypoint_type=EntrypointType.MODULE_PATH, tags=["pixtract"],
                                       description=f"Scheduled inbox run of {job}")
    part = extract_part.to_deployment(name=name, entrypoint_type=EntrypointType.MODULE_PATH, tags=["pixtract"],
                                      description=f"One part of the inbox run of {job}")
    print(f"pixtract: serving inbox-batch/{name} ({args.cron}, {args.timezone}) and extract-part/{name}; "
          f"Ctrl-C stops", flush=True)
    serve(parent, part, limit=args.limit)
    return EXIT_OK
