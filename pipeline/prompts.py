"""Step 3: task prompts to neutral chat requests (vision with the page image, or text only).

Default prompts are documented in the README; a job file can replace each task's prompt and
the system prompt.
"""

from __future__ import annotations

import json
import re

from .config import RunConfig, TaskSpec
from .errors import UsageError
from .messages import ChatRequest, ImagePart, Message, ResponseFormat, TextPart, Tool

SYSTEM = (
    "You are a meticulous document analyst. You read page images exactly as printed and never "
    "invent content. When a text layer is supplied it may fix misread characters, but the image "
    "is authoritative."
)

TASK_PROMPTS = {
    "transcribe": (
        "Transcribe this page into faithful Markdown. Keep the reading order. Use Markdown "
        "headings for headings, Markdown tables for tables, and lists for lists. For a chart, "
        "describe it in one sentence and give its data as a Markdown table. Leave out running "
        "headers, footers and page numbers. Output only the Markdown."
    ),
    "ask": (
        "Answer the question using only what this document shows. Quote numbers exactly as "
        "printed. If the document does not contain the answer, say \"Not found\".\n\n"
        "Question: {question}"
    ),
    "extract": (
        "Extract the fields described by the JSON Schema below from this document. Use null for "
        "a field the document does not show; never guess. Answer with one JSON object only.\n\n"
        "JSON Schema:\n{schema}"
    ),
    "chart": (
        "This image is a chart{caption}. Give the data behind it as CSV in a ```csv fenced block "
        "(a header row, then one row per data point; numbers without units or thousands "
        "separators), then one paragraph that summarises what the chart shows."
    ),
}

DEFAULT_MAX_TOKENS = {"transcribe": 4096, "ask": 1024, "extract": 2048, "chart": 2048}
TEXT_HINT_LIMIT = 12_000  # characters of text layer sent along with an image


# The placeholders a prompt may use; every other brace is literal text (a JSON example, say).
PLACEHOLDERS = {"question": "the question (ask)", "schema": "the JSON Schema (extract)",
                "caption": "the chart's caption (chart)"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_placeholders(prompt: str, kind: str) -> None:
    """A ``{name}`` that is not a documented placeholder is a usage error at start (a typo
    would otherwise be sent to the model as is)."""
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(prompt)} - set(PLACEHOLDERS))
    if unknown:
        known = ", ".join(f"{{{k}}} ({v})" for k, v in PLACEHOLDERS.items())
        raise UsageError(f"the {kind} prompt uses unknown placeholder(s) "
                         f"{', '.join('{' + u + '}' for u in unknown)}; known: {known}. "
                         f"Other braces, e.g. a JSON example, are kept as written")


def task_prompt(task: TaskSpec, question: str | None = None, caption: str = "") -> str:
    template = task.prompt or TASK_PROMPTS[task.kind]
    values = {"question": question or "",
              "schema": json.dumps(task.schema, indent=2) if task.schema is not None else "",
              "caption": f" ({caption})" if caption else ""}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _hint(text: str, label: str) -> str:
    text = text.strip()
    if not text:
        return ""
    if len(text) > TEXT_HINT_LIMIT:
        text = text[:TEXT_HINT_LIMIT] + "\n[…]"
    return f"\n\n{label}:\n<text_layer>\n{text}\n</text_layer>"


def max_tokens(task: TaskSpec) -> int:
    """The longest answer a task's request allows."""
    return task.max_tokens or DEFAULT_MAX_TOKENS[task.kind]


def build_request(
    cfg: RunConfig,
    task: TaskSpec,
    *,
    images: list[ImagePart] = (),
    text: str = "",
    question: str | None = None,
    caption: str = "",
    model: str | None = None,
    mode: str = "json_schema",
) -> ChatRequest:
    """One request for a task: images (vision) and/or text (hint or, with no image, the source).

    ``mode`` chooses how ``extract`` asks for JSON: ``json_schema``, ``json_object`` or ``tool``.
    """
    prompt = task_prompt(task, question, caption)
    if images:
        body = prompt + _hint(text, "Text layer of the page(s), for reference only")
    else:
        body = prompt + _hint(text, "Text of the page(s)") if text.strip() else prompt
    parts: list = [TextPart(body), *images]
    req = ChatRequest(
        messages=[Message("system", cfg.system_prompt or SYSTEM), Message("user", parts)],
        model=model,
        temperature=cfg.temperature,
        seed=cfg.seed,
        max_tokens=max_tokens(task),
    )
    if task.kind == "extract":
        apply_json_mode(req, task, mode)
    return req


def apply_json_mode(req: ChatRequest, task: TaskSpec, mode: str) -> None:
    name = task.schema_name or "fields"
    if mode == "json_schema":
        req.response_format = ResponseFormat("json_schema", schema=task.schema, name=name, strict=True)
    elif mode == "json_object":
        req.response_format = ResponseFormat("json_object")
    elif mode == "tool":
        req.tools = [Tool(name=f"submit_{name}"[:64], parameters=task.schema or {"type": "object"},
                          description="Submit the extracted fields.")]
        req.tool_choice = f"submit_{name}"[:64]
    else:
        raise ValueError(f"unknown JSON mode {mode!r}")


def repair_request(original: ChatRequest, bad_answer: str, errors: list[str]) -> ChatRequest:
    """A follow-up turn quoting the validation errors, for one repair attempt."""
    from dataclasses import replace

    msg = (
        "Your answer does not validate against the JSON Schema:\n- "
        + "\n- ".join(errors[:20])
        + "\nReply with the corrected JSON object only."
    )
    return replace(original, messages=[*original.messages, Message("assistant", bad_answer or "{}"),
                                        Message("user", msg)])
