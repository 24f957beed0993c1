"""Reading the audit log (admins and owners of the organization)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.audit.repository import AuditFilters, list_events
from rivergen.audit.schemas import AuditEventOut
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role


async def audit_page(
    session: AsyncSession, caller: Caller, filters: AuditFilters, limit: int, offset: int
) -> tuple[list[AuditEventOut], int]:
    """A page of the active organization's audit events, newest first."""
    organization_id = caller.require(Role.ADMIN)
    filters = replace(filters, since=_utc(filters.since), until=_utc(filters.until))
    rows, total = await list_events(session, organization_id, filters, limit, offset)
    return [AuditEventOut.model_validate(row) for row in rows], total


# No event lies outside these; a bound beyond them is moved to them (the window is the same),
# which keeps the conversion to UTC (year 1 at +05:00 is before year 1) and the stores' ranges
# out of trouble.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        return EARLIEST if value.year < 2000 else LATEST
    return min(max(value, EARLIEST), LATEST)
