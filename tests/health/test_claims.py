"""Claims on due checks: each due check handed out once, leases, cadence, first due time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from rivergen.datasources.models import DataSource
from rivergen.health.claims_repository import Claim
from rivergen.health.metrics import SCHEDULED_LATENESS
from rivergen.health.scheduler import build_scheduled_checks
from rivergen.health.service import ScheduledChecks
from rivergen.store.base import utcnow
from tests.fixtures.app import Api
from tests.health.helpers import DATA_SOURCES, Org, context_of, data_of, sign_in

pytestmark = pytest.mark.anyio


@pytest.fixture
async def org(api: Api) -> Org:
    return await sign_in(api)


def checks_of(api: Api) -> ScheduledChecks:
    context = context_of(api)
    return build_scheduled_checks(
        context.settings, context.sessions, context.data_sources, context.tests
    )


async def row_of(api: Api, data_source_id: int) -> DataSource:
    async with context_of(api).sessions() as session:
        row = await session.get(DataSource, data_source_id)
    assert row is not None
    return row


async def set_due(api: Api, data_source_id: int, due: datetime | None) -> None:
    async with context_of(api).sessions() as session, session.begin():
        await session.execute(
            update(DataSource)
            .where(DataSource.id == data_source_id)
            .values(next_check_at=due, check_claimed_until=None)
        )


async def test_interval_sets_the_first_due_time(org: Org) -> None:
    before = utcnow()
    with_checks = await org.create_source(interval=60)
    row = await row_of(org.api, with_checks)
    assert row.next_check_at is not None
    # Due now, plus a phase jitter of at most 10 % of the interval.
    assert before <= row.next_check_at <= utcnow() + timedelta(seconds=6)

    without = await org.create_source()
    assert (await row_of(org.api, without)).next_check_at is None

    url = f"{DATA_SOURCES}/{with_checks}"
    patched = await org.api.client.patch(
        url, json={"health_check_interval_seconds": None}, headers=org.owner
    )
    assert data_of(patched)["health_check_interval_seconds"] is None
    assert (await row_of(org.api, with_checks)).next_check_at is None

    patched = await org.api.client.patch(
        url, json={"health_check_interval_seconds": 2}, headers=org.owner
    )
    data_of(patched)
    due = (await row_of(org.api, with_checks)).next_check_at
    assert due is not None
    assert due <= utcnow() + timedelta(seconds=0.2)


async def test_interval_below_the_minimum_is_refused(org: Org) -> None:
    response = await org.api.client.post(
        DATA_SOURCES,
        json={
            "name": "too-often",
            "type": "postgresql",
            "connection": {"host": "127.0.0.1", "username": "postgres", "database": "postgres"},
            "health_check_interval_seconds": 1,
        },
        headers=org.owner,
    )
    assert response.status_code == 422, response.text


async def test_a_due_check_is_claimed_once_and_keeps_its_cadence(org: Org) -> None:
    checks = checks_of(org.api)
    source_id = await org.create_source(interval=60)
    due = utcnow() - timedelta(seconds=5)
    await set_due(org.api, source_id, due)
    updated_at = (await row_of(org.api, source_id)).updated_at

    now = utcnow()
    (claim,) = await checks.claim(10, 1.0, now)
    assert claim.data_source_id == source_id
    assert claim.due_at == due
    assert claim.interval_seconds == 60
    assert claim.lease_until == now + timedelta(seconds=60)
    assert await checks.claim(10, 1.0) == []

    row = await row_of(org.api, source_id)
    assert row.next_check_at == due + timedelta(seconds=60)  # cadence, not start + interval
    assert row.check_claimed_until == claim.lease_until
    assert row.updated_at == updated_at  # bookkeeping is not a change


async def test_a_missed_interval_is_not_replayed(org: Org) -> None:
    checks = checks_of(org.api)
    source_id = await org.create_source(interval=10)
    await set_due(org.api, source_id, utcnow() - timedelta(minutes=5))
    now = utcnow()
    (claim,) = await checks.claim(10, 1.0, now)
    row = await row_of(org.api, source_id)
    assert row.next_check_at is not None
    # One interval from now (plus up to 1 s of phase jitter), not 5 minutes ago + 10 s.
    assert now + timedelta(seconds=10) <= row.next_check_at <= now + timedelta(seconds=11)
    assert claim.due_at < now


async def test_lookahead_and_sources_without_checks(org: Org) -> None:
    checks = checks_of(org.api)
    soon = await org.create_source(interval=60)
    later = await org.create_source(interval=60)
    off = await org.create_source()
    now = utcnow()
    await set_due(org.api, soon, now + timedelta(seconds=1))
    await set_due(org.api, later, now + timedelta(seconds=30))
    await set_due(org.api, off, now - timedelta(seconds=30))  # interval null: never due
    claims = await checks.claim(10, 1.5, now)
    assert [c.data_source_id for c in claims] == [soon]
    # A check claimed ahead leases from its due time.
    assert claims[0].lease_until == now + timedelta(seconds=61)


async def test_concurrent_claimers_share_out_each_check_once(org: Org) -> None:
    checks = checks_of(org.api)
    ids = [await org.create_source(interval=60) for _ in range(12)]
    past = utcnow() - timedelta(seconds=1)
    for source_id in ids:
        await set_due(org.api, source_id, past)
    batches = await asyncio.gather(*(checks.claim(3, 1.0) for _ in range(6)))
    claimed = [c.data_source_id for batch in batches for c in batch]
    assert sorted(claimed) == sorted(ids)
    assert await checks.claim(100, 1.0) == []


async def test_an_expired_lease_lets_another_take_over(org: Org) -> None:
    checks = checks_of(org.api)
    source_id = await org.create_source(interval=2)
    start = utcnow()
    await set_due(org.api, source_id, start - timedelta(seconds=1))
    (held,) = await checks.claim(10, 0.0, start)
    assert held.lease_until == start + timedelta(seconds=2)
    # Still held: nobody else gets it, even when its next check is due.
    assert await checks.claim(10, 0.0, start + timedelta(seconds=1.9)) == []
    # The holder died: once the lease is over the source is claimed again.
    (again,) = await checks.claim(10, 0.0, start + timedelta(seconds=2.1))
    assert again.lease_until != held.lease_until
    # The dead holder's late message cannot run the check any more.
    assert await checks.run(held) == "lost"


async def test_run_skips_deleted_and_switched_off_sources(org: Org) -> None:
    checks = checks_of(org.api)
    gone = await org.create_source(interval=60)
    switched_off = await org.create_source(interval=60)
    past = utcnow() - timedelta(seconds=1)
    for source_id in (gone, switched_off):
        await set_due(org.api, source_id, past)
    claims = {c.data_source_id: c for c in await checks.claim(10, 0.0)}
    deleted = await org.api.client.delete(f"{DATA_SOURCES}/{gone}", headers=org.owner)
    data_of(deleted)
    async with context_of(org.api).sessions() as session, session.begin():
        await session.execute(
            update(DataSource)
            .where(DataSource.id == switched_off)
            .values(health_check_interval_seconds=None, next_check_at=None)
        )
    assert await checks.run(claims[gone]) == "lost"  # its row (and claim) went with it
    assert await checks.run(claims[switched_off]) == "skipped"
    row = await row_of(org.api, switched_off)
    assert row.check_claimed_until is None  # released


async def test_run_records_a_scheduled_check_and_releases(org: Org) -> None:
    checks = checks_of(org.api)
    source_id = await org.create_source(interval=5)
    await set_due(org.api, source_id, utcnow() - timedelta(seconds=0.5))
    observed = _lateness_count()
    (claim,) = await checks.claim(10, 0.0)
    assert await checks.run(claim) == "ok"
    assert _lateness_count() == observed + 1
    row = await row_of(org.api, source_id)
    assert row.status == "active"
    assert row.check_claimed_until is None
    health = data_of(await org.health(source_id))
    (item,) = health["history"]
    assert item["triggered_by"] == "schedule"
    assert item["user_id"] is None
    assert item["connection_successful"] is True
    assert item["database_version"].startswith("PostgreSQL")
    metrics = (await org.api.client.get("/metrics")).text
    assert "rivergen_scheduled_check_lateness_seconds_bucket" in metrics
    assert 'rivergen_scheduled_checks_total{result="ok"}' in metrics
    assert 'trigger="schedule"' in metrics


async def test_run_waits_for_the_due_time(org: Org) -> None:
    checks = checks_of(org.api)
    source_id = await org.create_source(interval=5)
    due = utcnow() + timedelta(seconds=0.6)
    await set_due(org.api, source_id, due)
    (claim,) = await checks.claim(10, 1.0)
    assert await checks.run(claim) == "ok"
    health = data_of(await org.health(source_id))
    tested_at = datetime.fromisoformat(health["history"][0]["tested_at"])
    assert tested_at >= due


def _lateness_count() -> float:
    for metric in SCHEDULED_LATENESS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return sample.value
    return 0.0


def test_claim_is_a_value() -> None:
    now = utcnow()
    assert Claim(1, now, now, 2) == Claim(1, now, now, 2)
