"""The ``pixtract`` command.

Exit codes: 0 every page answered; 1 some pages or documents failed (the records say why), or
the ledger found a gap; 2 bad usage or configuration (nothing was run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from typing import Any

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2

RUN_EXAMPLES = """examples:
  pixtract run fixtures/samples --out out/
  pixtract run 'scans/**/*.pdf' report.pdf --out out/ --max-edge 1536
  MISTRAL_API_KEY=... pixtract run invoices/ --out out/ --profile mistral --task extract --schema invoice.json
  pixtract run deck.pdf --out out/ --profile openrouter --task ask --question "What is the revenue?" --scope document
  pixtract run --job job.toml                    # everything from a job file; flags override it
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


def _add_config_flags(p: argparse.ArgumentParser, with_out: bool = True) -> None:
    from pipeline.config import PROFILES, SCOPES, TASKS

    p.add_argument("paths", nargs="*", metavar="PATH", help="files, folders (recursive) or globs")
    p.add_argument("--job", metavar="FILE", help="job file (TOML) with inputs, tasks, models, outputs")
    if with_out:
        p.add_argument("--out", metavar="DIR", help="output folder (created if missing)")
    g = p.add_argument_group("model endpoint")
    g.add_argument("--profile", choices=PROFILES, help="local (default: text layer + Tesseract), or a model API")
    g.add_argument("--base-url", help="override the profile's base URL (required for --profile openai)")
    g.add_argument("--vision-model", help="vision model ID (default: the profile's Pixtral Large 2411 ID)")
    g.add_argument("--text-model", help="text model ID for the text fallback (default: Mistral Large 2411)")
    g.add_argument("--alt-profile", choices=PROFILES, help="second vision endpoint, tried when the first fails")
    g.add_argument("--alt-base-url", help="base URL of the second vision endpoint")
    g.add_argument("--alt-vision-model", help="vision model of the second endpoint")
    g.add_argument("--concurrency", type=int, metavar="N", help="requests/pages in flight (default 8; local: CPUs)")
    g.add_argument("--timeout", type=float, metavar="S", help="seconds per request (default 120)")
    g.add_argument("--max-retries", type=int, metavar="N", help="retries per request (default 4)")
    g.add_argument("--stream", action="store_true", default=None, help="stream answers (SSE)")
    g.add_argument("--no-local-fallback", action="store_true", help="do not fall back to the local engine")
    t = p.add_argument_group("task")
    t.add_argument("--task", choices=TASKS, help="transcribe (default), ask, extract or chart")
    t.add_argument("--question", action="append", help="a question for --task ask (repeatable)")
    t.add_argument("--scope", choices=SCOPES, help="answer per page (default) or per document (ask, extract)")
    t.add_argument("--schema", metavar="FILE", help="JSON Schema for --task extract")
    t.add_argument("--prompt", help="replace the task's default prompt")
    t.add_argument("--system-prompt", help="replace the system prompt")
    r = p.add_argument_group("rendering")
    r.add_argument("--max-edge", type=int, metavar="PX", help="long edge of page images (default 1024)")
    r.add_argument("--dpi-cap", type=int, metavar="DPI", help="never render a PDF page above this DPI (default 200)")
    r.add_argument("--image-format", choices=("auto", "png", "jpeg"), help="auto (default): PNG line art, JPEG photos")
    o = p.add_argument_group("local engine (OCR)")
    o.add_argument("--ocr-engine", choices=("rapidocr", "tesseract"),
                   help="OCR for scans and images: rapidocr (default, bundled PP-OCR models) or tesseract")
    o.add_argument("--ocr-lang", metavar="LANGS",
                   help="OCR languages as Tesseract codes joined by '+' (default eng; e.g. eng+chi_sim, jpn, kor)")
    o.add_argument("--force-ocr", action="store_true", help="OCR every page, even those with a text layer")
    o.add_argument("--no-upright", action="store_true", help="do not detect and undo 90/180/270 degree turns")
    c = p.add_argument_group("cost and resume")
    c.add_argument("--budget-usd", type=float, metavar="X", help="start no request that could take spending past X")
    c.add_argument("--no-cache", action="store_true", help="ignore cached answers and ask afresh")
    c.add_argument("--cache-dir", metavar="DIR", help="answer cache (default: OUT/.pixtract/cache)")
    p.add_argument("--password", help="password for encrypted PDFs (never written out)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pixtract", description="Multimodal document extraction on Prefect.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="extract from PDFs and images into an output folder",
        description="Read PDFs and images (files, folders, globs), answer every page, write results.jsonl, "
                    "one Markdown file per document and manifest.json to --out.",
        epilog=RUN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    from .schedule import add_commands  # deploy, serve

    add_commands(sub, _add_config_flags)
    return p


def flags_layer(args: argparse.Namespace) -> dict[str, Any]:
    """The command-line layer: only what the user actually typed."""
    a = vars(args)
    layer: dict[str, Any] = {
        "inputs": a.get("paths") or None, "out": a.get("out"), "profile": a.get("profile"),
        "concurrency": a.get("concurrency"), "budget_usd": a.get("budget_usd"),
        "cache_dir": a.get("cache_dir"), "stream": a.get("stream"), "system_prompt": a.get("system_prompt"),
        "endpoint": {k: a.get(k) for k in ("base_url", "vision_model", "text_model", "timeout", "max_retries")},
        "render": {"max_edge": a.get("max_edge"), "dpi_cap": a.get("dpi_cap"), "image_format": a.get("image_format")},
        "ocr": {"engine": a.get("ocr_engine"), "lang": a.get("ocr_lang"),
                "force": True if a.get("force_ocr") else None, "upright": False if a.get("no_upright") else None},
    }
    if a.get("no_cache"):
        layer["cache"] = False
    if a.get("no_local_fallback"):
        layer["local_fallback"] = False
    if a.get("alt_profile"):
        layer["vision_alt"] = {"profile": a["alt_profile"], "base_url": a.get("alt_base_url"),
                               "vision_model": a.get("alt_vision_model")}
    if a.get("task") or a.get("question") or a.get("schema") or a.get("scope") or a.get("prompt"):
        kind = a.get("task") or ("ask" if a.get("question") else "extract" if a.get("schema") else "transcribe")
        layer["tasks"] = [{"kind": kind, "questions": a.get("question") or [], "schema_path": a.get("schema"),
                           "scope": a.get("scope") or "page", "prompt": a.get("prompt")}]
    return layer


def load_config(args: argparse.Namespace):
    """Profile defaults < job file < environment < flags."""
    from pipeline.config import build_config, env_layer, load_job

    job = load_job(args.job) if getattr(args, "job", None) else {}
    cfg = build_config(job, env_layer(), flags_layer(args), password=getattr(args, "password", None))
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.errors import UsageError
    from pipeline.outputs import check_out_dir
    from pipeline.providers.errors import ConfigError

    try:
        cfg = load_config(args).validate()
        _check_key(cfg)
        check_out_dir(cfg.out, cfg.fingerprint(), overwrite=args.overwrite)
    except (UsageError, ConfigError) as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    _prefect_defaults(args.verbose or False)
    if args.quiet or args.log_json:
        os.environ["PREFECT_LOGGING_LEVEL"] = "ERROR"
    from . import progress
    from .batch import run_batch

    bar = _ProgressBar(enabled=not (args.no_progress or args.quiet or args.log_json) and sys.stderr.isatty())
    listeners = [progress.subscribe(bar)]
    if args.log_json:
        listeners.append(progress.subscribe(_JsonLog()))
    try:
        with bar:
            summary = run_batch(cfg)
    except (UsageError, ConfigError) as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        for unsubscribe in listeners:
            unsubscribe()
    for line in bar.notes:
        print(f"pixtract: warning: {line}", file=sys.stderr)
    if args.log_json:
        print(json.dumps({"event": "summary", "out": os.path.abspath(cfg.out), **summary}))
        return exit_code(summary)
    return report(summary, cfg.out, quiet=args.quiet)


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
    ledger = summary.get("ledger")
    if (ledger and not ledger["balanced"]) or summary.get("by_status", {}).get("failed", 0):
        return EXIT_FAILURES
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from pipeline.doctor import format_checks, run_checks
    from pipeline.errors import UsageError

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
    from pipeline.errors import UsageError

    try:
        cfg = load_config(args)
    except UsageError as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(effective_config(cfg), indent=2, ensure_ascii=False))
    return EXIT_OK


def effective_config(cfg) -> dict:
    """The public configuration plus, per endpoint, where its key comes from and whether it is set."""
    from pipeline.profiles import get_profile

    d = cfg.public()
    for name in ("endpoint", "vision_alt"):
        spec = getattr(cfg, name)
        if spec is None or not spec.remote:
            continue
        prof = get_profile(spec.profile)
        var = spec.api_key_env or prof.key_env
        d[name]["api_key"] = ("***" if var and os.environ.get(var) else None)
        d[name]["api_key_from"] = f"Prefect Secret block {spec.api_key_secret!r}" if spec.api_key_secret else var
        for k in ("base_url", "vision_model", "text_model"):
            d[name][k] = d[name][k] or getattr(prof, k)
    return d


def _check_key(cfg) -> None:
    """Fail fast, before Prefect starts, when a model profile has no key."""
    from pipeline.providers import Endpoint

    for spec in [cfg.endpoint] + ([cfg.vision_alt] if cfg.vision_alt else []):
        if spec.remote:
            key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
            Endpoint(profile=spec.profile, base_url=spec.base_url, vision_model=spec.vision_model,
                     text_model=spec.text_model, api_key=key).resolved()


def report(summary: dict, out: str, quiet: bool = False) -> int:
    from pipeline.ledger import format_ledger

    by_status = summary.get("by_status", {})
    if quiet:
        print(f"pixtract: {summary['records']} records, {by_status.get('ok', 0)} ok, "
              f"{by_status.get('failed', 0)} failed, {by_status.get('skipped', 0)} skipped; "
              f"${summary.get('cost_usd', 0):.4f}; {os.path.abspath(out)}")
        if summary.get("ledger") and not summary["ledger"]["balanced"]:
            print("pixtract: error: LEDGER MISMATCH: records are missing or duplicated; this is a bug",
                  file=sys.stderr)
        return exit_code(summary)
    routes = ", ".join(f"{k}: {v}" for k, v in sorted(summary.get("ok_by_route", {}).items())) or "none"
    usage = summary.get("usage", {})
    print(f"pixtract: {summary['records']} records: {by_status.get('ok', 0)} ok ({routes}), "
          f"{by_status.get('failed', 0)} failed, {by_status.get('skipped', 0)} skipped"
          + (f", {summary['cached']} from cache" if summary.get("cached") else ""))
    if usage.get("input_tokens") or summary.get("cost_usd"):
        print(f"pixtract: tokens in {usage.get('input_tokens', 0):,}, out {usage.get('output_tokens', 0):,}; "
              f"cost ${summary.get('cost_usd', 0):.4f}")
    ledger = summary.get("ledger")
    if ledger:
        print(format_ledger(ledger))
    print(f"pixtract: outputs in {os.path.abspath(out)} (results.jsonl, manifest.json, report.html, "
          f"one .md per document)")
    if ledger and not ledger["balanced"]:
        print("pixtract: error: LEDGER MISMATCH: records are missing or duplicated; this is a bug",
              file=sys.stderr)
    return exit_code(summary)


def cmd_estimate(args: argparse.Namespace) -> int:
    from pipeline.errors import UsageError
    from pipeline.estimate import estimate, format_estimate

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
    from pipeline.report import build_report

    if not os.path.exists(os.path.join(args.out_dir, "results.jsonl")):
        print(f"pixtract: error: {args.out_dir} has no results.jsonl (not a pixtract output folder)", file=sys.stderr)
        return EXIT_USAGE
    print(f"pixtract: wrote {build_report(args.out_dir)}")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from pipeline.providers import Endpoint, ProviderError, make_client

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
                "doctor": cmd_doctor, "config": cmd_config}
    if args.command in handlers:
        return handlers[args.command](args)
    return args.handler(args)  # commands added by flows.schedule


if __name__ == "__main__":
    sys.exit(main())
