"""Queries of the shared rate counters: one atomic upsert per hit (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.security.models import RateCounter


async def hit(session: AsyncSession, key: str, window: float, now: float) -> tuple[int, float]:
    """Count one hit of `key` (a window past its end starts again); the count and window end.

    `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` in one statement: concurrent hits from any
    number of processes each see a distinct count, so no check-then-record race is possible.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    expired = RateCounter.window_ends <= now
    statement = dialect.insert(RateCounter).values(key=key, hits=1, window_ends=now + window)
    statement = statement.on_conflict_do_update(
        index_elements=[RateCounter.key],
        set_={
            "hits": case((expired, 1), else_=RateCounter.hits + 1),
            "window_ends": case((expired, now + window), else_=RateCounter.window_ends),
        },
    ).returning(RateCounter.hits, RateCounter.window_ends)
    row = (await session.execute(statement)).one()
    return int(row[0]), float(row[1])


async def refund(session: AsyncSession, key: str) -> None:
    """Take one hit back (an attempt that did not happen, or that should not count)."""
    await session.execute(
        update(RateCounter)
        .where(RateCounter.key == key, RateCounter.hits > 0)
        .values(hits=RateCounter.hits - 1)
    )


async def reset(session: AsyncSession, key: str) -> None:
    """Forget a key."""
    await session.execute(delete(RateCounter).where(RateCounter.key == key))


async def purge(session: AsyncSession, now: float) -> None:
    """Drop counters whose window has ended (they would start from zero anyway)."""
    await session.execute(delete(RateCounter).where(RateCounter.window_ends <= now))
