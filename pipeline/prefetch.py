"""The first pages go out while Prefect starts.

Importing Prefect and creating the flow run take a second or more; none of it is needed to
answer a page. So once a run has passed its checks, the first pages of its first document are
handed to the router at once, and the flow's first chunk picks up their answers (or waits for
them) instead of starting them again (``Router.prefetch``)."""

from __future__ import annotations

import threading

from .config import RunConfig
from .discover import DiscoveryFailure, discover
from .plan import plan_document


def router_for_run(cfg: RunConfig, stop: threading.Event, thumbs_root: str):
    """The page worker of a run: it writes each page's thumbnail and image for the report, and
    its words for the layout JSON."""
    from .layout import save_page_image, save_page_words
    from .report import THUMB_MAX_EDGE, save_thumbnail
    from .route import Router

    def rendered(page) -> None:
        save_thumbnail(thumbs_root, page.document.sha256, page.number, page.thumbnail)
        save_page_image(thumbs_root, page)

    return Router(cfg, thumb_edge=THUMB_MAX_EDGE, stop=stop, on_render=rendered,
                  on_words=lambda page, words: save_page_words(thumbs_root, page, words))


def start(cfg: RunConfig, router, limit: int | None = None) -> threading.Thread:
    """Answer up to ``limit`` (default: the router's page threads) first pages, in the
    background; errors are left to the flow, which meets the same document again."""

    def run() -> None:
        try:
            for item in discover(cfg.inputs, exclude=[cfg.out]):
                if isinstance(item, DiscoveryFailure):
                    continue
                plan = plan_document(item, cfg)
                first = [t for t in cfg.tasks if t.scope == "page"]
                if first:
                    for number in range(1, min(plan.pages, limit or router.page_threads) + 1):
                        router.prefetch(plan, number)
                return
        except Exception:  # noqa: BLE001 - the flow reads the same inputs and reports their errors
            return

    thread = threading.Thread(target=run, name="pixtract-prefetch", daemon=True)
    thread.start()
    return thread
