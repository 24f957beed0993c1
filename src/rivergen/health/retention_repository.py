"""Queries of retention: deleting health records older than the retention period, in batches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.health.models import HealthRecord

# Taken for each purge batch on PostgreSQL, so that processes purging at the same time (several
# replicas with the in-process scheduler) take turns instead of deadlocking on the rollups.
PURGE_LOCK_KEY = 0x72697665  # "rive"


async def purge_before(session: AsyncSession, cutoff: datetime, batch: int) -> int | None:
    """Delete up to `batch` records older than `cutoff`; how many went, None when another
    process is purging right now (call inside a transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        locked = await session.scalar(select(func.pg_try_advisory_xact_lock(PURGE_LOCK_KEY)))
        if not locked:
            return None
    oldest = (
        select(HealthRecord.id)
        .where(HealthRecord.tested_at < cutoff)
        .order_by(HealthRecord.tested_at)
        .limit(batch)
        .scalar_subquery()
    )
    result = await session.execute(
        delete(HealthRecord)
        .where(HealthRecord.id.in_(oldest))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
