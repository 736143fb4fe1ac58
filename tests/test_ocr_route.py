"""The OCR route (``--route ocr``, Mistral's /v1/ocr) end to end against the emulator: its
Markdown and block boxes become the record's answer and grounding, the layout JSON and the
report show them, an OCR error falls down the ladder like any other rung, extraction goes as the
document annotation, and ``estimate`` is what the emulator bills."""

import json

import pytest

from pixtract.config import EndpointSpec, RunConfig, TaskSpec
from pixtract.errors import UsageError
from pixtract.estimate import estimate
from pixtract.outputs import read_results
from pixtract.route import Router
from tests.emulator.helpers import FAKE_KEY
from tests.helpers import missing_words
from tests.test_route import plan

OCR = "mistral-ocr-latest"
SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}, "units": {"type": "number"}},
          "required": ["title", "units"]}


@pytest.fixture(autouse=True)
def fresh(emu, monkeypatch):
    emu.reset()
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)


def ocr_cfg(emu, tmp_path, task=None, inputs=("x",), **kw) -> RunConfig:
    spec = EndpointSpec(profile="mistral", base_url=emu.base_url("mistral"), timeout=10, max_retries=1,
                        backoff_base=0.01, backoff_max=0.02)
    return RunConfig(inputs=list(inputs), out=str(tmp_path), profile="mistral", route="ocr",
                     tasks=[task or TaskSpec()], endpoint=spec, concurrency=2, **kw).validate()


def ocr_requests(emu):
    return [r for r in emu.requests if r.get("path", "").endswith("/ocr")]


def inside(box, outer, slack):
    return (box[0] >= outer[0] - slack and box[1] >= outer[1] - slack and box[2] <= outer[2] + slack
            and box[3] <= outer[3] + slack)


def test_transcription_and_its_boxes_come_from_the_ocr_endpoint(emu, tmp_path, samples):
    router = Router(ocr_cfg(emu, tmp_path))
    p = plan(samples / "report.pdf")
    [rec] = router.answer_page(p, 2)
    assert rec.status == "ok" and rec.route == "ocr" and rec.model == OCR and not rec.degraded
    assert missing_words(rec.answer, ["Northwind", "Region", "Total"]) == []
    assert rec.usage["pages"] == 1 and rec.cost_usd == pytest.approx(0.004) and rec.paid_usd == pytest.approx(0.004)
    [req] = ocr_requests(emu)
    assert req["body"]["include_blocks"] is True and req["pages_billed"] == 1
    g = rec.grounding
    assert g["words"] == "ocr-endpoint" and g["unit"] == "pt" and g["share"] == 1.0 and g["total"] >= 3
    # Each OCR block box, scaled from the image's pixels to PDF points, holds the text layer's words
    # of the same text: the header line's words sit inside the block that says so.
    from pixtract.render import render_page

    page = render_page(p.document, 2, router.cfg.render)
    assert g["sizes"]["2"] == [round(page.words.width, 2), round(page.words.height, 2)]
    header = next(it for it in g["items"] if "Northwind Quarterly Report" in it["value"])
    word = next(w for w in page.words.words if w.text == "Northwind")
    assert inside([word.x0, word.y0, word.x1, word.y1], header["boxes"][0], slack=3.0)


def test_an_ocr_error_falls_down_the_ladder(emu, tmp_path, samples):
    emu.inject("503", count=10, model=OCR)
    router = Router(ocr_cfg(emu, tmp_path))
    [rec] = router.answer_page(plan(samples / "report.pdf"), 1)
    assert rec.status == "ok" and rec.route == "vision" and rec.degraded and rec.planned_route == "ocr"
    assert rec.tried[0]["route"] == "ocr" and "503" in json.dumps(rec.tried[0]["error"]) + rec.fallback_reason
    assert len(ocr_requests(emu)) == 2  # one retry (max_retries=1), then the next rung
    assert "pages" not in rec.usage  # nothing billed by the page: the OCR requests all failed


def test_an_empty_ocr_answer_is_not_ok_on_the_planned_route(emu, tmp_path, samples):
    emu.inject("empty_content", count=1, model=OCR)
    [rec] = Router(ocr_cfg(emu, tmp_path)).answer_page(plan(samples / "report.pdf"), 1)
    assert rec.status == "ok" and rec.route == "vision" and rec.degraded
    assert rec.tried[0]["route"] == "ocr" and rec.usage["pages"] == 1  # the empty page was still billed


def test_extract_goes_as_the_document_annotation(emu, tmp_path, samples):
    task = TaskSpec(kind="extract", schema=SCHEMA)
    [rec] = Router(ocr_cfg(emu, tmp_path, task)).answer_page(plan(samples / "report.pdf"), 2)
    assert rec.status == "ok" and rec.route == "ocr" and rec.valid == {"ok": True, "errors": []}
    assert set(rec.data) == {"title", "units"}
    assert rec.cost_usd == pytest.approx(0.005)  # an annotated page
    [req] = ocr_requests(emu)
    assert req["body"]["document_annotation_format"]["json_schema"]["schema"] == SCHEMA
    assert rec.grounding is not None and rec.grounding["words"] == "text-layer"  # fields located in the words


def test_the_route_is_checked_before_the_run(emu, tmp_path):
    with pytest.raises(UsageError, match="--profile mistral"):
        RunConfig(inputs=["x"], out=str(tmp_path), profile="openrouter", route="ocr").validate()
    with pytest.raises(UsageError, match="per page"):
        ocr_cfg(emu, tmp_path, TaskSpec(kind="ask", questions=["Why?"]))
    with pytest.raises(UsageError, match="per page"):
        ocr_cfg(emu, tmp_path, TaskSpec(kind="extract", schema=SCHEMA, scope="document"))
    with pytest.raises(UsageError, match="route"):
        RunConfig(inputs=["x"], out=str(tmp_path), profile="mistral", route="fax").validate()


@pytest.mark.parametrize("kind,page_price", [("transcribe", 0.004), ("extract", 0.005)])
def test_estimate_is_what_the_emulator_bills_for_ocr_pages(emu, tmp_path, samples, kind, page_price):
    import pixtract

    inputs = [str(samples / "report.pdf"), str(samples / "scanned.pdf")]
    task = TaskSpec(kind=kind, schema=SCHEMA if kind == "extract" else None)
    est = estimate(ocr_cfg(emu, tmp_path, task, inputs=inputs))
    assert emu.requests == []
    result = pixtract.run(inputs, profile="mistral", route="ocr", out=str(tmp_path / "out"), cache=False,
                          task=kind, schema=task.schema, endpoint={"base_url": emu.base_url("mistral")})
    billed = [r for r in ocr_requests(emu) if r["status"] == 200]
    assert [r.route for r in result.records] == ["ocr"] * 4
    assert est["total"]["billed_pages"] == sum(r["pages_billed"] for r in billed) == 4
    assert all(r["annotated"] == (kind == "extract") for r in billed)
    assert est["total"]["cost_usd_max"] == est["total"]["cost_usd_min"] == pytest.approx(4 * page_price)
    assert sum(r.paid_usd for r in result.records) == pytest.approx(est["total"]["cost_usd_max"])


def test_markdown_and_boxes_land_in_the_layout_json_and_the_report(emu, tmp_path, samples):
    import pixtract

    out = tmp_path / "out"
    result = pixtract.run(str(samples / "scanned.pdf"), profile="mistral", route="ocr", out=str(out),
                          endpoint={"base_url": emu.base_url("mistral")})
    [rec] = result.records
    assert rec.route == "ocr" and rec.status == "ok"
    assert missing_words(rec.answer, ["Invoice", "Harbour", "Lighthouse"]) == []
    [saved] = read_results(str(out))
    assert saved.grounding == rec.grounding and saved.grounding["words"] == "ocr-endpoint"
    layout = json.loads((out / "scanned.json").read_text())
    page = layout["pages"][0]
    assert page["blocks_source"] == "transcription"
    texts = " ".join(b["text"] for b in page["blocks"])
    assert missing_words(texts, ["Invoice", "Harbour", "Lighthouse"]) == []
    assert all(b["located"] and len(b["box"]) == 4 for b in page["blocks"])
    assert (out / "scanned.md").read_text().count("Lighthouse") >= 1
    html = (out / "report.html").read_text()
    assert html.count('class="bx') >= len(page["blocks"])  # one box drawn per block
    assert "ocr-endpoint" in html and "OCR pages billed" in html
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["usage_paid"]["pages"] == 1 and counts["paid_usd"] == pytest.approx(0.004)


def test_the_budget_counts_ocr_pages(emu, tmp_path, samples):
    """$0.004 a page: a budget of $0.010 lets two pages start, the third is skipped unsent."""
    router = Router(ocr_cfg(emu, tmp_path, budget_usd=0.010))
    p = plan(samples / "report.pdf")
    recs = [rec for n in (1, 2, 3) for rec in router.answer_page(p, n)]
    assert [r.status for r in recs] == ["ok", "ok", "skipped"]
    assert recs[2].error.type == "budget_exceeded" and len(ocr_requests(emu)) == 2


def test_boxes_of_a_page_turned_upright_are_turned_back():
    """A sideways scan is turned 90 degrees clockwise before it is sent; the OCR endpoint's boxes,
    read on the turned image, land where the words are on the page as it is."""
    from pixtract.grounding import ground_ocr

    body = {"pages": [{"index": 0, "markdown": "x", "images": [], "dimensions": {"dpi": 0, "width": 200, "height": 100},
                       "blocks": [{"type": "text", "top_left_x": 150, "top_left_y": 10, "bottom_right_x": 190,
                                   "bottom_right_y": 30, "content": "x"}]}], "model": OCR,
            "usage_info": {"pages_processed": 1}}
    g = ground_ocr(body, 1, (100.0, 200.0, "px"), turn=90)  # the page: 100 x 200 px, upright 200 x 100
    assert g["items"][0]["boxes"] == [[10.0, 10.0, 30.0, 50.0]]
    assert ground_ocr(body, 1, (50.0, 25.0, "pt"), turn=0)["items"][0]["boxes"] == [[37.5, 2.5, 47.5, 7.5]]
    body["pages"][0]["blocks"] = None  # a model before OCR 4: no blocks, the words ground the answer
    assert ground_ocr(body, 1, (100.0, 200.0, "px")) is None


def test_a_sideways_scan_is_sent_upright_and_its_boxes_land_on_the_page_as_it_is(emu, tmp_path, samples):
    """A scan stored sideways (turned 90 degrees counter-clockwise) is turned upright before the
    OCR endpoint reads it; a line of text, wide on the upright image, is a tall box on the page."""
    import io

    import pymupdf
    from PIL import Image

    with pymupdf.open(samples / "scanned.pdf") as pdf:
        png = pdf[0].get_pixmap(dpi=100).tobytes("png")
    with Image.open(io.BytesIO(png)) as im:
        im.rotate(90, expand=True).save(tmp_path / "sideways.png")  # PIL turns counter-clockwise
    [rec] = Router(ocr_cfg(emu, tmp_path / "out")).answer_page(plan(tmp_path / "sideways.png"), 1)
    assert rec.route == "ocr" and "rotated-90" in rec.flags
    assert missing_words(rec.answer, ["Harbour", "Lighthouse"]) == []
    line = next(it for it in rec.grounding["items"] if "Harbour Operations" in it["value"])
    x0, y0, x1, y1 = line["boxes"][0]
    w, h = rec.grounding["sizes"]["1"]
    assert w > h and (w, h) == (rec.image["height"], rec.image["width"])  # the page as stored, not as sent
    assert y1 - y0 > 2 * (x1 - x0)  # the printed lines run up the page
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h


def test_config_show_names_the_ocr_route_and_model(capsys, samples):
    from pixtract.flows.cli import EXIT_OK, main

    assert main(["config", "show", str(samples / "report.pdf"), "--profile", "mistral", "--route", "ocr"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["route"] == "ocr" and shown["endpoint"]["ocr_model"] == "mistral-ocr-latest"  # the default, named


@pytest.mark.timeout(300)
def test_ocr_pages_in_a_batch_job_at_half_the_page_price(emu, tmp_path, samples):
    """--route ocr --batch: the night run puts every page in a batch job on /v1/ocr and sends
    nothing live; the morning run reads the job's OCR answers with their blocks, at $2 per
    1,000 pages; estimate says the same before anything is sent."""
    import time

    from pixtract import batch, outcome
    from pixtract.batchjobs import JobStore
    from pixtract.config import build_config
    from pixtract.providers import Endpoint
    from pixtract.providers.batchapi import TERMINAL, BatchAPI

    def cfg():
        return build_config({"inputs": [str(samples / "report.pdf")], "out": str(tmp_path / "out"),
                             "profile": "mistral", "route": "ocr", "batch": "on", "concurrency": 2,
                             "endpoint": {"base_url": emu.base_url("mistral"), "max_retries": 1}})

    emu.configure(batch_delay=0.2)
    est = estimate(cfg())
    assert est["total"]["billed_pages"] == 3 and est["total"]["cost_usd_max"] == pytest.approx(3 * 0.002)
    night = batch.run(cfg(), report=False)
    assert night["outcome"] == outcome.PENDING and ocr_requests(emu) == []  # nothing read live
    [entry] = JobStore(str(tmp_path / "out")).jobs()
    api = BatchAPI(Endpoint(profile="mistral", base_url=emu.base_url("mistral"), api_key=FAKE_KEY))
    try:
        job = api.get_job(entry.job_id)
        assert job["endpoint"] == "/v1/ocr" and job["model"] == OCR
        deadline = time.monotonic() + 60
        while job["status"] not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.1)
            job = api.get_job(entry.job_id)
    finally:
        api.close()
    morning = batch.run(cfg(), report=False)
    assert morning["outcome"] == outcome.COMPLETE, morning["headline"]
    recs = read_results(str(tmp_path / "out"))
    assert [r.route for r in recs] == ["ocr"] * 3 and ocr_requests(emu) == []
    assert all(r.cost_usd == pytest.approx(0.002) and r.grounding["words"] == "ocr-endpoint" for r in recs)
    assert missing_words(recs[1].answer, ["Region", "Total"]) == []
    items = [r for r in emu.requests if r["method"] == "BATCH"]
    assert len(items) == 3 and all(r["pages_billed"] == 1 for r in items)
