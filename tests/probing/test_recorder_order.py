"""Outcomes that finish out of order, and writes that meet a deadlock in the store."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy.engine import make_url

from rivergen.datasources.models import DataSource
from tests.fixtures.datasources import Tenancy, context_of
from tests.fixtures.probing import health_records
from tests.probing.test_recorder import failed, new_source, outcome_for, passed

pytestmark = pytest.mark.anyio


async def stored_row(tenancy: Tenancy, data_source_id: int) -> DataSource:
    async with context_of(tenancy.api).sessions() as session:
        row = await session.get(DataSource, data_source_id)
    assert row is not None
    return row


async def test_a_slow_test_finishing_last_does_not_move_the_source_back(
    tenancy: Tenancy,
) -> None:
    recorder = context_of(tenancy.api).tests.recorder
    source = await new_source(tenancy)
    later = passed("PostgreSQL 16.4")
    # Started 5 s earlier, answered after the later test: history keeps it, the source does not.
    earlier = replace(passed("PostgreSQL 15.1"), tested_at=later.tested_at - timedelta(seconds=5))
    earlier_failure = replace(failed(), tested_at=later.tested_at - timedelta(seconds=3))
    recorder.submit(await outcome_for(tenancy, source, later))
    recorder.submit(await outcome_for(tenancy, source, earlier))
    recorder.submit(await outcome_for(tenancy, source, earlier_failure))
    records = await health_records(tenancy.api, source)
    assert sorted(r.tested_at for r in records) == sorted(
        [earlier.tested_at, earlier_failure.tested_at, later.tested_at]
    )
    row = await stored_row(tenancy, source)
    assert row.last_tested_at == later.tested_at
    assert row.last_connected_at == later.tested_at
    assert (row.status, row.database_version, row.last_error_code) == (
        "active",
        "PostgreSQL 16.4",
        None,
    )


def conninfo(store_url: str) -> str:
    url = make_url(store_url)
    return psycopg.conninfo.make_conninfo(
        host=url.host or "",
        port=url.port or 5432,
        user=url.username or "",
        dbname=url.database or "",
    )


@pytest.mark.postgresql_store
async def test_an_outcome_that_meets_a_deadlock_is_written_on_a_retry(
    tenancy: Tenancy, store_url: str
) -> None:
    recorder = context_of(tenancy.api).tests.recorder
    source = await new_source(tenancy)
    first = passed("PostgreSQL 16.4")
    await recorder.submit(await outcome_for(tenancy, source, first))  # its hourly rollup exists
    async with await psycopg.AsyncConnection.connect(conninfo(store_url)) as other:
        async with other.transaction():
            # This side waits long before checking for a deadlock: the recorder's side (1 s,
            # the server default) finds it and is the one aborted.
            await other.execute("SET LOCAL deadlock_timeout = '30s'")
            await other.execute(
                "SELECT 1 FROM health_rollups WHERE data_source_id = %s FOR UPDATE", (source,)
            )
            second = replace(failed(), tested_at=first.tested_at + timedelta(milliseconds=1))
            written = recorder.submit(await outcome_for(tenancy, source, second))
            # The recorder locks the source's row, then its record's rollup waits for us ...
            await asyncio.sleep(0.5)
            # ... and we wait for the source's row: a deadlock.
            await other.execute("SELECT 1 FROM data_sources WHERE id = %s FOR UPDATE", (source,))
        await asyncio.wait_for(written, timeout=15)
    records = await health_records(tenancy.api, source)
    assert [r.tested_at for r in records] == [first.tested_at, second.tested_at]
    assert (await stored_row(tenancy, source)).last_error_code == "TIMEOUT"
