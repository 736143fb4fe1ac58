"""The page ledger: for every task, pages in = ok (by route) + failed + skipped.

"Pages in" is counted from the documents as planned, independently of the records written,
so a record that went missing (or was written twice) shows up as a gap.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .records import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, Record
from .errors import PixtractError


class LedgerError(PixtractError):
    type = "ledger_mismatch"


def unit_key(r: Record) -> tuple:
    """The unit a record answers; chart regions of one page share their page's unit."""
    return (r.document, r.sha256, r.page, r.task, r.question)


@dataclass
class Ledger:
    expected: Counter = field(default_factory=Counter)  # task -> units planned
    _units: dict = field(default_factory=dict)  # unit -> (task, status, route)
    duplicates: int = 0

    def plan(self, task: str, units: int) -> None:
        self.expected[task] += units

    def add(self, records: list[Record]) -> None:
        by_unit: dict[tuple, list[Record]] = {}
        for r in records:
            by_unit.setdefault(unit_key(r), []).append(r)
        for key, recs in by_unit.items():
            if key in self._units or (len(recs) > 1 and recs[0].region is None):
                self.duplicates += 1
            statuses = {r.status for r in recs}
            status = (STATUS_FAILED if STATUS_FAILED in statuses
                      else STATUS_OK if STATUS_OK in statuses else STATUS_SKIPPED)
            route = next((r.route for r in recs if r.status == STATUS_OK), None)
            self._units[key] = (recs[0].task, status, route)

    def table(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for task in sorted(set(self.expected) | {t for t, _, _ in self._units.values()}):
            out[task] = {"pages_in": self.expected[task], "ok": {}, "failed": 0, "skipped": 0}
        for task, status, route in self._units.values():
            row = out[task]
            if status == STATUS_OK:
                row["ok"][route or "none"] = row["ok"].get(route or "none", 0) + 1
            else:
                row[status] += 1
        for row in out.values():
            row["accounted"] = sum(row["ok"].values()) + row["failed"] + row["skipped"]
            row["balanced"] = row["accounted"] == row["pages_in"]
        return out

    def check(self) -> dict[str, Any]:
        table = self.table()
        balanced = all(r["balanced"] for r in table.values()) and not self.duplicates
        return {"balanced": balanced, "duplicates": self.duplicates, "tasks": table}


def format_ledger(result: dict[str, Any]) -> str:
    lines = ["ledger: task: pages in = ok (by route) + failed + skipped"]
    for task, r in result["tasks"].items():
        ok = " + ".join(f"{n} {route}" for route, n in sorted(r["ok"].items())) or "0 ok"
        mark = "ok" if r["balanced"] else f"GAP of {r['pages_in'] - r['accounted']}"
        lines.append(f"  {task}: {r['pages_in']} = {ok} + {r['failed']} failed + {r['skipped']} skipped  [{mark}]")
    if result["duplicates"]:
        lines.append(f"  DUPLICATE records for {result['duplicates']} unit(s)")
    return "\n".join(lines)
