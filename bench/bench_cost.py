"""Benchmark 4: cost. Input tokens and dollars per 1,000 pages at the seed prices ($2/M input,
$6/M output: pipeline/tokens.py, model-apis.md §7), by task, for pixtract's default rendering
(long edge 1024 px, never above 200 DPI) beside zerox's (every page rendered 1056 px tall).

Input tokens are exact for Pixtral Large: ``pixtract.tokens.estimate_prompt_tokens`` on the
request pixtract builds (system prompt, task prompt, the page's text layer as a hint, the image
by the Pixtral formula ``image_tokens``). For zerox's rendering the same request is counted with
a W x 1056 image; "zerox as shipped" also counts zerox's own transcribe request (its system
prompt and the image, no text layer). Output tokens are stated assumptions (below), the same for
both renderings: the transcript is as long as the page's text layer, answers are short.

    python bench/bench_cost.py [--pages 50]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import VISION_MODEL, generated_pdf, log, write_result  # noqa: E402

ZEROX_HEIGHT = 1056  # pyzerox PDFConversionDefaultOptions.SIZE = (None, 1056)
ZEROX_SYSTEM_PROMPT = """
    Convert the following PDF page to markdown.
    Return only the markdown with no explanation text.
    Do not exclude any content from the page.
    """  # pyzerox.constants.prompts.Prompts.DEFAULT_SYSTEM_PROMPT (0.0.7)
QUESTION = "What is the Q4 total for the North region?"
SCHEMA = {"title": "RegionTotals", "type": "object",
          "properties": {"section": {"type": "string"},
                         "rows": {"type": "array", "items": {"type": "object", "properties": {
                             "region": {"type": "string"}, "q1": {"type": "number"}, "q2": {"type": "number"},
                             "q3": {"type": "number"}, "q4": {"type": "number"}, "total": {"type": "number"}}}}}}
OUTPUT_TOKENS = {"transcribe": "text layer", "ask": 40, "extract": 250, "chart": 300}
TASKS = ("transcribe", "ask", "extract", "chart")
PRICE_IN, PRICE_OUT = 2.0, 6.0  # USD per million tokens (checked against pixtract.tokens below)


def zerox_size(width_pt: float, height_pt: float) -> tuple[int, int]:
    return max(1, round(ZEROX_HEIGHT * width_pt / height_pt)), ZEROX_HEIGHT


def run(pages: int = 50, results_dir: Path | None = None) -> dict:
    import pymupdf

    from pixtract import tokens
    from pixtract.config import RunConfig, TaskSpec
    from pixtract.discover import discover
    from pixtract.messages import ChatRequest, ImagePart, Message, TextPart
    from pixtract.prompts import build_request
    from pixtract.records import RenderSettings
    from pixtract.render import render_page

    price = tokens.price_for(VISION_MODEL)
    assert price is not None and (price.input_per_m, price.output_per_m) == (PRICE_IN, PRICE_OUT), price
    pdf = generated_pdf(max(pages, 1))
    doc = next(iter(discover([str(pdf)])))
    cfg = RunConfig(inputs=[str(pdf)], out="unused", profile="mistral")
    specs = {"transcribe": TaskSpec("transcribe"), "ask": TaskSpec("ask", questions=[QUESTION]),
             "extract": TaskSpec("extract", schema=SCHEMA), "chart": TaskSpec("chart")}
    acc = {(t, r): {"in": 0, "image": 0, "out": 0} for t in TASKS for r in ("pixtract", "zerox_render")}
    acc[("transcribe", "zerox_as_shipped")] = {"in": 0, "image": 0, "out": 0}
    with pymupdf.open(pdf) as mdoc:
        sizes_pt = [(mdoc[i].rect.width, mdoc[i].rect.height) for i in range(pages)]
    for n in range(1, pages + 1):
        page = render_page(doc, n, RenderSettings())
        zw, zh = zerox_size(*sizes_pt[n - 1])
        out_transcribe = tokens.count_text_tokens(page.text, VISION_MODEL)
        for t in TASKS:
            out_tokens = out_transcribe if t == "transcribe" else OUTPUT_TOKENS[t]
            for rendering, (w, h) in (("pixtract", (page.width, page.height)), ("zerox_render", (zw, zh))):
                img = ImagePart(b"", page.mime, w, h)
                req = build_request(cfg, specs[t], images=[img], text=page.text,
                                    question=QUESTION if t == "ask" else None, model=VISION_MODEL)
                a = acc[(t, rendering)]
                a["in"] += tokens.estimate_prompt_tokens(req, VISION_MODEL)
                a["image"] += tokens.image_tokens(w, h)
                a["out"] += out_tokens
        zreq = ChatRequest(messages=[Message("system", ZEROX_SYSTEM_PROMPT),
                                     Message("user", [TextPart(""), ImagePart(b"", "image/png", zw, zh)])],
                           model=VISION_MODEL)
        a = acc[("transcribe", "zerox_as_shipped")]
        a["in"] += tokens.estimate_prompt_tokens(zreq, VISION_MODEL)
        a["image"] += tokens.image_tokens(zw, zh)
        a["out"] += out_transcribe
    rows = []
    for (t, rendering), a in acc.items():
        k = 1000.0 / pages
        tin, tout, timg = a["in"] * k, a["out"] * k, a["image"] * k
        rows.append({"task": t, "rendering": rendering, "input_tokens_per_1000": round(tin),
                     "image_tokens_per_1000": round(timg), "output_tokens_per_1000": round(tout),
                     "input_usd_per_1000": round(tin * PRICE_IN / 1e6, 3),
                     "total_usd_per_1000": round(tin * PRICE_IN / 1e6 + tout * PRICE_OUT / 1e6, 3)})
    rows.sort(key=lambda r: (TASKS.index(r["task"]), r["rendering"]))
    small = _small_pages()
    out = {"pages_sampled": pages, "document": str(pdf.name), "page_size_pt": list(sizes_pt[0]),
           "pixtract_image": [page.width, page.height], "zerox_image": list(zerox_size(*sizes_pt[0])),
           "price_per_million": {"input": PRICE_IN, "output": PRICE_OUT}, "output_token_assumptions": OUTPUT_TOKENS,
           "question": QUESTION, "rows": rows, "image_tokens_by_page_size": small}
    log(f"cost per 1,000 pages ({pdf.name}, {pages} pages sampled; Letter pages: pixtract "
        f"{page.width}x{page.height}, zerox {zerox_size(*sizes_pt[0])[0]}x{ZEROX_HEIGHT})")
    log(f"  {'task':11s} {'rendering':17s} {'input tok':>10s} {'image tok':>10s} {'output tok':>10s} {'$ input':>8s} {'$ total':>8s}")
    for r in rows:
        log(f"  {r['task']:11s} {r['rendering']:17s} {r['input_tokens_per_1000']:10,d} {r['image_tokens_per_1000']:10,d} "
            f"{r['output_tokens_per_1000']:10,d} {r['input_usd_per_1000']:8.2f} {r['total_usd_per_1000']:8.2f}")
    for s in small:
        log(f"  image tokens, {s['page']}: pixtract {s['pixtract_px']} -> {s['pixtract_tokens']}, "
            f"zerox {s['zerox_px']} -> {s['zerox_tokens']}")
    write_result("cost", out, results_dir)
    return out


def _small_pages() -> list[dict]:
    """Image tokens by page size: where pixtract's 200-DPI cap makes a difference."""
    from pixtract.records import RenderSettings
    from pixtract.render import pdf_zoom
    from pixtract.tokens import image_tokens

    out = []
    for name, (w, h) in {"US Letter 8.5x11 in": (612, 792), "A4": (595, 842), "Letter landscape": (792, 612),
                         "receipt 3x5 in": (216, 360), "label 2x3 in": (144, 216)}.items():
        z = pdf_zoom(w, h, RenderSettings())
        pw, ph = round(w * z), round(h * z)
        zw, zh = zerox_size(w, h)
        out.append({"page": name, "pixtract_px": f"{pw}x{ph}", "pixtract_tokens": image_tokens(pw, ph),
                    "zerox_px": f"{zw}x{zh}", "zerox_tokens": image_tokens(zw, zh)})
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=50, help="pages of the generated document to sample")
    ap.add_argument("--results", type=Path, default=None)
    a = ap.parse_args(argv)
    return run(a.pages, a.results)


if __name__ == "__main__":
    main()
