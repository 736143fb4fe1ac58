"""Run py-zerox on one PDF and write what came back as JSON. Runs in bench/.zerox-venv (zerox
pulls in litellm, which needs openai<3, older than the project's test dependency).

    OPENAI_API_BASE=http://127.0.0.1:PORT/openai/v1 OPENAI_API_KEY=x \
        bench/.zerox-venv/bin/python bench/zerox_run.py doc.pdf --concurrency 16 --json out.json

zerox renders every page first (pdf2image/pdftocairo, 300 DPI scaled to 1056 px tall, PNG),
then sends one litellm request per page. A page whose request fails comes back as "" (zerox
logs the error and goes on), so empty pages are the pages it lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("pdf")
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    t0 = time.time()
    import litellm
    from pyzerox import zerox

    litellm.suppress_debug_info = True
    t_import = time.time()
    from PyPDF2 import PdfReader

    pages_in = len(PdfReader(args.pdf).pages)
    error = None
    result = None
    try:
        result = asyncio.run(zerox(file_path=os.path.abspath(args.pdf), model=args.model,
                                   concurrency=args.concurrency, cleanup=True))
    except Exception as e:  # zerox raising is itself a result
        error = f"{type(e).__name__}: {str(e)[:500]}"
    t_end = time.time()
    pages = result.pages if result else []
    empty = sum(1 for p in pages if not (p.content or "").strip())
    out = {
        "pages_in": pages_in, "pages_out": len(pages), "empty_pages": empty,
        "lost_pages": pages_in - len(pages) + empty,
        "input_tokens": result.input_tokens if result else 0, "output_tokens": result.output_tokens if result else 0,
        "started": t0, "import_s": round(t_import - t0, 3), "zerox_s": round(t_end - t_import, 3), "error": error,
    }
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out))
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main())
