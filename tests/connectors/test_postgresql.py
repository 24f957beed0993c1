"""PostgreSQL-only connector cases against real servers; the cases shared with MariaDB are in
test_network_engines.py."""

from __future__ import annotations

import psycopg
import pytest
from pydantic import ValidationError

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.postgresql import SPEC, PostgresConnection
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.servers import Server

CONNECTOR = SPEC.connector


def fail(target: ConnectionTarget) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, None, Deadline.after(10))
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


def test_missing_password(postgres_with_password: Server) -> None:
    failure = fail(postgres_with_password.target(password=None))
    assert failure.code is ErrorCode.AUTHENTICATION_FAILED


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
