"""Pages go out while Prefect starts.

Importing Prefect and creating the flow run take a second or more (10-30 s for Prefect's
ephemeral API on a busy machine); none of it is needed to answer a page. So once a run has
passed its checks, its first document's pages are handed to the router in order, one more
each time a page thread frees, until the flow takes its first pages; the flow's chunks pick up
these answers (or wait for them) instead of starting them again (``Router.prefetch``). Handing
over only the first few pages left the page threads idle for the rest of Prefect's start-up."""

from __future__ import annotations

import threading

from .config import RunConfig
from .discover import DiscoveryFailure, discover
from .plan import plan_document

_CHECK_S = 0.2  # how often a prefetch waiting for a free page thread looks whether the flow took over


def router_for_run(cfg: RunConfig, stop: threading.Event, thumbs_root: str, context=None):
    """The page worker of a run (with the run's ``context``, by default one made from ``cfg``):
    it writes each page's thumbnail and images for the report (the model's, and one at
    ``cfg.review_dpi``), and its words for the layout JSON."""
    from .layout import save_page_image, save_page_words, save_review_image
    from .report import THUMB_MAX_EDGE, save_thumbnail
    from .route import STOP_NOTICE_S, Router

    def rendered(page) -> None:
        save_thumbnail(thumbs_root, page.document.sha256, page.number, page.thumbnail)
        save_page_image(thumbs_root, page)
        if not stop.is_set():  # a stopping run kills its MuPDF workers: no image, and nothing to warn of
            save_review_image(thumbs_root, page, cfg.review_dpi, cfg.render, cfg.password, quiet=stopping)

    def stopping(e: BaseException) -> bool:
        """The worker died because the run is stopping (as Router._stopping decides for pages)."""
        return stop.is_set() or (getattr(e, "type", None) == "render_crashed" and stop.wait(STOP_NOTICE_S))

    make_client = batch = None
    if cfg.batch == "on":  # the planned route's requests go in batch jobs (pipeline/batchmode.py)
        from .batchmode import open_round, wrap_clients
        from .runcontext import RunContext

        context = context or RunContext.for_run(cfg)
        batch = open_round(cfg)
        make_client = wrap_clients(cfg, batch, context)
    router = Router(cfg, thumb_edge=THUMB_MAX_EDGE, stop=stop, on_render=rendered, make_client=make_client,
                    context=context, on_words=lambda page, words: save_page_words(thumbs_root, page, words))
    router.batch = batch
    return router


def start(cfg: RunConfig, router, limit: int | None = None) -> threading.Thread:
    """Answer the first document's pages in the background, at most the router's page threads
    at a time, until the flow takes its first page (or ``limit`` pages); errors are left to the
    flow, which meets the same document again."""

    def run() -> None:
        if not any(t.scope == "page" for t in cfg.tasks):
            return
        free = threading.Semaphore(router.page_threads)
        sent = 0
        try:
            for item in discover(cfg.inputs, exclude=[cfg.out]):
                if isinstance(item, DiscoveryFailure):
                    continue
                plan = plan_document(item, cfg)
                for number in range(1, plan.pages + 1):
                    if limit is not None and sent >= limit:
                        return
                    if not _thread_frees(free, router):
                        return
                    fut = router.prefetch(plan, number)
                    if fut is None:
                        return
                    fut.add_done_callback(lambda _f: free.release())
                    sent += 1
                return  # the first document only, as before
        except Exception:  # noqa: BLE001 - the flow reads the same inputs and reports their errors
            return

    thread = threading.Thread(target=run, name="pixtract-prefetch", daemon=True)
    thread.start()
    return thread


def _thread_frees(free: threading.Semaphore, router) -> bool:
    """Wait for a free page thread; False once the flow has taken over or the run is stopping."""
    while not router.taken and not router.stop.is_set():
        if free.acquire(timeout=_CHECK_S):
            return True
    return False
