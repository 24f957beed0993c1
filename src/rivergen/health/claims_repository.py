"""Queries of scheduled-check claims: who runs the next due check of a source, and until when.

Claims (`claim_due`) are shared by the in-process scheduler and the Celery dispatcher; see
`rivergen.health.cadence` for the timing rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.datasources.models import DataSource
from rivergen.health.cadence import lease_seconds, next_due_after

# Claims are bookkeeping, not a change by a user: keep `updated_at` (it has an onupdate default).
_UNCHANGED = DataSource.updated_at


@dataclass(frozen=True)
class Claim:
    """The right to run one due check of one source until `lease_until` (also its token)."""

    data_source_id: int
    due_at: datetime
    lease_until: datetime
    interval_seconds: int


async def claim_due(
    session: AsyncSession, now: datetime, horizon: datetime, limit: int
) -> list[Claim]:
    """Claim up to `limit` checks due by `horizon` that nobody holds; call inside a transaction.

    Each claimed source gets its next due time and a lease in the same write, so the same check
    is never handed out twice, whatever number of schedulers and workers call this at once:

    * PostgreSQL: the candidates are locked with FOR UPDATE SKIP LOCKED, so concurrent claimers
      each take different rows without waiting for one another.
    * SQLite (one writer at a time): the claimer takes the write lock first, then each candidate
      is claimed by a conditional UPDATE that only matches while the row is still due at the
      same time and unclaimed.

    A claim expires on its own (`lease_until`), so checks held by a process that died are lost,
    but the sources they belonged to are picked up again when their next check is due.
    """
    if limit <= 0:
        return []
    candidates = (
        select(
            DataSource.id,
            DataSource.next_check_at,
            DataSource.health_check_interval_seconds,
        )
        .where(
            DataSource.next_check_at <= horizon,
            DataSource.health_check_interval_seconds.is_not(None),
            or_(DataSource.check_claimed_until.is_(None), DataSource.check_claimed_until < now),
        )
        .order_by(DataSource.next_check_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    else:
        # Nothing due (the common case): no write transaction at all.
        if (await session.execute(candidates.limit(1))).first() is None:
            return []
        # SQLite: take the store's write lock before reading, so claimers run one after another
        # and each sees the claims of the previous one (an UPDATE locks even when nothing matches).
        await session.execute(
            update(DataSource)
            .where(false())
            .values(check_claimed_until=None, updated_at=_UNCHANGED)
            .execution_options(synchronize_session=False)
        )
    claims: list[Claim] = []
    for source_id, due_at, interval in (await session.execute(candidates)).all():
        assert due_at is not None and interval is not None
        start = max(now, due_at)
        lease_until = start + timedelta(seconds=lease_seconds(interval))
        result = await session.execute(
            update(DataSource)
            .where(
                DataSource.id == source_id,
                DataSource.next_check_at == due_at,
                or_(
                    DataSource.check_claimed_until.is_(None),
                    DataSource.check_claimed_until < now,
                ),
            )
            .values(
                next_check_at=next_due_after(due_at, interval, now),
                check_claimed_until=lease_until,
                updated_at=_UNCHANGED,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            claims.append(Claim(source_id, due_at, lease_until, interval))
    return claims


async def start_claimed_check(
    session: AsyncSession, claim: Claim, now: datetime, until: datetime
) -> bool:
    """Mark a claimed check as starting `now`; False when the claim was lost (expired, taken).

    The claim is extended to `until`, so the whole check runs inside it. A check starting late
    moves the source's next due time to one interval after its actual start (never earlier than
    it was), so consecutive checks are never closer than the interval.
    """
    result = await session.execute(
        update(DataSource)
        .where(
            DataSource.id == claim.data_source_id,
            DataSource.check_claimed_until == claim.lease_until,
            DataSource.check_claimed_until > now,
        )
        .values(check_claimed_until=until, updated_at=_UNCHANGED)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    following = next_due_after(claim.due_at, claim.interval_seconds, now)
    if following > claim.due_at + timedelta(seconds=claim.interval_seconds):
        await session.execute(
            update(DataSource)
            .where(DataSource.id == claim.data_source_id, DataSource.next_check_at < following)
            .values(next_check_at=following, updated_at=_UNCHANGED)
            .execution_options(synchronize_session=False)
        )
    return True


async def release_claim(session: AsyncSession, data_source_id: int, token: datetime) -> None:
    """Give a claim up (the check ended), unless someone else holds the source by now."""
    await session.execute(
        update(DataSource)
        .where(DataSource.id == data_source_id, DataSource.check_claimed_until == token)
        .values(check_claimed_until=None, updated_at=_UNCHANGED)
        .execution_options(synchronize_session=False)
    )


async def source_for_check(session: AsyncSession, data_source_id: int) -> DataSource | None:
    """The data source of a claimed check, whatever its organization (internal jobs only)."""
    query = select(DataSource).where(DataSource.id == data_source_id)
    return (await session.execute(query)).scalar_one_or_none()
