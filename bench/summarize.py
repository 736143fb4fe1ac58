"""Markdown tables of the latest figures in bench/results/*.json (for bench/README.md).

    python bench/summarize.py > /tmp/tables.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def table(head: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def machine() -> str:
    for name in ("render", "throughput", "memory", "overhead", "cost"):
        d = load(name)
        if d:
            m = d["machine"]
            v = m["versions"]
            return (f"{m['nproc']} cores ({m['cpu']}), {m['ram_gb']} GB RAM, Python {m['python']}, {m['platform']}; "
                    + ", ".join(val if str(val).startswith(k) else f"{k} {val}" for k, val in v.items() if val) + f"; load average at start "
                    f"{m.get('load_avg_1m')}")
    return "no results yet"


def render() -> str:
    d = load("render")
    if not d:
        return ""
    names = {"pixtract": "pixtract `render_page` (PNG), in-process",
             "pixtract_workers": "pixtract `render_page` (PNG) in a MuPDF worker process, as a run calls it",
             "pdftoppm": "`pdftoppm -scale-to 1024 -png`",
             "pdfium_pillow_default": "pypdfium2 + Pillow PNG (default level 6)",
             "pdfium_pillow_level1": "pypdfium2 + Pillow PNG (level 1)"}
    parts = []
    for label, title in (("generated", "generated 200-page document"), ("fixtures", "fixture PDFs"), ("all", "all")):
        s = d["summary"].get(label)
        if not s:
            continue
        rows = []
        ref = s.get("pdftoppm", {}).get("cpu_ms_per_page")
        for t, n in names.items():
            if t in s:
                r = s[t]
                ratio = f"{r['cpu_ms_per_page'] / ref:.2f}x" if ref else "-"
                rows.append([n, s[t]["pages"], f"{r['cpu_ms_per_page']:.1f}", f"{r['wall_ms_per_page']:.1f}",
                             f"{r['kb_per_page']:.0f}", ratio])
        parts.append(f"**{title}**\n\n" + table(["tool", "pages", "CPU ms/page", "wall ms/page", "KB/page",
                                                  "CPU vs pdftoppm"], rows))
    steps = d.get("render_page_steps_ms")
    if steps:
        pages = d.get("render_page_steps_pages")
        title = (f"**the shipped `render_page`, step by step** (generated document, {pages} pages, CPU ms/page; "
                 "rows marked compare are not in pixtract)" if pages else
                 "**inside `render_page`** (an older run: generated document, CPU ms/page per step)")
        parts.append(title + "\n\n"
                     + table(["step", "CPU ms/page"], [[k, v] for k, v in steps.items()]))
    kb = d.get("render_page_png_kb_per_page")
    if kb:
        parts.append("**PNG size by writer** (same pages)\n\n" + table(["writer", "KB/page"], list(kb.items())))
    return "\n\n".join(parts)


def throughput() -> str:
    d = load("throughput")
    if not d:
        return ""
    rows = []
    for tool, r in d["main"].items():
        t, p = r["throughput"], r["pages"]
        rows.append([tool, f"{p['answered_by_model']}/{p['in']}", f"{t['ppm_api_window']:.0f}",
                     f"**{t['ratio_api_window']:.2f}**", f"{t['ppm_end_to_end']:.0f}", f"{t['ratio_end_to_end']:.2f}",
                     t["rate_limited_429"], r["api"]["requests"], p["lost_or_empty"], f"{r['wall_s']:.0f}"])
    main = table(["tool", "pages answered by the model", "pages/min (API window)", "÷ limit", "pages/min (end to end)",
                  "÷ limit", "429s seen", "requests", "pages lost or empty", "wall s"], rows)
    rows = []
    for tool, r in d["faults"].items():
        p = r["pages"]
        rows.append([tool, p["in"], p["answered_by_model"], p["failed"] + p["missing"], p["ok_but_empty"],
                     p["fell_back_to_local"], r["throughput"]["rate_limited_429"], r["api"]["requests"]])
    faults = table(["tool", "pages", "answered by the model", "lost (failed or missing)", "left empty",
                    "answered by the local fallback", "429s seen", "requests"], rows)
    rows = []
    for tool, pts in d["sweep"].items():
        for p in pts:
            rows.append([tool, p["concurrency"], p["pages"], f"{p['ppm_api_window']:.0f}", f"{p['theoretical_ppm']:.0f}",
                         f"{p['ratio_api_window']:.2f}", f"{p['ppm_end_to_end']:.0f}", p["lost_or_empty"]])
    sweep = table(["tool", "concurrency", "pages", "pages/min (API window)", "limit", "ratio",
                   "pages/min (end to end)", "lost or empty"], rows)
    return f"{main}\n\n**5 % injected 429s**\n\n{faults}\n\n**concurrency sweep (the plot)**\n\n{sweep}"


def memory() -> str:
    d = load("memory")
    if not d:
        return ""
    rows = [[r["pages"], "ephemeral API", f"{r['peak_rss_mb']:.0f}", f"{r['peak_client_rss_mb']:.0f}",
             f"{r['peak_server_rss_mb']:.0f}", f"{r['wall_s']:.0f}", f"{r['outputs']['ok']}/{r['pages']}"]
            for r in d["runs"]]
    rows += [[r["pages"], "running server", f"{r['peak_rss_mb']:.0f}", f"{r['peak_client_rss_mb']:.0f}",
              "(not in the tree)", f"{r['wall_s']:.0f}", f"{r['outputs']['ok']}/{r['pages']}"]
             for r in (d.get("running_server") or {}).get("runs", [])]
    return table(["pages", "Prefect API", "peak RSS, process tree (MB)", "client (MB)", "Prefect server (MB)",
                  "wall s", "ok"], rows)


def overhead() -> str:
    d = load("overhead")
    if not d:
        return ""
    pp, c = d["per_page"], d["client_components_ms"]
    hi = pp["sizes"][-1]
    rows = [["client process (pixtract + Prefect client)", f"{pp.get('client_ms_per_page_marginal', '-')}",
             f"{pp.get(f'client_ms_per_page_total_{hi}')}"],
            ["Prefect ephemeral API server", f"{pp.get('server_ms_per_page_marginal', '-')}",
             f"{pp.get(f'server_ms_per_page_total_{hi}')}"],
            ["(emulator, not counted)", f"{pp.get('emulator_ms_per_page_marginal', '-')}",
             f"{pp.get(f'emulator_ms_per_page_total_{hi}')}"]]
    t1 = table(["process", f"CPU ms/page (slope {pp['sizes'][0]}→{hi} pages)", f"CPU ms/page (total / {hi})"], rows)
    rows = _overhead_parts(c) if "pipeline_no_prefect_ms" in c else _overhead_parts_before_chunks(c)
    return t1 + "\n\n" + table(["client CPU per page, by part (in-process, no Prefect)", "ms"], rows)


def _overhead_parts(c: dict) -> list[list]:
    g = c.get
    sizes = g("pipeline_no_prefect_sizes") or ["-", "-"]
    return [["`render_page` as the flow calls it (render, guard, text layer + image share, PNG, 320-px thumbnail)",
             g("render_page_ms", "-")],
            ["`render_page` without the thumbnail", g("render_page_no_thumbnail_ms", "-")],
            ["the thumbnail inside `render_page` (difference of the two above)", g("thumbnail_in_render_page_ms", "-")],
            ["`thumbnail_jpeg` alone, on decoded pixels", g("thumbnail_ms", "-")],
            ["`Router.answer_page` as a whole (render, thumbnail file, request, HTTP, parse, cache)",
             g("router_answer_page_ms", "-")],
            [(f"whole pipeline without Prefect (`answer_pages` in chunks of 16 at concurrency "
              f"{g('pipeline_no_prefect_concurrency', '-')}, outputs, report; slope {sizes[0]}→{sizes[1]} pages)"),
             g("pipeline_no_prefect_ms", "-")],
            ["Prefect task engine + flow glue (client slope − whole pipeline without Prefect)",
             g("prefect_and_flow_ms", "-")],
            ["prompt-token estimate (mistral_common; paid only when a budget is set)",
             g("prompt_token_estimate_ms", "-")]]


def _overhead_parts_before_chunks(c: dict) -> list[list]:
    """The rows of a run from before the chunked flow (one task per page, thumbnails from the PNG)."""
    g = c.get
    return [["`render_page` (no thumbnail)", g("render_page_ms", "-")],
            ["report thumbnail (`make_thumbnail`: decode PNG, Lanczos, JPEG)", g("thumbnail_ms", "-")],
            ["prompt-token estimate (then paid on every page)", g("prompt_token_estimate_ms", "-")],
            ["`Router.answer_page` as a whole", g("router_answer_page_ms", "-")],
            ["Prefect task engine + flow (client slope − `Router.answer_page`)", g("prefect_and_flow_ms", "-")]]


def cost() -> str:
    d = load("cost")
    if not d:
        return ""
    names = {"pixtract": "pixtract (1024 long edge)", "zerox_render": "zerox rendering (1056 tall), pixtract's prompt",
             "zerox_as_shipped": "zerox as shipped (its prompt, no text layer)"}
    rows = [[r["task"], names[r["rendering"]], f"{r['input_tokens_per_1000']:,}", f"{r['image_tokens_per_1000']:,}",
             f"{r['output_tokens_per_1000']:,}", f"${r['input_usd_per_1000']:.2f}", f"${r['total_usd_per_1000']:.2f}"]
            for r in d["rows"]]
    t1 = table(["task", "rendering", "input tokens / 1k pages", "of which image", "output tokens / 1k pages (assumed)",
                "$ input", "$ total"], rows)
    rows = [[s["page"], s["pixtract_px"], s["pixtract_tokens"], s["zerox_px"], s["zerox_tokens"]]
            for s in d["image_tokens_by_page_size"]]
    t2 = table(["page size", "pixtract image", "Pixtral tokens", "zerox image", "Pixtral tokens"], rows)
    return t1 + "\n\n" + t2


def diag() -> str:
    d = load("diag_ratelimit")
    if not d:
        return ""
    st = d["setup"]
    rows = [[r["variant"], f"{r['answered']}/{r['pages']}", f"{r['ppm_api_window']:.0f}", f"{r['ratio']:.2f}",
             r["requests"], r["rate_limited_429"], " ".join(map(str, r["limiter_history"][:14])) or "(never lowered)"]
            for r in d["runs"]]
    return (f"pixtract's model client alone, {st['pages']} pages, concurrency {st['concurrency']}, "
            f"{st['rps']:g} req/s, latency {st['latency']:g} s\n\n"
            + table(["variant", "pages", "pages/min", "÷ limit", "requests", "429s", "AIMD limit after each change"],
                    rows))


def targets() -> str:
    rows = []
    for name in ("render", "throughput", "memory", "overhead"):
        d = load(name)
        if not d:
            continue
        ts = d.get("targets") or {}
        if "met" in ts:
            ts = {"render+encode ≤ 0.1× pdftoppm CPU": ts}
        for label, t in ts.items():
            rows.append([name, label, t.get("measured"), {True: "met", False: "**not met**", None: "n/a"}[t.get("met")]])
    return table(["benchmark", "target", "measured", ""], rows)


def main() -> None:
    for title, fn in (("machine", machine), ("targets", targets), ("render", render), ("throughput", throughput),
                      ("diag_ratelimit", diag), ("memory", memory), ("cost", cost),
                      ("overhead", overhead)):
        text = fn()
        if text:
            print(f"### {title}\n\n{text}\n")


if __name__ == "__main__":
    sys.exit(main())
