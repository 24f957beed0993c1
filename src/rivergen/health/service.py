"""Health use cases: the history report, scheduled checks and retention. Knows nothing of HTTP.

`ScheduledChecks` is what the in-process scheduler and the Celery tasks both call: claim due
checks, run one claimed check with the same probe as the manual test, purge old records.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.audit.repository import purge_events_before
from rivergen.core.deadline import Deadline
from rivergen.core.errors import InvalidInput, NotFound, ServiceBusy
from rivergen.core.time_bounds import clamped_utc
from rivergen.datasources.repository import DataSourceRepository
from rivergen.datasources.service import NOT_FOUND, DataSourceService
from rivergen.health import claims_repository as claims_repo
from rivergen.health import repository as repo
from rivergen.health import retention_repository as retention_repo
from rivergen.health.cadence import lease_seconds, scheduled_timeout
from rivergen.health.claims_repository import Claim
from rivergen.health.metrics import (
    HEALTH_RECORDS_PURGED,
    SCHEDULED_CHECKS,
    SCHEDULED_CLAIMED,
    SCHEDULED_IN_FLIGHT,
    SCHEDULED_LATENESS,
)
from rivergen.health.repository import Position, Window
from rivergen.health.schemas import HealthOut, HealthRecordOut, HealthSummaryOut
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role
from rivergen.probing.service import ConnectionTestService
from rivergen.store.base import utcnow

log = structlog.get_logger(__name__)

SCHEDULE_TRIGGER = "schedule"
PURGE_BATCH = 5000


# ----- the history report ------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthQuery:
    """What `GET /data-sources/{id}/health` asks for."""

    limit: int = 50
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None


async def health_report(
    session: AsyncSession, caller: Caller, data_source_id: int, query: HealthQuery
) -> HealthOut:
    """Status, summary over the window and a page of history of a source the caller may read."""
    row = await DataSourceRepository(session, caller.organization_ids).get(data_source_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    caller.require(Role.VIEWER, row.organization_id)
    since, until = clamped_utc(query.since), clamped_utc(query.until)
    if since is not None and until is not None and since >= until:
        raise InvalidInput(
            "The time window is empty",
            [{"field": "query.until", "message": "Must be later than since", "type": "window"}],
        )
    before = decode_cursor(query.cursor) if query.cursor else None
    window = Window(data_source_id, since, until)
    summary = await repo.summarize(session, window)
    rows = await repo.history_page(session, window, query.limit + 1, before)
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        next_cursor = encode_cursor(Position(rows[-1].tested_at, rows[-1].id))
    return HealthOut(
        data_source_id=row.id,
        status=row.status,
        summary=_summary_out(summary),
        history=[_record_out(r) for r in rows],
        next_cursor=next_cursor,
    )


def encode_cursor(position: Position) -> str:
    """An opaque cursor pointing just after `position` in newest-first order."""
    raw = f"{position.tested_at.astimezone(UTC).isoformat()}|{position.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor points at, or VALIDATION_ERROR for anything not made by us."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        tested_at = datetime.fromisoformat(stamp)
        record_id = int(ident)
        if tested_at.tzinfo is None or not 0 < record_id < 2**63:
            raise ValueError("not one of our cursors")
        return Position(tested_at.astimezone(UTC), record_id)
    except (ValueError, UnicodeDecodeError, binascii.Error, OverflowError):
        raise InvalidInput(
            "Invalid cursor",
            [
                {
                    "field": "query.cursor",
                    "message": "Not a cursor returned by this endpoint",
                    "type": "cursor",
                }
            ],
        ) from None


def _summary_out(summary: repo.Summary) -> HealthSummaryOut:
    uptime = None
    if summary.checks:
        uptime = round(summary.successful * 100.0 / summary.checks, 2)
    return HealthSummaryOut(
        checks=summary.checks,
        successful=summary.successful,
        failed=summary.failed,
        uptime_percent=uptime,
        avg_response_time_ms=_round(summary.avg_response_time_ms),
        p95_response_time_ms=_round(summary.p95_response_time_ms),
        last_success_at=summary.last_success_at,
        last_failure_at=summary.last_failure_at,
        consecutive_failures=summary.consecutive_failures,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _record_out(record: Any) -> HealthRecordOut:
    # The store's typed columns need no validation (fifty of them per page, on every request).
    return HealthRecordOut.model_construct(
        tested_at=record.tested_at,
        connection_successful=record.connection_successful,
        response_time_ms=record.response_time_ms,
        error_code=record.error_code,
        error_message=record.error_message,
        error_phase=record.error_phase,
        ssh_tunnel_established=record.ssh_tunnel_established,
        database_version=record.database_version,
        triggered_by=record.triggered_by,
        user_id=record.user_id,
    )


# ----- scheduled checks and retention ------------------------------------------------------------


class ScheduledChecks:
    """Claims due checks, runs them like a manual test, purges expired history."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        data_sources: DataSourceService,
        tests: ConnectionTestService,
        default_timeout_seconds: int,
        retention_days: int,
        audit_retention_days: int | None = None,
    ) -> None:
        self._sessions = sessions
        self._data_sources = data_sources
        self._tests = tests
        self._default_timeout = default_timeout_seconds
        self._retention = timedelta(days=retention_days)
        # None keeps audit events forever (callers that only purge health history).
        self._audit_retention = (
            None if audit_retention_days is None else timedelta(days=audit_retention_days)
        )

    async def claim(
        self, limit: int, lookahead_seconds: float, now: datetime | None = None
    ) -> list[Claim]:
        """Claim up to `limit` checks due within `lookahead_seconds`; each starts when due."""
        now = now or utcnow()
        horizon = now + timedelta(seconds=lookahead_seconds)
        async with self._sessions() as session, session.begin():
            claims = await claims_repo.claim_due(session, now, horizon, limit)
        SCHEDULED_CLAIMED.inc(len(claims))
        return claims

    async def run(self, claim: Claim) -> str:
        """Run one claimed check at its due time; returns the result label of the metric."""
        SCHEDULED_IN_FLIGHT.inc()
        try:
            result = await self._run(claim)
        finally:
            SCHEDULED_IN_FLIGHT.dec()
        SCHEDULED_CHECKS.labels(result).inc()
        return result

    async def _run(self, claim: Claim) -> str:
        delay = (claim.due_at - utcnow()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        started = utcnow()
        # Renewing the claim at the start gives the check a whole lease from now on: it cannot
        # overlap the next check of the source, and it proves nobody took the source over.
        token = started + timedelta(seconds=lease_seconds(claim.interval_seconds))
        async with self._sessions() as session, session.begin():
            held = await claims_repo.start_claimed_check(session, claim, started, token)
        if not held:
            log.info("scheduled_check_lost", data_source_id=claim.data_source_id)
            return "lost"
        SCHEDULED_LATENESS.observe(max(0.0, (started - claim.due_at).total_seconds()))
        try:
            return await self._check(claim)
        finally:
            await self._release(claim.data_source_id, token)

    async def _check(self, claim: Claim) -> str:
        async with self._sessions() as session:
            row = await claims_repo.source_for_check(session, claim.data_source_id)
        if row is None or row.health_check_interval_seconds is None:
            return "skipped"
        timeout = scheduled_timeout(claim.interval_seconds, self._default_timeout)
        try:
            config = self._data_sources.decrypted_config(row)
            result = await self._tests.probe_and_record(
                claim.data_source_id,
                config,
                None,
                Deadline.after(timeout),
                trigger=SCHEDULE_TRIGGER,
                user_id=None,
            )
        except ServiceBusy:
            # Manual tests fill the pool: they go first, this check waits for its next turn.
            log.warning("scheduled_check_busy", data_source_id=claim.data_source_id)
            return "busy"
        except Exception:
            log.exception("scheduled_check_error", data_source_id=claim.data_source_id)
            return "error"
        return "ok" if result.connection_successful else "failed"

    async def _release(self, data_source_id: int, token: datetime) -> None:
        try:
            async with self._sessions() as session, session.begin():
                await claims_repo.release_claim(session, data_source_id, token)
        except Exception:
            # The lease runs out by itself; the next check is only delayed until then.
            log.warning("scheduled_check_release_failed", data_source_id=data_source_id)

    async def purge(self, now: datetime | None = None, batch: int = PURGE_BATCH) -> int:
        """Delete records older than the retention period, `batch` rows per transaction."""
        cutoff = (now or utcnow()) - self._retention
        total = 0
        while True:
            async with self._sessions() as session, session.begin():
                deleted = await retention_repo.purge_before(session, cutoff, batch)
            if deleted is None:
                log.info("health_purge_running_elsewhere")
                break
            total += deleted
            HEALTH_RECORDS_PURGED.inc(deleted)
            if deleted < batch:
                break
            await asyncio.sleep(0)  # let other work in between batches
        if total:
            log.info("health_records_purged", deleted=total, cutoff=cutoff.isoformat())
        await self.purge_audit(now, batch)
        return total

    async def purge_audit(self, now: datetime | None = None, batch: int = PURGE_BATCH) -> int:
        """Delete audit events older than RIVERGEN_AUDIT_RETENTION_DAYS, in batches."""
        if self._audit_retention is None:
            return 0
        cutoff = (now or utcnow()) - self._audit_retention
        total = 0
        while True:
            async with self._sessions() as session, session.begin():
                deleted = await purge_events_before(session, cutoff, batch)
            total += deleted
            if deleted < batch:
                break
            await asyncio.sleep(0)
        if total:
            log.info("audit_events_purged", deleted=total, cutoff=cutoff.isoformat())
        return total
