"""Queries of health records: appending them, their history and their summary.

Summary statistics are computed by the store, over one data source's records in a time window:

* `checks`, `successful`, `failed`: counts of records in the window.
* `avg_response_time_ms`, `p95_response_time_ms`: over the successful checks only (a failed
  check's duration measures the failure, a timeout for instance, not the database).
* p95 is the continuous percentile with linear interpolation, as PostgreSQL's
  `percentile_cont(0.95)` defines it: with the n response times sorted ascending v[0..n-1],
  p = 0.95 * (n - 1), result = v[floor(p)] + (p - floor(p)) * (v[ceil(p)] - v[floor(p)]).
* `consecutive_failures`: failed records after the newest successful one in the window (all the
  failures of the window when it has no success), records ordered by (tested_at, id).

How, so that a source checked every 2 s (a million records a month) still answers in
milliseconds:

* Counts and the mean add up `health_rollups` (per source and UTC hour, kept by triggers) for
  the whole hours of the window, and the records themselves for the partial hours at its edges.
* The last success and failure, and the failures since, are seeks on the index
  (data_source_id, connection_successful, tested_at).
* p95 over all history (no since/until) is read from `health_latencies` (per source, how many
  successful checks took each response time, kept by triggers): a running total from the top
  finds v[floor(p)] and v[ceil(p)]. Over a window it is computed from the window's records:
  `percentile_cont` on PostgreSQL; on SQLite, which has no such aggregate, the two values around
  the position with ORDER BY ... LIMIT 2 OFFSET floor(p), interpolated the same way. The three
  give the same number.

Claims on scheduled checks are in `rivergen.health.claims_repository`, the purge of old records
in `rivergen.health.retention_repository`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.health.models import HealthLatency, HealthRecord, HealthRollup

PERCENTILE = 0.95


async def add_record(session: AsyncSession, record: HealthRecord) -> None:
    """Append a health record in the caller's transaction."""
    await add_records(session, [record])


async def add_records(session: AsyncSession, records: Sequence[HealthRecord]) -> None:
    """Append health records in the caller's transaction, in one flush."""
    session.add_all(records)
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


HISTORY_COLUMNS = (
    HealthRecord.id,
    HealthRecord.tested_at,
    HealthRecord.connection_successful,
    HealthRecord.response_time_ms,
    HealthRecord.error_code,
    HealthRecord.error_message,
    HealthRecord.error_phase,
    HealthRecord.ssh_tunnel_established,
    HealthRecord.database_version,
    HealthRecord.triggered_by,
    HealthRecord.user_id,
)
_NEWEST_FIRST = (HealthRecord.tested_at.desc(), HealthRecord.id.desc())
# Statements of the default request (all history, first page) are built once: building and
# caching a statement costs more than running it against the indexes.
_FIRST_PAGE = (
    select(*HISTORY_COLUMNS)
    .where(HealthRecord.data_source_id == bindparam("source_id"))
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("limit"))
)


async def history_page(
    session: AsyncSession, window: Window, limit: int, before: Position | None = None
) -> list[Any]:
    """Up to `limit` records of the window (HISTORY_COLUMNS), newest first, older than `before`
    when given."""
    if before is None and window.since is None and window.until is None:
        params = {"source_id": window.data_source_id, "limit": limit}
        return list((await session.execute(_FIRST_PAGE, params)).all())
    query = select(*HISTORY_COLUMNS).where(*window.conditions())
    if before is not None:
        query = query.where(_before(before))
    query = query.order_by(*_NEWEST_FIRST).limit(limit)
    return list((await session.execute(query)).all())


async def summarize(session: AsyncSession, window: Window) -> Summary:
    """The window's summary, computed by the store (see the module docstring for how)."""
    p95: float | None
    if window.since is None and window.until is None:
        counts, last_success, last_failure, p95 = await _all_history(session, window)
    else:
        row = (await session.execute(select(*_newest_outcomes(window.conditions())))).one()
        last_success, last_failure = _positions(row)
        counts = await _counts(session, window)
        if session.get_bind().dialect.name == "postgresql":
            value = await session.scalar(
                select(
                    func.percentile_cont(PERCENTILE)
                    .within_group(HealthRecord.response_time_ms)
                    .filter(HealthRecord.connection_successful)
                ).where(*window.conditions())
            )
            p95 = None if value is None else float(value)
        else:
            p95 = await _percentile_by_offset(session, window, counts.timed)
    streak = 0
    if last_failure is not None and (
        last_success is None or last_failure.tested_at >= last_success.tested_at
    ):
        failures_after = [HealthRecord.connection_successful == false(), *window.conditions()]
        if last_success is not None:
            failures_after.append(_after(last_success))
        streak = int(await session.scalar(select(func.count()).where(*failures_after)) or 0)
    return Summary(
        checks=counts.checks,
        successful=counts.successful,
        failed=counts.checks - counts.successful,
        avg_response_time_ms=counts.response_ms_sum / counts.timed if counts.timed else None,
        p95_response_time_ms=p95,
        last_success_at=None if last_success is None else last_success.tested_at,
        last_failure_at=None if last_failure is None else last_failure.tested_at,
        consecutive_failures=streak,
    )


def _newest(successful: bool, column: Any, conditions: list[ColumnElement[bool]]) -> Any:
    outcome = true() if successful else false()
    return (
        select(column)
        .where(HealthRecord.connection_successful == outcome, *conditions)
        .order_by(*_NEWEST_FIRST)
        .limit(1)
        .scalar_subquery()
    )


def _newest_outcomes(conditions: list[ColumnElement[bool]]) -> list[Any]:
    """Time and id of the newest success, then of the newest failure."""
    return [
        _newest(True, HealthRecord.tested_at, conditions),
        _newest(True, HealthRecord.id, conditions),
        _newest(False, HealthRecord.tested_at, conditions),
        _newest(False, HealthRecord.id, conditions),
    ]


def _positions(row: Any) -> tuple[Position | None, Position | None]:
    success = None if row[0] is None else Position(row[0], row[1])
    failure = None if row[2] is None else Position(row[2], row[3])
    return success, failure


def _all_history_statement(dialect: str) -> Any:
    """One statement for the default summary (all history), three one-row parts joined: the
    newest outcomes, the rollup sums, and the two values around the p95 position read from the
    top of the latency counts in one window pass.

    With n timed successes, p = 0.95 (n - 1) and v[k] the k-th smallest time, v[k] is the
    largest distinct time whose running count from the top passes n - 1 - k.
    """
    outcomes = select(
        *_newest_outcomes([HealthRecord.data_source_id == bindparam("source_id")])
    ).subquery()
    sums = (
        select(
            func.sum(HealthRollup.checks),
            func.sum(HealthRollup.successful),
            func.sum(HealthRollup.timed),
            func.sum(HealthRollup.response_ms_sum),
        )
        .where(HealthRollup.data_source_id == bindparam("source_id"))
        .subquery()
    )
    ranked = (
        select(
            HealthLatency.response_time_ms.label("value"),
            func.sum(HealthLatency.checks)
            .over(order_by=HealthLatency.response_time_ms.desc(), rows=(None, 0))
            .label("running"),
            func.sum(HealthLatency.checks).over().label("total"),
        )
        .where(HealthLatency.data_source_id == bindparam("source_id"))
        .subquery()
    )
    position = literal(PERCENTILE, Float) * (ranked.c.total - 1)
    # floor(): PostgreSQL's CAST to integer rounds; SQLite's truncates (and may lack floor()).
    lower = func.floor(position) if dialect == "postgresql" else cast(position, Integer)
    values = select(
        func.max(ranked.c.total),
        func.max(ranked.c.value).filter(ranked.c.running > ranked.c.total - 1 - lower),
        # v[floor(p) + 1]; v[n - 1] when n = 1
        func.max(ranked.c.value).filter(ranked.c.running > ranked.c.total - 2 - lower),
    ).subquery()
    return select(*outcomes.c, *sums.c, *values.c).select_from(
        outcomes.join(sums, true()).join(values, true())
    )


_ALL_HISTORY: dict[str, Any] = {}


async def _all_history(
    session: AsyncSession, window: Window
) -> tuple[_Counts, Position | None, Position | None, float | None]:
    dialect = session.get_bind().dialect.name
    statement = _ALL_HISTORY.get(dialect)
    if statement is None:
        statement = _ALL_HISTORY[dialect] = _all_history_statement(dialect)
    row = (await session.execute(statement, {"source_id": window.data_source_id})).one()
    counts = _Counts()
    counts.add(*row[4:8])
    timed, low, high = row[8], row[9], row[10]
    p95 = None
    if timed and low is not None:
        position = PERCENTILE * (int(timed) - 1)
        lower = math.floor(position)
        low = float(low)
        high = low if high is None else float(high)
        p95 = low + (position - lower) * (high - low)
    success, failure = _positions(row)
    return counts, success, failure, p95


@dataclass
class _Counts:
    checks: int = 0
    successful: int = 0
    timed: int = 0
    response_ms_sum: float = 0.0

    def add(self, checks: Any, successful: Any, timed: Any, response_ms_sum: Any) -> None:
        self.checks += int(checks or 0)
        self.successful += int(successful or 0)
        self.timed += int(timed or 0)
        self.response_ms_sum += float(response_ms_sum or 0.0)


async def _counts(session: AsyncSession, window: Window) -> _Counts:
    """Counts over the window: whole UTC hours from the rollups, the partial hours at its edges
    from the records themselves."""
    since, until = window.since, window.until
    first_hour = None if since is None else _hour_ceil(since)
    end_hour = None if until is None else _hour_floor(until)
    counts = _Counts()
    if first_hour is not None and end_hour is not None and first_hour >= end_hour:
        counts.add(*await _raw_counts(session, window))  # under two hours: records only
        return counts
    rollup = HealthRollup
    hours = select(
        func.sum(rollup.checks),
        func.sum(rollup.successful),
        func.sum(rollup.timed),
        func.sum(rollup.response_ms_sum),
    ).where(rollup.data_source_id == window.data_source_id)
    if first_hour is not None:
        hours = hours.where(rollup.bucket >= first_hour)
    if end_hour is not None:
        hours = hours.where(rollup.bucket < end_hour)
    counts.add(*(await session.execute(hours)).one())
    if since is not None and first_hour is not None and since < first_hour:
        edge = Window(window.data_source_id, since, first_hour)
        counts.add(*await _raw_counts(session, edge))
    if until is not None and end_hour is not None and end_hour < until:
        edge = Window(window.data_source_id, end_hour, until)
        counts.add(*await _raw_counts(session, edge))
    return counts


async def _raw_counts(session: AsyncSession, window: Window) -> tuple[Any, ...]:
    ok = HealthRecord.connection_successful
    query = select(
        func.count(),
        func.count().filter(ok),
        func.count(HealthRecord.response_time_ms).filter(ok),
        func.sum(HealthRecord.response_time_ms).filter(ok),
    ).where(*window.conditions())
    return tuple((await session.execute(query)).one())


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(moment: datetime) -> datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def _interpolate(position: float, lower: int, values: list[float]) -> float | None:
    if not values:
        return None
    low = values[0]
    high = values[1] if len(values) > 1 else low
    return low + (position - lower) * (high - low)


async def _percentile_by_offset(session: AsyncSession, window: Window, count: int) -> float | None:
    """percentile_cont(0.95) over the window's timed successes, for stores without it."""
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
    return _interpolate(position, lower, values)
