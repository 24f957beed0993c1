"""Reading the audit log (admins and owners of the organization)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.audit.repository import AuditFilters, list_events
from rivergen.audit.schemas import AuditEventOut
from rivergen.core.time_bounds import clamped_utc
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role


async def audit_page(
    session: AsyncSession, caller: Caller, filters: AuditFilters, limit: int, offset: int
) -> tuple[list[AuditEventOut], int]:
    """A page of the active organization's audit events, newest first."""
    organization_id = caller.require(Role.ADMIN)
    filters = replace(filters, since=clamped_utc(filters.since), until=clamped_utc(filters.until))
    rows, total = await list_events(session, organization_id, filters, limit, offset)
    return [AuditEventOut.model_validate(row) for row in rows], total
