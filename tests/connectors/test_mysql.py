"""MySQL/MariaDB-only connector cases against the machine's MariaDB; the cases shared with
PostgreSQL are in test_network_engines.py."""

from __future__ import annotations

import ssl

import pymysql
import pytest
from pydantic import ValidationError

from rivergen.connectors._support import tls_context
from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.mysql import (
    MARIADB_SPEC,
    MYSQL_SPEC,
    MySQLConnection,
    MySQLConnector,
    describe_version,
    ssl_arguments,
)
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.servers import Server
from tests.fixtures.tls import unrelated_ca_pem

CONNECTOR = MARIADB_SPEC.connector


def fail(target: ConnectionTarget) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, None, Deadline.after(10))
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


def test_database_without_grant(mariadb_with_password: Server, mariadb_scratch_table: str) -> None:
    database = mariadb_scratch_table.split(".")[0]
    failure = fail(mariadb_with_password.target(database=database))
    assert (failure.code, failure.phase) == (ErrorCode.PERMISSION_DENIED, Phase.AUTH)


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


# ----- ssl_root_cert ---------------------------------------------------------------------------


def driver_context(target: ConnectionTarget) -> ssl.SSLContext:
    """The TLS context PyMySQL would use for `target` (the connection is built, not opened)."""
    conn = MySQLConnector._connect(pymysql, target, "127.0.0.1", 3306, Deadline.after(5))
    assert conn.ssl is True
    context = vars(conn)["ctx"]  # not in PyMySQL's type stubs
    assert isinstance(context, ssl.SSLContext)
    return context


@pytest.mark.parametrize(("mode", "checks_name"), [("verify-full", True), ("verify-ca", False)])
def test_a_verifying_mode_trusts_only_ssl_root_cert(mode: str, checks_name: bool) -> None:
    pem = unrelated_ca_pem("Private MySQL CA")
    context = driver_context(ConnectionTarget(host="db", ssl_mode=mode, ssl_root_cert=pem))
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, checks_name)
    subjects = [ca["subject"] for ca in context.get_ca_certs()]
    assert subjects == [((("commonName", "Private MySQL CA"),),)]  # no system CA
    assert ssl_arguments(mode, None) == {"ssl": tls_context(mode)}  # without it: system CAs


def test_other_modes_are_unchanged_by_ssl_root_cert() -> None:
    pem = unrelated_ca_pem()
    assert ssl_arguments("require", pem) == {"ssl": tls_context("require")}
    assert ssl_arguments("prefer", pem) == {}
    assert ssl_arguments("disable", pem) == {"ssl_disabled": True}


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_a_verifying_mode_against_the_plain_server_fails_as_without_the_field(
    local_mariadb: Server, mode: str
) -> None:
    # The local MariaDB offers no TLS: the test fails before any certificate is seen.
    without = fail(local_mariadb.target(ssl_mode=mode))
    with_cas = fail(local_mariadb.target(ssl_mode=mode, ssl_root_cert=unrelated_ca_pem()))
    assert (with_cas.code, with_cas.phase) == (ErrorCode.SSL_ERROR, Phase.TLS)
    assert (with_cas.code, with_cas.phase, with_cas.message) == (
        without.code,
        without.phase,
        without.message,
    )


def test_the_model_takes_ssl_root_cert_with_a_verifying_mode_only() -> None:
    pem = unrelated_ca_pem()
    base = {"host": "db", "username": "u", "ssl_root_cert": pem}
    assert MySQLConnection.model_validate({**base, "ssl_mode": "verify-ca"}).ssl_root_cert == pem
    for mode in ({}, {"ssl_mode": "require"}):
        with pytest.raises(ValidationError, match="does not verify"):
            MySQLConnection.model_validate({**base, **mode})
