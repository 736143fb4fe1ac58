"""``pixtract estimate``: exact input tokens and the cost range, before anything is sent."""

from __future__ import annotations

from typing import Any

from . import prompts, tokens
from .config import RunConfig
from .discover import DiscoveryFailure, discover
from .errors import InputError, UsageError
from .messages import ImagePart
from .profiles import get_profile
from .render import count_pages, render_page
from .workers import WorkerSettings, running_workers

MAX_IMAGES = 8


def estimate(cfg: RunConfig) -> dict[str, Any]:
    """Per document and in total: exact prompt tokens for the vision rung of every task unit,
    and cost from nothing (empty answers) to everything (every answer at max_tokens)."""
    if not cfg.endpoint.remote:
        raise UsageError("estimate needs a model profile (e.g. --profile mistral); the local profile costs nothing")
    from .prices import PRICE_HINT

    prof = get_profile(cfg.profile)
    model = cfg.endpoint.vision_model or prof.vision_model
    price = cfg.prices_table().get(model)
    if price is None:  # prices are never guessed
        raise UsageError(f"no price for model {model}, so no cost can be estimated; {PRICE_HINT}")
    docs, total_in, total_out_max, requests = [], 0, 0, 0
    with running_workers(WorkerSettings.for_run(cfg, 1)):  # MuPDF in a killable process
        for item in discover(cfg.inputs):
            if isinstance(item, DiscoveryFailure):
                docs.append({"document": item.path, "error": str(item.error)})
                continue
            try:
                n = count_pages(item, cfg.password)
                pages = [render_page(item, i, cfg.render, cfg.password) for i in range(1, n + 1)]
            except InputError as e:
                docs.append({"document": item.path, "error": str(e)})
                continue
            d_in = d_out = d_req = 0
            for task in cfg.tasks:
                for question in task.units():
                    if task.scope == "document":
                        groups = [pages[i : i + MAX_IMAGES] for i in range(0, len(pages), MAX_IMAGES)]
                    else:
                        groups = [[p] for p in pages]
                    for group in groups:
                        req = prompts.build_request(
                            cfg, task, images=[ImagePart(p.image, p.mime, p.width, p.height) for p in group],
                            text="\n\n".join(p.text for p in group), question=question, model=model)
                        d_in += tokens.estimate_prompt_tokens(req, model)
                        d_out += req.max_tokens or 0
                        d_req += 1
            docs.append({"document": item.path, "pages": n, "requests": d_req, "input_tokens": d_in,
                         "max_output_tokens": d_out, **_costs(price, d_in, d_out)})
            total_in, total_out_max, requests = total_in + d_in, total_out_max + d_out, requests + d_req
            del pages
    return {"profile": cfg.profile, "model": model, "tasks": [t.kind for t in cfg.tasks],
            "price_per_million": None if price is None else {"input": price.input_per_m, "output": price.output_per_m},
            "documents": docs,
            "total": {"requests": requests, "input_tokens": total_in, "max_output_tokens": total_out_max,
                      **_costs(price, total_in, total_out_max)}}


def _costs(price, tokens_in: int, tokens_out_max: int) -> dict[str, Any]:
    if price is None:
        return {"cost_usd_min": None, "cost_usd_max": None}
    low = tokens_in * price.input_per_m / 1e6
    return {"cost_usd_min": round(low, 6), "cost_usd_max": round(low + tokens_out_max * price.output_per_m / 1e6, 6)}


def format_estimate(r: dict[str, Any]) -> str:
    def money(v):
        return "unknown (no price for this model)" if v is None else f"${v:,.4f}"

    lines = [f"estimate for {r['profile']} / {r['model']}, tasks: {', '.join(r['tasks'])}"]
    for d in r["documents"]:
        if "error" in d:
            lines.append(f"  {d['document']}: cannot read ({d['error']})")
        else:
            lines.append(f"  {d['document']}: {d['pages']} pages, {d['requests']} requests, "
                         f"{d['input_tokens']:,} input tokens, {money(d['cost_usd_min'])} to {money(d['cost_usd_max'])}")
    t = r["total"]
    lines.append(f"total: {t['requests']} requests, {t['input_tokens']:,} input tokens (exact), "
                 f"up to {t['max_output_tokens']:,} output tokens; cost {money(t['cost_usd_min'])} "
                 f"(input only) to {money(t['cost_usd_max'])} (every answer at max_tokens)")
    return "\n".join(lines)
