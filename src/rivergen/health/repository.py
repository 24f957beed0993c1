"""Queries of health records and of scheduled-check claims.

Summary statistics are computed by the store, over one data source's records in a time window:

* `checks`, `successful`, `failed`: counts of records in the window.
* `avg_response_time_ms`, `p95_response_time_ms`: over the successful checks only (a failed
  check's duration measures the failure, a timeout for instance, not the database).
* p95 is the continuous percentile with linear interpolation, as PostgreSQL's
  `percentile_cont(0.95)` defines it: with the n response times sorted ascending v[0..n-1],
  p = 0.95 * (n - 1), result = v[floor(p)] + (p - floor(p)) * (v[ceil(p)] - v[floor(p)]).
  PostgreSQL computes it with `percentile_cont`; SQLite, which has no such aggregate, reads the two
  values around that position with ORDER BY ... LIMIT 2 OFFSET floor(p), and interpolates the same
  way, so both stores give the same number.
* `consecutive_failures`: failed records after the newest successful one in the window (all the
  failures of the window when it has no success), records ordered by (tested_at, id).

Claims (`claim_due`) are shared by the in-process scheduler and the Celery dispatcher; see
`rivergen.health.cadence` for the timing rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, false, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.datasources.models import DataSource
from rivergen.health.cadence import lease_seconds, next_due_after
from rivergen.health.models import HealthRecord

PERCENTILE = 0.95
# Claims are bookkeeping, not a change by a user: keep `updated_at` (it has an onupdate default).
_UNCHANGED = DataSource.updated_at


async def add_record(session: AsyncSession, record: HealthRecord) -> None:
    """Append a health record in the caller's transaction."""
    session.add(record)
    await session.flush()


# ----- history and summary -----------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One data source's records with `since <= tested_at < until` (either bound optional)."""

    data_source_id: int
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """WHERE conditions selecting the window (a range on the covering index)."""
        conditions: list[ColumnElement[bool]] = [HealthRecord.data_source_id == self.data_source_id]
        if self.since is not None:
            conditions.append(HealthRecord.tested_at >= self.since)
        if self.until is not None:
            conditions.append(HealthRecord.tested_at < self.until)
        return conditions


@dataclass(frozen=True)
class Position:
    """A record's place in the (tested_at, id) order: what a history cursor points at."""

    tested_at: datetime
    id: int


@dataclass(frozen=True)
class Summary:
    """The window's statistics as the store computed them."""

    checks: int
    successful: int
    failed: int
    avg_response_time_ms: float | None
    p95_response_time_ms: float | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    consecutive_failures: int


def _after(position: Position) -> ColumnElement[bool]:
    # Written as a range plus a residual filter (not a row value) so both planners seek the index.
    return and_(
        HealthRecord.tested_at >= position.tested_at,
        or_(HealthRecord.tested_at > position.tested_at, HealthRecord.id > position.id),
    )


def _before(position: Position) -> ColumnElement[bool]:
    return and_(
        HealthRecord.tested_at <= position.tested_at,
        or_(HealthRecord.tested_at < position.tested_at, HealthRecord.id < position.id),
    )


async def history_page(
    session: AsyncSession, window: Window, limit: int, before: Position | None = None
) -> list[HealthRecord]:
    """Up to `limit` records of the window, newest first, older than `before` when given."""
    query = select(HealthRecord).where(*window.conditions())
    if before is not None:
        query = query.where(_before(before))
    query = query.order_by(HealthRecord.tested_at.desc(), HealthRecord.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def summarize(session: AsyncSession, window: Window) -> Summary:
    """The window's summary, computed by the store (see the module docstring for definitions)."""
    ok = HealthRecord.connection_successful
    response_time = HealthRecord.response_time_ms
    last_success_query = (
        select(HealthRecord.tested_at, HealthRecord.id)
        .where(*window.conditions(), ok)
        .order_by(HealthRecord.tested_at.desc(), HealthRecord.id.desc())
        .limit(1)
    )
    last_success = (await session.execute(last_success_query)).first()
    streak_filter: ColumnElement[bool] = not_(ok)
    if last_success is not None:
        streak_filter = and_(not_(ok), _after(Position(last_success[0], last_success[1])))

    postgres = session.get_bind().dialect.name == "postgresql"
    columns = [
        func.count().label("checks"),
        func.count().filter(ok).label("successful"),
        func.avg(response_time).filter(ok).label("avg_ms"),
        func.count(response_time).filter(ok).label("timed"),
        func.max(HealthRecord.tested_at).filter(ok).label("last_success_at"),
        func.max(HealthRecord.tested_at).filter(not_(ok)).label("last_failure_at"),
        func.count().filter(streak_filter).label("streak"),
    ]
    if postgres:
        columns.append(
            func.percentile_cont(PERCENTILE).within_group(response_time).filter(ok).label("p95_ms")
        )
    row = (await session.execute(select(*columns).where(*window.conditions()))).one()
    p95: float | None
    if postgres:
        p95 = None if row.p95_ms is None else float(row.p95_ms)
    else:
        p95 = await _percentile_by_offset(session, window, int(row.timed))
    checks = int(row.checks)
    successful = int(row.successful)
    return Summary(
        checks=checks,
        successful=successful,
        failed=checks - successful,
        avg_response_time_ms=None if row.avg_ms is None else float(row.avg_ms),
        p95_response_time_ms=p95,
        last_success_at=row.last_success_at,
        last_failure_at=row.last_failure_at,
        consecutive_failures=int(row.streak),
    )


async def _percentile_by_offset(session: AsyncSession, window: Window, count: int) -> float | None:
    """percentile_cont(0.95) over the successful response times, for stores without it."""
    if count == 0:
        return None
    position = PERCENTILE * (count - 1)
    lower = math.floor(position)
    query = (
        select(HealthRecord.response_time_ms)
        .where(
            *window.conditions(),
            HealthRecord.connection_successful,
            HealthRecord.response_time_ms.is_not(None),
        )
        .order_by(HealthRecord.response_time_ms)
        .limit(2)
        .offset(lower)
    )
    values = [float(v) for v in (await session.execute(query)).scalars() if v is not None]
    if not values:
        return None
    low = values[0]
    high = values[1] if len(values) > 1 else low
    return low + (position - lower) * (high - low)


# ----- retention -------------------------------------------------------------------------------


async def purge_before(session: AsyncSession, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` records older than `cutoff`; returns how many went."""
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


# ----- claims on scheduled checks ----------------------------------------------------------------


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
