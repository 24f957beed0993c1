"""Down and recovered are transitions of stored state, fed by manual and scheduled checks."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rivergen.app import create_app
from tests.alerts.helpers import QUICK, RULES, add_channel, deliveries, events
from tests.fixtures.app import start_api
from tests.fixtures.clusters import PrivatePostgres
from tests.fixtures.datasources import Tenancy, ok_data, sign_in
from tests.fixtures.hardening import postgres_source
from tests.fixtures.receivers import HttpReceiver
from tests.fixtures.servers import Server

pytestmark = pytest.mark.anyio
SOURCES = "/api/v1/data-sources"


@pytest.fixture
async def tenancy(settings_factory: Any) -> AsyncIterator[Tenancy]:
    """An app with quick retries and the scheduler running."""
    settings = settings_factory(**QUICK, scheduler_enabled=True)
    async for api in start_api(create_app(settings)):
        yield await sign_in(api)


async def add_rule(tenancy: Tenancy, **fields: Any) -> dict[str, Any]:
    """Create a rule as the owner."""
    response = await tenancy.client.post(
        RULES, json={"name": "db down", **fields}, headers=tenancy.owner
    )
    data: dict[str, Any] = ok_data(response, 201)
    return data


async def manual_test(tenancy: Tenancy, source_id: int) -> dict[str, Any]:
    """One manual connection test (1 s deadline)."""
    response = await tenancy.client.post(
        f"{SOURCES}/{source_id}/test", json={"timeout_seconds": 1}, headers=tenancy.owner
    )
    data: dict[str, Any] = ok_data(response)
    return data


async def wait_events(
    tenancy: Tenancy, source_id: int, kind: str, count: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Poll the events of a source until `count` of type `kind` exist."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [e for e in await events(tenancy, data_source_id=source_id) if e["type"] == kind]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(found)} {kind} events, expected {count}")


async def test_stopped_postgres_is_down_once_and_recovered_once(
    tenancy: Tenancy,
    http_receiver: HttpReceiver,
    private_postgres: Callable[[], PrivatePostgres],
    production_logging: io.StringIO,
) -> None:
    cluster = private_postgres()
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    await add_rule(tenancy, channel_ids=[channel["id"]], failures_before_alert=2)
    body = postgres_source(cluster.host, cluster.port, password="pg-secret-Zq81")
    source = await tenancy.create({**body, "health_check_interval_seconds": 2})
    sid = source["id"]
    deadline = time.monotonic() + 20
    while (await tenancy.get(sid))["status"] != "active":
        assert time.monotonic() < deadline, "the first scheduled check never succeeded"
        await asyncio.sleep(0.2)

    cluster.stop()
    (down,) = await wait_events(tenancy, sid, "data_source.down", 1)
    payload = down["payload"]
    assert payload["status"] == "down"
    assert payload["consecutive_failures"] == 2
    assert payload["error_code"] == "CONNECTION_ERROR"
    assert payload["error_phase"] == "tcp"
    assert payload["hint"]
    assert payload["user_action_required"] is False
    assert payload["first_failure_at"] is not None
    assert payload["last_success_at"] is not None
    assert payload["data_source"] == {"id": sid, "name": body["name"], "type": "postgresql"}
    # Two more scheduled failures: still one down event.
    await asyncio.sleep(4.5)
    downs = [e for e in await events(tenancy, data_source_id=sid) if e["type"] != "test"]
    assert [e["type"] for e in downs] == ["data_source.down"]

    cluster.start()
    (recovered,) = await wait_events(tenancy, sid, "data_source.recovered", 1)
    assert recovered["payload"]["status"] == "up"
    assert recovered["payload"]["error_code"] is None
    await asyncio.sleep(4.5)
    kinds = [e["type"] for e in await events(tenancy, data_source_id=sid)]
    assert kinds == ["data_source.recovered", "data_source.down"]

    received = await http_receiver.wait_for(2)
    assert [json.loads(r.body)["type"] for r in received] == [
        "data_source.down",
        "data_source.recovered",
    ]
    assert [r.headers["webhook-id"] for r in received] == [down["id"], recovered["id"]]
    everything = production_logging.getvalue() + "".join(r.body.decode() for r in received)
    assert "pg-secret-Zq81" not in everything
    assert channel["secret"] not in everything
    assert channel["secret"].removeprefix("whsec_") not in everything


async def test_manual_failures_count_and_user_fixable_failures_say_so(
    tenancy: Tenancy, http_receiver: HttpReceiver, postgres_with_password: Server
) -> None:
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    body = postgres_source(
        postgres_with_password.host, postgres_with_password.port, password="wrong-pw-Kx77"
    )
    source = await tenancy.create(body)
    await add_rule(tenancy, channel_ids=[channel["id"]], data_source_ids=[source["id"]])
    for _ in range(2):
        assert (await manual_test(tenancy, source["id"]))["error_code"] == "AUTHENTICATION_FAILED"
    assert await events(tenancy, data_source_id=source["id"]) == []
    await manual_test(tenancy, source["id"])
    (down,) = await events(tenancy, data_source_id=source["id"])
    assert down["type"] == "data_source.down"
    assert down["payload"]["user_action_required"] is True
    assert down["payload"]["consecutive_failures"] == 3
    (received,) = await http_receiver.wait_for(1)
    assert b"wrong-pw-Kx77" not in received.body
    assert json.loads(received.body)["error_code"] == "AUTHENTICATION_FAILED"
    for _ in range(2):
        await manual_test(tenancy, source["id"])
    assert len(await events(tenancy, data_source_id=source["id"])) == 1


async def test_mute_suppresses_deliveries_not_events(
    tenancy: Tenancy, http_receiver: HttpReceiver, closed_port: int
) -> None:
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    first = await tenancy.create(postgres_source("127.0.0.1", closed_port, name="muted-source"))
    second = await tenancy.create(postgres_source("127.0.0.1", closed_port, name="rule-muted"))
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = await tenancy.client.put(
        f"{SOURCES}/{first['id']}/alert-mute", json={"muted_until": until}, headers=tenancy.owner
    )
    assert ok_data(response)["data_source_id"] == first["id"]
    await add_rule(
        tenancy, channel_ids=[channel["id"]], data_source_ids=[first["id"]], failures_before_alert=1
    )
    await add_rule(
        tenancy,
        channel_ids=[channel["id"]],
        data_source_ids=[second["id"]],
        failures_before_alert=1,
        muted_until=until,
    )
    for source in (first, second):
        assert (await manual_test(tenancy, source["id"]))["connection_successful"] is False
        (event,) = await events(tenancy, data_source_id=source["id"])
        assert event["type"] == "data_source.down"
        assert await deliveries(tenancy, event_id=event["id"]) == []
    # Health is still recorded: the checks themselves were not muted.
    health = ok_data(
        await tenancy.client.get(f"{SOURCES}/{first['id']}/health", headers=tenancy.owner)
    )
    assert health["summary"]["checks"] == 1
    await asyncio.sleep(0.3)
    assert http_receiver.requests == []


async def test_stopped_scheduler_raises_stale_once(
    tenancy: Tenancy, http_receiver: HttpReceiver, local_postgres: Server
) -> None:
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    await add_rule(tenancy, channel_ids=[channel["id"]])
    body = postgres_source(local_postgres.host, local_postgres.port, name="watched")
    source = await tenancy.create({**body, "health_check_interval_seconds": 2})
    deadline = time.monotonic() + 20
    while (await tenancy.get(source["id"]))["status"] != "active":
        assert time.monotonic() < deadline, "the first scheduled check never succeeded"
        await asyncio.sleep(0.2)
    # The monitor itself stops: no scheduled check arrives any more.
    scheduler = tenancy.api.app.state.context.scheduler
    assert scheduler is not None
    await scheduler.close()
    (stale,) = await wait_events(tenancy, source["id"], "data_source.stale", 1, timeout=20)
    assert stale["payload"]["status"] == "stale"
    (received,) = await http_receiver.wait_for(1)
    assert received.headers["webhook-id"] == stale["id"]
    await asyncio.sleep(5.5)
    kinds = [e["type"] for e in await events(tenancy, data_source_id=source["id"])]
    assert kinds == ["data_source.stale"]
