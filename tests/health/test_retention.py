"""Retention: records older than RIVERGEN_HEALTH_RETENTION_DAYS are purged, in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import anyio
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from rivergen.app import create_app
from rivergen.health.models import HealthRecord
from rivergen.health.retention_repository import PURGE_LOCK_KEY
from rivergen.health.scheduler import HealthScheduler, build_scheduled_checks
from rivergen.settings import Settings
from rivergen.store.base import utcnow
from tests.fixtures.app import Api, start_api
from tests.health.helpers import context_of, data_of, insert, record, sign_in

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api(settings_factory: Callable[..., Settings]) -> AsyncIterator[Api]:
    """The app with a 30-day retention."""
    async for running in start_api(create_app(settings_factory(health_retention_days=30))):
        yield running


async def ages_left(api: Api) -> list[float]:
    """Age in days of every record left, oldest first."""
    now = utcnow()
    async with context_of(api).sessions() as session:
        rows = (await session.execute(select(HealthRecord.tested_at))).scalars()
        return sorted(round((now - t).total_seconds() / 86400, 1) for t in rows)


def purged_total() -> float:
    value = REGISTRY.get_sample_value("rivergen_health_records_purged_total")
    return value or 0.0


async def test_purge_deletes_only_expired_records_in_batches(api: Api) -> None:
    org = await sign_in(api)
    first = await org.create_source()
    second = await org.create_source()
    now = utcnow()
    ages = [400, 90, 31, 30.01, 29.99, 10, 0]
    records = []
    for source_id in (first, second):
        for age in ages:
            when = now - timedelta(days=age)
            records.append(record(source_id, org.organization_id, 0, True, 5, tested_at=when))
    await insert(api, records)
    context = context_of(api)
    checks = build_scheduled_checks(
        context.settings, context.sessions, context.data_sources, context.tests
    )
    before = purged_total()
    # 8 expired records with batches of 3: three transactions (3 + 3 + 2).
    assert await checks.purge(now=now, batch=3) == 8
    assert purged_total() == before + 8
    assert await ages_left(api) == [0.0, 0.0, 10.0, 10.0, 30.0, 30.0]
    # The summary of all history (hourly rollups) follows the purge.
    summary = data_of(await org.health(first))["summary"]
    assert summary["checks"] == 3
    assert await checks.purge(now=now, batch=3) == 0


async def test_batch_boundary(api: Api) -> None:
    org = await sign_in(api)
    source_id = await org.create_source()
    old = utcnow() - timedelta(days=45)
    records = [
        record(source_id, org.organization_id, 0, False, None, tested_at=old + timedelta(minutes=i))
        for i in range(6)
    ]
    await insert(api, records)
    context = context_of(api)
    checks = build_scheduled_checks(
        context.settings, context.sessions, context.data_sources, context.tests
    )
    assert await checks.purge(batch=3) == 6
    async with context.sessions() as session:
        assert (await session.execute(select(func.count(HealthRecord.id)))).scalar_one() == 0


async def test_the_scheduler_runs_the_purge(api: Api) -> None:
    org = await sign_in(api)
    source_id = await org.create_source()
    old = utcnow() - timedelta(days=31)
    await insert(api, [record(source_id, org.organization_id, 0, True, 5, tested_at=old)])
    context = context_of(api)
    checks = build_scheduled_checks(
        context.settings, context.sessions, context.data_sources, context.tests
    )
    scheduler = HealthScheduler(
        checks, 2, poll_seconds=0.05, first_purge_after_seconds=0.0, purge_every_seconds=3600
    )
    scheduler.start()
    try:
        for _ in range(100):
            if not await ages_left(api):
                break
            await anyio.sleep(0.05)
    finally:
        await scheduler.close()
    assert await ages_left(api) == []


@pytest.mark.postgresql_store
async def test_concurrent_purges_take_turns(api: Api) -> None:
    """On PostgreSQL a purge finding another one running leaves the work to it."""
    context = context_of(api)
    assert context.engine.dialect.name == "postgresql"
    org = await sign_in(api)
    source_id = await org.create_source()
    old = utcnow() - timedelta(days=40)
    await insert(api, [record(source_id, org.organization_id, 0, True, 5, tested_at=old)])
    checks = build_scheduled_checks(
        context.settings, context.sessions, context.data_sources, context.tests
    )
    async with context.engine.connect() as other:
        await other.execute(select(func.pg_advisory_lock(PURGE_LOCK_KEY)))
        assert await checks.purge() == 0
        await other.execute(select(func.pg_advisory_unlock(PURGE_LOCK_KEY)))
    assert await checks.purge() == 1
