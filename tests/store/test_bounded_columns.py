"""Values a peer controls are cut to their column at the model boundary, alike on both stores.

A server may announce a version string of any length and a client address can be long (an
IPv6 address with a zone, a forwarded header): PostgreSQL refused such values (the health
record and the outcome were lost) where SQLite kept them whole.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rivergen.audit.models import AuditEvent
from rivergen.datasources.models import DataSource
from tests.fixtures.datasources import Tenancy, context_of
from tests.fixtures.probing import health_records
from tests.probing.test_recorder import new_source, outcome_for, passed

pytestmark = [pytest.mark.anyio, pytest.mark.store]

LONG_VERSION = "PostgreSQL 16.4 " + "x" * 1000
LONG_ADDRESS = "fe80::1%" + "eth" * 40


async def test_a_long_database_version_is_recorded_cut_to_its_column(tenancy: Tenancy) -> None:
    recorder = context_of(tenancy.api).tests.recorder
    source = await new_source(tenancy)
    await recorder.submit(await outcome_for(tenancy, source, passed(LONG_VERSION)))
    (record,) = await health_records(tenancy.api, source)
    assert record.database_version == LONG_VERSION[:200]
    async with context_of(tenancy.api).sessions() as session:
        row = await session.get(DataSource, source)
    assert row is not None
    assert (row.status, row.database_version) == ("active", LONG_VERSION[:200])


async def test_a_long_client_address_is_stored_cut_to_its_column(tenancy: Tenancy) -> None:
    sessions = context_of(tenancy.api).sessions
    async with sessions() as session, session.begin():
        session.add(AuditEvent(action="test.bounded", details={}, client_address=LONG_ADDRESS))
    async with sessions() as session:
        stored = await session.scalar(
            select(AuditEvent.client_address).where(AuditEvent.action == "test.bounded")
        )
    assert stored == LONG_ADDRESS[:64]
