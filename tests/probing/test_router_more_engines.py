"""The engines added beyond the first six, through the API: the host policy and DNS apply to
each before its driver runs, and ClickHouse works end to end against its private server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rivergen.connectors.registry import ENGINES
from tests.fixtures.datasources import Tenancy, load_row, unique_name
from tests.fixtures.engines import ClickHouse
from tests.fixtures.probing import UNSAVED_TEST, assert_failed, result_of, run_test
from tests.fixtures.servers import UNRESOLVABLE_HOST

pytestmark = [pytest.mark.anyio, pytest.mark.store]

FIRST_SIX = {"postgresql", "mysql", "mariadb", "sqlite", "duckdb", "redis"}
MORE_NETWORK_ENGINES = sorted(
    key for key, spec in ENGINES.items() if key not in FIRST_SIX and not spec.file_based
)
METADATA_ADDRESS = "169.254.169.254"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that the module's shared app runs on the tests' event loop."""
    return "asyncio"


@pytest.fixture
def tenancy(module_tenancy: Tenancy) -> Tenancy:
    """The owner of the app this module shares."""
    return module_tenancy


def body(engine: str, host: str, **connection: Any) -> dict[str, Any]:
    """An unsaved configuration of `engine` at `host`: its other required text fields set to
    `probe`, its defaults otherwise."""
    schema = ENGINES[engine].connection_model.model_json_schema()
    fields = {name: "probe" for name in schema.get("required", []) if name != "host"}
    if engine == "oracle":
        fields["database"] = "probe"  # a service name (or a SID) is required
    return {
        "name": unique_name(engine),
        "type": engine,
        "connection": {**fields, "host": host, **connection},
    }


@pytest.mark.parametrize("engine", MORE_NETWORK_ENGINES)
async def test_metadata_address_is_refused(tenancy: Tenancy, engine: str) -> None:
    started = time.monotonic()
    response = await tenancy.client.post(
        UNSAVED_TEST, json={**body(engine, METADATA_ADDRESS), "timeout_seconds": 2},
        headers=tenancy.owner,
    )  # fmt: skip
    data = assert_failed(result_of(response), "HOST_NOT_ALLOWED")
    assert data["error_phase"] in ("policy", "dns")
    assert time.monotonic() - started < 1  # refused by the policy, not after a timeout


@pytest.mark.parametrize("engine", MORE_NETWORK_ENGINES)
async def test_unknown_host(tenancy: Tenancy, engine: str) -> None:
    response = await tenancy.client.post(
        UNSAVED_TEST, json={**body(engine, UNRESOLVABLE_HOST), "timeout_seconds": 2},
        headers=tenancy.owner,
    )  # fmt: skip
    assert_failed(result_of(response), "HOST_NOT_FOUND", "dns")


async def test_clickhouse_through_the_api(tenancy: Tenancy, clickhouse: ClickHouse) -> None:
    server = clickhouse.server()
    created = await tenancy.create(
        body(
            "clickhouse", server.host, port=server.port, username="probe", password=server.password
        )
    )
    assert created["connection"]["password"] == "********"  # masked, never echoed
    tested = result_of(await run_test(tenancy.client, created["id"], tenancy.owner))
    assert tested["connection_successful"] is True, tested
    assert tested["database_version"].startswith("ClickHouse 18.")
    assert tested["test_query_result"] == "1"
    assert tested["security"]["tls"] is False
    assert clickhouse.password not in str(tested)


async def test_mongodb_srv_lookup_runs_before_the_policy(tenancy: Tenancy) -> None:
    """With srv, the SRV record of the name is looked up first: none exists for .invalid."""
    unsaved = {**body("mongodb", UNRESOLVABLE_HOST, srv=True), "timeout_seconds": 2}
    response = await tenancy.client.post(UNSAVED_TEST, json=unsaved, headers=tenancy.owner)
    data = assert_failed(result_of(response), "HOST_NOT_FOUND", "dns")
    assert "SRV" in data["error_message"]


async def test_trino_jwt_is_write_only(tenancy: Tenancy) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.canary-jwt-5b7c.sig"
    created = await tenancy.create(
        body("trino", "trino.example", jwt=token, ssl_mode="verify-full")
    )
    assert created["connection"]["jwt"] == "********"
    fetched = await tenancy.get(created["id"])
    assert token not in str(fetched)
    row = await load_row(tenancy.api, created["id"])
    assert token not in str(row.connection)  # stored encrypted, with the other secrets
