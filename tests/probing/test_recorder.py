"""Test outcomes written after the answer: in order, in batches, none lost, readers wait."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from rivergen.core.outcome import ErrorCode, Phase
from rivergen.datasources.models import DataSource
from rivergen.probing.recorder import Outcome
from rivergen.probing.runner import ProbeResult
from tests.fixtures.datasources import (
    PG_PASSWORD,
    Tenancy,
    context_of,
    postgres_body,
    unique_name,
)
from tests.fixtures.probing import health_records

pytestmark = pytest.mark.anyio


def passed(version: str) -> ProbeResult:
    return ProbeResult(
        connection_successful=True,
        tested_at=datetime.now(UTC),
        response_time_ms=3,
        database_version=version,
    )


def failed() -> ProbeResult:
    return ProbeResult(
        connection_successful=False,
        tested_at=datetime.now(UTC),
        error_code=ErrorCode.TIMEOUT,
        error_phase=Phase.TCP,
        error_message="no answer within 2 s",
    )


async def outcome_for(tenancy: Tenancy, data_source_id: int, result: ProbeResult) -> Outcome:
    """An outcome as a manual test of the source's current configuration would submit it."""
    context = context_of(tenancy.api)
    async with context.sessions() as session:
        row = await session.get(DataSource, data_source_id)
        assert row is not None
        tested = context.data_sources.decrypted_config(row)
    return Outcome(data_source_id, result, "manual", None, tested)


async def new_source(tenancy: Tenancy) -> int:
    created = await tenancy.create(postgres_body(unique_name("recorded")))
    return int(created["id"])


async def test_outcomes_are_written_in_order_and_a_read_waits_for_them(tenancy: Tenancy) -> None:
    recorder = context_of(tenancy.api).tests.recorder
    source = await new_source(tenancy)
    first = recorder.submit(await outcome_for(tenancy, source, passed("PostgreSQL 15.1")))
    second = recorder.submit(await outcome_for(tenancy, source, failed()))
    assert not first.done()  # submitting does not wait for the store
    # A read through the API waits for what was answered before it.
    shown = await tenancy.get(source)
    assert first.done()
    assert second.done()
    assert shown["status"] == "failed"  # the later outcome is the current one
    assert shown["last_error_code"] == "TIMEOUT"
    assert shown["database_version"] == "PostgreSQL 15.1"  # kept from the last success
    records = await health_records(tenancy.api, source)
    assert [r.connection_successful for r in records] == [True, False]


async def test_one_bad_outcome_does_not_cost_the_others_theirs(tenancy: Tenancy) -> None:
    context = context_of(tenancy.api)
    good, broken = await new_source(tenancy), await new_source(tenancy)
    outcomes = [
        await outcome_for(tenancy, good, passed("PostgreSQL 15.1")),
        await outcome_for(tenancy, broken, passed("PostgreSQL 15.1")),
        await outcome_for(tenancy, good, failed()),
    ]
    # The broken source's secrets no longer decrypt: writing its outcome raises.
    async with context.sessions() as session, session.begin():
        row = await session.get(DataSource, broken)
        assert row is not None
        row.secrets_ciphertext = "v1:not-a-ciphertext"
    written = [context.tests.recorder.submit(outcome) for outcome in outcomes]
    await asyncio.wait_for(asyncio.gather(*written), 10)
    assert [r.connection_successful for r in await health_records(tenancy.api, good)] == [
        True,
        False,
    ]
    assert await health_records(tenancy.api, broken) == []


async def test_closing_writes_what_is_queued(tenancy: Tenancy) -> None:
    recorder = context_of(tenancy.api).tests.recorder
    source = await new_source(tenancy)
    written = [
        recorder.submit(await outcome_for(tenancy, source, passed(f"PostgreSQL 15.{n}")))
        for n in range(5)
    ]
    await recorder.close()
    assert all(w.done() for w in written)
    assert len(await health_records(tenancy.api, source)) == 5
    # A later outcome starts a new writer.
    await recorder.submit(await outcome_for(tenancy, source, failed()))
    assert len(await health_records(tenancy.api, source)) == 6


async def test_an_outcome_for_a_changed_or_deleted_source_is_not_written(
    tenancy: Tenancy,
) -> None:
    recorder = context_of(tenancy.api).tests.recorder
    changed, deleted = await new_source(tenancy), await new_source(tenancy)
    stale = await outcome_for(tenancy, changed, passed("PostgreSQL 15.1"))
    gone = await outcome_for(tenancy, deleted, passed("PostgreSQL 15.1"))
    patched = await tenancy.patch(
        changed, {"connection": {"host": "10.0.9.9", "password": PG_PASSWORD}}
    )
    assert patched.status_code == 200, patched.text
    removed = await tenancy.client.delete(f"/api/v1/data-sources/{deleted}", headers=tenancy.owner)
    assert removed.status_code in (200, 204), removed.text
    await asyncio.gather(recorder.submit(stale), recorder.submit(gone))
    assert await health_records(tenancy.api, changed) == []
    assert (await tenancy.get(changed))["status"] == "pending"
    assert await health_records(tenancy.api, deleted) == []
