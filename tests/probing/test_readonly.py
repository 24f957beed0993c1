"""A test_query that tries to write fails as QUERY_ERROR and changes nothing, on every engine.

Each case sends the query through the HTTP API, then looks at the target directly: the
PostgreSQL and MariaDB scratch tables of tests/fixtures/servers.py, the bytes of SQLite and
DuckDB files, and a key on a private redis-server (never the shared one: a broken guard would
run FLUSHALL there). Several queries pass the keyword guard on purpose (WITH, EXPLAIN, PRAGMA,
SELECT ... INTO) so that the engine's own read-only mode is what refuses them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymysql
import pytest
import redis

from tests.fixtures.datasources import Tenancy, unique_name
from tests.fixtures.probing import (
    FILE_ROWS,
    assert_failed,
    create_file_source,
    file_rows,
    network_body,
    result_of,
    run_test,
)
from tests.fixtures.servers import Server

pytestmark = [pytest.mark.anyio, pytest.mark.store]

OUTFILE = f"/tmp/rg-outfile-{secrets.token_hex(6)}"

# {t} is the scratch table, {s} its schema (PostgreSQL) or database (MariaDB).
PG_WRITES = [
    "DROP TABLE {t}",
    "INSERT INTO {t} VALUES (4)",
    "UPDATE {t} SET id = id + 10",
    "CREATE TABLE {s}.created (id int)",
    "SELECT 1; DROP TABLE {t}",
    "WITH gone AS (DELETE FROM {t} RETURNING id) SELECT count(*) FROM gone",
    "EXPLAIN ANALYZE DELETE FROM {t}",
    "SELECT * INTO {s}.copied FROM {t}",
    "COPY {t} FROM PROGRAM 'true'",
]
MARIADB_WRITES = [
    "DROP TABLE {t}",
    "INSERT INTO {t} VALUES (4)",
    "UPDATE {t} SET id = id + 10",
    "CREATE TABLE {s}.created (id int)",
    "SELECT 1; DROP TABLE {t}",
    "# a comment line\nDELETE FROM {t}",
    f"SELECT * FROM {{t}} INTO OUTFILE '{OUTFILE}'",
    f"SELECT * FROM {{t}} INTO/**/OUTFILE '{OUTFILE}'",
]
FILE_WRITES = [
    "DROP TABLE t",
    "INSERT INTO t VALUES (4, 'delta')",
    "UPDATE t SET name = 'changed'",
    "CREATE TABLE created (id INTEGER)",
    "SELECT 1; DROP TABLE t",
    "WITH doomed AS (SELECT 1) DELETE FROM t",
]
SQLITE_ONLY = [
    "PRAGMA user_version = 7",
    "PRAGMA journal_mode = WAL",
    "ATTACH DATABASE 'other.db' AS other",
]
DUCKDB_ONLY = [
    "COPY t TO '{out}'",
    "CHECKPOINT",
]
REDIS_WRITES = [
    "SET {key} changed",
    "DEL {key}",
    "FLUSHALL",
    "CONFIG SET maxmemory 12345",
    "EVAL \"return redis.call('DEL', KEYS[1])\" 1 {key}",
    "GET {key}\r\nDEL {key}",
]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that the module's shared app runs on the tests' event loop."""
    return "asyncio"


@pytest.fixture
def tenancy(module_tenancy: Tenancy) -> Tenancy:
    """The owner of the app this module shares."""
    return module_tenancy


async def refused(tenancy: Tenancy, body: dict[str, object], query: str) -> None:
    """Register the source, send the write as test_query, expect QUERY_ERROR in phase query."""
    created = await tenancy.create(body)
    data_source_id = int(created["id"])
    response = await run_test(tenancy.client, data_source_id, tenancy.owner, {"test_query": query})
    assert_failed(result_of(response), "QUERY_ERROR", "query")
    # The source itself is fine: the default test still succeeds afterwards.
    after = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner))
    assert after["connection_successful"] is True, after


# ----- PostgreSQL ----------------------------------------------------------------------------


def pg_state(table: str) -> tuple[list[tuple[object, ...]], list[str]]:
    """The scratch table's rows and columns, and the tables of its schema."""
    schema = table.split(".")[0]
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres") as conn:
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
            (schema,),
        ).fetchall()
    return rows, [str(name) for (name,) in tables]


@pytest.mark.parametrize("template", PG_WRITES)
async def test_postgresql_write_attempts_change_nothing(
    tenancy: Tenancy, local_postgres: Server, pg_scratch_table: str, template: str
) -> None:
    schema = pg_scratch_table.split(".")[0]
    before = pg_state(pg_scratch_table)
    assert before == ([(1,), (2,), (3,)], ["t"])
    body = network_body("postgresql", local_postgres, unique_name("pg"))
    await refused(tenancy, body, template.format(t=pg_scratch_table, s=schema))
    assert pg_state(pg_scratch_table) == before


async def test_postgresql_terminate_backend_is_refused(
    tenancy: Tenancy, local_postgres: Server
) -> None:
    # Read-only transactions do not stop pg_terminate_backend: the connector refuses it by name.
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres") as other:
        pid = other.info.backend_pid
        body = network_body("postgresql", local_postgres, unique_name("pg"))
        created = await tenancy.create(body)
        query = f'SELECT pg_catalog."pg_terminate_backend" /* other session */ ({pid})'
        response = await run_test(
            tenancy.client, int(created["id"]), tenancy.owner, {"test_query": query}
        )
        data = assert_failed(result_of(response), "QUERY_ERROR", "query")
        assert "pg_terminate_backend cannot be used in a test query" in data["error_message"]
        assert "outside the read-only transaction" in data["error_message"]
        assert other.execute("SELECT 1").fetchone() == (1,)


# ----- MariaDB -------------------------------------------------------------------------------


def mariadb_state(table: str) -> tuple[list[tuple[object, ...]], list[str]]:
    """The scratch table's rows and the tables of its database."""
    database = table.split(".")[0]
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1")
            rows = [tuple(row) for row in cursor.fetchall()]
            cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "ORDER BY 1",
                (database,),
            )
            tables = [str(name) for (name,) in cursor.fetchall()]
    finally:
        conn.close()
    return rows, tables


@pytest.mark.parametrize("template", MARIADB_WRITES)
async def test_mariadb_write_attempts_change_nothing(
    tenancy: Tenancy, local_mariadb: Server, mariadb_scratch_table: str, template: str
) -> None:
    database = mariadb_scratch_table.split(".")[0]
    before = mariadb_state(mariadb_scratch_table)
    assert before == ([(1,), (2,), (3,)], ["t"])
    body = network_body("mariadb", local_mariadb, unique_name("mariadb"), database=database)
    await refused(tenancy, body, template.format(t=mariadb_scratch_table, s=database))
    assert mariadb_state(mariadb_scratch_table) == before
    assert not Path(OUTFILE).exists()


# ----- SQLite and DuckDB files ---------------------------------------------------------------


def digest(path: Path) -> dict[str, str]:
    """The SHA-256 of the file and of every sibling file it may have grown (journal, WAL)."""
    return {
        sibling.name: hashlib.sha256(sibling.read_bytes()).hexdigest()
        for sibling in sorted(path.parent.iterdir())
        if sibling.name.startswith(path.name)
    }


@pytest.mark.parametrize(
    ("engine", "query"),
    [("sqlite", q) for q in FILE_WRITES + SQLITE_ONLY]
    + [("duckdb", q) for q in FILE_WRITES + DUCKDB_ONLY],
)
async def test_file_write_attempts_change_nothing(
    tenancy: Tenancy, engine: str, query: str
) -> None:
    data_source_id, path = await create_file_source(tenancy, engine, unique_name(engine))
    out = path.with_name(f"{path.name}.copy.csv")
    before = digest(path)
    assert list(before) == [path.name]
    response = await run_test(
        tenancy.client, data_source_id, tenancy.owner, {"test_query": query.format(out=out)}
    )
    assert_failed(result_of(response), "QUERY_ERROR", "query")
    assert digest(path) == before
    assert file_rows(engine, path) == FILE_ROWS
    assert not out.exists()
    assert not (path.parent / "other.db").exists()


# ----- Redis ---------------------------------------------------------------------------------


@pytest.fixture
def redis_key(redis_with_password: Server) -> Iterator[tuple[redis.Redis, str]]:
    """A client of the private redis-server and a key holding "original", deleted after."""
    client = redis.Redis(
        host=redis_with_password.host,
        port=redis_with_password.port,
        password=redis_with_password.password,
        decode_responses=True,
    )
    key = unique_name("rg_key")
    client.set(key, "original")
    try:
        yield client, key
    finally:
        client.delete(key)
        client.close()


@pytest.mark.parametrize("template", REDIS_WRITES)
async def test_redis_write_commands_change_nothing(
    tenancy: Tenancy,
    redis_with_password: Server,
    redis_key: tuple[redis.Redis, str],
    template: str,
) -> None:
    client, key = redis_key
    maxmemory_before = client.config_get("maxmemory")
    keys_before = client.dbsize()
    body = network_body("redis", redis_with_password, unique_name("redis"))
    await refused(tenancy, body, template.format(key=key))
    assert client.get(key) == "original"
    assert client.dbsize() == keys_before
    assert client.config_get("maxmemory") == maxmemory_before
