"""One spending limit for a whole run answered by several processes (issue 15: an inbox run's
parts used to get a budget each, so N parts could spend N times ``budget_usd``)."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil

import pytest

from pixtract.guards import Budget, BudgetExceeded, SharedBudget, budget_for, read_shared_spend

COST = 0.1


def _spend_until_refused(path: str, holder: str, limit: float, go) -> None:
    """One part: requests of COST each, reserved then settled at their full cost, until refused."""
    b = SharedBudget(limit, path, holder)
    go.wait()
    while True:
        try:
            r = b.reserve(COST)
        except BudgetExceeded:
            return
        b.settle(r, COST)


def test_parts_in_separate_processes_never_pass_the_limit_together(tmp_path):
    path, limit, parts = str(tmp_path / "budget.json"), 1.0, 4
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    procs = [ctx.Process(target=_spend_until_refused, args=(path, f"part-{i}", limit, go)) for i in range(parts)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * parts
    spend = read_shared_spend(path)
    assert set(spend) == {f"part-{i}" for i in range(parts)}
    total = sum(e["spent"] for e in spend.values())
    # each part alone would have spent the whole limit; together they spent it exactly once
    assert total == pytest.approx(limit)
    assert all(e["reserved"] == pytest.approx(0.0) for e in spend.values())


def test_two_holders_share_one_limit_and_report_their_own_spend(tmp_path):
    path = str(tmp_path / "budget.json")
    a, b = SharedBudget(1.0, path, "a"), SharedBudget(1.0, path, "b")
    ra = a.reserve(0.6)
    with pytest.raises(BudgetExceeded) as info:
        b.reserve(0.5)  # 0.6 in flight in the other part
    assert "in flight $0.6000" in str(info.value)
    a.settle(ra, 0.3)
    rb = b.reserve(0.7)  # 0.3 spent by a + 0.7 fits exactly
    b.settle(rb, 0.2)
    assert (a.spent, b.spent, a.refused, b.refused) == (0.3, 0.2, 0, 1)
    assert json.loads(open(path).read()) == {"a": {"reserved": 0.0, "spent": 0.3},
                                             "b": {"reserved": 0.0, "spent": 0.2}}
    with pytest.raises(BudgetExceeded) as info:
        a.reserve(0.51)  # 0.5 spent by both
    assert "spent $0.5000" in str(info.value)


def test_a_part_started_again_after_a_crash_frees_what_it_had_in_flight(tmp_path):
    path = str(tmp_path / "budget.json")
    crashed, other = SharedBudget(1.0, path, "p1"), SharedBudget(1.0, path, "p2")
    crashed.settle(crashed.reserve(0.2), 0.2)
    crashed.reserve(0.5)  # in flight when its process died
    other.reserve(0.1)
    with pytest.raises(BudgetExceeded):
        other.reserve(0.3)
    SharedBudget(1.0, path, "p1")  # the part's next attempt
    spend = read_shared_spend(path)
    assert spend["p1"] == {"spent": 0.2, "reserved": 0.0}  # what it paid still counts
    assert spend["p2"]["reserved"] == pytest.approx(0.1)  # the other part's requests are untouched
    other.reserve(0.6)  # 0.2 spent + 0.1 + 0.6 fits now


def test_a_run_without_a_shared_file_or_without_a_limit_keeps_its_budget_in_memory(tmp_path):
    path = str(tmp_path / "budget.json")
    assert type(budget_for(1.0, None, "x")) is Budget
    assert type(budget_for(None, path, "x")) is Budget
    shared = budget_for(1.0, path, "x")
    assert isinstance(shared, SharedBudget) and shared.limit == 1.0 and os.path.exists(path)


@pytest.mark.prefect
def test_an_inbox_run_spends_its_budget_once_across_all_its_parts(tmp_path, samples, emu, monkeypatch):
    """Two parts run one after the other in process. A page costs about $1.50 at the job's
    price and the limit is $2.50: with a budget each, both parts answered a page ($3 in all)."""
    from tests.emulator.helpers import FAKE_KEY

    from pixtract.flows.inbox import inbox_batch

    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    emu.reset()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("report.pdf", "rotated.pdf"):
        shutil.copy(samples / name, inbox / name)
    out, limit = tmp_path / "out", 2.5
    job = tmp_path / "job.toml"
    job.write_text("\n".join([
        f'inputs = ["{inbox}"]', f'out = "{out}"', 'profile = "mistral"', f"budget_usd = {limit}",
        "concurrency = 1", "", "[endpoint]", f'base_url = "{emu.base_url("mistral")}"', "max_retries = 0",
        "", "[prices]", '"pixtral-large-2411" = {input = 700.0, output = 0.0}', ""]))
    inbox_batch(job=str(job), pages_per_part=2, return_state=True)
    (run,) = (out / "runs").iterdir()
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert len(records) == 4
    paid = sum(r["cost_usd"] for r in records)
    answered = [r for r in records if r["status"] == "ok"]
    refused = [r for r in records if (r.get("error") or {}).get("type") == "budget_exceeded"]
    assert 0 < paid <= limit and len(answered) >= 1 and len(refused) >= 2
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["budget"]["per"] == "run" and manifest["budget"]["spent_usd"] == pytest.approx(paid)
    parts = read_shared_spend(str(run / ".pixtract" / "budget.json"))
    assert len(parts) >= 2 and sum(e["spent"] for e in parts.values()) == pytest.approx(paid)


def test_each_part_books_under_its_own_name_from_nothing(tmp_path):
    """A new part's entry starts at zero, under the part's own name, also when the file was
    removed under a running part (a cleaned folder): it books again from its own zero."""
    path = str(tmp_path / "budget.json")
    shared = budget_for(1.0, path, "x")
    assert read_shared_spend(path) == {"x": {"spent": 0.0, "reserved": 0.0}}
    os.remove(path)
    shared.settle(shared.reserve(0.25), 0.25)
    assert read_shared_spend(path) == {"x": {"spent": 0.25, "reserved": 0.0}}
    alone = budget_for(0.5, None, "y")
    alone.reserve(0.5)
    with pytest.raises(BudgetExceeded):
        alone.reserve(0.01)  # in memory, the limit still holds
