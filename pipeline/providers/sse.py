"""Server-sent events: a small spec-following line parser.

Comment lines (``: OPENROUTER PROCESSING``, model-apis.md §2.5) are skipped;
``event:`` names are kept for Anthropic's named events (§4.3).
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Iterable, Iterator


@dataclass
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


def iter_sse(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """Yield events from decoded text lines (without line terminators)."""
    data: list[str] = []
    event = None
    ev_id = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line == "":
            if data:
                yield SSEEvent("\n".join(data), event or "message", ev_id)
            data, event = [], None
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            ev_id = value
        # "retry" and unknown fields are ignored
    if data:  # stream ended without the final blank line
        yield SSEEvent("\n".join(data), event or "message", ev_id)


def iter_sse_bytes(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Same as :func:`iter_sse` but over raw byte chunks split anywhere (CRLF, CR or LF)."""

    def lines() -> Iterator[str]:
        buf = ""
        pending_cr = False
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        for chunk in chunks:
            text = decoder.decode(chunk)
            if pending_cr and text.startswith("\n"):
                text = text[1:]
            pending_cr = text.endswith("\r")
            buf += text
            parts = buf.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            buf = parts.pop()
            yield from parts
        if buf:
            yield buf

    return iter_sse(lines())
