"""The OCR dialect (Mistral ``/v1/ocr``): request bodies against the vendor schema, the
emulator's strict endpoint and its answers read from the page, the client's error tree and
redaction, and the per-page price."""
import base64
import json
from pathlib import Path

import httpx
import jsonschema
import pymupdf
import pytest

from pixtract.messages import ChatRequest, ImagePart, Message, ResponseFormat, TextPart, Usage
from pixtract.prices import PriceTable
from pixtract.providers import ADAPTERS, Endpoint, make_client
from pixtract.providers.errors import ClientLimitError, ModelGoneError, PixtractError, ServerError
from tests.emulator import Emulator
from tests.emulator.helpers import FAKE_KEY
from tests.helpers import missing_words

API = Path(__file__).resolve().parents[1] / "fixtures" / "api"
SCHEMA = {"type": "object", "properties": {"invoice": {"type": "string"}, "total": {"type": "number"}},
          "required": ["invoice", "total"], "additionalProperties": False}
LINES = ["Invoice 4711 from Acme Tools", "Total due 42.10 EUR by 30 June"]


def vendor(root):
    doc = json.loads((API / "mistral_schemas.json").read_text())
    return jsonschema.Draft202012Validator({"$defs": doc["$defs"], "$ref": f"#/$defs/{root}"})


def page_png(lines=LINES, dpi=150) -> bytes:
    """A rendered page (what the pipeline sends) with ``lines`` printed on it."""
    pdf = pymupdf.open()
    page = pdf.new_page(width=420, height=300)
    for i, line in enumerate(lines):
        page.insert_text((40, 60 + 40 * i), line, fontsize=14)
    return page.get_pixmap(dpi=dpi).tobytes("png")


def ocr_endpoint(emu, **kw):
    return Endpoint(**{"profile": "mistral", "dialect": "mistral-ocr", "base_url": emu.base_url("mistral"),
                       "api_key": FAKE_KEY, "vision_model": "mistral-ocr-latest", "timeout": 10.0,
                       "backoff_base": 0.01, "backoff_max": 0.05, "max_retries": 2, **kw})


def page_request(image: bytes, fmt: ResponseFormat | None = None) -> ChatRequest:
    return ChatRequest([Message("system", "Extract the invoice."),
                        Message("user", [TextPart("The page:"), ImagePart(image, "image/png")])],
                       response_format=fmt, max_tokens=500)


@pytest.fixture(scope="module")
def emu():
    with Emulator() as e:
        yield e


@pytest.fixture(autouse=True)
def clean(emu):
    emu.reset()


def body_of(req):
    ep = Endpoint(profile="mistral", dialect="mistral-ocr", base_url="http://x", api_key=FAKE_KEY).resolved()
    return ADAPTERS["mistral-ocr"](ep).build_body(req, "mistral-ocr-latest", False)


def test_bodies_validate_against_the_vendor_schema():
    plain = body_of(page_request(page_png()))
    vendor("OCRRequest").validate(plain)
    assert plain["document"]["image_url"].startswith("data:image/png;base64,") and plain["include_blocks"] is True
    assert "document_annotation_format" not in plain and "document_annotation_prompt" not in plain
    annotated = body_of(page_request(page_png(), ResponseFormat("json_schema", SCHEMA, "invoice", True)))
    vendor("OCRRequest").validate(annotated)
    fmt = annotated["document_annotation_format"]
    assert fmt == {"type": "json_schema", "json_schema": {"name": "invoice", "schema": SCHEMA, "strict": True}}
    assert "Extract the invoice." in annotated["document_annotation_prompt"]


def test_what_the_endpoint_cannot_take_is_refused_before_sending(emu):
    with make_client(ocr_endpoint(emu)) as c:
        for req in (ChatRequest([Message("user", "no image")]),
                    page_request(page_png(), ResponseFormat("json_object")),
                    ChatRequest([Message.user(page_png(), page_png())])):
            with pytest.raises(ClientLimitError):
                c.complete(req)
    assert emu.requests == []


def test_emulator_is_strict_like_the_vendor(emu):
    url = emu.base_url("mistral") + "/ocr"
    auth = {"Authorization": f"Bearer {FAKE_KEY}"}
    doc = {"type": "image_url", "image_url": "data:image/png;base64," + base64.b64encode(page_png()).decode()}
    r = httpx.post(url, headers=auth, json={"model": "mistral-ocr-latest", "document": doc, "include_images": True})
    assert r.status_code == 422
    d = r.json()["message"]["detail"][0]
    assert d["type"] == "extra_forbidden" and d["loc"] == ["body", "include_images"]
    r = httpx.post(url, headers=auth, json={"document": doc})
    assert r.status_code == 422 and r.json()["message"]["detail"][0]["loc"] == ["body"]  # model is required
    r = httpx.post(url, headers=auth, json={"model": "pixtral-large-2411", "document": doc})
    assert r.status_code == 400 and "Invalid model" in r.json()["message"]
    r = httpx.post(url, headers=auth, json={"model": "mistral-ocr-latest", "document": doc,
                                            "document_annotation_prompt": "only with a format"})
    assert r.status_code == 400
    r = httpx.post(url, json={"model": "mistral-ocr-latest", "document": doc})
    assert r.status_code == 401
    r = httpx.post(emu.base_url("mistral") + "/chat/completions", headers=auth,
                   json={"model": "mistral-ocr-latest", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400  # an OCR model does not chat


def test_answer_is_read_from_the_page_with_boxes_and_billed_per_page(emu):
    from mistralai.client.models import OCRResponse

    image = page_png()
    with make_client(ocr_endpoint(emu)) as c:
        resp = c.complete(page_request(image))
    assert missing_words(resp.text, " ".join(LINES).split()) == []
    raw = resp.raw
    vendor("OCRResponse").validate(raw)
    OCRResponse.model_validate(raw)
    page = raw["pages"][0]
    w, h = ImagePart(image).size()
    assert page["dimensions"]["width"] == w and page["dimensions"]["height"] == h
    total = next(b for b in page["blocks"] if "42.10" in b["content"])
    # printed at y = 60 + 40 pt of a 300-pt page: the second line's box is there, in image pixels
    assert total["top_left_y"] < 100 / 300 * h < total["bottom_right_y"] + 0.05 * h
    assert resp.usage.pages == 1 and resp.usage.annotated_pages == 0
    assert PriceTable().cost("mistral-ocr-latest", resp.usage) == pytest.approx(0.004)
    logged = emu.requests[-1]
    assert logged["pages_billed"] == 1 and logged["status"] == 200
    assert FAKE_KEY not in json.dumps(logged)


def test_document_annotation_is_the_answer_and_priced_as_annotated(emu):
    with make_client(ocr_endpoint(emu)) as c:
        resp = c.complete(page_request(page_png(), ResponseFormat("json_schema", SCHEMA, "invoice")))
    data = json.loads(resp.text)
    jsonschema.validate(data, SCHEMA)
    assert data["total"] == 4711.0  # the emulator fills numbers from the page's text: its first figure
    assert resp.usage.annotated_pages == 1
    assert PriceTable().cost("mistral-ocr-latest", resp.usage) == pytest.approx(0.005)


def test_pdf_document_pages_from_the_text_layer(emu):
    pdf = pymupdf.open()
    for n in range(3):
        pdf.new_page(width=300, height=200).insert_text((20, 40), f"Page number {n + 1} of the report", fontsize=12)
    data = base64.b64encode(pdf.tobytes()).decode()
    r = httpx.post(emu.base_url("mistral") + "/ocr", headers={"Authorization": f"Bearer {FAKE_KEY}"}, json={
        "model": "mistral-ocr-latest", "pages": "0,2",
        "document": {"type": "document_url", "document_url": "data:application/pdf;base64," + data}})
    assert r.status_code == 200, r.text
    body = r.json()
    vendor("OCRResponse").validate(body)
    assert [p["index"] for p in body["pages"]] == [0, 2]
    assert "Page number 3" in body["pages"][1]["markdown"]
    assert body["pages"][0]["dimensions"] == {"dpi": 200, "width": round(300 * 200 / 72), "height": round(200 * 200 / 72)}
    assert body["usage_info"]["pages_processed"] == 2


def test_faults_retired_models_and_the_error_tree(emu):
    emu.inject("503", count=1)
    with make_client(ocr_endpoint(emu)) as c:
        assert c.complete(page_request(page_png())).usage.pages == 1  # retried after the 503
    emu.inject("503", count=5)
    with make_client(ocr_endpoint(emu, max_retries=1)) as c:
        with pytest.raises(ServerError) as err:
            c.complete(page_request(page_png()))
    assert isinstance(err.value, PixtractError)
    emu.reset()
    emu.configure(retired_models=["mistral-ocr-latest"])
    with make_client(ocr_endpoint(emu)) as c:
        with pytest.raises(ModelGoneError):
            c.complete(page_request(page_png()))
    emu.reset()
    emu.inject("401_echo", count=1)
    with make_client(ocr_endpoint(emu)) as c:
        with pytest.raises(PixtractError) as err:
            c.complete(page_request(page_png()))
    assert FAKE_KEY not in str(err.value)


def test_prices_count_pages():
    table = PriceTable.for_job({"my-ocr": {"input": 0, "output": 0, "page": 0.001, "annotated_page": 0.003}})
    assert table.cost("my-ocr", Usage(pages=10, annotated_pages=4)) == pytest.approx(6 * 0.001 + 4 * 0.003)
    assert table.cost("pixtral-large-2411", Usage(1000, 1000)) == pytest.approx(0.008)  # tokens as before
