"""The spending budget and the circuit breaker on an injected clock: exact limits, exact states."""

import pytest

from pixtract.guards import Budget, BudgetExceeded, CircuitBreaker


def test_budget_admits_up_to_the_limit_and_refuses_past_it():
    b = Budget(1.0)
    assert b.reserve(0.6) == 0.6
    assert b.reserved == 0.6
    with pytest.raises(BudgetExceeded) as info:
        b.reserve(0.5)  # 0.6 in flight + 0.5 > 1.0
    assert str(info.value) == ("budget $1.0000 would be exceeded (spent $0.0000, in flight $0.6000, "
                               "this request up to $0.5000)")
    assert info.value.type == "budget_exceeded"
    assert (b.refused, b.reserved, b.spent) == (1, 0.6, 0.0)
    assert b.reserve(0.4) == 0.4  # exactly at the limit still fits
    assert b.reserved == pytest.approx(1.0)


def test_settle_moves_the_reservation_to_the_actual_cost():
    b = Budget(1.0)
    r = b.reserve(0.7)
    b.settle(r, 0.2)
    assert (b.reserved, b.spent) == (0.0, 0.2)
    r2 = b.reserve(0.8)  # 0.2 spent + 0.8 fits exactly
    b.settle(r2, 0.3)
    assert (b.reserved, b.spent) == (0.0, pytest.approx(0.5))
    with pytest.raises(BudgetExceeded):
        b.reserve(0.51)  # spent counts, not only what is in flight
    assert b.refused == 1
    b.reserve(0.1)
    with pytest.raises(BudgetExceeded):
        b.reserve(0.41)  # spent 0.5 + reserved 0.1 + 0.41
    assert b.refused == 2


def test_no_limit_never_refuses_but_still_counts():
    b = Budget(None)
    for _ in range(3):
        b.settle(b.reserve(1e9), 5.0)
    assert (b.spent, b.reserved, b.refused) == (15.0, 0.0, 0)


def test_a_zero_budget_refuses_any_cost_but_admits_free_requests():
    b = Budget(0.0)
    assert b.reserve(0.0) == 0.0
    assert b.reserve(1e-12) == 1e-12  # float noise at the limit is not a refusal
    with pytest.raises(BudgetExceeded):
        b.reserve(1e-9)


def test_breaker_opens_after_threshold_failures_and_probes_after_cooldown():
    now = [100.0]
    cb = CircuitBreaker(threshold=3, cooldown=10.0, clock=lambda: now[0])
    assert cb.probing is False
    assert cb.state == "closed" and cb.allow()
    cb.failure()
    cb.failure()
    assert cb.state == "closed" and cb.allow() and cb.transitions == []
    cb.failure()
    assert cb.state == "open" and not cb.allow() and cb.transitions == ["open"] and cb.opened_at == 100.0
    now[0] = 109.99
    assert cb.state == "open" and not cb.allow()
    now[0] = 110.0
    assert cb.state == "half-open"
    assert cb.allow() and cb.transitions == ["open", "half-open"]
    assert not cb.allow()  # one probe at a time
    cb.success()
    assert cb.state == "closed" and cb.transitions == ["open", "half-open", "closed"]
    assert (cb.failures, cb.opened_at, cb.probing) == (0, None, False)


def test_a_failed_probe_opens_the_breaker_again_at_once():
    now = [0.0]
    cb = CircuitBreaker(threshold=2, cooldown=5.0, clock=lambda: now[0])
    cb.failure()
    cb.failure()
    now[0] = 6.0
    assert cb.allow()
    cb.failure()
    assert cb.opened_at == 6.0 and cb.state == "open" and cb.probing is False
    assert cb.transitions == ["open", "half-open", "open"]
    now[0] = 10.0
    assert not cb.allow()
    now[0] = 11.0
    assert cb.allow()


def test_a_success_resets_the_failure_count_and_a_closed_breaker_logs_nothing():
    cb = CircuitBreaker(threshold=2, cooldown=1.0, clock=lambda: 0.0)
    cb.failure()
    cb.success()
    cb.failure()
    assert cb.state == "closed" and cb.failures == 1 and cb.transitions == []
    cb.failure()
    assert cb.state == "open"
    cb.failure()  # more failures while open do not restart the cooldown or log again
    assert cb.transitions == ["open"]


def test_breaker_defaults():
    cb = CircuitBreaker()
    assert (cb.threshold, cb.cooldown) == (5, 30.0)
    for _ in range(4):
        cb.failure()
    assert cb.state == "closed"
    cb.failure()
    assert cb.state == "open"
