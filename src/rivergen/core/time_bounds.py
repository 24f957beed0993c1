"""Query time bounds from clients, in UTC and inside the range the stores can hold."""

from __future__ import annotations

from datetime import UTC, datetime

# No record or event lies outside these; a bound beyond them is moved to them (the window is
# the same), which keeps the conversion to UTC (year 1 at +05:00 is before year 1), hour
# arithmetic and the stores' timestamp ranges out of trouble.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def clamped_utc(value: datetime | None) -> datetime | None:
    """`value` in UTC (naive means UTC), moved into [EARLIEST, LATEST]; None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        return EARLIEST if value.year < 2000 else LATEST
    return min(max(value, EARLIEST), LATEST)
