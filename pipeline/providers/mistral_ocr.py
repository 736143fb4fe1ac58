"""Mistral's OCR endpoint (``POST /v1/ocr``, OCRRequest / OCRResponse in the vendor's OpenAPI
document) behind the same neutral request and response as the chat dialects.

A request's one page image goes as the ``document`` (an ``image_url`` chunk with a data URL,
as the vendor's docs show), with ``include_blocks`` so every page comes back with its blocks in
reading order and their boxes. A JSON Schema response format becomes the
``document_annotation_format`` (the endpoint takes only ``json_schema`` there), and the
request's text the ``document_annotation_prompt``; other JSON modes cannot be asked for. The
answer's text is the document annotation when there is one, else the pages' Markdown; the
parsed body stays in ``raw`` (pages, blocks, dimensions) for grounding. Usage is in pages
(``usage_info.pages_processed``), billed per page by the catalogue's price.
"""
from __future__ import annotations

from pixtract.messages import ChatRequest, ChatResponse, Usage
from pixtract.providers.base import Adapter, request_id_from
from pixtract.providers.errors import ClientLimitError, MalformedResponse, RequestTooLarge

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # "Uploaded document files must be 50 MB or less" (OCR docs, FAQ)


class MistralOCRAdapter(Adapter):
    name = "mistral-ocr"
    chat_path = "/ocr"
    max_images = 1  # one document per request; a page is one image
    max_image_bytes = MAX_DOCUMENT_BYTES

    def check_limits(self, req: ChatRequest, model: str) -> None:
        if not req.images:
            raise ClientLimitError("the OCR endpoint reads documents: this request has no page image",
                                   provider=self.name)
        fmt = req.response_format
        if fmt is not None and fmt.type != "text" and (fmt.type != "json_schema" or fmt.schema is None):
            raise ClientLimitError(f"the OCR endpoint's document annotation takes only a JSON Schema "
                                   f"(asked for {fmt.type})", provider=self.name)
        if req.tools:
            raise ClientLimitError("the OCR endpoint takes no tools", provider=self.name)
        super().check_limits(req, model)
        if len(req.images) > 1:  # pragma: no cover - max_images says so first
            raise RequestTooLarge("one page image per OCR request", provider=self.name)

    def build_body(self, req: ChatRequest, model: str, stream: bool) -> dict:
        """OCRRequest for the request's page image (``stream`` has no meaning here: the body
        comes back whole, and the client reads a non-stream answer either way)."""
        image = req.images[0]
        body: dict = {"model": model, "document": {"type": "image_url", "image_url": image.data_url()},
                      "include_blocks": True, "include_image_base64": False,
                      "confidence_scores_granularity": "page"}  # each block's score (pipeline/grounding.py)
        fmt = req.response_format
        if fmt is not None and fmt.type == "json_schema":
            body["document_annotation_format"] = {"type": "json_schema", "json_schema": {
                "name": fmt.name, "schema": fmt.schema, "strict": fmt.strict}}
            prompt = "\n\n".join(m.text for m in req.messages if m.text.strip())
            if prompt:
                body["document_annotation_prompt"] = prompt
        return body

    def parse_response(self, body: dict, headers) -> ChatResponse:
        pages = body.get("pages")
        if not isinstance(pages, list) or not isinstance(body.get("usage_info"), dict):
            raise MalformedResponse("OCR response without pages or usage_info", provider=self.name)
        billed = int(body["usage_info"].get("pages_processed") or 0)
        annotation = body.get("document_annotation")
        text = annotation if isinstance(annotation, str) else "\n\n".join(
            str(p.get("markdown") or "").strip() for p in pages if isinstance(p, dict)).strip()
        usage = Usage(0, 0, pages=billed, annotated_pages=billed if isinstance(annotation, str) else 0)
        return ChatResponse(text, finish_reason="stop", usage=usage, model=body.get("model"),
                            request_id=request_id_from(headers), provider=self.name, raw=body)

    def new_stream(self, model: str, headers):  # pragma: no cover - the endpoint does not stream
        raise MalformedResponse("the OCR endpoint answered with an event stream", provider=self.name)
