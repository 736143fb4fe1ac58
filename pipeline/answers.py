"""Step 5: model responses to answers: checks, JSON (Schema) validation, chart tables, and the
cross-check of a vision answer against the page's text layer."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from .messages import ChatResponse
from .errors import PixtractError


class AnswerError(PixtractError):
    """A response that cannot count as an answer (empty, truncated, unparsable)."""

    type = "bad_answer"

    def __init__(self, message: str, type: str | None = None) -> None:
        super().__init__(message)
        if type:
            self.type = type


def answer_text(resp: ChatResponse) -> str:
    """The response's text, refusing empty and truncated answers."""
    if resp.finish_reason == "length":
        raise AnswerError("answer cut off at max_tokens (finish_reason: length)", "truncated_answer")
    if resp.finish_reason == "error":
        raise AnswerError("the provider ended the answer with an error (finish_reason: error)", "provider_error")
    text = (resp.text or "").strip()
    if not text and resp.tool_calls:
        text = resp.tool_calls[0].arguments.strip()
    if not text:
        raise AnswerError("empty answer", "empty_answer")
    return text


# --- answers that loop ----------------------------------------------------------------------

LOOP_MIN_REPEATS = 8  # the same line, row or phrase at least this often in a row...
LOOP_MIN_CHARS = 400  # ...over at least this many characters...
LOOP_MIN_SHARE = 0.2  # ...and this share of the answer
LOOP_MAX_PERIOD = 400  # characters of the longest repeated unit looked for


def degenerate(text: str) -> str | None:
    """Why an answer is a loop (the same unit repeated to the end, as a model stuck on a dense
    table writes until max_tokens), or None. The tail is tested for every period up to
    LOOP_MAX_PERIOD characters; each test is a binary search with slice comparisons."""
    text = text.rstrip()
    n = len(text)
    if n < LOOP_MIN_CHARS:
        return None
    rev = text[::-1]
    for period in range(1, min(LOOP_MAX_PERIOD, n // LOOP_MIN_REPEATS) + 1):
        if rev[0] != rev[period]:
            continue
        lo, hi = period, n  # the longest suffix with this period: rev[:L-p] == rev[p:L]
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if rev[: mid - period] == rev[period:mid]:
                lo = mid
            else:
                hi = mid - 1
        length = lo
        if length >= max(LOOP_MIN_CHARS, LOOP_MIN_REPEATS * period, LOOP_MIN_SHARE * n):
            unit = text[n - period:].strip() or text[n - period:]
            return (f"the answer repeats {unit[:60]!r} {length // period} times to its end "
                    f"({length} of {n} characters)")
    return None


# --- JSON ----------------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n```", re.S)


def parse_json(text: str) -> Any:
    """The JSON object in an answer: bare, fenced, or the outermost {...}."""
    candidates = [text.strip()]
    candidates += [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for c in candidates:
        try:
            return json.loads(c)
        except (json.JSONDecodeError, ValueError, RecursionError):
            continue
    raise AnswerError("answer is not valid JSON", "invalid_json")


def validate(data: Any, schema: dict) -> list[str]:
    """jsonschema errors as readable strings (empty when valid)."""
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    return [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]


# --- charts --------------------------------------------------------------------------------

_CSV_FENCE = re.compile(r"```(?:csv)?\s*\n(.*?)\n```", re.S)


@dataclass
class ChartAnswer:
    rows: list[list[str]]
    summary: str


def parse_chart(text: str) -> ChartAnswer:
    """The CSV block and the summary paragraph of a chart answer; a Markdown table also works."""
    m = _CSV_FENCE.search(text)
    if m:
        rows = [r for r in csv.reader(io.StringIO(m.group(1).strip())) if any(c.strip() for c in r)]
        summary = (text[: m.start()] + text[m.end() :]).strip()
    else:
        lines = [ln for ln in text.splitlines() if ln.strip().startswith("|")]
        rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines
                if not re.fullmatch(r"[\s|:\-]+", ln)]
        summary = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("|")).strip()
    if len(rows) < 2:
        raise AnswerError("no data table (CSV) in the chart answer", "no_chart_table")
    return ChartAnswer([[c.strip() for c in r] for r in rows], summary)


def rows_to_csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


# --- cross-check ---------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,.']*\d(?![\w])|(?<![\w.])\d(?![\w])")
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


def _norm_number(s: str) -> str:
    return re.sub(r"[,']", "", s).rstrip(".").lstrip("+")


def cross_check(answer: str, text_layer: str) -> tuple[float, list[str]]:
    """How far a vision answer agrees with the page's own text: (agreement 0..1, flags).

    Agreement is the share of the answer's words and numbers found in the text layer; a flag
    lists numbers that the text layer does not contain (a misread or invented figure).
    """
    layer_numbers = {_norm_number(n) for n in _NUMBER.findall(text_layer)}
    layer_words = {w.casefold() for w in _WORD.findall(text_layer)}
    numbers = [n.strip() for n in _NUMBER.findall(answer)]
    words = [w.casefold() for w in _WORD.findall(answer)]
    total = len(numbers) + len(words)
    if not total:
        return 1.0, []
    missing_numbers = [n for n in numbers if _norm_number(n) not in layer_numbers]
    found = (len(numbers) - len(missing_numbers)) + sum(w in layer_words for w in words)
    flags = []
    if missing_numbers:
        shown = ", ".join(dict.fromkeys(missing_numbers))
        flags.append(f"numbers not in text layer: {shown[:200]}")
    agreement = round(found / total, 3)
    if agreement < 0.5:
        flags.append(f"low agreement with text layer ({agreement:.2f})")
    return agreement, flags
