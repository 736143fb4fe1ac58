"""The page ledger on its own: each way a record can go missing, be doubled or be miscounted
must show as an unbalanced ledger (these are the mutations the flow tests cannot see)."""

from pixtract.ledger import Ledger, format_ledger, unit_key
from pixtract.records import ErrorInfo, Record


def rec(page, status="ok", task="transcribe", route="vision", question=None, region=None, doc="a.pdf",
        sha="ab" * 32):
    return Record(document=doc, sha256=sha, page=page, task=task, route=route if status == "ok" else None,
                  status=status, question=question, region=region,
                  error=ErrorInfo("x", "y") if status == "failed" else None)


def test_balanced_ledger_counts_each_status_and_route():
    led = Ledger()
    led.plan("transcribe", 4)
    led.add([rec(1), rec(2, route="text-fallback"), rec(3, "failed"), rec(4, "skipped")])
    result = led.check()
    assert result == {"balanced": True, "duplicates": 0, "tasks": {"transcribe": {
        "pages_in": 4, "ok": {"vision": 1, "text-fallback": 1}, "failed": 1, "skipped": 1,
        "accounted": 4, "balanced": True}}}
    assert format_ledger(result).splitlines() == [
        "ledger: task: pages in = ok (by route) + failed + skipped",
        "  transcribe: 4 = 1 text-fallback + 1 vision + 1 failed + 1 skipped  [ok]"]


def test_a_missing_record_is_a_gap():
    led = Ledger()
    led.plan("transcribe", 3)
    led.add([rec(1), rec(2)])
    result = led.check()
    assert result["balanced"] is False and result["tasks"]["transcribe"]["accounted"] == 2
    assert "[GAP of 1]" in format_ledger(result)


def test_an_extra_record_is_a_gap_too():
    led = Ledger()
    led.plan("transcribe", 1)
    led.add([rec(1), rec(2)])
    assert led.check()["balanced"] is False
    assert "[GAP of -1]" in format_ledger(led.check())


def test_a_duplicate_in_one_batch_is_caught():
    led = Ledger()
    led.plan("transcribe", 2)
    led.add([rec(1), rec(1), rec(2)])
    result = led.check()
    assert result["duplicates"] == 1 and result["balanced"] is False
    assert result["tasks"]["transcribe"]["balanced"] is True  # the counts alone would hide it
    assert format_ledger(result).endswith("DUPLICATE records for 1 unit(s)")


def test_a_duplicate_across_batches_is_caught():
    led = Ledger()
    led.plan("transcribe", 2)
    led.add([rec(1), rec(2)])
    led.add([rec(2, "failed")])
    result = led.check()
    assert result["duplicates"] == 1 and result["balanced"] is False


def test_chart_regions_of_one_page_are_one_unit():
    led = Ledger()
    led.plan("chart", 2)
    led.add([rec(1, task="chart", region=1), rec(1, task="chart", region=2), rec(2, task="chart", region=1)])
    result = led.check()
    assert result["balanced"] is True and result["duplicates"] == 0
    assert result["tasks"]["chart"]["ok"] == {"vision": 2}


def test_a_failed_region_makes_the_unit_failed():
    led = Ledger()
    led.plan("chart", 1)
    led.add([rec(1, task="chart", region=1), rec(1, task="chart", region=2, status="failed")])
    row = led.check()["tasks"]["chart"]
    assert (row["ok"], row["failed"], row["skipped"], row["balanced"]) == ({}, 1, 0, True)


def test_ok_beats_skipped_within_a_unit_and_route_comes_from_the_ok_record():
    led = Ledger()
    led.plan("chart", 1)
    led.add([rec(1, task="chart", region=1, status="skipped"), rec(1, task="chart", region=2, route="vision-alt")])
    row = led.check()["tasks"]["chart"]
    assert (row["ok"], row["skipped"]) == ({"vision-alt": 1}, 0)


def test_an_ok_record_without_route_counts_as_none():
    led = Ledger()
    led.plan("transcribe", 1)
    led.add([rec(1, route=None)])
    assert led.check()["tasks"]["transcribe"]["ok"] == {"none": 1}


def test_units_differ_by_document_hash_page_task_and_question():
    base = rec(1, task="ask", question="Q1")
    others = [rec(1, task="ask", question="Q2"), rec(2, task="ask", question="Q1"),
              rec(1, task="ask", question="Q1", doc="b.pdf"), rec(1, task="ask", question="Q1", sha="cd" * 32),
              rec(1, task="transcribe", question="Q1")]
    assert len({unit_key(r) for r in [base, *others]}) == 6
    led = Ledger()
    led.plan("ask", 5)
    led.plan("transcribe", 1)
    led.add([base, *others])
    assert led.check()["balanced"] is True


def test_tasks_are_kept_apart_and_an_unplanned_task_is_a_gap():
    led = Ledger()
    led.plan("transcribe", 1)
    led.plan("transcribe", 1)  # plans add up
    led.add([rec(1), rec(2), rec(1, task="ask", question="Q")])
    result = led.check()
    assert result["tasks"]["transcribe"]["balanced"] is True
    assert result["tasks"]["ask"] == {"pages_in": 0, "ok": {"vision": 1}, "failed": 0, "skipped": 0,
                                      "accounted": 1, "balanced": False}
    assert result["balanced"] is False
    assert list(result["tasks"]) == ["ask", "transcribe"]


def test_an_empty_ledger_and_zero_ok_line():
    led = Ledger()
    assert led.check() == {"balanced": True, "duplicates": 0, "tasks": {}}
    led.plan("transcribe", 1)
    led.add([rec(1, "failed")])
    assert "transcribe: 1 = 0 ok + 1 failed + 0 skipped  [ok]" in format_ledger(led.check())


def test_counts_grow_past_one():
    led = Ledger()
    led.plan("transcribe", 6)
    led.add([rec(1, "failed"), rec(2, "failed"), rec(3, "skipped"), rec(4, "skipped"),
             rec(5, route=None), rec(6, route=None)])
    row = led.check()["tasks"]["transcribe"]
    assert (row["ok"], row["failed"], row["skipped"], row["balanced"]) == ({"none": 2}, 2, 2, True)


def test_every_duplicated_unit_is_counted():
    led = Ledger()
    led.plan("transcribe", 2)
    led.add([rec(1), rec(2)])
    led.add([rec(1), rec(2)])
    assert led.check()["duplicates"] == 2


def test_a_page_record_next_to_a_region_record_is_a_duplicate():
    """Only chart regions may share a unit; a page-level record twice (whatever follows it) may not."""
    led = Ledger()
    led.plan("chart", 1)
    led.add([rec(1, task="chart"), rec(1, task="chart", region=2)])
    assert led.check()["duplicates"] == 1
