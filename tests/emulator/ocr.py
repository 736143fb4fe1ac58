"""The emulator's Mistral OCR endpoint (``POST /v1/ocr``; OCRRequest / OCRResponse of the
vendor's OpenAPI document, extracted into fixtures/api/mistral_schemas.json).

Strict as the vendor is: a body the schema does not allow (an unknown field, a wrong type) gets
the same 422 ``extra_forbidden`` / pydantic detail as chat. The answer is read from the document
itself, as the chat emulator reads the text the request carries: a PDF page's text layer with
its block boxes (PyMuPDF), or Tesseract's reading of an image (or of a PDF page without a text
layer), so a test can check that the words on the page come back, at the place they are
printed. Boxes are pixels of the page image: the image as sent, or a PDF page at 200 DPI (the
vendor's page screenshots are 200 DPI in its examples). Every page answered is billed
(``usage_info.pages_processed``); the request log says how many pages and whether they were
annotated, so a test can compare an estimate with the bill. Faults, retired and unknown models
behave as for chat.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass, field

from pixtract.messages import ChatRequest
from tests.emulator.model import from_schema
from tests.emulator.skins import Reject, Wire, validator

OCR_MODELS = ["mistral-ocr-latest", "mistral-ocr-4", "mistral-ocr-4-1", "mistral-ocr-4-0"]
PDF_DPI = 200
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # "50 MB or less" (OCR docs, FAQ)
MAX_PAGES = 1000  # "1,000 pages or fewer"


@dataclass
class OcrPage:
    index: int
    width: int
    height: int
    dpi: int
    blocks: list[dict] = field(default_factory=list)  # OCRTextBlock-shaped, reading order

    @property
    def markdown(self) -> str:
        return "\n\n".join(b["content"] for b in self.blocks)

    def conf(self) -> list[float]:
        return [b.pop("_conf", 1.0) for b in self.blocks]


def serve(handler, emu, skin, raw: bytes, rec: dict) -> tuple[int, str]:
    """Answer one ``/v1/ocr`` request on ``handler`` (the emulator's request handler)."""
    from pixtract.providers.errors import redact_body

    body = skin.json_body(raw)
    key = skin.key(handler.headers, body)
    if emu.config["log_bodies"]:
        rec["body"] = redact_body(body)
    rec["model"] = body.get("model")
    if not key or (emu.config["api_keys"] is not None and key not in emu.config["api_keys"]):
        raise skin.reject(401, "Unauthorized", outcome="unauthorized")
    if emu.config["validate"]:
        check(skin, body)
    model = body.get("model") or ""
    if model in emu.config["retired_models"]:
        raise skin.model_gone(model)
    if model not in OCR_MODELS or model not in emu._models(skin.name):
        raise skin.unknown_model(model)
    wire = Wire(skin.name, model, False, ChatRequest([]), body, key=key, raw=raw)
    fault = emu.faults.pick(skin.name, model, handler.headers.get("X-Emulator-Fault"))
    ok, retry_after, why = emu._admit()
    if not ok:
        raise skin.reject(429, "Rate limit exceeded", "rate_limited", retry_after=retry_after, outcome=why)
    try:
        early = handler._transport_fault(skin, wire, fault)
        if early is not None:
            return early
        kind = (fault or {}).get("fault")
        answer = answer_body(skin, body, model, empty=kind == "empty_content")
        rec.update(billing(body, answer))
        return handler._send_answer(json.dumps(answer).encode(), kind)
    finally:
        emu._done()


def answer_body(skin, body: dict, model: str, empty: bool = False) -> dict:
    """The OCRResponse for a checked request (Reject for a document that cannot be read);
    ``empty``: every page read as blank (the ``empty_content`` fault)."""
    pages, size = read_document(skin, body)
    if empty:
        for p in pages:
            p.blocks = []
    return response(body, model, pages, size)


def billing(body: dict, answer: dict) -> dict:
    """What the request log keeps of an answered OCR request: pages billed, annotated or not."""
    return {"prompt_tokens": 0, "pages_billed": answer["usage_info"]["pages_processed"],
            "annotated": body.get("document_annotation_format") is not None}


def check(skin, body: dict) -> None:
    """The vendor schema's verdict, then what the schema cannot say (from the field docs)."""
    v = validator("mistral", "OCRRequest")
    if v is not None:
        errors = sorted(v.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            skin.schema_errors(errors)
    for name in ("bbox_annotation_format", "document_annotation_format"):
        fmt = body.get(name)
        if fmt is not None and fmt.get("type") != "json_schema":
            raise skin.reject(400, f"{name}: only json_schema is valid for this field")
        if fmt is not None and not fmt.get("json_schema"):
            raise skin.reject(400, f"{name}: json_schema is required")
    if body.get("document_annotation_prompt") is not None and body.get("document_annotation_format") is None:
        raise skin.reject(400, "document_annotation_prompt: a document_annotation_format must be provided")


def read_document(skin, body: dict) -> tuple[list[OcrPage], int]:
    """The pages the request asks for, read from its document, and the document's size."""
    doc = body["document"]
    kind = doc.get("type") or ("document_url" if "document_url" in doc else
                               "image_url" if "image_url" in doc else "file")
    if kind == "file":
        raise Reject(404, {"object": "error", "message": f"File {doc.get('file_id')} not found",
                           "type": "invalid_request_error", "param": None, "code": None}, outcome="no_file")
    url = doc["document_url"] if kind == "document_url" else doc["image_url"]
    url = url if isinstance(url, str) else url.get("url", "")
    mime, data = _data_url(skin, url)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise skin.reject(400, "Document is too large: maximum size is 50MB.")
    if mime == "application/pdf":
        return _pdf_pages(skin, data, body.get("pages")), len(data)
    if not mime.startswith("image/"):
        raise skin.reject(400, f"Unsupported document type: {mime}")
    return [_image_page(skin, data, 0)], len(data)


def _data_url(skin, url: str) -> tuple[str, bytes]:
    if not url.startswith("data:"):
        raise skin.reject(400, "The emulator cannot fetch remote documents; send a data URL")
    head, _, payload = url.partition(",")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise skin.reject(400, "Invalid base64 data in the document URL") from None
    return head[5:].split(";")[0] or "application/octet-stream", data


def _selected(pages, count: int) -> list[int]:
    """0-based page numbers from ``pages``: a list, or "0,2-4" (OCRRequest.pages)."""
    if pages is None:
        return list(range(count))
    if isinstance(pages, list):
        chosen = pages
    else:
        chosen = []
        for part in str(pages).split(","):
            lo, _, hi = part.strip().partition("-")
            chosen.extend(range(int(lo), int(hi or lo) + 1))
    return [n for n in dict.fromkeys(chosen) if 0 <= n < count]


def _pdf_pages(skin, data: bytes, pages) -> list[OcrPage]:
    import pymupdf

    try:
        pdf = pymupdf.open(stream=data, filetype="pdf")
    except Exception:  # noqa: BLE001 - any parser error is a bad document
        raise skin.reject(400, "The document could not be read as a PDF") from None
    with pdf:
        if pdf.page_count > MAX_PAGES:
            raise skin.reject(400, f"Document has {pdf.page_count} pages; at most {MAX_PAGES} are allowed.")
        out = []
        for n in _selected(pages, pdf.page_count):
            page = pdf[n]
            scale = PDF_DPI / 72
            blocks = [_block(" ".join(b[4].split()), *(v * scale for v in b[:4]))
                      for b in page.get_text("blocks", sort=True) if b[6] == 0 and b[4].strip()]
            if not blocks:  # a scan: read its image as the service would
                png = page.get_pixmap(dpi=PDF_DPI).tobytes("png")
                out.append(_image_page(skin, png, n, PDF_DPI))
                continue
            out.append(OcrPage(n, round(page.rect.width * scale), round(page.rect.height * scale), PDF_DPI, blocks))
        return out


def _image_page(skin, data: bytes, index: int, dpi: int = 0) -> OcrPage:
    """One image read by Tesseract: its blocks of lines, boxes in the image's pixels. ``dpi`` 0
    for an image sent as such: the schema requires the field, the docs show it only for PDFs."""
    from PIL import Image

    from pixtract.ocr import tesseract_lines

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Exception:  # noqa: BLE001 - any decoder error is a bad image
        raise skin.reject(400, "The image could not be decoded") from None
    by_block: dict[int, list] = {}
    for line in tesseract_lines(data):
        by_block.setdefault(line.block, []).append(line)
    blocks = []
    for lines in by_block.values():
        x0 = min(ln.left for ln in lines)
        y0 = min(ln.top for ln in lines)
        x1 = max(ln.left + ln.width for ln in lines)
        y1 = max(ln.bottom for ln in lines)
        b = _block(" ".join(ln.text for ln in lines), x0, y0, x1, y1)
        b["_conf"] = sum(ln.conf for ln in lines) / len(lines)
        blocks.append(b)
    return OcrPage(index, width, height, dpi, blocks)


def _block(text: str, x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "text", "top_left_x": max(0, int(x0)), "top_left_y": max(0, int(y0)),
            "bottom_right_x": max(0, round(x1)), "bottom_right_y": max(0, round(y1)), "content": text}


def response(body: dict, model: str, pages: list[OcrPage], size: int) -> dict:
    """The OCRResponse for ``pages``, with what the request asked for (blocks, confidence,
    document annotation)."""
    out_pages = []
    for p in pages:
        conf = p.conf()
        entry: dict = {"index": p.index, "markdown": p.markdown, "images": [], "tables": [], "hyperlinks": [],
                       "header": None, "footer": None,
                       "dimensions": {"dpi": p.dpi, "height": p.height, "width": p.width}}
        if body.get("include_blocks"):
            entry["blocks"] = p.blocks
        if body.get("confidence_scores_granularity") == "page" and conf:
            entry["confidence_scores"] = {"average_page_confidence_score": round(sum(conf) / len(conf), 4),
                                          "minimum_page_confidence_score": round(min(conf), 4)}
        out_pages.append(entry)
    answer: dict = {"pages": out_pages, "model": model, "document_annotation": None,
                    "usage_info": {"pages_processed": len(pages), "doc_size_bytes": size}}
    fmt = body.get("document_annotation_format")
    if fmt is not None:
        text = "\n\n".join(p["markdown"] for p in out_pages)
        answer["document_annotation"] = json.dumps(from_schema(fmt["json_schema"]["schema"], text))
    return answer
