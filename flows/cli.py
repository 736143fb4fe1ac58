"""The ``pixtract`` command.

Exit codes of ``run`` (pipeline/outcome.py): 0 complete (every page answered on the planned
route); 3 degraded (all answered, some by a fallback); 4 pending (--batch: some pages wait in a
batch job, nothing failed); 1 incomplete (some pages failed or were
skipped, or the ledger found a gap); 2 nothing done (bad usage or configuration, a refused key,
an unreachable endpoint, no documents); 130 / 143 interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from typing import Any

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_DEGRADED = 0, 1, 2, 3
# A frozen run is ended (flows/interrupt.StallWatch) after no record for stall_timeout + the
# margin, and before its first document after stall_timeout + the margin + the start-up allowance.
STALL_MARGIN_S, STALL_STARTUP_S = 30.0, 120.0

EXIT_CODES_HELP = """exit codes:
  0    complete: every page answered on the planned route (or truly blank / without a chart)
  3    degraded: every page answered, some by a fallback (records say why; a rerun retries them)
  1    incomplete: some pages failed or were skipped (budget, errors), or the ledger found a gap
  4    pending (--batch): nothing failed, some pages wait in a batch job; run the same command later
  2    nothing done: bad usage or configuration, a refused key, an unreachable endpoint, no documents
  130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM: what was done is written, a rerun resumes
"""

RUN_EXAMPLES = """examples:
  pixtract run fixtures/samples --out out/
  pixtract run 'scans/**/*.pdf' report.pdf --out out/ --max-edge 1536
  MISTRAL_API_KEY=... pixtract run invoices/ --out out/ --profile mistral --task extract --schema invoice.json
  pixtract run deck.pdf --out out/ --profile openrouter --task ask --question "What is the revenue?" --scope document
  pixtract run --job job.toml                    # everything from a job file; flags override it
  pixtract run deck.pdf --out out/ --profile mistral --task transcribe --task ask --question "Who signed?"
"""


def _prefect_defaults(verbose: bool) -> None:
    """Quiet, offline-friendly Prefect settings unless the user chose otherwise."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The ephemeral API server takes 10-15 s to start on a fresh 2-core machine (more under
    # load); Prefect's default 20 s wait is too tight for that.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # The ephemeral server is stopped before its event recorder has flushed and logs a
        # CancelledError traceback on exit (a known Prefect 3 behaviour, harmless here).
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


def _setting(flag: str):
    """An argparse type for a declared setting: its type and range, the error naming the flag."""
    from pixtract.config import SETTING_BY_FLAG
    from pixtract.errors import UsageError

    setting = SETTING_BY_FLAG[flag]

    def parse(raw: str):
        try:
            return setting.parse(raw, flag)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix(f"{flag}: ")) from None

    parse.__name__ = setting.type.__name__
    return parse


def _add_setting(group, flag: str) -> None:
    """A flag of a scalar setting, with the type, range, help and choices its declaration in
    pixtract.config.SETTINGS gives (flags_layer reads it back by the same declaration)."""
    from pixtract.config import SETTING_BY_FLAG

    setting = SETTING_BY_FLAG[flag]
    optional = {"nargs": "?", "const": setting.const} if setting.const is not None else {}
    group.add_argument(flag, type=_setting(flag) if setting.type is not str else None, metavar=setting.metavar,
                       choices=setting.choices, help=setting.help_text(), **optional)


def _add_config_flags(p: argparse.ArgumentParser, with_out: bool = True) -> None:
    from pixtract.config import PROFILES, SCOPES, TASKS

    p.add_argument("paths", nargs="*", metavar="PATH", help="files, folders (recursive) or globs")
    p.add_argument("--job", metavar="FILE", help="job file (TOML) with inputs, tasks, models, outputs")
    if with_out:
        _add_setting(p, "--out")
    g = p.add_argument_group("model endpoint")
    for flag in ("--profile", "--base-url", "--vision-model", "--text-model", "--route", "--ocr-model"):
        _add_setting(g, flag)
    g.add_argument("--alt-profile", choices=PROFILES, help="second vision endpoint, tried when the first fails")
    g.add_argument("--alt-base-url", help="base URL of the second vision endpoint")
    g.add_argument("--alt-vision-model", help="vision model of the second endpoint")
    for flag in ("--concurrency", "--timeout", "--max-retries"):
        _add_setting(g, flag)
    g.add_argument("--stream", action="store_true", default=None, help="stream answers (SSE)")
    g.add_argument("--no-local-fallback", action="store_true", help="do not fall back to the local engine")
    t = p.add_argument_group("task")
    t.add_argument("--task", choices=TASKS, action="append",
                   help="transcribe (default), ask, extract or chart; repeat to run several tasks")
    t.add_argument("--question", action="append", help="a question for --task ask (repeatable)")
    t.add_argument("--scope", choices=SCOPES, help="answer per page (default) or per document (ask, extract)")
    t.add_argument("--schema", metavar="FILE", help="JSON Schema for --task extract")
    t.add_argument("--prompt", help="replace the task's default prompt")
    t.add_argument("--system-prompt", help="replace the system prompt")
    r = p.add_argument_group("rendering")
    _add_setting(r, "--max-edge")
    _add_setting(r, "--dpi-cap")
    r.add_argument("--image-format", choices=("auto", "png", "jpeg"), help="auto (default): PNG line art, JPEG photos")
    o = p.add_argument_group("local engine (OCR)")
    _add_setting(o, "--ocr-engine")
    _add_setting(o, "--ocr-lang")
    o.add_argument("--force-ocr", action="store_true", help="OCR every page, even those with a text layer")
    o.add_argument("--no-upright", action="store_true", help="do not detect and undo 90/180/270 degree turns")
    g = p.add_argument_group("outputs and grounding")
    _add_setting(g, "--page-marker")
    _add_setting(g, "--review-dpi")
    g.add_argument("--annotated-markdown", action="store_true",
                   help="also write <stem>.annotated.md with routes, flags, agreement and unlocated values")
    g.add_argument("--grounding-ocr", action="store_true",
                   help="OCR pages without a text layer to locate a model's answers on them (one OCR per such page)")
    c = p.add_argument_group("cost and resume")
    _add_setting(c, "--budget-usd")
    _add_setting(c, "--batch")
    c.add_argument("--no-cache", action="store_true", help="ignore cached answers and ask afresh")
    _add_setting(c, "--cache-dir")
    c.add_argument("--price", action="append", metavar="MODEL=IN,OUT",
                   help="USD per million input and output tokens of a model (repeatable); needed for "
                        "--budget-usd and estimate when pixtract has no price for the model")
    c.add_argument("--accept-degraded", action="store_true",
                   help="keep answers of a fallback route as final: a rerun does not retry them")
    p.add_argument("--password", help="password for encrypted PDFs (never written out)")


def build_parser() -> argparse.ArgumentParser:
    from pixtract import __version__

    p = argparse.ArgumentParser(prog="pixtract", description="Multimodal document extraction on Prefect.")
    p.add_argument("--version", action="version", version=f"pixtract {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="extract from PDFs and images into an output folder",
        description="Read PDFs and images (files, folders, globs), answer every page, write results.jsonl, "
                    "one Markdown file per document and manifest.json to --out.",
        epilog=RUN_EXAMPLES + "\n" + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config_flags(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("-q", "--quiet", action="store_true", help="print only errors and the final summary line")
    run.add_argument("--log-json", action="store_true",
                     help="one JSON object per finished page on stderr, and the summary as JSON on stdout")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the outputs of a different earlier run in --out")
    run.add_argument("-v", "--verbose", action="store_true", help="show Prefect's logs")

    doctor = sub.add_parser(
        "doctor", help="check Python, Tesseract, Prefect, API key, endpoint and models",
        description="Check that this machine can run the chosen profile, and say how to fix each problem.",
        epilog="examples:\n  pixtract doctor\n  pixtract doctor --profile mistral\n"
               "  pixtract doctor --job job.toml", formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config_flags(doctor, with_out=False)

    config = sub.add_parser(
        "config", help="show the effective configuration (secrets masked)",
        description="Print the configuration a run would use: flags > environment (PIXTRACT_*) > job file "
                    "> profile defaults. API keys are never printed, only whether they are set.",
        epilog="examples:\n  pixtract config show --job job.toml --profile mistral\n"
               "  PIXTRACT_MAX_EDGE=1536 pixtract config show", formatter_class=argparse.RawDescriptionHelpFormatter)
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_sub.add_parser("show", help="print the effective configuration as JSON")
    _add_config_flags(show)

    est = sub.add_parser(
        "estimate", help="exact input tokens and cost range, before anything is sent",
        description="Render every page, count the exact prompt tokens (Pixtral image tokens and text "
                    "tokens via mistral_common) for the chosen tasks and profile, and print the expected "
                    "cost range per document and in total. Sends nothing.",
        epilog="examples:\n  pixtract estimate invoices/ --profile mistral --task extract --schema invoice.json\n"
               "  pixtract estimate --job job.toml --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config_flags(est, with_out=False)
    est.add_argument("--json", action="store_true", help="print JSON")

    rep = sub.add_parser(
        "report", help="(re)build report.html in an output folder",
        description="Rebuild the self-contained review report (report.html) from results.jsonl, "
                    "manifest.json and thumbs/ in OUT_DIR.",
        epilog="examples:\n  pixtract report out/", formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("out_dir", metavar="OUT_DIR")

    dl = sub.add_parser(
        "docling", help="export the layout JSONs of an output folder as docling-core DoclingDocuments",
        description="Write <stem>.docling.json beside every <stem>.json layout in OUT_DIR, for the RAG "
                    "loaders that read DoclingDocument (needs: pip install 'pixtract[docling]').",
        epilog="examples:\n  pixtract docling out/", formatter_class=argparse.RawDescriptionHelpFormatter)
    dl.add_argument("out_dir", metavar="OUT_DIR")

    models = sub.add_parser(
        "models", help="list the models an endpoint offers and check the configured ones",
        epilog="examples:\n  pixtract models --profile mistral\n"
               "  pixtract models --profile openai --base-url http://localhost:8000/v1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    models.add_argument("--profile", default="mistral", help="endpoint profile (default mistral)")
    models.add_argument("--base-url")
    models.add_argument("--vision-model")
    models.add_argument("--text-model")
    models.add_argument("--timeout", type=float, default=30.0)
    srv = sub.add_parser(
        "server", help="the local Prefect server pixtract runs for ad hoc runs: start, stop, status",
        description="pixtract run starts a local Prefect server (127.0.0.1, its own database under "
                    "PIXTRACT_DATA_DIR or ~/.local/share/pixtract) on first use and reuses it; it stops "
                    "itself after PIXTRACT_SERVER_IDLE seconds (default 1800) without a run. "
                    "PIXTRACT_PREFECT=ephemeral, or PREFECT_API_URL, opts out.",
        epilog="examples:\n  pixtract server status\n  pixtract server stop\n"
               "  PIXTRACT_SERVER_IDLE=600 pixtract server start", formatter_class=argparse.RawDescriptionHelpFormatter)
    srv.add_argument("action", choices=("start", "stop", "status"))
    from .schedule import add_commands  # deploy, serve

    add_commands(sub, _add_config_flags)
    return p


def flags_layer(args: argparse.Namespace) -> dict[str, Any]:
    """The command-line layer: only what the user actually typed."""
    from pixtract.config import SETTINGS, set_path

    a = vars(args)
    layer: dict[str, Any] = {
        "inputs": a.get("paths") or None, "stream": a.get("stream"), "system_prompt": a.get("system_prompt"),
        "render": {"image_format": a.get("image_format")},
        "ocr": {"force": True if a.get("force_ocr") else None, "upright": False if a.get("no_upright") else None},
    }
    for setting in SETTINGS:  # the scalar settings, by their one declaration
        if setting.flag and a.get(setting.dest) is not None:
            set_path(layer, setting.path, a[setting.dest])
    if a.get("no_cache"):
        layer["cache"] = False
    if a.get("no_local_fallback"):
        layer["local_fallback"] = False
    if a.get("alt_profile"):
        layer["vision_alt"] = {"profile": a["alt_profile"], "base_url": a.get("alt_base_url"),
                               "vision_model": a.get("alt_vision_model")}
    layer["tasks"] = _task_flags(a)
    if a.get("price"):
        layer["prices"] = dict(_price_flag(v) for v in a["price"])
    if a.get("accept_degraded"):
        layer["accept_degraded"] = True
    for flag in ("annotated_markdown", "grounding_ocr"):
        if a.get(flag):
            layer[flag] = True
    return layer


def _task_flags(a: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``--task`` (repeatable) with the options that belong to each task."""
    from pixtract.errors import UsageError

    kinds = list(a.get("task") or [])
    if not kinds:
        if not (a.get("question") or a.get("schema") or a.get("scope") or a.get("prompt")):
            return None
        kinds = ["ask" if a.get("question") else "extract" if a.get("schema") else "transcribe"]
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        raise UsageError(f"--task {twice[0]} is given twice; give each task once")
    if len(kinds) > 1 and a.get("prompt"):
        raise UsageError("--prompt with several --task: which task would it replace? Give each task's "
                         "prompt in a job file ([[tasks]] kind = ..., prompt = ...)")
    for flag, task in (("question", "ask"), ("schema", "extract")):
        if a.get(flag) and task not in kinds:
            raise UsageError(f"--{flag} belongs to --task {task}, which is not among the tasks given")
    scoped = [k for k in kinds if k in ("ask", "extract")]
    if a.get("scope") == "document" and not scoped:
        raise UsageError("--scope document is for --task ask and --task extract")
    return [{"kind": k, "questions": (a.get("question") or []) if k == "ask" else [],
             "schema_path": a.get("schema") if k == "extract" else None,
             "scope": (a.get("scope") or "page") if k in scoped else "page", "prompt": a.get("prompt")}
            for k in kinds]


def _price_flag(value: str) -> tuple[str, str]:
    from pixtract.errors import UsageError

    model, sep, price = value.rpartition("=")
    if not sep or not model:
        raise UsageError(f"--price {value!r}: write MODEL=INPUT,OUTPUT in USD per million tokens, "
                         f"e.g. --price my-model=1.0,3.0")
    return model, price


def load_config(args: argparse.Namespace):
    """Profile defaults < job file < environment < flags."""
    from pixtract.config import build_config, env_layer, load_job

    job = load_job(args.job) if getattr(args, "job", None) else {}
    cfg = build_config(job, env_layer(), flags_layer(args), password=getattr(args, "password", None))
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    import threading

    from pixtract.errors import UsageError
    from pixtract.providers.errors import ConfigError

    from pixtract.checks import check_run

    from .interrupt import StallWatch

    managed = False
    watch = local = stop_workers = None

    def prepare_prefect() -> None:
        """Point Prefect at its server (starting pixtract's own if needed), then import it."""
        nonlocal managed
        managed = _use_managed_server(quiet=args.quiet or args.log_json)
        _import_prefect()

    importer = threading.Thread(target=prepare_prefect, name="pixtract-import", daemon=True)

    def start_prefect() -> None:
        """Past the usage errors: find the Prefect server and import Prefect in the background,
        while the endpoints are asked (preflight) and the first pages go out: a second or more
        saved on every run."""
        nonlocal stop_workers
        _prefect_defaults(args.verbose or False)
        if args.quiet or args.log_json:
            os.environ["PREFECT_LOGGING_LEVEL"] = "ERROR"
        importer.start()
        stop_workers = _start_workers(cfg)  # the first MuPDF worker starts meanwhile too

    try:
        try:
            cfg = load_config(args)
            checked = check_run(cfg, args.overwrite, while_waiting=start_prefect)
            from pixtract.runcontext import RunContext

            from .localrun import LocalRun  # the batch core: imported while Prefect imports

            local = LocalRun(preflight=checked, context=RunContext.for_run(cfg))
            watch = (StallWatch(cfg.stall_timeout + STALL_MARGIN_S, STALL_STARTUP_S, local.context.listeners)
                     if cfg.stall_timeout else None)
            stop_early = _answer_early(cfg, local, stop_workers)  # the first pages go out while Prefect imports
        except (UsageError, ConfigError) as e:
            if stop_workers is not None:
                stop_workers()
            print(f"pixtract: error: {e}", file=sys.stderr)
            return EXIT_USAGE
        except BaseException:
            if stop_workers is not None:
                stop_workers()
            raise
        finally:
            if importer.is_alive():
                importer.join()  # never leave the interpreter with an import half done
        return _run(args, cfg, local, stop_early, watch)
    finally:
        if watch is not None:
            watch.close(cancel=not local.stop.is_set())  # a signal's own watchdog stays armed
        if managed:
            from .server import release

            release()


def _import_prefect() -> None:
    import pixtract.flows.batch  # noqa: F401 - imports Prefect and the flow


def _use_managed_server(quiet: bool) -> bool:
    """Point this run at pixtract's warm local Prefect server (flows/server.py), starting it if
    needed; False when PREFECT_API_URL is set, PIXTRACT_PREFECT=ephemeral, or the server
    cannot start (then Prefect's ephemeral API serves this run, as before)."""
    from . import server

    if server.mode() != "managed":
        return False
    if not quiet and server.running() is None:
        print("pixtract: starting a local Prefect server (once: later runs reuse it) ...", file=sys.stderr)
    try:
        state, _ = server.ensure()
    except RuntimeError as e:
        print(f"pixtract: warning: {e}; this run uses Prefect's ephemeral API", file=sys.stderr)
        return False
    os.environ["PREFECT_API_URL"] = state.api_url
    if not quiet:
        print(f"pixtract: Prefect UI: {state.url}  (pixtract server status | stop)", file=sys.stderr)
    return True


def _run(args: argparse.Namespace, cfg, local, stop_early, watch) -> int:
    from pixtract.errors import UsageError
    from pixtract.providers.errors import ConfigError

    from pixtract.batch import run as run_core

    from .apiwatch import quiet_api_loss
    from .batch import run_batch
    from .interrupt import API_LOST, exit_now, run_stoppable

    bar = _ProgressBar(enabled=not (args.no_progress or args.quiet or args.log_json) and sys.stderr.isatty())
    listeners = [local.context.listeners.add(bar)]
    if args.log_json:
        listeners.append(local.context.listeners.add(_JsonLog()))
    without_prefect = False
    try:
        with bar, quiet_api_loss(local.api_lost):
            done = run_stoppable(lambda: run_batch(cfg, local), local, watch)
            if without_prefect := (_api_gone(done, local) and done.error is not None
                                   and not local.written.is_set() and not local.stop.is_set()):
                # The server went away before the flow wrote anything (while Prefect set the flow
                # run up, say): the run itself needs no Prefect, so it goes on without it, its
                # answers so far coming from the cache and the pages already in progress.
                local.api_lost.set()
                if local.router is not None and local.router.closed:  # the flow body had begun
                    local.router = None
                done = run_stoppable(lambda: run_core(cfg, control=local), local, watch)
    finally:
        for unsubscribe in listeners:
            unsubscribe()
        if not local.stop.is_set():
            stop_early()
    if local.written.is_set() and local.summary is not None and _api_gone(done, local):
        done = API_LOST  # the outputs were written, but Prefect's bookkeeping failed: the API is gone
    if done == API_LOST:  # the outputs are whole; waiting on Prefect would only be retries
        code = report(local.summary, cfg.out, quiet=args.quiet) if not args.log_json else exit_code(local.summary)
        print("pixtract: warning: " + ("the Prefect API could not be reached, so the run went on without it"
                                       if without_prefect else "the Prefect API went away during the run")
              + ": the outputs are complete, but Prefect's history of this run is incomplete", file=sys.stderr)
        exit_now(code)
    if isinstance(done, str):  # stopped by a signal: one line, then leave without waiting on Prefect
        print(_interrupted_line(done, local.summary, cfg.out), file=sys.stderr)
        if args.log_json and local.summary:
            print(json.dumps({"event": "summary", "out": os.path.abspath(cfg.out), **local.summary}))
        exit_now(local.summary["exit_code"] if local.summary else 130 if done == "SIGINT" else 143)
    if done.error is not None:
        if isinstance(done.error, (UsageError, ConfigError)):
            print(f"pixtract: error: {done.error}", file=sys.stderr)
            return EXIT_USAGE
        raise done.error
    summary = done.value
    for line in bar.notes:
        print(f"pixtract: warning: {line}", file=sys.stderr)
    if args.log_json:
        print(json.dumps({"event": "summary", "out": os.path.abspath(cfg.out), **summary}))
        return exit_code(summary)
    return report(summary, cfg.out, quiet=args.quiet)


def _api_gone(done, local) -> bool:
    """The run was not stopped by a signal and Prefect's API went away: noticed during the run,
    or the reason the flow failed."""
    from .apiwatch import unreachable

    return not isinstance(done, str) and (
        local.api_lost.is_set() or (done.error is not None and unreachable(done.error)))


def _start_workers(cfg):
    """The run's MuPDF worker pool, its first worker starting in the background; returns what
    stops it. From the main thread the pool also guards SIGINT/SIGTERM; during the run the
    handlers of flows/interrupt.py take over (the workers then die with the process)."""
    from pixtract.route import page_threads
    from pixtract.workers import WorkerSettings, start_workers

    return start_workers(WorkerSettings.for_run(cfg, page_threads(cfg)), prestart=True)


def _answer_early(cfg, local, stop_workers):
    """Start answering pages now, until the flow takes over (pipeline/prefetch.py);
    returns what stops the workers at the end."""
    from pixtract import prefetch

    local.router = prefetch.router_for_run(cfg, local.stop, cfg.out, local.context)
    if local.preflight is not None:
        local.router.apply_preflight(local.preflight)
    if stop_workers is None:
        stop_workers = _start_workers(cfg)
    prefetch.start(cfg, local.router)
    return stop_workers


def _interrupted_line(signal_name: str, summary: dict | None, out: str) -> str:
    if summary is None:
        return (f"pixtract: interrupted by {signal_name} before the outputs could be written; answers so far "
                f"are kept in the cache: run the same command again to resume")
    answered = summary["records"] - summary["not_answered"]
    return (f"pixtract: interrupted by {signal_name}: {answered} of {summary['records']} records answered, "
            f"all written to {os.path.abspath(out)}; run the same command again to resume")


class _JsonLog:
    """``--log-json``: one line per finished record (no answers, no secrets) on stderr.
    Written to the stream directly: the flow's log_prints would turn print() into log records."""

    def _emit(self, obj: dict) -> None:
        sys.stderr.write(json.dumps(obj) + "\n")
        sys.stderr.flush()

    def document(self, path: str, pages: int) -> None:
        self._emit({"event": "document", "document": path, "pages": pages})

    def record(self, r) -> None:
        self._emit({"event": "record", "document": r.document, "page": r.page, "task": r.task,
                    "status": r.status, "route": r.route, "cost_usd": r.cost_usd, "cached": r.cached,
                    "error": r.error.type if r.error else None})

    def note(self, message: str) -> None:
        self._emit({"event": "warning", "message": message})


def exit_code(summary: dict) -> int:
    from pixtract import outcome

    return outcome.exit_code(summary)


def cmd_doctor(args: argparse.Namespace) -> int:
    from pixtract.doctor import format_checks, run_checks
    from pixtract.errors import UsageError

    try:
        args.out = "."
        cfg = load_config(args)
    except UsageError as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    checks = run_checks(cfg.endpoint)
    print(format_checks(checks))
    bad = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(bad)} of {len(checks)} checks passed" + ("" if bad else "; ready to run"))
    return EXIT_FAILURES if bad else EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from pixtract.errors import UsageError

    try:
        cfg = load_config(args)
    except UsageError as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(effective_config(cfg), indent=2, ensure_ascii=False))
    return EXIT_OK


def effective_config(cfg) -> dict:
    """The public configuration plus, per endpoint, where its key comes from and whether it is set."""
    from pixtract.providers.profiles import get_profile

    d = cfg.public()
    for name in ("endpoint", "vision_alt"):
        spec = getattr(cfg, name)
        if spec is None or not spec.remote:
            continue
        prof = get_profile(spec.profile)
        var = spec.key_env
        d[name]["api_key"] = ("***" if var and os.environ.get(var) else None)
        d[name]["api_key_from"] = f"Prefect Secret block {spec.api_key_secret!r}" if spec.api_key_secret else var
        for k in ("base_url", "vision_model", "text_model"):
            d[name][k] = d[name][k] or getattr(prof, k)
    if cfg.route == "ocr":
        d["endpoint"]["ocr_model"] = cfg.ocr_model
    return d


def _unfinished_batch_jobs(out: str) -> list[str]:
    """The batch jobs of the output folder not finished yet, as "ID (status, N requests)" (the
    manifest's ``batch`` section, written by batch mode)."""
    from pixtract.batchjobs import FINISHED
    from pixtract.outputs import MANIFEST

    try:
        with open(os.path.join(out, MANIFEST), encoding="utf-8") as f:
            jobs = (json.load(f).get("batch") or {}).get("jobs") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [f"{j.get('job_id') or j.get('name')} ({j.get('status') or j.get('state')}, {j.get('items')} requests)"
            for j in jobs if isinstance(j, dict) and j.get("state") != FINISHED]


def report(summary: dict, out: str, quiet: bool = False) -> int:
    """The summary: its first line is the outcome (pipeline/outcome.py); the exit code matches."""
    from pixtract.ledger import format_ledger

    by_status = summary.get("by_status", {})
    if quiet:  # one line: the outcome, what it cost, where
        print(f"pixtract: {summary['headline']}; paid ${summary.get('paid_usd', 0):.4f}; {os.path.abspath(out)}")
        return exit_code(summary)
    print(f"pixtract: {summary['headline']}")
    routes = ", ".join(f"{k}: {v}" for k, v in sorted(summary.get("ok_by_route", {}).items())) or "none"
    print(f"pixtract: {summary['records']} records: {by_status.get('ok', 0)} ok ({routes}), "
          f"{by_status.get('failed', 0)} failed, {by_status.get('skipped', 0)} skipped"
          + (f", {summary['cached']} from cache" if summary.get("cached") else "")
          + (f", {summary['blank']} blank" if summary.get("blank") else ""))
    usage, paid = summary.get("usage", {}), summary.get("usage_paid", {})
    if usage.get("input_tokens") or summary.get("cost_usd"):
        def pages(u):
            return f", OCR pages {u['pages']:,}" if u.get("pages") else ""

        print(f"pixtract: this run paid ${summary.get('paid_usd', 0):.4f} (tokens in "
              f"{paid.get('input_tokens', 0):,}, out {paid.get('output_tokens', 0):,}{pages(paid)}); the outputs cost "
              f"${summary.get('cost_usd', 0):.4f} in all (tokens in {usage.get('input_tokens', 0):,}, "
              f"out {usage.get('output_tokens', 0):,}{pages(usage)})")
    ledger = summary.get("ledger")
    if ledger:
        print(format_ledger(ledger))
    print(f"pixtract: outputs in {os.path.abspath(out)} (results.jsonl, manifest.json, report.html, "
          f"one .md per document)")
    waiting = _unfinished_batch_jobs(out)
    if waiting:
        print(f"pixtract: batch jobs still running: {', '.join(waiting)}; run the same command later to collect them")
    if ledger and not ledger["balanced"]:
        print("pixtract: error: LEDGER MISMATCH: records are missing or duplicated; this is a bug",
              file=sys.stderr)
    return exit_code(summary)


def cmd_estimate(args: argparse.Namespace) -> int:
    from pixtract.errors import UsageError
    from pixtract.estimate import estimate, format_estimate

    try:
        args.out = "."  # unused: estimate writes nothing
        cfg = load_config(args).validate()
        result = estimate(cfg)
    except UsageError as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(result, indent=2) if args.json else format_estimate(result))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from pixtract.report import build_report

    if not os.path.exists(os.path.join(args.out_dir, "results.jsonl")):
        print(f"pixtract: error: {args.out_dir} has no results.jsonl (not a pixtract output folder)", file=sys.stderr)
        return EXIT_USAGE
    print(f"pixtract: wrote {build_report(args.out_dir)}")
    return EXIT_OK


def cmd_docling(args: argparse.Namespace) -> int:
    from pixtract.docling_export import export_folder
    from pixtract.errors import UsageError

    if not os.path.exists(os.path.join(args.out_dir, "manifest.json")):
        print(f"pixtract: error: {args.out_dir} has no manifest.json (not a finished pixtract output folder)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        names = export_folder(args.out_dir)
    except UsageError as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"pixtract: wrote {len(names)} DoclingDocument file(s) in {args.out_dir}")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from pixtract.providers import Endpoint, ProviderError, make_client

    try:
        client = make_client(Endpoint(profile=args.profile, base_url=args.base_url, vision_model=args.vision_model,
                                      text_model=args.text_model, timeout=args.timeout, max_retries=1))
    except ProviderError as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    with client:
        try:
            ids = client.list_models()
        except ProviderError as e:
            print(f"pixtract: error: cannot list models: {e}", file=sys.stderr)
            return EXIT_FAILURES
        for m in sorted(ids):
            print(m)
        report = client.check_models()
    print(f"\nconfigured ({args.profile}): {', '.join(client.endpoint.models)}")
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILURES


def cmd_server(args: argparse.Namespace) -> int:
    from pixtract.errors import UsageError

    from . import server

    try:
        if args.action == "start":
            state, started = server.ensure(register=False)
            print(f"pixtract: Prefect server {'started' if started else 'already running'} at {state.url} "
                  f"(pid {state.pid}; stops after {state.idle_s:.0f} s without a run)")
        elif args.action == "stop":
            state = server.stop()
            print(f"pixtract: stopped the Prefect server at {state.url}" if state
                  else "pixtract: no Prefect server of pixtract's is running")
        else:
            state = server.running()
            if state is None:
                print(f"pixtract: no Prefect server running (it starts with the next run; data in "
                      f"{server.data_dir()})")
                return EXIT_FAILURES
            runs = server.active_clients(server.data_dir())
            print(f"pixtract: Prefect server at {state.url}, pid {state.pid}, up {time.time() - state.started:.0f} s, "
                  f"{len(runs)} run(s) in progress; stops after {state.idle_s:.0f} s without a run; "
                  f"data in {server.data_dir()}")
    except (UsageError, RuntimeError) as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


class _ProgressBar:
    """A rich progress bar on a terminal: pages per route, failures, spend; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.routes: Counter[str] = Counter()
        self.total = 0
        self.cost = 0.0
        self.notes: list[str] = []
        self._pages_seen: set = set()

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]pages"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.description}"), transient=False)
            self._progress.start()
            self._task = self._progress.add_task("", total=None)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._progress.stop()

    def note(self, message: str) -> None:
        self.notes.append(message)

    def document(self, path: str, pages: int) -> None:
        self.total += pages
        if self.enabled:
            self._progress.update(self._task, total=self.total)

    def record(self, rec) -> None:
        self.routes[rec.route if rec.status == "ok" else rec.status] += 1
        if not rec.cached:
            self.cost += rec.cost_usd
        if self.enabled:
            desc = " ".join(f"{k}={v}" for k, v in sorted(self.routes.items()))
            if self.cost:
                desc += f" ${self.cost:.4f}"
            key = (rec.document, rec.page)
            new_page = rec.page is not None and key not in self._pages_seen
            if new_page:
                self._pages_seen.add(key)
            self._progress.update(self._task, advance=1 if new_page else 0, description=desc)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    handlers = {"run": cmd_run, "estimate": cmd_estimate, "models": cmd_models, "report": cmd_report,
                "docling": cmd_docling, "doctor": cmd_doctor, "config": cmd_config, "server": cmd_server}
    handler = handlers.get(args.command, getattr(args, "handler", None))  # schedule's commands bring their own
    try:
        return handler(args)
    except KeyboardInterrupt:
        # Ctrl-C before a run has installed its own handler (while Prefect imports or a server
        # starts): one line, not a traceback. A run in progress handles Ctrl-C itself.
        print("pixtract: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
