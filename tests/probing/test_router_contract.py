"""The spec's contract of POST /api/v1/data-sources/{id}/test, field by field, and its edges.

Response shapes for a working and a failing connection, what a test leaves behind (data-source
status and timestamps, one health record) and request validation. Roles and tenancy, the
unsaved-configuration endpoint, rate limits and secrets are in test_router_access.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.datasources import (
    Tenancy,
    error_of,
    unique_name,
)
from tests.fixtures.probing import (
    MESSAGE,
    UNKNOWN_SECURITY,
    UNSAVED_TEST,
    assert_failed,
    assert_shape,
    endpoint_of,
    health_records,
    network_body,
    parse_utc,
    result_of,
    run_test,
    sqlite_source,
    user_id_of,
)
from tests.fixtures.servers import Server

# One app serves most of the module (each test adds its own data sources and users).
pytestmark = [pytest.mark.anyio, pytest.mark.store]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that the module's shared app runs on the tests' event loop."""
    return "asyncio"


@pytest.fixture
def tenancy(module_tenancy: Tenancy) -> Tenancy:
    """The owner of the app this module shares."""
    return module_tenancy


async def refused_source(tenancy: Tenancy, local_postgres: Server, closed_port: int) -> int:
    """A PostgreSQL data source on a port where nothing listens."""
    body = network_body("postgresql", local_postgres, unique_name("pg"), port=closed_port)
    return int((await tenancy.create(body))["id"])


# ----- response shapes -----------------------------------------------------------------------


async def test_success_response_field_by_field(tenancy: Tenancy) -> None:
    import sqlite3

    data_source_id = await sqlite_source(tenancy)
    before = datetime.now(UTC)
    response = await run_test(tenancy.client, data_source_id, tenancy.owner)
    after = datetime.now(UTC)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    envelope = response.json()
    assert set(envelope) == {"success", "data", "message"}
    assert envelope["success"] is True
    assert envelope["message"] == MESSAGE
    data = envelope["data"]
    assert_shape(data)
    assert data["data_source_id"] == data_source_id
    assert data["status"] == "active"
    assert data["connection_successful"] is True
    assert type(data["response_time_ms"]) is int
    assert 0 <= data["response_time_ms"] < 10_000
    assert data["test_query_result"] == "1"
    tested_at = parse_utc(data["tested_at"])
    assert before - timedelta(seconds=1) <= tested_at <= after
    assert data["ssh_tunnel_established"] is False
    assert data["database_version"] == f"SQLite {sqlite3.sqlite_version}"
    assert data["error_message"] is None
    assert data["error_code"] is None
    assert data["error_phase"] is None
    assert data["hint"] is None
    assert data["ssh_host_key_fingerprint"] is None
    assert {"auth", "query"} <= set(data["timings_ms"])
    assert data["test_query_result_truncated"] is False
    # A file has no transport and no login: every field of security is unknown.
    assert data["security"] == UNKNOWN_SECURITY

    shown = await tenancy.get(data_source_id)
    assert shown["status"] == "active"
    assert parse_utc(shown["last_tested_at"]) == tested_at
    assert parse_utc(shown["last_connected_at"]) == tested_at
    assert shown["last_response_time_ms"] == data["response_time_ms"]
    assert shown["last_error_code"] is None
    assert shown["last_error_message"] is None
    assert shown["database_version"] == data["database_version"]

    (record,) = await health_records(tenancy.api, data_source_id)
    assert record.triggered_by == "manual"
    assert record.user_id == await user_id_of(tenancy.client, tenancy.owner)
    assert record.organization_id == tenancy.organization_id
    assert record.connection_successful is True
    assert record.tested_at == tested_at
    assert record.response_time_ms == data["response_time_ms"]
    assert (record.error_code, record.error_message, record.error_phase) == (None, None, None)
    assert record.database_version == data["database_version"]
    assert record.ssh_tunnel_established is False


async def test_failure_response_field_by_field(
    tenancy: Tenancy, local_postgres: Server, closed_port: int
) -> None:
    data_source_id = await refused_source(tenancy, local_postgres, closed_port)
    response = await run_test(tenancy.client, data_source_id, tenancy.owner)

    # A failing connection is a completed test: HTTP 200 and success true.
    assert response.status_code == 200
    envelope = response.json()
    assert set(envelope) == {"success", "data", "message"}
    assert envelope["success"] is True
    assert envelope["message"] == MESSAGE
    data = envelope["data"]
    assert_failed(data, "CONNECTION_ERROR", "tcp")
    assert data["data_source_id"] == data_source_id
    assert data["status"] == "failed"
    assert data["connection_successful"] is False
    assert data["response_time_ms"] is None
    assert data["test_query_result"] is None
    parse_utc(data["tested_at"])
    assert data["ssh_tunnel_established"] is False
    assert data["database_version"] is None
    assert "refused" in data["error_message"].lower()
    assert data["error_code"] == "CONNECTION_ERROR"
    assert "port" in data["hint"].lower()
    assert data["ssh_host_key_fingerprint"] is None
    assert data["test_query_result_truncated"] is False
    # Nothing was negotiated with a port that refused the connection.
    assert data["security"] == UNKNOWN_SECURITY

    shown = await tenancy.get(data_source_id)
    assert shown["status"] == "failed"
    assert parse_utc(shown["last_tested_at"]) == parse_utc(data["tested_at"])
    assert shown["last_connected_at"] is None  # never connected
    assert shown["last_response_time_ms"] is None
    assert shown["last_error_code"] == "CONNECTION_ERROR"
    assert shown["last_error_message"] == data["error_message"]
    assert shown["database_version"] is None

    (record,) = await health_records(tenancy.api, data_source_id)
    assert record.triggered_by == "manual"
    assert record.user_id == await user_id_of(tenancy.client, tenancy.owner)
    assert record.connection_successful is False
    assert record.tested_at == parse_utc(data["tested_at"])
    assert record.error_code == "CONNECTION_ERROR"
    assert record.error_phase == "tcp"
    assert record.error_message == data["error_message"]
    assert record.database_version is None


async def test_status_and_timestamps_follow_each_outcome(tenancy: Tenancy) -> None:
    """Success, failure, success: last_connected_at moves only on success, errors clear."""
    data_source_id = await sqlite_source(tenancy)
    client, owner = tenancy.client, tenancy.owner
    first = result_of(await run_test(client, data_source_id, owner))
    failed = result_of(
        await run_test(client, data_source_id, owner, {"test_query": "SELECT * FROM no_such"})
    )
    assert_failed(failed, "QUERY_ERROR", "query")
    assert "no_such" in failed["error_message"]

    shown = await tenancy.get(data_source_id)
    assert shown["status"] == "failed"
    assert parse_utc(shown["last_tested_at"]) == parse_utc(failed["tested_at"])
    assert parse_utc(shown["last_connected_at"]) == parse_utc(first["tested_at"])
    assert shown["last_error_code"] == "QUERY_ERROR"
    assert shown["last_error_message"] == failed["error_message"]
    assert shown["database_version"] == first["database_version"]

    second = result_of(await run_test(client, data_source_id, owner))
    assert parse_utc(second["tested_at"]) > parse_utc(failed["tested_at"])
    shown = await tenancy.get(data_source_id)
    assert shown["status"] == "active"
    assert parse_utc(shown["last_connected_at"]) == parse_utc(second["tested_at"])
    assert shown["last_response_time_ms"] == second["response_time_ms"]
    assert (shown["last_error_code"], shown["last_error_message"]) == (None, None)

    records = await health_records(tenancy.api, data_source_id)
    outcomes = [(r.connection_successful, r.error_code) for r in records]
    assert outcomes == [(True, None), (False, "QUERY_ERROR"), (True, None)]
    assert [r.tested_at for r in records] == [
        parse_utc(d["tested_at"]) for d in (first, failed, second)
    ]


# ----- request bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timeout_seconds": 0}, "body.timeout_seconds"),
        ({"timeout_seconds": 301}, "body.timeout_seconds"),
        ({"timeout_seconds": -5}, "body.timeout_seconds"),
        ({"timeout_seconds": "abc"}, "body.timeout_seconds"),
        ({"timeout_seconds": "30"}, "body.timeout_seconds"),
        ({"timeout_seconds": 2.5}, "body.timeout_seconds"),
        ({"timeout_seconds": True}, "body.timeout_seconds"),
        ({"timeout_seconds": None}, "body.timeout_seconds"),
        ({"test_query": ""}, "body.test_query"),
        ({"test_query": 5}, "body.test_query"),
        ({"test_query": "SELECT 1", "unknown": 1}, "body.unknown"),
        ({"timeout": 5}, "body.timeout"),
    ],
)
async def test_bad_bodies_are_refused_before_any_test(
    tenancy: Tenancy, body: dict[str, Any], field: str
) -> None:
    data_source_id = await sqlite_source(tenancy)
    response = await run_test(tenancy.client, data_source_id, tenancy.owner, body)
    error = error_of(response, 422, "VALIDATION_ERROR")
    assert field in [detail["field"] for detail in error["details"]], error
    assert await health_records(tenancy.api, data_source_id) == []
    assert (await tenancy.get(data_source_id))["status"] == "pending"


async def test_an_integral_float_timeout_is_an_integer(tenancy: Tenancy) -> None:
    # JSON Schema's `integer` (the document's type) includes 3.0.
    data_source_id = await sqlite_source(tenancy)
    response = await run_test(
        tenancy.client, data_source_id, tenancy.owner, {"timeout_seconds": 3.0}
    )
    assert response.status_code == 200, response.text


async def test_a_body_that_is_not_an_object_is_refused(tenancy: Tenancy) -> None:
    data_source_id = await sqlite_source(tenancy)
    response = await run_test(tenancy.client, data_source_id, tenancy.owner, [1])  # type: ignore[arg-type]
    error_of(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("timeout_seconds", [1, 300])
async def test_timeout_bounds_are_inclusive(tenancy: Tenancy, timeout_seconds: int) -> None:
    data_source_id = await sqlite_source(tenancy)
    body = {"timeout_seconds": timeout_seconds}
    data = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner, body))
    assert data["connection_successful"] is True


async def test_non_integer_id_in_the_path(tenancy: Tenancy) -> None:
    for bad in ("abc", "1.5"):
        response = await tenancy.client.post(endpoint_of(bad), headers=tenancy.owner)
        error = error_of(response, 422, "VALIDATION_ERROR")
        assert [detail["field"] for detail in error["details"]] == ["path.data_source_id"]


async def test_malformed_json_is_bad_request(tenancy: Tenancy) -> None:
    data_source_id = await sqlite_source(tenancy)
    for url in (endpoint_of(data_source_id), UNSAVED_TEST):
        response = await tenancy.client.post(
            url,
            content=b'{"timeout_seconds": 3',
            headers={**tenancy.owner, "Content-Type": "application/json"},
        )
        error_of(response, 400, "BAD_REQUEST")
    assert await health_records(tenancy.api, data_source_id) == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (None, None),  # no body at all
        (b"", "application/json"),  # an empty body
        (b"{}", "application/json"),
        (b"null", "application/json"),
    ],
)
async def test_body_is_optional(
    tenancy: Tenancy, content: bytes | None, content_type: str | None
) -> None:
    data_source_id = await sqlite_source(tenancy)
    headers = dict(tenancy.owner)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await tenancy.client.post(
        endpoint_of(data_source_id), content=content, headers=headers
    )
    data = result_of(response)
    assert (data["connection_successful"], data["test_query_result"]) == (True, "1")


async def test_a_long_first_cell_is_cut_to_1024_characters_and_flagged(tenancy: Tenancy) -> None:
    data_source_id = await sqlite_source(tenancy)
    long_query = {"test_query": "SELECT printf('%.*c', 5000, 'x')"}
    data = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner, long_query))
    assert_shape(data)
    assert data["test_query_result"] == "x" * 1024
    assert data["test_query_result_truncated"] is True

    short_query = {"test_query": "SELECT printf('%.*c', 1024, 'x')"}
    data = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner, short_query))
    assert data["test_query_result"] == "x" * 1024
    assert data["test_query_result_truncated"] is False


async def test_security_of_a_real_postgres_connection(
    tenancy: Tenancy, local_postgres: Server
) -> None:
    import psycopg

    body = network_body("postgresql", local_postgres, unique_name("pg"), ssl_mode="prefer")
    data_source_id = int((await tenancy.create(body))["id"])
    query = {"test_query": "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"}
    data = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner, query))
    assert_shape(data)
    assert data["connection_successful"] is True, data
    security = data["security"]
    # What the server itself says of this session's encryption.
    assert security["tls"] is (data["test_query_result"] == "true")
    assert security["tls_verified"] is False  # prefer never verifies
    assert security["auth_method"] == "none"  # the local server trusts its clients
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as conn:
        row = conn.execute("SHOW ssl").fetchone()
    assert row is not None
    assert security["tls"] is (row[0] == "on")
