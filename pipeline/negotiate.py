"""How one rung is asked for one unit's answer: the request for each part the planner made
(pipeline/request_plan.py), the JSON mode the endpoint accepts for ``extract`` (JSON Schema,
then JSON mode, then a forced tool call), one repair turn that quotes the validation errors,
and the merge of a document answered in chunks.

``Asker.call`` is the chat rung's own call (pipeline/callers.py): within the budget and the
circuit breaker, and asked again once if the answer loops. Whatever cannot count as an answer raises
``ladder.RungFailed``, and the ladder goes on to its next rung.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import answers, prompts, request_plan
from .config import RunConfig, TaskSpec
from .ladder import Accounting, Rung, RungFailed
from .messages import ChatResponse
from .records import ROUTE_OCR
from .request_plan import Part

JSON_MODES = ("json_schema", "json_object", "tool")
OCR_BODY = "ocr_body"  # the OCR endpoint's answer, beside the record fields of an OCR rung's answer


@dataclass
class Asker:
    cfg: RunConfig
    call: Callable[..., ChatResponse]  # (rung, request, accounting, raw_errors=()) -> response
    rungs: list[Rung]

    def answer(self, rung: Rung, task: TaskSpec, question, parts: list[Part], caption, acc: Accounting) -> dict:
        """One rung's answer as record fields, or RungFailed. ``parts``: the unit's requests
        as pipeline/request_plan.py plans them (several: a document in chunks)."""
        if len(parts) > 1:
            return self._in_chunks(rung, task, question, parts, caption, acc)
        if task.kind == "extract":
            return self._extract(rung, task, parts[0], acc)
        req = request_plan.request(self.cfg, task, parts[0], question=question, caption=caption, model=rung.model)
        resp = self.call(rung, req, acc)
        answer = text(resp)
        if task.kind == "chart":
            try:
                chart = answers.parse_chart(answer)
            except answers.AnswerError as e:
                raise RungFailed(e) from None
            return {"answer": chart.summary or answer, "data": {"rows": chart.rows}}
        if rung.route == ROUTE_OCR:
            return {"answer": answer, OCR_BODY: resp.raw}  # its blocks become the grounding (route.py)
        return {"answer": answer}

    def _in_chunks(self, rung: Rung, task: TaskSpec, question, parts: list[Part], caption, acc: Accounting) -> dict:
        """Documents over 8 pages: answer chunk by chunk, then merge."""
        answered = [self.answer(rung, task, question, [part], caption, acc) for part in parts]
        if not request_plan.merges_by_request(task):
            data = merge_objects([a["data"] for a in answered])
            errors = answers.validate(data, task.schema)
            return {"data": data, "valid": {"ok": not errors, "errors": errors},
                    "answer": json_text(data), "schema": task.schema_name}
        req = request_plan.merge_request(self.cfg, task, question, [a["answer"] for a in answered],
                                         model=request_plan.merge_model(self.rungs, rung.model))
        return {"answer": text(self.call(rung, req, acc))}

    def _extract(self, rung: Rung, task: TaskSpec, part: Part, acc: Accounting) -> dict:
        """JSON Schema first, then JSON mode, then a forced tool call, as the endpoint accepts;
        one repair turn quoting the validation errors."""
        from .providers.errors import BadRequest, UnprocessableError

        while True:
            mode = JSON_MODES[rung.json_mode]
            req = request_plan.request(self.cfg, task, part, model=rung.model, mode=mode)
            try:
                resp = self.call(rung, req, acc, raw_errors=(BadRequest, UnprocessableError))
                break
            except (BadRequest, UnprocessableError) as e:
                if rung.json_mode + 1 < len(JSON_MODES) and about_format(e):
                    rung.json_mode += 1
                    continue
                rung.breaker.failure()
                raise RungFailed(e) from None
        raw = text(resp)
        data, errors = parse_validate(raw, task)
        if errors:
            fix = prompts.repair_request(req, raw, errors)
            raw2 = text(self.call(rung, fix, acc))
            data2, errors2 = parse_validate(raw2, task)
            if data2 is not None and (not errors2 or data is None):
                data, errors, raw = data2, errors2, raw2
        if data is None:
            raise RungFailed(answers.AnswerError("answer is not valid JSON, also after one repair", "invalid_json"))
        return {"data": data, "valid": {"ok": not errors, "errors": errors}, "answer": json_text(data),
                "schema": task.schema_name, "flags": [] if not errors else ["schema validation failed"]}


def parse_validate(raw: str, task: TaskSpec):
    try:
        data = answers.parse_json(raw)
    except answers.AnswerError as e:
        return None, [str(e)]
    return data, answers.validate(data, task.schema)


def text(resp: ChatResponse) -> str:
    """The answer's text; an empty or truncated one fails the rung."""
    try:
        return answers.answer_text(resp)
    except answers.AnswerError as e:
        raise RungFailed(e) from None


def about_format(e: Exception) -> bool:
    """A 400/422 that names the structured-output request: the endpoint does not take this
    JSON mode, so the next one is tried (providers answer this only in the error's text)."""
    msg = str(e).lower()
    return any(w in msg for w in ("response_format", "json_schema", "json schema", "tool", "structured"))


def json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)


def merge_objects(objs: list[Any]) -> Any:
    """Chunk answers of one extraction: later values fill nulls, lists concatenate."""
    merged: Any = None
    for o in objs:
        if merged is None:
            merged = o
        elif isinstance(merged, dict) and isinstance(o, dict):
            for k, v in o.items():
                if merged.get(k) in (None, "", [], {}):
                    merged[k] = v
                elif isinstance(merged[k], list) and isinstance(v, list):
                    merged[k] = merged[k] + v
    return merged
