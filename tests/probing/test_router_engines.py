"""Every engine through POST /api/v1/data-sources/{id}/test against real servers and files.

The network engines run against the machine's PostgreSQL, MariaDB (as both the mysql and the
mariadb engine) and Redis, or against the password-checking servers of tests/fixtures/servers.py;
the file engines against files each test creates in the allowed directory. Each failure mode a
user can act on must come back as its own error code and phase, with HTTP 200.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable

import psycopg
import pymysql
import pytest
import redis

from tests.fixtures.datasources import Tenancy, load_row, unique_name
from tests.fixtures.probing import (
    FILE_ENGINES,
    FILE_ROWS,
    NETWORK_ENGINES,
    assert_failed,
    assert_shape,
    create_file_source,
    file_body,
    files_dir,
    network_body,
    result_of,
    run_test,
)
from tests.fixtures.servers import Server

# One app serves the whole module (each test adds its own data sources); see fixtures/probing.py.
pytestmark = [pytest.mark.anyio, pytest.mark.store]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that the module's shared app runs on the tests' event loop."""
    return "asyncio"


@pytest.fixture
def tenancy(module_tenancy: Tenancy) -> Tenancy:
    """The owner of the app this module shares."""
    return module_tenancy


ServerFor = Callable[[str], Server]
ALL_ENGINES = (*NETWORK_ENGINES, *FILE_ENGINES)
DEFAULT_RESULT = {"redis": "PONG"}  # SQL engines answer SELECT 1 with "1"


def server_version(engine: str, server: Server) -> str:
    """The version string the API must report, asked of the server itself."""
    if engine == "postgresql":
        with psycopg.connect(
            host=server.host, port=server.port, user="postgres", dbname="postgres"
        ) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        assert row is not None
        return f"PostgreSQL {str(row[0]).split()[0]}"
    if engine in ("mysql", "mariadb"):
        mysql = pymysql.connect(host=server.host, port=server.port, user="root", password="")
        try:
            with mysql.cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                (reported,) = cursor.fetchone() or ("",)
        finally:
            mysql.close()
        assert "mariadb" in str(reported).lower(), reported
        number = re.search(r"\d+\.\d+\.\d+", str(reported))
        assert number is not None, reported
        return f"MariaDB {number.group()}"
    client = redis.Redis(host=server.host, port=server.port)
    try:
        info = client.info("server")
    finally:
        client.close()
    return f"Redis {info['redis_version']}"


def file_version(engine: str) -> str:
    """The version string of a file engine's library, as loaded in this process."""
    if engine == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    import duckdb

    return f"DuckDB {duckdb.__version__}"


async def source_id(tenancy: Tenancy, engine: str, server: Server, **connection: object) -> int:
    """Register a network data source on `server` (fields replaced by `connection`)."""
    created = await tenancy.create(network_body(engine, server, unique_name(engine), **connection))
    return int(created["id"])


async def any_source(tenancy: Tenancy, engine: str, shared_server: ServerFor) -> tuple[int, str]:
    """A working data source of any engine, and the version it must report."""
    if engine in FILE_ENGINES:
        data_source_id, _ = await create_file_source(tenancy, engine, unique_name(engine))
        return data_source_id, file_version(engine)
    server = shared_server(engine)
    return await source_id(tenancy, engine, server), server_version(engine, server)


# ----- success -------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ALL_ENGINES)
async def test_default_query_succeeds_with_the_servers_version(
    tenancy: Tenancy, shared_server: ServerFor, engine: str
) -> None:
    data_source_id, version = await any_source(tenancy, engine, shared_server)
    response = await run_test(tenancy.client, data_source_id, tenancy.owner)
    data = result_of(response)
    assert_shape(data)
    assert data["data_source_id"] == data_source_id
    assert data["connection_successful"] is True
    assert data["test_query_result"] == DEFAULT_RESULT.get(engine, "1")
    assert data["database_version"] == version
    expected_prefix = {
        "postgresql": "PostgreSQL ",
        "mysql": "MariaDB ",
        "mariadb": "MariaDB ",
        "redis": "Redis ",
        "sqlite": "SQLite 3.",
        "duckdb": "DuckDB ",
    }[engine]
    assert version.startswith(expected_prefix)
    assert data["ssh_tunnel_established"] is False
    assert data["timings_ms"]
    assert data["timings_ms"].get("query") is not None
    shown = await tenancy.get(data_source_id)
    assert (shown["status"], shown["database_version"]) == ("active", version)


@pytest.mark.parametrize(
    ("engine", "query", "expected"),
    [
        ("postgresql", "SELECT 6 * 7, 'second column' UNION ALL SELECT 43, 'next row'", "42"),
        ("mysql", "SELECT 6 * 7, 'second column' UNION ALL SELECT 43, 'next row'", "42"),
        ("mariadb", "SELECT CONCAT('maria', '-', 6 * 7)", "maria-42"),
        ("redis", "ECHO 'rivergen 42'", "rivergen 42"),
        ("sqlite", "SELECT name, id FROM t ORDER BY id", FILE_ROWS[0][1]),
        ("duckdb", "SELECT name, id FROM t ORDER BY id DESC", FILE_ROWS[-1][1]),
        ("postgresql", "SELECT 1 WHERE false", None),
    ],
)
async def test_custom_query_returns_the_first_cell(
    tenancy: Tenancy, shared_server: ServerFor, engine: str, query: str, expected: str | None
) -> None:
    data_source_id, _ = await any_source(tenancy, engine, shared_server)
    response = await run_test(tenancy.client, data_source_id, tenancy.owner, {"test_query": query})
    data = result_of(response)
    assert_shape(data)
    assert data["connection_successful"] is True, data
    assert data["test_query_result"] == expected


# ----- failures, one per cause ---------------------------------------------------------------


@pytest.mark.parametrize("engine", NETWORK_ENGINES)
async def test_wrong_password_is_authentication_failed(
    tenancy: Tenancy, password_server: ServerFor, engine: str
) -> None:
    server = password_server(engine)
    right = await source_id(tenancy, engine, server)
    wrong = await source_id(tenancy, engine, server, password="not-" + str(server.password))
    # The stored, encrypted password is the one the test uses: right works, wrong does not.
    assert result_of(await run_test(tenancy.client, right, tenancy.owner))["test_query_result"]
    data = result_of(await run_test(tenancy.client, wrong, tenancy.owner))
    assert_failed(data, "AUTHENTICATION_FAILED", "auth")


@pytest.mark.parametrize("engine", ALL_ENGINES)
async def test_unknown_database_is_database_not_found(
    tenancy: Tenancy, shared_server: ServerFor, engine: str
) -> None:
    if engine in FILE_ENGINES:
        name = unique_name(engine)
        missing = files_dir(tenancy.api) / f"{name}.{engine}"
        created = await tenancy.create(file_body(engine, missing, name))
        data_source_id = int(created["id"])
    else:
        database: object = 9999 if engine == "redis" else "rg_no_such_database"
        data_source_id = await source_id(tenancy, engine, shared_server(engine), database=database)
    data = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner))
    assert_failed(data, "DATABASE_NOT_FOUND", "auth")


@pytest.mark.parametrize("engine", NETWORK_ENGINES)
async def test_refused_port_is_connection_error(
    tenancy: Tenancy, shared_server: ServerFor, closed_port: int, engine: str
) -> None:
    data_source_id = await source_id(tenancy, engine, shared_server(engine), port=closed_port)
    data = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner))
    assert_failed(data, "CONNECTION_ERROR", "tcp")
    assert "refused" in data["error_message"].lower()


@pytest.mark.parametrize("engine", NETWORK_ENGINES)
async def test_unresolvable_host_is_host_not_found(
    tenancy: Tenancy, unresolvable_host: str, engine: str
) -> None:
    server = Server(unresolvable_host, 5432, username="postgres", database="postgres")
    data_source_id = await source_id(tenancy, engine, server)
    data = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner))
    assert_failed(data, "HOST_NOT_FOUND", "dns")
    assert unresolvable_host in data["error_message"]


@pytest.mark.parametrize("engine", NETWORK_ENGINES)
async def test_silent_listener_times_out_within_the_limit(
    tenancy: Tenancy, silent_listener: tuple[str, int], engine: str
) -> None:
    host, port = silent_listener
    server = Server(host, port, username="postgres", database="postgres")
    data_source_id = await source_id(tenancy, engine, server)
    started = time.monotonic()
    response = await run_test(tenancy.client, data_source_id, tenancy.owner, {"timeout_seconds": 2})
    elapsed = time.monotonic() - started
    # TCP was accepted, the server never spoke: a timeout while logging in.
    data = assert_failed(result_of(response), "TIMEOUT", "auth")
    assert 1.9 <= elapsed < 3.0, f"answered after {elapsed:.2f} s"
    assert "2 s" in data["error_message"]
    row = await load_row(tenancy.api, data_source_id)
    assert (row.status, row.last_error_code) == ("failed", "TIMEOUT")
