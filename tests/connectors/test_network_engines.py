"""Cases every SQL server engine must pass alike, against the machine's real PostgreSQL and
MariaDB: authentication, failures by phase, deadlines, and writes refused by the engine's own
read-only mode as well as by the keyword guard. Engine-specific cases stay in test_postgresql.py
and test_mysql.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pymysql
import pytest

from rivergen.connectors.base import ConnectionTarget, Connector, OptionValue
from rivergen.connectors.mysql import MARIADB_SPEC, MySQLConnector
from rivergen.connectors.postgresql import SPEC as POSTGRES_SPEC
from rivergen.connectors.postgresql import PostgresConnector
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.servers import Server, unique_name
from tests.fixtures.statements import (
    SERVER_STOP_SLACK_SECONDS,
    mariadb_running,
    postgres_running,
    running_after,
)


def _postgres_state(table: str) -> tuple[int, int]:
    """(rows in the table, tables in its schema) read directly from the server."""
    schema = table.split(".")[0]
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as conn:
        rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchone()
    assert rows is not None
    assert tables is not None
    return int(rows[0]), int(tables[0])


def _mariadb_state(table: str) -> tuple[int, int]:
    """(rows in the table, tables in its database) read directly from the server."""
    database = table.split(".")[0]
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        rows = cur.fetchone()
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", (database,)
        )
        tables = cur.fetchone()
    conn.close()
    assert rows is not None
    assert tables is not None
    return int(rows[0]), int(tables[0])


@dataclass(frozen=True)
class Engine:
    """One engine under test: its connectors, the fixtures that serve it, its own SQL."""

    name: str
    connector: Connector
    engine_only: Connector  # the keyword guard off: the engine's read-only mode alone
    local: str  # fixture names
    with_password: str
    scratch_table: str
    port: int
    username: str
    state: Callable[[str], tuple[int, int]]
    writes: tuple[str, ...]  # templates; {t} is the scratch table
    sleep_query: str  # {marker} names the statement in the server's list of running ones
    running: Callable[[str], int]  # how many statements holding a marker the server runs
    file_write_query: str  # {path} is a file the server must not create
    bad_option: dict[str, OptionValue]
    # Text the wrong-password message must hold (None: no engine-specific text).
    wrong_password_says: str | None = None


_COMMON_WRITES = (
    "DROP TABLE {t}",
    "INSERT INTO {t} VALUES (99)",
    "UPDATE {t} SET id = id + 10",
    "CREATE TABLE {t}_new (a int)",
    "SELECT 1; DELETE FROM {t}",
)

POSTGRES = Engine(
    name="postgresql",
    connector=POSTGRES_SPEC.connector,
    engine_only=PostgresConnector(check_keywords=False),  # the read-only transaction
    local="local_postgres",
    with_password="postgres_with_password",  # a private scram-sha-256 cluster
    scratch_table="pg_scratch_table",
    port=5432,
    username="postgres",
    state=_postgres_state,
    writes=(
        *_COMMON_WRITES,
        "WITH x AS (DELETE FROM {t} RETURNING *) SELECT 1",
        "SELECT * INTO {t}_copy FROM {t}",
    ),
    sleep_query="SELECT pg_sleep(10) /* {marker} */",
    running=postgres_running,
    # A read-only transaction does not stop COPY ... TO PROGRAM.
    file_write_query="COPY (SELECT 1) TO PROGRAM 'touch {path}'",
    bad_option={"target_session_attrs": "bogus"},
)
MARIADB = Engine(
    name="mariadb",
    connector=MARIADB_SPEC.connector,
    engine_only=MySQLConnector(check_keywords=False),  # the read-only session
    local="local_mariadb",
    with_password="mariadb_with_password",
    scratch_table="mariadb_scratch_table",
    port=3306,
    username="root",
    state=_mariadb_state,
    writes=(*_COMMON_WRITES, "DELETE FROM {t}", "TRUNCATE TABLE {t}"),
    sleep_query="SELECT SLEEP(10) /* {marker} */",
    running=mariadb_running,
    # A read-only transaction does not stop SELECT ... INTO OUTFILE.
    file_write_query="SELECT 1 INTO OUTFILE '{path}'",
    bad_option={"charset": "klingon"},
    wrong_password_says="using password: YES",
)
ENGINES = [POSTGRES, MARIADB]
ENGINE_IDS = [engine.name for engine in ENGINES]
WRITE_CASES = [
    pytest.param(engine, template, id=f"{engine.name}-{template}")
    for engine in ENGINES
    for template in engine.writes
]


def fail(
    connector: Connector, target: ConnectionTarget, query: str | None = None, seconds: float = 10
) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        connector.probe(target, query, Deadline.after(seconds))
    return info.value


def server(request: pytest.FixtureRequest, name: str) -> Server:
    """The server fixture `name`, so that one test can run against either engine's servers."""
    value = request.getfixturevalue(name)
    assert isinstance(value, Server)
    return value


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_right_password(engine: Engine, request: pytest.FixtureRequest) -> None:
    target = server(request, engine.with_password).target()
    result = engine.connector.probe(target, None, Deadline.after(10))
    assert result.test_query_result == "1"


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_wrong_password(engine: Engine, request: pytest.FixtureRequest) -> None:
    target = server(request, engine.with_password).target(password="not-the-password")
    failure = fail(engine.connector, target)
    assert (failure.code, failure.phase) == (ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH)
    if engine.wrong_password_says is not None:
        assert engine.wrong_password_says in failure.message


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_password_never_appears_in_the_message(
    engine: Engine, request: pytest.FixtureRequest
) -> None:
    # A user who typed the password into the username field: the server echoes the user name.
    secret = "Sw0rdfish-typed-in-the-wrong-box"
    target = server(request, engine.with_password).target(username=secret, password=secret)
    failure = fail(engine.connector, target)
    assert failure.code is ErrorCode.AUTHENTICATION_FAILED
    assert secret not in failure.message
    assert "********" in failure.message


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_unknown_database(engine: Engine, request: pytest.FixtureRequest) -> None:
    target = server(request, engine.local).target(database="rg_no_such_database")
    failure = fail(engine.connector, target)
    assert (failure.code, failure.phase) == (ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_refused_port(engine: Engine, request: pytest.FixtureRequest, closed_port: int) -> None:
    failure = fail(engine.connector, server(request, engine.local).target(port=closed_port))
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.TCP)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_unresolvable_host_without_address(engine: Engine, unresolvable_host: str) -> None:
    target = ConnectionTarget(host=unresolvable_host, port=engine.port, username=engine.username)
    failure = fail(engine.connector, target)
    assert (failure.code, failure.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_ssl_required_but_not_offered(engine: Engine, request: pytest.FixtureRequest) -> None:
    failure = fail(engine.connector, server(request, engine.local).target(ssl_mode="require"))
    assert (failure.code, failure.phase) == (ErrorCode.SSL_ERROR, Phase.TLS)


@pytest.mark.parametrize(
    ("engine", "seconds", "slack"),
    [
        # libpq alone would round a 1 s budget up to 2 s.
        pytest.param(POSTGRES, 2.0, 0.6, id="postgresql-2s"),
        pytest.param(POSTGRES, 1.0, 0.6, id="postgresql-1s"),
        pytest.param(MARIADB, 2.0, 1.0, id="mariadb-2s"),
    ],
)
def test_silent_listener_times_out_on_time(
    engine: Engine, seconds: float, slack: float, silent_listener: tuple[str, int]
) -> None:
    host, port = silent_listener
    target = ConnectionTarget(host="localhost", address=host, port=port, username=engine.username)
    started = time.monotonic()
    failure = fail(engine.connector, target, seconds=seconds)
    elapsed = time.monotonic() - started
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.AUTH)
    assert f"did not answer within {seconds:.0f} s" in failure.message
    assert elapsed < seconds + slack


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_slow_query_is_cut_at_the_deadline(engine: Engine, request: pytest.FixtureRequest) -> None:
    started = time.monotonic()
    target = server(request, engine.local).target()
    marker = unique_name("rg_sleep")
    failure = fail(engine.connector, target, engine.sleep_query.format(marker=marker), seconds=1)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.QUERY)
    assert time.monotonic() - started < 1.6
    # The server stopped the statement too (its own time limit), not only the client's wait.
    assert running_after(engine.running, marker, started + 1 + SERVER_STOP_SLACK_SECONDS) == 0


@pytest.mark.parametrize(("engine", "template"), WRITE_CASES)
def test_read_only_mode_alone_refuses_writes(
    engine: Engine, template: str, request: pytest.FixtureRequest
) -> None:
    table = request.getfixturevalue(engine.scratch_table)
    target = server(request, engine.local).target()
    failure = fail(engine.engine_only, target, template.format(t=table))
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
    assert engine.state(table) == (3, 1)


@pytest.mark.parametrize(("engine", "template"), WRITE_CASES)
def test_default_connector_refuses_writes(
    engine: Engine, template: str, request: pytest.FixtureRequest
) -> None:
    table = request.getfixturevalue(engine.scratch_table)
    failure = fail(
        engine.connector, server(request, engine.local).target(), template.format(t=table)
    )
    assert failure.code is ErrorCode.QUERY_ERROR
    assert engine.state(table) == (3, 1)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_file_writes_are_refused_even_without_the_keyword_guard(
    engine: Engine, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    written = tmp_path / "written"
    query = engine.file_write_query.format(path=written)
    failure = fail(engine.engine_only, server(request, engine.local).target(), query)
    assert failure.code is ErrorCode.QUERY_ERROR
    assert not written.exists()


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_invalid_option_value_is_a_configuration_error(
    engine: Engine, request: pytest.FixtureRequest
) -> None:
    failure = fail(
        engine.connector, server(request, engine.local).target(options=engine.bad_option)
    )
    assert (failure.code, failure.phase) == (ErrorCode.CONFIGURATION_ERROR, Phase.POLICY)
