"""Credentials only to servers that proved themselves: a fake PostgreSQL server and a fake
MySQL server (real loopback sockets, speaking just enough of each protocol) ask for the
password in clear text, as a man in the middle of an unverified connection can. The password
must never reach them; a control connection with the bare driver shows that it would."""

from __future__ import annotations

import psycopg
import pymysql
import pytest

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.mysql import MARIADB_SPEC, MYSQL_SPEC
from rivergen.connectors.postgresql import SPEC as POSTGRES_SPEC
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, ProbeFailure
from tests.fixtures.peers import RecordingPeer
from tests.fixtures.servers import Server

PASSWORD = "cleartext-canary-4e2b"


def _target(peer: RecordingPeer, ssl_mode: str) -> ConnectionTarget:
    return ConnectionTarget(
        host=peer.host,
        address=peer.host,
        port=peer.port,
        username="probe",
        password=PASSWORD,
        ssl_mode=ssl_mode,
    )


def test_the_fake_postgres_gets_the_password_from_bare_libpq(fake_postgres: RecordingPeer) -> None:
    """Control: without require_auth libpq answers the cleartext request."""
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.1",
            port=fake_postgres.port,
            user="probe",
            password=PASSWORD,
            connect_timeout=2,
            sslmode="prefer",
        )
    fake_postgres.wait_idle()
    assert PASSWORD.encode() in fake_postgres.received


@pytest.mark.parametrize("ssl_mode", ["disable", "allow", "prefer"])
def test_postgres_refuses_to_send_the_password_in_clear(
    fake_postgres: RecordingPeer, ssl_mode: str
) -> None:
    with pytest.raises(ProbeFailure) as info:
        POSTGRES_SPEC.connector.probe(_target(fake_postgres, ssl_mode), None, Deadline.after(2))
    fake_postgres.wait_idle()
    assert PASSWORD.encode() not in fake_postgres.received
    assert b"user\x00probe" in fake_postgres.received  # the login did get that far
    failure = info.value
    assert failure.code is ErrorCode.SSL_ERROR, failure
    assert "clear text" in failure.message
    assert "verify-full" in failure.message
    assert failure.security is not None
    assert failure.security.tls is False


def test_the_fake_mysql_gets_the_password_from_bare_pymysql(fake_mysql: RecordingPeer) -> None:
    """Control: PyMySQL on its own answers mysql_clear_password on a connection without TLS."""
    with pytest.raises(pymysql.Error):
        pymysql.connect(
            host="127.0.0.1", port=fake_mysql.port, user="probe", password=PASSWORD,
            connect_timeout=2, read_timeout=2,
        )  # fmt: skip
    fake_mysql.wait_idle()
    assert PASSWORD.encode() in fake_mysql.received


@pytest.mark.parametrize("spec", [MYSQL_SPEC, MARIADB_SPEC], ids=["mysql", "mariadb"])
@pytest.mark.parametrize("ssl_mode", ["disable", "prefer"])
def test_mysql_refuses_to_send_the_password_in_clear(
    fake_mysql: RecordingPeer, ssl_mode: str, spec: object
) -> None:
    connector = MYSQL_SPEC.connector if spec is MYSQL_SPEC else MARIADB_SPEC.connector
    with pytest.raises(ProbeFailure) as info:
        connector.probe(_target(fake_mysql, ssl_mode), None, Deadline.after(2))
    fake_mysql.wait_idle()
    assert PASSWORD.encode() not in fake_mysql.received
    assert b"probe\x00" in fake_mysql.received  # the handshake response did go out
    failure = info.value
    assert failure.code is ErrorCode.SSL_ERROR, failure
    assert "mysql_clear_password" in failure.message
    assert "verify-full" in failure.message


def test_a_real_mariadb_login_reports_its_security(mariadb_with_password: Server) -> None:
    """The machine's MariaDB offers no TLS; its users log in with mysql_native_password."""
    target = mariadb_with_password.target(ssl_mode="prefer")
    result = MARIADB_SPEC.connector.probe(target, "SELECT 1", Deadline.after(5))
    assert result.security.tls is False
    assert result.security.tls_verified is False
    assert result.security.tls_version is None
    assert result.security.auth_method == "mysql_native_password"
    assert result.security.cleartext_password is False
