"""Writing test outcomes after the answer: status and timestamps, health record, audit event."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.audit.repository import add_event
from rivergen.datasources import repository as data_source_rows
from rivergen.datasources.config import SourceConfig
from rivergen.datasources.models import DataSource
from rivergen.datasources.service import DataSourceService
from rivergen.health.models import HealthRecord
from rivergen.health.repository import add_records
from rivergen.probing.runner import ProbeResult
from rivergen.store.outage import describe, store_conflict, store_unreachable

log = structlog.get_logger(__name__)
# A reader waits at most this long for outstanding writes, then reads what is there.
_SETTLE_LIMIT_SECONDS = 10.0
# While the store cannot be reached, a batch is retried after each of these: ~1 min in all (a
# restart or a failover, not an outage of hours, which the log reports), and at most 5 s
# between tries, so outcomes appear within seconds of the store's return.
_RETRY_DELAYS_SECONDS = (0.5, 1.0, 2.0, 3.0, *(5.0,) * 10)
RETRY_WINDOW_SECONDS = sum(_RETRY_DELAYS_SECONDS)
# Shutdown waits for the whole retry window plus a last try, so that an outcome answered before
# a failover is written when the store returns within it, as it would be without the shutdown.
_LAST_TRY_SECONDS = 10.0
SHUTDOWN_LIMIT_SECONDS = RETRY_WINDOW_SECONDS + _LAST_TRY_SECONDS


# Called in the transaction that writes a batch, with each written source and its outcome
# (the alert state machine writes its events and outbox rows there: same commit as the status).
OutcomeObserver = Callable[[AsyncSession, Sequence[tuple[DataSource, "Outcome"]]], Awaitable[None]]


def _new_future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass
class Outcome:
    """A finished test to write; `tested` is the configuration that was probed."""

    data_source_id: int
    result: ProbeResult
    trigger: str
    user_id: int | None
    tested: SourceConfig | None
    token_id: int | None = None
    written: asyncio.Future[None] = field(default_factory=_new_future)


class ResultRecorder:
    """One writer task that writes outcomes in arrival order, a batch per transaction.

    The answer of a test does not wait for the store: the probe's result is final when the
    probe ends, and writing it costs as much as the rest of the request. Readers of what a test
    writes (a data source, its health, the audit log) call `settled` first, so a client that
    reads after its answer sees the outcome; concurrent tests share one commit. While the store
    cannot be reached the batch is retried for about a minute.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], data_sources: DataSourceService
    ) -> None:
        self._sessions = sessions
        self._data_sources = data_sources
        self._queue: list[Outcome] = []
        self._pending: set[asyncio.Future[None]] = set()
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        # Set while a batch waits to retry an unreachable store: readers then need not wait
        # for it (their own read would meet the same outage).
        self._store_unreachable = False
        self.observers: list[OutcomeObserver] = []

    def submit(self, outcome: Outcome) -> asyncio.Future[None]:
        """Queue an outcome; the future is done once it is written (or failed, logged)."""
        if self._writer is None or self._writer.done():
            self._wakeup = asyncio.Event()
            self._writer = asyncio.create_task(self._run(self._wakeup), name="result-recorder")
        assert self._wakeup is not None
        self._queue.append(outcome)
        self._pending.add(outcome.written)
        outcome.written.add_done_callback(self._pending.discard)
        self._wakeup.set()
        return outcome.written

    async def settled(self, limit_seconds: float = _SETTLE_LIMIT_SECONDS) -> None:
        """Wait (at most `limit_seconds`) until every outcome submitted so far is written."""
        if not self._store_unreachable:
            await self._wait_pending(limit_seconds)

    async def _wait_pending(self, limit_seconds: float) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=limit_seconds)

    async def close(self, limit_seconds: float = SHUTDOWN_LIMIT_SECONDS) -> None:
        """Write what is queued (waiting at most `limit_seconds`), then stop the writer."""
        await self._wait_pending(limit_seconds)
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        unwritten = [f for f in self._pending if not f.done()]
        if unwritten:
            # The store stayed out of reach until shutdown: say so rather than lose silently.
            log.error("test_records_unwritten", outcomes=len(unwritten))
            for written in unwritten:
                written.set_result(None)
        self._queue = []

    async def _run(self, wakeup: asyncio.Event) -> None:
        while True:
            await wakeup.wait()
            wakeup.clear()
            batch, self._queue = self._queue, []
            if batch:
                await self._write_batch(batch)

    async def _write_batch(self, batch: list[Outcome]) -> None:
        for retry_in in (*_RETRY_DELAYS_SECONDS, None):
            try:
                await self.write(batch)
            except Exception as exc:
                if store_conflict(exc) and retry_in is not None:
                    # A deadlock or serialization failure with another writer (a replica): the
                    # store rolled this one back, and the same batch succeeds when run again.
                    log.info("test_record_conflict_retry", error=describe(exc), outcomes=len(batch))
                    await asyncio.sleep(random.uniform(0.05, 0.25))
                    continue
                if store_unreachable(exc) and retry_in is not None:
                    # A store restarting or failing over: the outcome waits, it is not lost.
                    log.warning(
                        "test_record_retry",
                        error=describe(exc),
                        outcomes=len(batch),
                        retry_in_seconds=retry_in,
                    )
                    self._store_unreachable = True
                    try:
                        await asyncio.sleep(retry_in)
                    finally:
                        self._store_unreachable = False
                    continue
                if len(batch) > 1 and not store_unreachable(exc):
                    # One bad outcome must not cost the others theirs: write them one by one.
                    for outcome in batch:
                        await self._write_batch([outcome])
                    return
                log.exception("test_record_failed", data_source_ids=_ids(batch))
            break
        for outcome in batch:
            if not outcome.written.done():
                outcome.written.set_result(None)

    async def write(self, outcomes: Sequence[Outcome]) -> None:
        """Write outcomes in one transaction (raises on store errors)."""
        async with self._sessions() as session, session.begin():
            rows = await data_source_rows.get_many_any(
                session, (outcome.data_source_id for outcome in outcomes)
            )
            records = []
            applied: list[tuple[DataSource, Outcome]] = []
            for outcome in outcomes:
                row = rows.get(outcome.data_source_id)
                if row is not None and self._still_tested(row, outcome):
                    current = _not_older(row, outcome)
                    records.append(await self._apply(session, row, outcome))
                    if current:  # observers (alerts) follow the source, not late history
                        applied.append((row, outcome))
            # The audit events and the status updates go in the same flush as the records.
            await add_records(session, records)
            for observer in self.observers:
                await observer(session, applied)

    def _still_tested(self, row: DataSource, outcome: Outcome) -> bool:
        # A change while the test ran reset the status, and the result is not about the new
        # configuration: nothing is written. (A deleted source has no row: nothing either.)
        tested = outcome.tested
        if tested is not None and self._data_sources.decrypted_config(row) != tested:
            log.info("test_result_outdated", data_source_id=outcome.data_source_id)
            return False
        return True

    async def _apply(
        self, session: AsyncSession, row: DataSource, outcome: Outcome
    ) -> HealthRecord:
        result = outcome.result
        if not _not_older(row, outcome):
            # A slow test that answered after a later one: history keeps it, but the source
            # shows the latest test, so its status and timestamps never move back.
            log.info("test_result_older_than_last", data_source_id=outcome.data_source_id)
            await self._audit(session, row, outcome)
            return _health_record(row.organization_id, outcome)
        row.status = "active" if result.connection_successful else "failed"
        row.last_tested_at = result.tested_at
        row.last_error_code = None if result.error_code is None else str(result.error_code)
        row.last_error_message = result.error_message
        row.last_error_phase = None if result.error_phase is None else str(result.error_phase)
        if result.connection_successful:
            row.last_connected_at = result.tested_at
            row.last_response_time_ms = result.response_time_ms
            row.database_version = result.database_version
        if result.ssh_host_key_fingerprint:
            row.ssh_host_key_fingerprint = result.ssh_host_key_fingerprint
        await self._audit(session, row, outcome)
        return _health_record(row.organization_id, outcome)

    async def _audit(self, session: AsyncSession, row: DataSource, outcome: Outcome) -> None:
        result = outcome.result
        if outcome.trigger == "manual":
            await add_event(
                session,
                "data_source.test",
                organization_id=row.organization_id,
                actor_user_id=outcome.user_id,
                actor_token_id=outcome.token_id,
                target_type="data_source",
                target_id=outcome.data_source_id,
                outcome="success" if result.connection_successful else "failure",
                details={
                    "error_code": None if result.error_code is None else str(result.error_code)
                },
                # Written after the answer, so "now" could follow the caller's next change;
                # the test's own time keeps the log in the order things happened.
                occurred_at=result.tested_at,
            )


def _not_older(row: DataSource, outcome: Outcome) -> bool:
    """Whether the outcome is at least as recent as the source's last recorded test."""
    return row.last_tested_at is None or outcome.result.tested_at >= row.last_tested_at


def _ids(batch: Sequence[Outcome]) -> list[int]:
    return sorted({outcome.data_source_id for outcome in batch})


def _health_record(organization_id: int, outcome: Outcome) -> HealthRecord:
    result = outcome.result
    return HealthRecord(
        data_source_id=outcome.data_source_id,
        organization_id=organization_id,
        tested_at=result.tested_at,
        connection_successful=result.connection_successful,
        response_time_ms=result.response_time_ms,
        error_code=None if result.error_code is None else str(result.error_code),
        error_message=result.error_message,
        error_phase=None if result.error_phase is None else str(result.error_phase),
        ssh_tunnel_established=result.ssh_tunnel_established,
        database_version=result.database_version,
        triggered_by=outcome.trigger,
        user_id=outcome.user_id,
    )
