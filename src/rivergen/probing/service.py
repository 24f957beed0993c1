"""The connection-test use case: authorize, limit, share concurrent probes, record the outcome."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.audit.repository import add_event
from rivergen.core.deadline import Deadline
from rivergen.core.errors import RateLimited, ServiceBusy
from rivergen.datasources import repository as data_source_rows
from rivergen.datasources.config import SourceConfig
from rivergen.datasources.service import DataSourceService
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role
from rivergen.probing.metrics import TEST_SECONDS, TESTS
from rivergen.probing.pool import PoolBusy
from rivergen.probing.recorder import Outcome, ResultRecorder
from rivergen.probing.runner import Prober, ProbeResult
from rivergen.probing.schemas import (
    SecurityOut,
    TestRequest,
    TestResultOut,
    UnsavedTestRequest,
)
from rivergen.probing.single_flight import SingleFlight
from rivergen.security.throttle import SlidingWindow

# The data source's updated_at is part of the key: a test asked for after a change must not
# join a probe of the configuration before it.
FlightKey = tuple[int, str | None, int, datetime]


class TestRateLimits:
    """Tests per minute per organization and per user."""

    __test__ = False

    def __init__(self, per_organization: int, per_user: int) -> None:
        self.per_organization = SlidingWindow(per_organization, 60)
        self.per_user = SlidingWindow(per_user, 60)

    def check(self, user_id: int, organization_id: int) -> None:
        """Count one test, or refuse with RATE_LIMITED and when to retry."""
        wait = self.per_user.hit(f"user:{user_id}")
        if wait is None:
            wait = self.per_organization.hit(f"org:{organization_id}")
        if wait is not None:
            raise RateLimited("Too many connection tests; slow down", retry_after=wait)


class ConnectionTestService:
    """Tests saved and unsaved data sources and keeps their status and history."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        data_sources: DataSourceService,
        prober: Prober,
        limits: TestRateLimits,
    ) -> None:
        self._sessions = sessions
        self._data_sources = data_sources
        self.prober = prober
        self._limits = limits
        self._flights: SingleFlight[FlightKey, ProbeResult] = SingleFlight()
        self.recorder = ResultRecorder(sessions, data_sources)

    async def test_saved(
        self, caller: Caller, data_source_id: int, body: TestRequest, deadline: Deadline
    ) -> TestResultOut:
        """Test a saved data source (member and up) and record the outcome before `deadline`."""
        async with self._sessions() as session:
            stored = await self._data_sources.load_for_test(session, caller, data_source_id)
        self._limits.check(caller.user.id, stored.row.organization_id)
        key: FlightKey = (
            data_source_id,
            body.test_query,
            body.timeout_seconds,
            stored.row.updated_at,
        )
        user_id, token_id = caller.actor_user_id, caller.token_id
        # No await between this check and `do`: a caller that finds the key joins that run.
        joined = key in self._flights
        result = await self._flights.do(
            key,
            lambda: self.probe_and_record(
                data_source_id,
                stored.config,
                body.test_query,
                deadline,
                trigger="manual",
                user_id=user_id,
                token_id=token_id,
                wait_for_record=False,
            ),
        )
        if joined:
            # The run records the caller that started it; whoever joined it tested too.
            async with self._sessions() as session, session.begin():
                await add_event(
                    session,
                    "data_source.test",
                    organization_id=stored.row.organization_id,
                    actor_user_id=user_id,
                    actor_token_id=token_id,
                    target_type="data_source",
                    target_id=data_source_id,
                    outcome="success" if result.connection_successful else "failure",
                    details={
                        "error_code": None if result.error_code is None else str(result.error_code),
                        "joined_running_test": True,
                    },
                )
        return to_out(data_source_id, result)

    async def test_by_id(
        self, data_source_id: int, query: str | None, timeout_seconds: int, trigger: str
    ) -> ProbeResult | None:
        """Test a saved data source on behalf of the system (CLI, scheduler); None if absent."""
        async with self._sessions() as session:
            row = await data_source_rows.get_any(session, data_source_id)
            if row is None:
                return None
            config = self._data_sources.decrypted_config(row)
        return await self.probe_and_record(
            data_source_id, config, query, Deadline.after(timeout_seconds), trigger, None
        )

    async def test_unsaved(
        self, caller: Caller, body: UnsavedTestRequest, deadline: Deadline
    ) -> TestResultOut:
        """Test a configuration without saving anything (member and up)."""
        organization_id = caller.require(Role.MEMBER)
        config = self._data_sources.build_config(body.type, body.connection, body.ssh_tunnel)
        self._limits.check(caller.user.id, organization_id)
        result = await self._probe(config, body.test_query, deadline, "unsaved")
        # Who tried which destination: unsaved tests are where arbitrary hosts get probed.
        async with self._sessions() as session, session.begin():
            await add_event(
                session,
                "data_source.test_unsaved",
                organization_id=organization_id,
                actor_user_id=caller.actor_user_id,
                actor_token_id=caller.token_id,
                outcome="success" if result.connection_successful else "failure",
                details={
                    "type": config.spec.key,
                    "destination": _destination(config),
                    "error_code": None if result.error_code is None else str(result.error_code),
                },
            )
        return to_out(None, result)

    async def _probe(
        self, config: SourceConfig, query: str | None, deadline: Deadline, trigger: str
    ) -> ProbeResult:
        started = time.monotonic()
        try:
            result = await self.prober.run(config, query, deadline)
        except PoolBusy as busy:
            TESTS.labels(config.spec.key, trigger, "busy").inc()
            raise ServiceBusy(
                "Too many connection tests are running; retry shortly",
                retry_after=busy.retry_after,
            ) from None
        TEST_SECONDS.labels(config.spec.key, trigger).observe(time.monotonic() - started)
        outcome = "ok" if result.connection_successful else str(result.error_code)
        TESTS.labels(config.spec.key, trigger, outcome).inc()
        return result

    async def probe_and_record(
        self,
        data_source_id: int,
        config: SourceConfig,
        query: str | None,
        deadline: Deadline,
        trigger: str,
        user_id: int | None,
        *,
        token_id: int | None = None,
        wait_for_record: bool = True,
    ) -> ProbeResult:
        """Probe, then update the data source and append a health record in one transaction.

        Without `wait_for_record` the result returns as soon as the probe ends and the write
        follows (see ResultRecorder); readers of what it writes wait for it.
        """
        result = await self._probe(config, query, deadline, trigger)
        written = self.recorder.submit(
            Outcome(data_source_id, result, trigger, user_id, tested=config, token_id=token_id)
        )
        if wait_for_record:
            await asyncio.shield(written)
        return result

    async def settled(self) -> None:
        """Wait until the outcome of every test answered so far is written."""
        await self.recorder.settled()


def _destination(config: SourceConfig) -> str:
    """Where a test went, for the audit log: host:port (and the bastion), or the file path."""
    connection = config.connection
    if config.spec.file_based:
        return str(getattr(connection, "path", ""))
    port = getattr(connection, "port", None) or config.spec.default_port
    where = f"{getattr(connection, 'host', '')}:{port}"
    if config.ssh_tunnel is not None:
        where += f" via {config.ssh_tunnel.host}:{config.ssh_tunnel.port}"
    return where


def to_out(data_source_id: int | None, result: ProbeResult) -> TestResultOut:
    """The response `data` of a test."""
    return TestResultOut(
        data_source_id=data_source_id,
        status="active" if result.connection_successful else "failed",
        connection_successful=result.connection_successful,
        response_time_ms=result.response_time_ms if result.connection_successful else None,
        test_query_result=result.test_query_result,
        tested_at=result.tested_at,
        ssh_tunnel_established=result.ssh_tunnel_established,
        database_version=result.database_version,
        error_message=result.error_message,
        error_code=None if result.error_code is None else str(result.error_code),
        error_phase=None if result.error_phase is None else str(result.error_phase),
        timings_ms=result.timings_ms,
        hint=result.hint,
        ssh_host_key_fingerprint=result.ssh_host_key_fingerprint,
        test_query_result_truncated=result.test_query_result_truncated,
        security=SecurityOut(
            tls=result.security.tls,
            tls_verified=result.security.tls_verified,
            tls_version=result.security.tls_version,
            auth_method=result.security.auth_method,
        ),
    )
