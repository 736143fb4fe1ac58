"""`make mutate`: mutation testing of the modules that hold README's guarantees.

Runs mutmut (configured in pyproject.toml, [tool.mutmut]) on the functions of each guarantee
only, with the fast unit tests that defend it, then prints the score per guarantee and writes
it into docs/testing.md. A surviving mutant is either killed by a sharper test or listed in
EQUIVALENT below with the reason no test can tell it from the original.
Not part of `make test`: a full run takes minutes of both cores.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
TARGET = 0.90

# guarantee -> mutant name patterns (mutmut names: module.x_function / module.xǁClassǁmethod)
SCOPES: dict[str, list[str]] = {
    "ledger (`pipeline/ledger.py`)": ["pipeline.ledger.*"],
    "redaction and secret registry (`providers/errors.py`)": [
        "pipeline.providers.errors.x_register_secret__mutmut_*", "pipeline.providers.errors.x_redact__mutmut_*",
        "pipeline.providers.errors.x_redact_body__mutmut_*", "pipeline.providers.errors.xǁProviderErrorǁ*"],
    "budget and circuit breaker (`guards.py`)": ["pipeline.guards.*"],
    "cache and resume keys (`cache.py`, `config.fingerprint`)": [
        "pipeline.cache.*", "pipeline.config.x_fingerprint__mutmut_*"],
    "writer's page accounting (`outputs.OutputWriter`)": [
        "pipeline.outputs.xǁOutputWriterǁ*", "pipeline.outputs.x__by_task__mutmut_*"],
    'answer cannot count (`answers.py`, `negotiate.text`)': [
        "pipeline.answers.x_answer_text__mutmut_*", "pipeline.answers.xǁAnswerErrorǁ*",
        "pipeline.answers.x_parse_json__mutmut_*", "pipeline.answers.x_validate__mutmut_*",
        "pipeline.answers.x_parse_chart__mutmut_*", "pipeline.answers.x_rows_to_csv__mutmut_*",
        "pipeline.negotiate.x_text__mutmut_*"],
}

# Survivors no test can kill: the mutant behaves exactly like the original. name -> why.
_UTF8_LOCALE = ("open() without encoding uses the locale's: UTF-8 on the machines pixtract runs and is tested on "
                "(a C/POSIX locale is coerced to UTF-8, PEP 538)")
_ASCII_NONE = "ensure_ascii=None is falsy, the same as False"
_SAME_CODEC = '"UTF-8" and "utf-8" name the same codec'
EQUIVALENT: dict[str, str] = {
    "pipeline.providers.errors.xǁProviderErrorǁ__init____mutmut_10": "redact_body(None) is None",
    "pipeline.cache.x_cache_key__mutmut_5": _ASCII_NONE,
    "pipeline.cache.x_cache_key__mutmut_17": _SAME_CODEC,
    "pipeline.cache.xǁAnswerCacheǁget__mutmut_3": _UTF8_LOCALE,
    "pipeline.cache.xǁAnswerCacheǁget__mutmut_5": _UTF8_LOCALE,
    "pipeline.cache.xǁAnswerCacheǁget__mutmut_8": _SAME_CODEC,
    "pipeline.cache.xǁAnswerCacheǁput__mutmut_10": _ASCII_NONE,
    "pipeline.outputs.xǁOutputWriterǁ__init____mutmut_29": _UTF8_LOCALE,
    "pipeline.outputs.xǁOutputWriterǁ__init____mutmut_32": _UTF8_LOCALE,
    "pipeline.outputs.xǁOutputWriterǁ__init____mutmut_36": _SAME_CODEC,
    "pipeline.outputs.xǁOutputWriterǁadd_document__mutmut_66": _ASCII_NONE,
    "pipeline.outputs.xǁOutputWriterǁ_append__mutmut_4": _ASCII_NONE,
    "pipeline.outputs.xǁOutputWriterǁfinish__mutmut_27": _ASCII_NONE,
    "pipeline.outputs.xǁOutputWriterǁfinish__mutmut_4": "the file is only opened to fsync it; text or binary mode alike",
    "pipeline.outputs.x__by_task__mutmut_27": "(task, ok, route) keys are unique, so the route is never in the "
                                              "dict yet and the lookup always falls to its default",
    "pipeline.outputs.x__by_task__mutmut_37": '"failed" and "skipped" are set to 0 first: the default is never used',
    "pipeline.outputs.x__by_task__mutmut_39": '"failed" and "skipped" are set to 0 first: the default is never used',
    "pipeline.outputs.x__by_task__mutmut_40": '"failed" and "skipped" are set to 0 first: the default is never used',
    "pipeline.guards.x_read_shared_spend__mutmut_2": _UTF8_LOCALE,
    "pipeline.guards.x_read_shared_spend__mutmut_4": _UTF8_LOCALE,
    "pipeline.guards.x_read_shared_spend__mutmut_6": _SAME_CODEC,
    "pipeline.guards.xǁSharedBudgetǁ__init____mutmut_13": 'the new entry\'s "reserved" is set to 0.0 on the '
                                                          "same line: its default is never read",
    "pipeline.answers.x_parse_json__mutmut_16": '"{" and "}" cannot sit at one index, so start < end and '
                                                "start <= end agree",
}

KILLED = {1, 3, 36, 24, -24, 152, 255, 37}  # failed test, pytest error, timeout, type check


def run_mutmut(jobs: int) -> int:
    patterns = [p for ps in SCOPES.values() for p in ps]
    return subprocess.call([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *patterns],
                           cwd=ROOT)


def results() -> dict[str, int | None]:
    codes: dict[str, int | None] = {}
    for meta in (ROOT / "mutants").rglob("*.meta"):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def score(codes: dict[str, int | None]) -> tuple[list[tuple], list[str]]:
    rows, survivors = [], []
    for scope, patterns in SCOPES.items():
        names = sorted(n for n in codes if any(fnmatch.fnmatchcase(n, p) for p in patterns))
        killed = sum(codes[n] in KILLED for n in names)
        alive = [n for n in names if codes[n] not in KILLED]
        equivalent = [n for n in alive if n in EQUIVALENT]
        survivors += [n for n in alive if n not in EQUIVALENT]
        live = len(names) - len(equivalent)
        rows.append((scope, len(names), killed, len(equivalent), len(alive) - len(equivalent),
                     killed / live if live else 1.0))
    return rows, survivors


def table(rows: list[tuple]) -> str:
    lines = ["| guarantee | mutants | killed | equivalent | survived | score |", "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {n} | {k} | {e} | {a} | {100 * r:.1f} % |" for s, n, k, e, a, r in rows]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    new = re.sub(r"(<!-- mutate:begin -->\n).*?(<!-- mutate:end -->)", lambda m: m.group(1) + text + "\n" + m.group(2),
                 doc, flags=re.S)
    DOC.write_text(new)


def main() -> int:
    rc = 0 if "--no-run" in sys.argv else run_mutmut(int(os.environ.get("MUTATE_JOBS", "2")))
    codes = results()
    if not codes:
        print("mutmut produced no results", file=sys.stderr)
        return rc or 1
    rows, survivors = score(codes)
    text = table(rows)
    print(text)
    for name, why in sorted(EQUIVALENT.items()):
        if codes.get(name) not in KILLED:
            print(f"equivalent: {name}: {why}")
    for name in survivors:
        print(f"survived: {name}  (see: .venv/bin/mutmut show '{name}')")
    if "--no-doc" not in sys.argv:
        write_doc(text)
    return 0 if all(r[-1] >= TARGET for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
