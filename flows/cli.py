"""The ``pixtract`` command.

Exit codes: 0 every page answered; 1 some pages or documents failed (the records say why);
2 bad usage or configuration (nothing was run).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2

RUN_EXAMPLES = """examples:
  pixtract run fixtures/samples --out out/
  pixtract run 'scans/**/*.pdf' report.pdf --out out/ --max-edge 1536
  pixtract run invoices/ --out out/ --profile local --task transcribe
"""


def _prefect_defaults(verbose: bool) -> None:
    """Quiet, offline-friendly Prefect settings unless the user chose otherwise."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # The ephemeral server's own log lines (startup, shutdown) are noise on a terminal.
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "ERROR")


def build_parser() -> argparse.ArgumentParser:
    from pipeline.config import DEFAULT_PROFILE, PROFILES, TASKS

    p = argparse.ArgumentParser(prog="pixtract", description="Multimodal document extraction on Prefect.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="extract from PDFs and images into an output folder",
        description="Read PDFs and images (files, folders, globs), answer every page, write "
                    "results.jsonl, one Markdown file per document and manifest.json to --out.",
        epilog=RUN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("paths", nargs="+", metavar="PATH", help="files, folders (recursive) or globs")
    run.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    run.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES,
                     help="where answers come from (default: local = text layer + Tesseract)")
    run.add_argument("--task", default="transcribe", choices=TASKS, help="what to extract (default: transcribe)")
    run.add_argument("--max-edge", type=int, default=1024, metavar="PX",
                     help="long edge of page images in pixels (default 1024, Pixtral's native size)")
    run.add_argument("--dpi-cap", type=int, default=200, metavar="DPI",
                     help="never render a PDF page above this DPI (default 200)")
    run.add_argument("--image-format", default="auto", choices=("auto", "png", "jpeg"),
                     help="page image encoding (default auto: PNG for line art, JPEG for photos/scans)")
    run.add_argument("--concurrency", type=int, default=0, metavar="N",
                     help="pages in flight at once (default: CPU count for local, 8 for endpoints)")
    run.add_argument("--password", default=None, help="password for encrypted PDFs (never written out)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("-v", "--verbose", action="store_true", help="show Prefect's logs")
    return p


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import RunConfig
    from pipeline.errors import UsageError
    from pipeline.records import RenderSettings

    cfg = RunConfig(
        inputs=args.paths, out=args.out, profile=args.profile, task=args.task,
        render=RenderSettings(max_edge=args.max_edge, dpi_cap=args.dpi_cap, image_format=args.image_format),
        concurrency=args.concurrency, password=args.password,
    )
    try:
        cfg.validate()
    except UsageError as e:
        print(f"pixtract: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    _prefect_defaults(args.verbose)
    from . import progress
    from .batch import run_batch

    bar = _ProgressBar(enabled=not args.no_progress and sys.stderr.isatty())
    unsubscribe = progress.subscribe(bar)
    try:
        with bar:
            summary = run_batch(cfg)
    finally:
        unsubscribe()
    return report(summary, cfg.out)


def report(summary: dict, out: str) -> int:
    by_status = summary.get("by_status", {})
    routes = ", ".join(f"{k}: {v}" for k, v in sorted(summary.get("ok_by_route", {}).items())) or "none"
    print(f"pixtract: {summary['records']} records: {by_status.get('ok', 0)} ok ({routes}), "
          f"{by_status.get('failed', 0)} failed, {by_status.get('skipped', 0)} skipped")
    print(f"pixtract: outputs in {os.path.abspath(out)} (results.jsonl, manifest.json, one .md per document)")
    return EXIT_FAILURES if by_status.get("failed", 0) else EXIT_OK


class _ProgressBar:
    """A rich progress bar on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.routes: Counter[str] = Counter()
        self.total = 0

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

    def document(self, path: str, pages: int) -> None:
        self.total += pages
        if self.enabled:
            self._progress.update(self._task, total=self.total)

    def record(self, rec) -> None:
        self.routes[rec.route if rec.status == "ok" else rec.status] += 1
        if self.enabled:
            desc = " ".join(f"{k}={v}" for k, v in sorted(self.routes.items()))
            self._progress.update(self._task, advance=1 if rec.page is not None else 0, description=desc)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    if args.command == "run":
        return cmd_run(args)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
