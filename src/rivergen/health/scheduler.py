"""The in-process scheduler: scheduled health checks and retention in the server process.

The single-machine default (RIVERGEN_SCHEDULER_ENABLED=true). It runs inside the application's
event loop, started and stopped by the lifespan (`AppContext.start` / `close`):

* Every poll (1 s, with +-20 % jitter so several replicas do not poll in lockstep) it claims
  checks due within the next 1.5 polls through the same repository function as the Celery
  dispatcher, and starts each at its due time. Running it on several replicas against one
  PostgreSQL store is safe: each due check is claimed once.
* At most `RIVERGEN_SCHEDULER_MAX_CONCURRENT` scheduled checks are claimed or running at once, so
  they take at most that many threads of the probe pool and manual tests always find room. When
  every slot was used, the end of a check triggers the next poll at once.
* A source never has two checks at once: the claim's lease outlives the check, and a source
  whose check is still running here is never started again.
* Records older than RIVERGEN_HEALTH_RETENTION_DAYS are purged a minute after start, then hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.datasources.service import DataSourceService
from rivergen.health.claims_repository import Claim
from rivergen.health.service import ScheduledChecks
from rivergen.probing.service import ConnectionTestService
from rivergen.settings import Settings

log = structlog.get_logger(__name__)

POLL_SECONDS = 1.0
POLL_JITTER = 0.2
PURGE_EVERY_SECONDS = 3600.0
FIRST_PURGE_AFTER_SECONDS = 60.0


class HealthScheduler:
    """Claims and runs due checks in this process, with a bound on concurrent checks."""

    def __init__(
        self,
        checks: ScheduledChecks,
        max_concurrent: int,
        *,
        poll_seconds: float = POLL_SECONDS,
        purge_every_seconds: float = PURGE_EVERY_SECONDS,
        first_purge_after_seconds: float = FIRST_PURGE_AFTER_SECONDS,
    ) -> None:
        self.checks = checks
        self.max_concurrent = max_concurrent
        self._poll = poll_seconds
        # Claims look ahead past the longest possible sleep, so each check starts on time.
        self._lookahead = poll_seconds * (1 + POLL_JITTER) * 1.25
        self._purge_every = purge_every_seconds
        self._first_purge_after = first_purge_after_seconds
        self._running: dict[int, asyncio.Task[str]] = {}
        # Set when a check ends while the last poll used every slot: more may be waiting.
        self._wake = asyncio.Event()
        self._saturated = False
        self._purging: asyncio.Task[int] | None = None
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def running(self) -> int:
        """Checks claimed by this scheduler and not finished yet."""
        return len(self._running)

    def start(self) -> None:
        """Start polling in the running event loop."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="rivergen-health-scheduler")
            log.info("scheduler_started", max_concurrent=self.max_concurrent)

    async def close(self) -> None:
        """Stop polling and cancel checks in progress (their claims expire by themselves)."""
        tasks: list[asyncio.Task[Any]] = []
        if self._loop_task is not None:
            tasks.append(self._loop_task)
            self._loop_task = None
        tasks += list(self._running.values())
        if self._purging is not None:
            tasks.append(self._purging)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def tick(self) -> int:
        """Claim what is due and free slots allow, and start those checks; returns how many."""
        free = self.max_concurrent - len(self._running)
        if free <= 0:
            self._saturated = True
            return 0
        claims = await self.checks.claim(free, self._lookahead)
        self._saturated = len(claims) >= free
        for claim in claims:
            if claim.data_source_id in self._running:
                # Its lease ran out while it still runs here; let the running check finish.
                continue
            self._start_check(claim)
        return len(claims)

    def _start_check(self, claim: Claim) -> None:
        source_id = claim.data_source_id
        task = asyncio.create_task(self.checks.run(claim), name=f"rivergen-check-{source_id}")
        self._running[source_id] = task

        def done(finished: asyncio.Task[str]) -> None:
            if self._running.get(source_id) is finished:
                del self._running[source_id]
            if self._saturated:
                self._wake.set()
            if not finished.cancelled() and finished.exception() is not None:
                log.error("scheduled_check_crashed", data_source_id=source_id)

        task.add_done_callback(done)

    async def _loop(self) -> None:
        next_purge = time.monotonic() + self._first_purge_after
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler_tick_failed")
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + self._purge_every
                if self._purging is None or self._purging.done():
                    self._purging = asyncio.create_task(self._purge(), name="rivergen-purge")
            jitter = random.uniform(1 - POLL_JITTER, 1 + POLL_JITTER)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll * jitter)
            self._wake.clear()

    async def _purge(self) -> int:
        try:
            return await self.checks.purge()
        except Exception:
            log.exception("health_purge_failed")
            return 0


def build_scheduled_checks(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    data_sources: DataSourceService,
    tests: ConnectionTestService,
) -> ScheduledChecks:
    """The scheduled-check use cases wired from settings (shared with the Celery worker)."""
    return ScheduledChecks(
        sessions,
        data_sources,
        tests,
        default_timeout_seconds=settings.default_test_timeout_seconds,
        retention_days=settings.health_retention_days,
        audit_retention_days=settings.audit_retention_days,
    )


def build_scheduler(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    data_sources: DataSourceService,
    tests: ConnectionTestService,
) -> HealthScheduler:
    """The in-process scheduler of the application lifespan."""
    checks = build_scheduled_checks(settings, sessions, data_sources, tests)
    return HealthScheduler(checks, settings.scheduler_max_concurrent)
