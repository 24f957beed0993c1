"""MySQL/MariaDB connector against the machine's MariaDB and a user with a password."""

from __future__ import annotations

import time
from pathlib import Path

import pymysql
import pytest
from pydantic import ValidationError

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.mysql import (
    MARIADB_SPEC,
    MYSQL_SPEC,
    MySQLConnection,
    MySQLConnector,
    describe_version,
)
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.servers import Server

CONNECTOR = MARIADB_SPEC.connector
ENGINE_ONLY = MySQLConnector(check_keywords=False)  # the read-only session alone


def fail(
    target: ConnectionTarget,
    query: str | None = None,
    seconds: float = 10,
    connector: MySQLConnector | None = None,
) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        (connector or CONNECTOR).probe(target, query, Deadline.after(seconds))
    return info.value


def _root() -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
    return pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)


def test_select_one_reports_version(local_mariadb: Server) -> None:
    result = CONNECTOR.probe(local_mariadb.target(), None, Deadline.after(10))
    assert result.test_query_result == "1"
    conn = _root()
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
    conn.close()
    assert row is not None
    number = str(row[0]).split("-")[0]
    assert result.database_version == f"MariaDB {number}"
    assert set(result.timings_ms) == {"tcp", "auth", "query"}


def test_mysql_and_mariadb_share_the_connector() -> None:
    assert MYSQL_SPEC.connector is MARIADB_SPEC.connector
    assert MYSQL_SPEC.connection_model is MARIADB_SPEC.connection_model


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ("10.11.19-MariaDB-0+deb12u1", "MariaDB 10.11.19"),
        ("5.5.5-10.6.12-MariaDB-log", "MariaDB 10.6.12"),
        ("8.0.36", "MySQL 8.0.36"),
        ("8.4.0-commercial", "MySQL 8.4.0"),
    ],
)
def test_version_strings(reported: str, expected: str) -> None:
    assert describe_version(reported)[0] == expected


def test_custom_query_fetches_one_row(local_mariadb: Server) -> None:
    query = "SELECT table_name, 2 FROM information_schema.tables ORDER BY table_name"
    result = CONNECTOR.probe(local_mariadb.target(), query, Deadline.after(10))
    assert result.test_query_result


def test_wrong_password(mariadb_with_password: Server) -> None:
    failure = fail(mariadb_with_password.target(password="not-the-password"))
    assert (failure.code, failure.phase) == (ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH)
    assert "using password: YES" in failure.message


def test_right_password(mariadb_with_password: Server) -> None:
    result = CONNECTOR.probe(mariadb_with_password.target(), None, Deadline.after(10))
    assert result.test_query_result == "1"


def test_password_never_appears_in_the_message(local_mariadb: Server) -> None:
    secret = "Sw0rdfish-typed-in-the-wrong-box"
    failure = fail(local_mariadb.target(username=secret, password=secret))
    assert failure.code is ErrorCode.AUTHENTICATION_FAILED
    assert secret not in failure.message


def test_unknown_database(local_mariadb: Server) -> None:
    failure = fail(local_mariadb.target(database="rg_no_such_database"))
    assert (failure.code, failure.phase) == (ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH)


def test_database_without_grant(mariadb_with_password: Server, mariadb_scratch_table: str) -> None:
    database = mariadb_scratch_table.split(".")[0]
    failure = fail(mariadb_with_password.target(database=database))
    assert (failure.code, failure.phase) == (ErrorCode.PERMISSION_DENIED, Phase.AUTH)


def test_refused_port(local_mariadb: Server, closed_port: int) -> None:
    failure = fail(local_mariadb.target(port=closed_port))
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.TCP)


def test_unresolvable_host_without_address(unresolvable_host: str) -> None:
    failure = fail(ConnectionTarget(host=unresolvable_host, port=3306, username="root"))
    assert (failure.code, failure.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


def test_ssl_required_but_not_offered(local_mariadb: Server) -> None:
    failure = fail(local_mariadb.target(ssl_mode="require"))
    assert (failure.code, failure.phase) == (ErrorCode.SSL_ERROR, Phase.TLS)


def test_silent_listener_times_out_on_time(silent_listener: tuple[str, int]) -> None:
    host, port = silent_listener
    target = ConnectionTarget(host="localhost", address=host, port=port, username="root")
    started = time.monotonic()
    failure = fail(target, seconds=2)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.AUTH)
    assert "did not answer within 2 s" in failure.message
    assert time.monotonic() - started < 3


def test_slow_query_is_cut_at_the_deadline(local_mariadb: Server) -> None:
    started = time.monotonic()
    failure = fail(local_mariadb.target(), "SELECT SLEEP(10)", seconds=1)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.QUERY)
    assert time.monotonic() - started < 1.6


WRITES = [
    "DROP TABLE {t}",
    "INSERT INTO {t} VALUES (99)",
    "UPDATE {t} SET id = id + 10",
    "CREATE TABLE {t}_new (a int)",
    "SELECT 1; DELETE FROM {t}",
    "DELETE FROM {t}",
    "TRUNCATE TABLE {t}",
]


def _state(table: str) -> tuple[int, int]:
    """(rows in the table, tables in its database) read directly from the server."""
    database = table.split(".")[0]
    conn = _root()
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


@pytest.mark.parametrize("template", WRITES)
def test_read_only_session_alone_refuses_writes(
    local_mariadb: Server, mariadb_scratch_table: str, template: str
) -> None:
    query = template.format(t=mariadb_scratch_table)
    failure = fail(local_mariadb.target(), query, connector=ENGINE_ONLY)
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
    assert _state(mariadb_scratch_table) == (3, 1)


@pytest.mark.parametrize("template", WRITES)
def test_default_connector_refuses_writes(
    local_mariadb: Server, mariadb_scratch_table: str, template: str
) -> None:
    failure = fail(local_mariadb.target(), template.format(t=mariadb_scratch_table))
    assert failure.code is ErrorCode.QUERY_ERROR
    assert _state(mariadb_scratch_table) == (3, 1)


def test_into_outfile_is_refused_even_without_the_keyword_guard(
    local_mariadb: Server, tmp_path: Path
) -> None:
    target_file = tmp_path / "out.txt"
    failure = fail(
        local_mariadb.target(), f"SELECT 1 INTO OUTFILE '{target_file}'", connector=ENGINE_ONLY
    )
    assert failure.code is ErrorCode.QUERY_ERROR
    assert not target_file.exists()


def test_connection_model_refuses_dangerous_options() -> None:
    model = MySQLConnection.model_validate({"host": "db", "username": "u"})
    assert (model.port, model.ssl_mode) == (3306, "prefer")
    for option in ("local_infile", "init_command", "read_default_file", "plugin_dir"):
        with pytest.raises(ValueError, match="not allowed"):
            MySQLConnection.model_validate({"host": "db", "username": "u", "options": {option: 1}})
    with pytest.raises(ValidationError, match="less than or equal"):
        MySQLConnection.model_validate({"host": "db", "username": "u", "port": 70000})
    with pytest.raises(ValidationError, match="Extra inputs"):
        MySQLConnection.model_validate({"host": "db", "username": "u", "unknown": 1})


def test_unknown_charset_is_a_configuration_error(local_mariadb: Server) -> None:
    failure = fail(local_mariadb.target(options={"charset": "klingon"}))
    assert (failure.code, failure.phase) == (ErrorCode.CONFIGURATION_ERROR, Phase.POLICY)
