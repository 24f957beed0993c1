"""PostgreSQL connector against real servers: the machine's (trust) and a private scram cluster."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.postgresql import SPEC, PostgresConnection, PostgresConnector
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.servers import Server

CONNECTOR = SPEC.connector
ENGINE_ONLY = PostgresConnector(check_keywords=False)  # the read-only transaction alone


def fail(
    target: ConnectionTarget,
    query: str | None = None,
    seconds: float = 10,
    connector: PostgresConnector | None = None,
) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        (connector or CONNECTOR).probe(target, query, Deadline.after(seconds))
    return info.value


def test_select_one_reports_version_and_phases(local_postgres: Server) -> None:
    result = CONNECTOR.probe(local_postgres.target(), None, Deadline.after(10))
    assert result.test_query_result == "1"
    assert result.database_version is not None
    assert result.database_version.startswith("PostgreSQL ")
    server = psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres")
    with server:
        expected = server.execute("SHOW server_version").fetchone()
    assert expected is not None
    assert result.database_version == f"PostgreSQL {str(expected[0]).split()[0]}"
    assert set(result.timings_ms) == {"tcp", "auth", "query"}


def test_custom_query_returns_first_cell_of_first_row(local_postgres: Server) -> None:
    query = "SELECT g, 'other' FROM generate_series(7, 1000000) AS g"
    result = CONNECTOR.probe(local_postgres.target(), query, Deadline.after(10))
    assert result.test_query_result == "7"


def test_empty_result_is_none(local_postgres: Server) -> None:
    result = CONNECTOR.probe(local_postgres.target(), "SELECT 1 WHERE false", Deadline.after(10))
    assert result.test_query_result is None


def test_scram_server_accepts_right_password(postgres_with_password: Server) -> None:
    result = CONNECTOR.probe(postgres_with_password.target(), None, Deadline.after(10))
    assert result.test_query_result == "1"


def test_wrong_password(postgres_with_password: Server) -> None:
    failure = fail(postgres_with_password.target(password="not-the-password"))
    assert (failure.code, failure.phase) == (ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH)


def test_missing_password(postgres_with_password: Server) -> None:
    failure = fail(postgres_with_password.target(password=None))
    assert failure.code is ErrorCode.AUTHENTICATION_FAILED


def test_password_never_appears_in_the_message(postgres_with_password: Server) -> None:
    # A user who typed the password into the username field: the server echoes the user name.
    secret = "Sw0rdfish-typed-in-the-wrong-box"
    failure = fail(postgres_with_password.target(username=secret, password=secret))
    assert failure.code is ErrorCode.AUTHENTICATION_FAILED
    assert secret not in failure.message
    assert "********" in failure.message


def test_unknown_database(local_postgres: Server) -> None:
    failure = fail(local_postgres.target(database="rg_no_such_database"))
    assert (failure.code, failure.phase) == (ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH)


def test_refused_port(local_postgres: Server, closed_port: int) -> None:
    failure = fail(local_postgres.target(port=closed_port))
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.TCP)


def test_unresolvable_host_without_address(unresolvable_host: str) -> None:
    target = ConnectionTarget(host=unresolvable_host, port=5432, username="postgres")
    failure = fail(target)
    assert (failure.code, failure.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


def test_ssl_required_but_not_offered(local_postgres: Server) -> None:
    failure = fail(local_postgres.target(ssl_mode="require"))
    assert (failure.code, failure.phase) == (ErrorCode.SSL_ERROR, Phase.TLS)


@pytest.mark.parametrize("seconds", [2.0, 1.0])
def test_silent_listener_times_out_on_time(
    silent_listener: tuple[str, int], seconds: float
) -> None:
    host, port = silent_listener
    target = ConnectionTarget(host="localhost", address=host, port=port, username="postgres")
    started = time.monotonic()
    failure = fail(target, seconds=seconds)
    elapsed = time.monotonic() - started
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.AUTH)
    assert f"did not answer within {seconds:.0f} s" in failure.message
    # libpq alone would round a 1 s budget up to 2 s.
    assert elapsed < seconds + 0.6


def test_slow_query_is_cut_at_the_deadline(local_postgres: Server) -> None:
    started = time.monotonic()
    failure = fail(local_postgres.target(), "SELECT pg_sleep(10)", seconds=1)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.QUERY)
    assert time.monotonic() - started < 1.6


WRITES = [
    "DROP TABLE {t}",
    "INSERT INTO {t} VALUES (99)",
    "UPDATE {t} SET id = id + 10",
    "CREATE TABLE {t}_new (a int)",
    "SELECT 1; DELETE FROM {t}",
    "WITH x AS (DELETE FROM {t} RETURNING *) SELECT 1",
    "SELECT * INTO {t}_copy FROM {t}",
]


def _state(table: str) -> tuple[int, int]:
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


@pytest.mark.parametrize("template", WRITES)
def test_read_only_transaction_alone_refuses_writes(
    local_postgres: Server, pg_scratch_table: str, template: str
) -> None:
    failure = fail(
        local_postgres.target(), template.format(t=pg_scratch_table), connector=ENGINE_ONLY
    )
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
    assert _state(pg_scratch_table) == (3, 1)


@pytest.mark.parametrize("template", WRITES)
def test_default_connector_refuses_writes(
    local_postgres: Server, pg_scratch_table: str, template: str
) -> None:
    failure = fail(local_postgres.target(), template.format(t=pg_scratch_table))
    assert failure.code is ErrorCode.QUERY_ERROR
    assert _state(pg_scratch_table) == (3, 1)


def test_copy_to_program_is_refused_even_without_the_keyword_guard(
    local_postgres: Server, tmp_path: Path
) -> None:
    marker = tmp_path / "copied"
    query = f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'"
    failure = fail(local_postgres.target(), query, connector=ENGINE_ONLY)
    assert failure.code is ErrorCode.QUERY_ERROR
    assert not marker.exists()


def test_reads_from_the_scratch_table(local_postgres: Server, pg_scratch_table: str) -> None:
    query = f"SELECT id FROM {pg_scratch_table} ORDER BY id DESC"
    result = CONNECTOR.probe(local_postgres.target(), query, Deadline.after(10))
    assert result.test_query_result == "3"


def test_connection_model_defaults_and_limits() -> None:
    model = PostgresConnection.model_validate({"host": "db.example.com", "username": "reader"})
    assert (model.port, model.ssl_mode, model.options) == (5432, "prefer", {})
    with pytest.raises(ValueError, match="not allowed"):
        PostgresConnection.model_validate(
            {"host": "h", "username": "u", "options": {"sslrootcert": "/etc/passwd"}}
        )
    with pytest.raises(ValueError, match="type"):
        PostgresConnection.model_validate(
            {"host": "h", "username": "u", "options": {"keepalives_idle": "30"}}
        )
    with pytest.raises(ValidationError, match="pattern"):
        PostgresConnection.model_validate({"host": "/var/run/postgresql", "username": "u"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        PostgresConnection.model_validate({"host": "h", "username": "u", "sslmode": "x"})
    accepted = PostgresConnection.model_validate(
        {"host": "h", "username": "u", "options": {"application_name": "bi", "keepalives": True}}
    )
    assert accepted.options == {"application_name": "bi", "keepalives": True}


def test_a_server_that_is_not_postgresql(local_mariadb: Server) -> None:
    failure = fail(local_mariadb.target(username="postgres"))
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.AUTH)
    assert "did not answer like a PostgreSQL server" in failure.message


def test_invalid_option_value_is_a_configuration_error(local_postgres: Server) -> None:
    failure = fail(local_postgres.target(options={"target_session_attrs": "bogus"}))
    assert (failure.code, failure.phase) == (ErrorCode.CONFIGURATION_ERROR, Phase.POLICY)
