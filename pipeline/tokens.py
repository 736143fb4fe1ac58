"""Prompt-token estimates (mistral_common), price table and cost.

Text is counted exactly with the v7 tokenizers shipped in the mistral_common
wheel (no hub download); image tokens use the Pixtral formula of model-apis.md
§5, which equals what mistral_common computes (and avoids its OpenCV
dependency). In v7m1 images add exactly their own token count to a prompt.
"""
from __future__ import annotations

import functools
import logging
import math
import threading

from pixtract.messages import ChatRequest, Usage

log = logging.getLogger(__name__)

PATCH = 16  # image_patch_size (§5)
MAX_IMAGE_SIZE = 1024  # max_image_size (§5)


def image_tokens(width: int, height: int) -> int:
    """Pixtral Large image tokens: ceil(W/16) x ceil(H/16) plus one break per
    row, after an aspect-preserving downscale to a 1024-px longest side (§5)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"bad image size {width}x{height}")
    ratio = max(width / MAX_IMAGE_SIZE, height / MAX_IMAGE_SIZE)
    if ratio > 1:
        width, height = round(width / ratio), round(height / ratio)
    w_tok = (width - 1) // PATCH + 1
    h_tok = (height - 1) // PATCH + 1
    return h_tok * (w_tok + 1)


_TOK_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def tokenizer(multimodal: bool):
    """Cached MistralTokenizer: v7(is_mm=True) for Pixtral Large, v7() for Mistral Large."""
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    return MistralTokenizer.v7(is_mm=True) if multimodal else MistralTokenizer.v7()


def _is_vision(model: str | None) -> bool:
    return bool(model) and "pixtral" in model.lower()


def _to_mistral_request(request: ChatRequest):
    """Text-only mistral_common request (images are added by formula)."""
    from mistral_common.protocol.instruct.messages import (AssistantMessage, SystemMessage, ToolMessage,
                                                          UserMessage)
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.tool_calls import Function, FunctionCall, Tool, ToolCall

    msgs = []
    for m in request.messages:
        if m.role == "system":
            msgs.append(SystemMessage(content=m.text or " "))
        elif m.role == "user":
            msgs.append(UserMessage(content=m.text))
        elif m.role == "assistant":
            calls = [ToolCall(id=_tid(tc.id), function=FunctionCall(name=tc.name, arguments=tc.arguments))
                     for tc in (m.tool_calls or [])] or None
            msgs.append(AssistantMessage(content=m.text or None, tool_calls=calls))
        elif m.role == "tool":
            msgs.append(ToolMessage(content=m.text, tool_call_id=_tid(m.tool_call_id or "")))
    tools = [Tool(function=Function(name=t.name, description=t.description, parameters=t.parameters))
             for t in (request.tools or [])] or None
    return ChatCompletionRequest(messages=msgs, tools=tools)


def _tid(tool_id: str) -> str:
    from pixtract.providers.mistral import mistral_tool_id

    return mistral_tool_id(tool_id)


def count_text_tokens(text: str, model: str | None = None) -> int:
    """Tokens of a bare string (no template), e.g. a completion."""
    if not text:
        return 0
    try:
        tok = tokenizer(_is_vision(model)).instruct_tokenizer.tokenizer
        with _TOK_LOCK:
            return len(tok.encode(text, bos=False, eos=False))
    except Exception:  # tokenizer unavailable (e.g. no sentencepiece)
        return max(1, math.ceil(len(text) / 4))


def estimate_prompt_tokens(request: ChatRequest, model: str | None = None) -> int:
    """Prompt tokens of ``request`` as Mistral counts them: chat template + text
    (exact via mistral_common) + Pixtral image tokens. Falls back to a
    chars/4 estimate when the tokenizer cannot encode the conversation."""
    model = model or request.model
    images = 0
    for img in request.images:
        w, h = img.size()
        images += image_tokens(w, h)
    try:
        tok = tokenizer(_is_vision(model))
        req = _to_mistral_request(request)
        with _TOK_LOCK:
            text = len(tok.encode_chat_completion(req).tokens)
    except Exception as e:  # e.g. conversation ending on an assistant turn, missing sentencepiece
        log.debug("exact token count unavailable (%s); estimating", type(e).__name__)
        chars = sum(len(m.text) for m in request.messages)
        text = 1 + 4 * len(request.messages) + math.ceil(chars / 4)
    return text + images


# -- prices (pipeline/prices.py holds the table) ----------------------------------------------

def price_for(model: str):
    """The built-in price of ``model`` (a run's own table: ``prices.PriceTable.for_job``)."""
    from pixtract.prices import PriceTable

    return PriceTable().get(model)


def cost_usd(model: str, usage: Usage) -> float:
    """Cost at the built-in price; 0.0 for a model without a price (e.g. local)."""
    p = price_for(model)
    return 0.0 if p is None else p.cost(usage)
