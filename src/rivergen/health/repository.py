"""Queries of health records."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.health.models import HealthRecord


async def add_record(session: AsyncSession, record: HealthRecord) -> None:
    """Append a health record in the caller's transaction."""
    session.add(record)
    await session.flush()
