"""Queries of the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.audit.models import AuditEvent


@dataclass(frozen=True)
class AuditFilters:
    """Optional filters of the audit-event list."""

    action: str | None = None
    actor_user_id: int | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    actor_token_id: int | None = None


async def add_event(
    session: AsyncSession,
    action: str,
    *,
    organization_id: int | None = None,
    actor_user_id: int | None = None,
    actor_token_id: int | None = None,
    target_type: str | None = None,
    target_id: str | int | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
    client_address: str | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """Append one audit event in the caller's transaction (at `occurred_at`, else now)."""
    session.add(
        AuditEvent(
            **({} if occurred_at is None else {"created_at": occurred_at}),
            action=action,
            organization_id=organization_id,
            actor_user_id=actor_user_id,
            actor_token_id=actor_token_id,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            outcome=outcome,
            details=details or {},
            client_address=client_address,
        )
    )


SIGN_IN = "auth.login"


async def list_sign_ins(
    session: AsyncSession, user_id: int, limit: int, offset: int
) -> tuple[list[AuditEvent], int]:
    """A page of one account's sign-in attempts (successful and failed), newest first."""
    query = select(AuditEvent).where(
        AuditEvent.action == SIGN_IN,
        AuditEvent.actor_user_id == user_id,
        AuditEvent.organization_id.is_(None),
    )
    total_query = select(func.count()).select_from(query.subquery())
    total = int((await session.execute(total_query)).scalar_one())
    page = query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    rows = await session.execute(page.limit(limit).offset(offset))
    return list(rows.scalars()), total


async def list_events(
    session: AsyncSession,
    organization_id: int,
    filters: AuditFilters,
    limit: int,
    offset: int,
) -> tuple[list[AuditEvent], int]:
    """A page of one organization's audit events, newest first, and the total."""
    # Only the organization's own events: sign-ins belong to the user who signed in (their
    # addresses and failed attempts are no business of an organization they joined).
    query = select(AuditEvent).where(AuditEvent.organization_id == organization_id)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.actor_user_id is not None:
        query = query.where(AuditEvent.actor_user_id == filters.actor_user_id)
    if filters.actor_token_id is not None:
        query = query.where(AuditEvent.actor_token_id == filters.actor_token_id)
    if filters.target_type:
        query = query.where(AuditEvent.target_type == filters.target_type)
    if filters.target_id:
        query = query.where(AuditEvent.target_id == filters.target_id)
    if filters.since is not None:
        query = query.where(AuditEvent.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.created_at < filters.until)
    total = int(
        (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    )
    page = query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    rows = await session.execute(page.limit(limit).offset(offset))
    return list(rows.scalars()), total


async def purge_events_before(session: AsyncSession, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` audit events created before `cutoff`, oldest first; how many went."""
    oldest = (
        select(AuditEvent.id)
        .where(AuditEvent.created_at < cutoff)
        .order_by(AuditEvent.id)
        .limit(batch)
        .scalar_subquery()
    )
    result = await session.execute(
        delete(AuditEvent)
        .where(AuditEvent.id.in_(oldest))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
