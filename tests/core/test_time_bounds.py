"""Client time bounds: UTC, naive read as UTC, extreme values moved into the stores' range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from rivergen.core.time_bounds import EARLIEST, LATEST, clamped_utc


def test_none_stays_none() -> None:
    assert clamped_utc(None) is None


def test_naive_is_utc_and_offsets_are_converted() -> None:
    assert clamped_utc(datetime(2024, 12, 1, 11, 0)) == datetime(2024, 12, 1, 11, 0, tzinfo=UTC)
    plus_two = datetime(2024, 12, 1, 13, 0, tzinfo=timezone(timedelta(hours=2)))
    converted = clamped_utc(plus_two)
    assert converted == datetime(2024, 12, 1, 11, 0, tzinfo=UTC)
    assert converted is not None
    assert converted.tzinfo is UTC


def test_extremes_are_moved_into_the_range() -> None:
    # Year 1 at +05:00 is before year 1 in UTC: the conversion itself overflows.
    assert clamped_utc(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))) == EARLIEST
    assert (
        clamped_utc(datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))) == LATEST
    )
    assert clamped_utc(datetime(1800, 6, 1, tzinfo=UTC)) == EARLIEST
    assert clamped_utc(datetime(9500, 6, 1, tzinfo=UTC)) == LATEST
