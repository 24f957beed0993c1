"""A test that joins a running single-flight probe is audited too, under its own actor."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from rivergen.audit.models import AuditEvent
from tests.fixtures.datasources import DATA_SOURCES, Tenancy, context_of, ok_data, unique_name
from tests.fixtures.probing import network_body
from tests.fixtures.servers import Server

pytestmark = [pytest.mark.anyio, pytest.mark.store]


async def test_each_caller_of_a_shared_probe_is_audited(
    tenancy: Tenancy, local_postgres: Server, silent_listener: tuple[str, int]
) -> None:
    host, port = silent_listener
    body = network_body("postgresql", local_postgres, unique_name("joined"), host=host, port=port)
    source = int((await tenancy.create(body))["id"])
    member = await tenancy.member("member")
    url = f"{DATA_SOURCES}/{source}/test"
    request = {"timeout_seconds": 1}
    # Both ask while the probe hangs on the silent peer: the second joins the first's run.
    answers = await asyncio.gather(
        tenancy.client.post(url, json=request, headers=tenancy.owner),
        tenancy.client.post(url, json=request, headers=member),
    )
    results = [ok_data(answer) for answer in answers]
    assert results[0] == results[1]  # one run, shared
    context = context_of(tenancy.api)
    await context.tests.settled()
    async with context.sessions() as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "data_source.test", AuditEvent.target_id == str(source)
                )
            )
        ).all()
    assert len(events) == 2, [(e.actor_user_id, e.details) for e in events]
    assert len({e.actor_user_id for e in events}) == 2
    assert {e.outcome for e in events} == {"failure"}
    assert {e.details["error_code"] for e in events} == {"TIMEOUT"}
    assert sorted(bool(e.details.get("joined_running_test")) for e in events) == [False, True]
