"""The fallback ladder, tasks, budget, circuit breaker and cache, against the emulator."""

import json
import threading
import time

import pymupdf
import pytest

from pixtract import prefetch
from pixtract.config import EndpointSpec, RunConfig, TaskSpec
from pixtract.discover import identify
from pixtract.guards import CircuitBreaker
from pixtract.local import document_running_lines
from pixtract.render import count_pages
from pixtract.route import DocumentPlan, Router
from tests.emulator.helpers import FAKE_KEY

VISION, TEXT = "pixtral-large-2411", "mistral-large-2411"


@pytest.fixture(autouse=True)
def fresh(emu, monkeypatch):
    emu.reset()
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)


def fast(profile, emu, **kw) -> EndpointSpec:
    return EndpointSpec(profile=profile, base_url=emu.base_url(profile), timeout=5, max_retries=1,
                        backoff_base=0.01, backoff_max=0.02, **kw)


def make_cfg(emu, tmp_path, task=None, **kw) -> RunConfig:
    cfg = RunConfig(inputs=["x"], out=str(tmp_path), profile="mistral", tasks=[task or TaskSpec()],
                    endpoint=fast("mistral", emu), concurrency=2, **kw)
    cfg.endpoint.profile = "mistral"
    return cfg.validate()


def plan(path) -> DocumentPlan:
    doc = identify(str(path))
    return DocumentPlan(doc, count_pages(doc), document_running_lines(doc))


def chat_requests(emu, model=None):
    return [r for r in emu.requests if r.get("path", "").endswith(("/chat/completions", "/messages"))
            and (model is None or r.get("model") == model)]


def test_vision_answer_with_tokens_cost_and_agreement(emu, tmp_path, samples):
    router = Router(make_cfg(emu, tmp_path))
    [rec] = router.answer_page(plan(samples / "report.pdf"), 2)
    assert rec.status == "ok" and rec.route == "vision" and rec.model == VISION
    assert rec.usage["input_tokens"] > 1000 and rec.usage["output_tokens"] > 0
    assert rec.cost_usd == pytest.approx(rec.usage["input_tokens"] * 2e-6 + rec.usage["output_tokens"] * 6e-6)
    assert "1,480" in rec.answer
    assert rec.agreement is not None and rec.agreement > 0.9 and not rec.flags
    [req] = chat_requests(emu)
    body = req["body"]
    assert "seed" not in body and "max_completion_tokens" not in body  # Mistral rejects both (422)
    assert any(p.get("type") == "image_url" for p in body["messages"][1]["content"])


def test_cross_check_flags_numbers_missing_from_text_layer(emu, tmp_path, samples):
    emu.script(VISION, "Units in the North: 1,200 then 9,999.")
    router = Router(make_cfg(emu, tmp_path))
    [rec] = router.answer_page(plan(samples / "report.pdf"), 2)
    assert any("9,999" in f for f in rec.flags)
    assert not any("1,200" in f for f in rec.flags)


def test_ladder_vision_alt_then_text_then_local_then_failed(emu, tmp_path, samples):
    cfg = make_cfg(emu, tmp_path, vision_alt=fast("openrouter", emu), cache=False)
    p = plan(samples / "report.pdf")
    # 1. vision down (503 for the Mistral vision model): the second vision endpoint answers
    emu.inject("503", model=VISION)
    [rec] = Router(cfg).answer_page(p, 1)
    assert rec.route == "vision-alt" and rec.model == "mistralai/pixtral-large-2411"
    assert "503" in rec.fallback_reason or "unavailable" in rec.fallback_reason.lower()
    assert [t["route"] for t in rec.tried] == ["vision"]
    # 2. both vision endpoints down: the text model answers from the text layer
    emu.inject("503", model="mistralai/pixtral-large-2411")
    [rec] = Router(cfg).answer_page(p, 1)
    assert rec.route == "text-fallback" and rec.model == TEXT
    assert "Northwind" in rec.answer
    # 3. every endpoint down: transcribe falls back to the local engine
    emu.inject("503", model=TEXT)
    [rec] = Router(cfg).answer_page(p, 1)
    assert rec.route == "local-text" and rec.status == "ok"
    assert [t["route"] for t in rec.tried] == ["vision", "vision-alt", "text-fallback"]
    # 4. a task the local engine cannot do fails, with the error of every rung tried
    ask = make_cfg(emu, tmp_path, task=TaskSpec("ask", questions=["What is the title?"]),
                   vision_alt=fast("openrouter", emu), cache=False)
    [rec] = Router(ask).answer_page(p, 1)
    assert rec.status == "failed" and rec.answer is None
    assert [t["route"] for t in rec.tried] == ["vision", "vision-alt", "text-fallback"]
    assert rec.error.message.count("503") >= 3 or "server" in rec.error.message.lower()


def test_scanned_page_text_fallback_uses_local_ocr(emu, tmp_path, samples):
    emu.inject("503", model=VISION)
    [rec] = Router(make_cfg(emu, tmp_path)).answer_page(plan(samples / "scanned.pdf"), 1)
    assert rec.route == "text-fallback"
    assert "Lighthouse" in rec.answer  # the OCR text went to the text model


def test_answers_are_grounded_on_the_page_words_and_the_words_are_handed_on(emu, tmp_path, samples):
    seen = {}
    router = Router(make_cfg(emu, tmp_path), on_words=lambda page, words: seen.setdefault(page.number, words))
    [rec] = router.answer_page(plan(samples / "report.pdf"), 2)
    g = rec.grounding
    assert g["words"] == "text-layer" and g["unit"] == "pt" and g["sizes"] == {"2": [595.0, 842.0]}
    assert g["located"] == g["total"] >= 1  # the emulator answers with the page's text: all of it is there
    boxes = [b for i in g["items"] for b in i["boxes"]]
    for text in ("1,480", "Region"):  # one-word lines of the table, not the same words earlier on the page
        word = [w for w in seen[2].words if w.text == text][-1]
        assert [round(v, 1) for v in (word.x0, word.y0, word.x1, word.y1)] in boxes
    assert seen[2].source == "text-layer"


def test_a_scanned_page_is_grounded_on_ocr_words_when_some_step_ocred_it(emu, tmp_path, samples):
    [rec] = Router(make_cfg(emu, tmp_path, cache=False)).answer_page(plan(samples / "scanned.pdf"), 1)
    assert rec.route == "vision" and rec.grounding["words"] == "none" and rec.grounding["located"] == 0
    cfg = make_cfg(emu, tmp_path, cache=False, grounding_ocr=True)
    [rec] = Router(cfg).answer_page(plan(samples / "scanned.pdf"), 1)
    # the emulator's vision answer for a page without a text layer is made up: it is not on the page
    assert rec.answer.startswith("(The 792x1024 page image contains no legible text")
    assert rec.route == "vision" and rec.grounding["words"] == "ocr"
    assert (rec.grounding["located"], rec.grounding["total"]) == (0, 1)
    emu.inject("503", model=VISION)  # the text rung OCRs the page anyway: its words ground the answer
    [rec] = Router(make_cfg(emu, tmp_path, cache=False)).answer_page(plan(samples / "scanned.pdf"), 1)
    assert rec.route == "text-fallback" and rec.grounding["words"] == "ocr"
    located = [i for i in rec.grounding["items"] if i["located"]]
    assert located and all(0 <= b[0] < b[2] <= 612 and 0 <= b[1] < b[3] <= 792 for i in located for b in i["boxes"])


def test_retired_model_skipped_at_start_without_requests(emu, tmp_path, samples):
    from pixtract.preflight import preflight

    emu.configure(retired_models=[VISION])
    cfg = make_cfg(emu, tmp_path)
    router = Router(cfg)
    report = preflight(cfg)
    assert any(VISION in p and "Mistral Medium 3.5" in p for p in report.notes)
    router.apply_preflight(report)
    [rec] = router.answer_page(plan(samples / "report.pdf"), 1)
    assert rec.route == "text-fallback" and rec.degraded and rec.planned_route == "vision"
    assert chat_requests(emu, VISION) == []


def test_model_retired_mid_run_is_not_asked_again(emu, tmp_path, samples):
    router = Router(make_cfg(emu, tmp_path))
    emu.inject("model_retired", model=VISION)
    p = plan(samples / "report.pdf")
    first = router.answer_page(p, 1)[0]
    second = router.answer_page(p, 2)[0]
    assert first.route == second.route == "text-fallback"
    assert len(chat_requests(emu, VISION)) == 1


def test_circuit_breaker_opens_and_closes(emu, tmp_path, samples):
    router = Router(make_cfg(emu, tmp_path, cache=False))
    clock = [0.0]
    vision = router.rungs[0]
    vision.breaker = CircuitBreaker(threshold=2, cooldown=10, clock=lambda: clock[0])
    p = plan(samples / "report.pdf")
    emu.inject("503", model=VISION)
    for _ in range(2):
        assert router.answer_page(p, 1)[0].route == "text-fallback"
    sent = len(chat_requests(emu, VISION))
    assert vision.breaker.state == "open"
    rec = router.answer_page(p, 1)[0]  # open: vision is not even tried
    assert len(chat_requests(emu, VISION)) == sent
    assert rec.tried[0]["error"]["type"] == "circuit_open"
    emu.reset()  # the endpoint recovers
    clock[0] = 11  # cooldown over: one probe goes through and closes the breaker
    assert router.answer_page(p, 1)[0].route == "vision"
    assert vision.breaker.state == "closed"
    assert vision.breaker.transitions == ["open", "half-open", "closed"]


def test_budget_stops_new_requests(emu, tmp_path, samples):
    from pixtract import request_plan
    from pixtract.ladder import worst_case_cost
    from pixtract.render import render_page

    p = plan(samples / "report.pdf")
    cfg = make_cfg(emu, tmp_path)
    page = render_page(p.document, 1, cfg.render)
    worst = worst_case_cost(request_plan.request(cfg, cfg.tasks[0], request_plan.page_part(page), model=VISION),
                            VISION, cfg.prices_table())
    # room for the first page's worst case, not for a second one on top of what it spent
    router = Router(make_cfg(emu, tmp_path, budget_usd=worst * 1.1))
    recs = [router.answer_page(p, n)[0] for n in (1, 2, 3)]
    statuses = [r.status for r in recs]
    assert statuses[0] == "ok" and "skipped" in statuses
    skipped = [r for r in recs if r.status == "skipped"]
    assert all("budget" in r.fallback_reason and r.error.type == "budget_exceeded" for r in skipped)
    assert len(chat_requests(emu)) == statuses.count("ok")
    assert 0 < router.budget.spent <= worst * 1.1


def test_extract_invalid_first_answer_is_repaired(emu, tmp_path, samples):
    schema = {"title": "Totals", "type": "object", "additionalProperties": False,
              "required": ["region", "q3"], "properties": {"region": {"type": "string"}, "q3": {"type": "integer"}}}
    task = TaskSpec("extract", schema=schema)
    emu.script(VISION, json.dumps({"region": "North", "q3": "1,480"}), json.dumps({"region": "North", "q3": 1480}))
    [rec] = Router(make_cfg(emu, tmp_path, task=task)).answer_page(plan(samples / "report.pdf"), 2)
    assert rec.status == "ok" and rec.route == "vision"
    assert rec.data == {"region": "North", "q3": 1480}
    assert rec.valid == {"ok": True, "errors": []} and rec.schema == "Totals"
    first, repair = chat_requests(emu, VISION)
    assert first["body"]["response_format"]["type"] == "json_schema"
    assert "q3" in repair["body"]["messages"][-1]["content"]  # the repair turn quotes the error


def test_extract_still_invalid_keeps_data_and_errors(emu, tmp_path, samples):
    schema = {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}
    emu.script(VISION, '{"total": "n/a"}', '{"total": "still n/a"}')
    [rec] = Router(make_cfg(emu, tmp_path, task=TaskSpec("extract", schema=schema))).answer_page(
        plan(samples / "report.pdf"), 1)
    assert rec.data == {"total": "n/a"} or rec.data == {"total": "still n/a"}
    assert rec.valid["ok"] is False and rec.valid["errors"]


def test_extract_falls_back_to_json_object_when_schema_mode_rejected(emu, tmp_path, samples):
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    emu.inject("400", count=1, message="response_format json_schema is not supported for this model")
    router = Router(make_cfg(emu, tmp_path, task=TaskSpec("extract", schema=schema)))
    [rec] = router.answer_page(plan(samples / "report.pdf"), 1)
    assert rec.status == "ok" and rec.valid["ok"]
    kinds = [r["body"].get("response_format", {}).get("type") for r in chat_requests(emu, VISION)]
    assert kinds == ["json_schema", "json_object"]


def test_chart_image_gives_csv_rows(emu, tmp_path, samples):
    emu.script(VISION, "```csv\nmonth,revenue\nJan,12\nFeb,18\n```\nRevenue rises from January to February.")
    [rec] = Router(make_cfg(emu, tmp_path, task=TaskSpec("chart"))).answer_page(plan(samples / "chart.png"), 1)
    assert rec.status == "ok" and rec.region == 1
    assert rec.data["rows"] == [["month", "revenue"], ["Jan", "12"], ["Feb", "18"]]
    assert "January" in rec.answer


def test_chart_task_on_page_without_chart_is_skipped(emu, tmp_path, samples):
    [rec] = Router(make_cfg(emu, tmp_path, task=TaskSpec("chart"))).answer_page(plan(samples / "rotated.pdf"), 1)
    assert rec.status == "skipped" and rec.error.type == "no_chart" and "no chart" in rec.error.message
    assert chat_requests(emu) == []


def test_ask_per_page_one_record_per_question(emu, tmp_path, samples):
    task = TaskSpec("ask", questions=["What is the title?", "Who is it for?"])
    recs = Router(make_cfg(emu, tmp_path, task=task)).answer_page(plan(samples / "report.pdf"), 1)
    assert [r.question for r in recs] == task.questions
    assert all(r.status == "ok" for r in recs)


def test_ask_document_scope_splits_at_8_images_and_merges(emu, tmp_path):
    pdf = pymupdf.open()
    for i in range(11):
        pdf.new_page().insert_text((72, 72), f"Section {i + 1}: revenue was {100 + i} million.")
    path = tmp_path / "long.pdf"
    pdf.save(path)
    task = TaskSpec("ask", questions=["What was revenue in section 11?"], scope="document")
    rec = Router(make_cfg(emu, tmp_path, task=task)).answer_document(plan(path), task, task.questions[0])
    assert rec.status == "ok" and rec.page is None and rec.scope == "document" and rec.pages == list(range(1, 12))
    reqs = chat_requests(emu)
    images = [sum(1 for m in r["body"]["messages"] for p in (m["content"] if isinstance(m["content"], list) else [])
                  if p.get("type") == "image_url") for r in reqs]
    assert images == [8, 3, 0]  # two chunks within the 8-image limit, then a text-only merge


def test_cache_answers_rerun_without_requests(emu, tmp_path, samples):
    p = plan(samples / "report.pdf")
    first = Router(make_cfg(emu, tmp_path)).answer_page(p, 1)[0]
    n = len(chat_requests(emu))
    again = Router(make_cfg(emu, tmp_path)).answer_page(p, 1)[0]
    assert len(chat_requests(emu)) == n and again.cached and again.answer == first.answer
    fresh = Router(make_cfg(emu, tmp_path, cache=False)).answer_page(p, 1)[0]
    assert len(chat_requests(emu)) == n + 1 and not fresh.cached


def test_cache_key_changes_with_the_question(emu, tmp_path, samples):
    p = plan(samples / "report.pdf")
    Router(make_cfg(emu, tmp_path, task=TaskSpec("ask", questions=["A?"]))).answer_page(p, 1)
    Router(make_cfg(emu, tmp_path, task=TaskSpec("ask", questions=["B?"]))).answer_page(p, 1)
    assert len(chat_requests(emu)) == 2


def test_no_key_in_any_record(emu, tmp_path, samples):
    emu.inject("echo", count=5)  # the error echoes the request's headers (with the key) and body
    recs = Router(make_cfg(emu, tmp_path, task=TaskSpec("ask", questions=["Q?"]))).answer_page(
        plan(samples / "report.pdf"), 1)
    text = json.dumps([r.to_json() for r in recs])
    assert "HTTP 400" in text and "***" in text  # the echo reached the record, the key did not
    assert FAKE_KEY not in text


def test_answer_pages_keeps_order_and_turns_a_crashing_page_into_failed_records(emu, tmp_path, samples,
                                                                             monkeypatch):
    import pixtract.route as route

    real = route.render_page

    def render(doc, number, *a, **kw):
        if number == 2:
            raise RuntimeError("boom on page 2")
        return real(doc, number, *a, **kw)

    monkeypatch.setattr(route, "render_page", render)
    cfg = make_cfg(emu, tmp_path, task=TaskSpec(kind="ask", questions=["Q1?", "Q2?"]), cache=False)
    router = Router(cfg)
    p = plan(samples / "report.pdf")
    try:
        out = router.answer_pages([(p, 3), (p, 2), (p, 1)])
    finally:
        router.close()
    assert [[(r.page, r.question, r.status) for r in recs] for recs in out] == [
        [(3, "Q1?", "ok"), (3, "Q2?", "ok")], [(2, "Q1?", "failed"), (2, "Q2?", "failed")],
        [(1, "Q1?", "ok"), (1, "Q2?", "ok")]]
    assert out[1][0].error.type == "RuntimeError" and "boom on page 2" in out[1][0].error.message


def test_a_page_the_flow_has_taken_is_never_prefetched_again(emu, tmp_path, samples, monkeypatch):
    """The early first pages race the flow: a prefetch that comes after the flow took the page
    must not answer it a second time (a second paid request)."""
    calls = []
    monkeypatch.setattr(Router, "answer_page", lambda self, p, number: calls.append(number) or [])
    router = Router(make_cfg(emu, tmp_path))
    p = plan(samples / "report.pdf")
    try:
        router.prefetch(p, 1)  # before the flow: the flow picks this one up
        assert router.answer_pages([(p, 1), (p, 2)]) == [[], []]
        router.prefetch(p, 2)  # too late: the flow has it
        router.prefetch(p, 3)  # not taken yet: starts
        assert router.answer_pages([(p, 3)]) == [[]]
    finally:
        router.close()
    assert sorted(calls) == [1, 2, 3]


def _until(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_prefetch_keeps_the_page_threads_busy_until_the_flow_takes_over(emu, tmp_path, monkeypatch):
    """While Prefect starts, a freed page thread gets the next page at once (handing over only
    the first few pages left the threads idle for the rest of the start-up: 20-30 s on a busy
    machine); never more pages at once than page threads; nothing more once the flow has taken
    a page, and every page is answered once."""
    pdf = tmp_path / "twelve.pdf"
    with pymupdf.open() as d:
        for n in range(1, 13):
            d.new_page().insert_text((72, 72), f"page {n} of twelve")
        d.save(pdf)
    started, running, peak = [], [0], [0]
    lock, answered = threading.Lock(), threading.Semaphore(0)

    def answer_page(self, p, number):
        with lock:
            started.append(number)
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        answered.acquire(timeout=10)
        with lock:
            running[0] -= 1
        return [number]

    monkeypatch.setattr(Router, "answer_page", answer_page)
    cfg = make_cfg(emu, tmp_path / "out")
    cfg.inputs = [str(pdf)]
    router = Router(cfg)
    threads = router.page_threads
    try:
        early = prefetch.start(cfg, router)
        _until(lambda: len(started) == threads)
        time.sleep(0.3)
        assert len(started) == threads  # every page thread busy, none queued beyond them
        answered.release()  # one page answered: its thread takes the next page
        _until(lambda: len(started) == threads + 1)
        out = []
        flow = threading.Thread(target=lambda: out.extend(router.answer_pages([(plan(pdf), n) for n in range(1, 13)])))
        flow.start()
        _until(lambda: router.taken)
        early.join(2)
        assert not early.is_alive()  # the flow took over while every thread was still busy
        for _ in range(12):
            answered.release()
        flow.join(10)
    finally:
        router.close()
    assert out == [[n] for n in range(1, 13)]
    assert sorted(started) == list(range(1, 13)) and peak[0] <= threads


def test_prefetch_stops_when_the_run_is_stopped(emu, tmp_path, samples, monkeypatch):
    """A stopped run prefetches nothing more (each page would only come back interrupted)."""
    calls = []
    monkeypatch.setattr(Router, "answer_page", lambda self, p, number: calls.append(number) or [])
    cfg = make_cfg(emu, tmp_path / "out")
    cfg.inputs = [str(samples / "report.pdf")]
    stop = threading.Event()
    stop.set()
    router = Router(cfg, stop=stop)
    try:
        early = prefetch.start(cfg, router)
        early.join(5)
        assert not early.is_alive()
    finally:
        router.close()
    assert calls == []
