"""Timing rules of scheduled checks (pure functions)."""

from __future__ import annotations

from datetime import timedelta

from rivergen.health.cadence import (
    first_check_at,
    lease_seconds,
    next_due_after,
    scheduled_timeout,
)
from tests.health.helpers import T0


def test_first_check_is_due_now_with_a_small_phase() -> None:
    assert first_check_at(None, T0) is None
    for interval in (2, 60, 3600):
        due = first_check_at(interval, T0)
        assert due is not None
        assert T0 <= due <= T0 + timedelta(seconds=min(interval * 0.1, 10))


def test_next_due_keeps_the_cadence_when_on_time() -> None:
    due = T0
    for claimed_at in (T0 - timedelta(seconds=1), T0, T0 + timedelta(seconds=5)):
        assert next_due_after(due, 60, claimed_at) == T0 + timedelta(seconds=60)


def test_next_due_moves_after_a_late_start() -> None:
    now = T0 + timedelta(seconds=1)
    assert next_due_after(T0, 2, now) == now + timedelta(seconds=2)


def test_missed_intervals_are_not_replayed() -> None:
    now = T0 + timedelta(minutes=10)
    following = next_due_after(T0, 60, now)
    assert now + timedelta(seconds=60) <= following <= now + timedelta(seconds=66)


def test_a_check_ends_inside_its_lease_and_the_lease_inside_the_interval() -> None:
    for interval in (1, 2, 3, 10, 30, 31, 300, 86400):
        timeout = scheduled_timeout(interval, 30)
        lease = lease_seconds(interval)
        assert 1 <= timeout <= 30
        # The probe answers within timeout + 0.3 s; a second is left for the bookkeeping.
        assert timeout + 1 <= lease
        assert lease == max(interval, 2)
