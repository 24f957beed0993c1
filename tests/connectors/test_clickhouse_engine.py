"""ClickHouse against a real server: Debian's clickhouse-server (18.16), started privately by
tests/fixtures/engines.py with a password-checking user and a readonly-profile user; the faults
(closed port, silent listener, unknown host) over real sockets with the real driver."""

from __future__ import annotations

import threading
import time

import pytest
from clickhouse_driver import Client

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.clickhouse_engine import SPEC, ClickHouseConnector, code_for_clickhouse
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.engines import ClickHouse, sockets_to

CONNECTOR = SPEC.connector


def fail(target: ConnectionTarget, query: str | None = None, seconds: float = 5) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, query, Deadline.after(seconds))
    return info.value


def admin(clickhouse: ClickHouse) -> Client:
    return Client(host="127.0.0.1", port=clickhouse.tcp_port, user="default", password="")


def test_success_reports_version_and_security(clickhouse: ClickHouse) -> None:
    result = CONNECTOR.probe(clickhouse.server().target(), None, Deadline.after(5))
    assert result.test_query_result == "1"
    expected = admin(clickhouse).execute("SELECT version()")[0][0]
    assert result.database_version == f"ClickHouse {expected}"
    assert set(result.timings_ms) == {"tcp", "auth", "query"}
    assert result.security.tls is False
    assert result.security.cleartext_password is True


def test_custom_query_returns_the_first_cell(clickhouse: ClickHouse) -> None:
    query = "SELECT number + 7, 'x' FROM system.numbers LIMIT 100000"
    result = CONNECTOR.probe(clickhouse.server().target(), query, Deadline.after(5))
    assert result.test_query_result == "7"
    empty = CONNECTOR.probe(clickhouse.server().target(), "SELECT 1 WHERE 0", Deadline.after(5))
    assert empty.test_query_result is None


def test_wrong_password(clickhouse: ClickHouse) -> None:
    failure = fail(clickhouse.server().target(password="wrong-" + "z" * 10))
    assert (failure.code, failure.phase) == (ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH)
    assert "wrong-" not in failure.message


def test_unknown_user(clickhouse: ClickHouse) -> None:
    failure = fail(clickhouse.server().target(username="nobody"))
    assert (failure.code, failure.phase) == (ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH)


def test_unknown_database(clickhouse: ClickHouse) -> None:
    failure = fail(clickhouse.server().target(database="no_such_db"))
    assert failure.code is ErrorCode.DATABASE_NOT_FOUND
    assert "no_such_db" in failure.message


@pytest.mark.parametrize(
    "write",
    [
        "CREATE TABLE default.rg_probe_x (i UInt8) ENGINE = Memory",
        "CREATE DATABASE rg_probe_db",
        "SELECT 1 FROM url('http://127.0.0.1:1/', CSV, 'a String')",
    ],
)
def test_a_write_is_refused_by_the_server_alone(clickhouse: ClickHouse, write: str) -> None:
    """With the keyword guard off, readonly=1 (or the denied-function scan) refuses it."""
    connector = ClickHouseConnector(check_keywords=False)
    with pytest.raises(ProbeFailure) as info:
        connector.probe(clickhouse.server().target(), write, Deadline.after(5))
    assert (info.value.code, info.value.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
    tables = admin(clickhouse).execute("SELECT count() FROM system.tables WHERE name LIKE 'rg_%'")
    databases = admin(clickhouse).execute(
        "SELECT count() FROM system.databases WHERE name = 'rg_probe_db'"
    )
    assert tables[0][0] == 0
    assert databases[0][0] == 0


def test_a_write_is_refused_before_sending(clickhouse: ClickHouse) -> None:
    failure = fail(clickhouse.server().target(), "INSERT INTO t VALUES (1)")
    assert failure.code is ErrorCode.QUERY_ERROR
    assert "INSERT is not allowed" in failure.message


def test_readonly_profile_user_can_test(clickhouse: ClickHouse) -> None:
    result = CONNECTOR.probe(clickhouse.server("ro").target(), None, Deadline.after(5))
    assert result.test_query_result == "1"


@pytest.mark.parametrize("username", ["probe", "ro"])
def test_a_slow_query_stops_at_the_deadline(clickhouse: ClickHouse, username: str) -> None:
    """max_execution_time on the server for `probe`; the socket timeout for `ro`, whose
    profile makes the server ignore query settings."""
    started = time.monotonic()
    failure = fail(clickhouse.server(username).target(), "SELECT sleep(3)", seconds=1.5)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.QUERY)
    assert time.monotonic() - started < 2.5


def test_closed_port(clickhouse: ClickHouse, closed_port: int) -> None:
    failure = fail(clickhouse.server().target(port=closed_port))
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.TCP)


def test_silent_listener_times_out_on_time(silent_listener: tuple[str, int]) -> None:
    host, port = silent_listener
    before = threading.active_count()
    started = time.monotonic()
    failure = fail(ConnectionTarget(host="localhost", address=host, port=port), seconds=1)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.AUTH)
    assert time.monotonic() - started < 2
    assert threading.active_count() <= before + 1  # at most the shared alarm thread
    assert sockets_to(port) == 0


def test_unknown_host(unresolvable_host: str) -> None:
    failure = fail(ConnectionTarget(host=unresolvable_host, port=9000))
    assert (failure.code, failure.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


def test_tls_against_a_plain_port_is_an_ssl_error(clickhouse: ClickHouse) -> None:
    failure = fail(clickhouse.server().target(ssl_mode="require"), seconds=2)
    assert (failure.code, failure.phase) == (ErrorCode.SSL_ERROR, Phase.TLS)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (81, ErrorCode.DATABASE_NOT_FOUND),
        (192, ErrorCode.AUTHENTICATION_FAILED),
        (193, ErrorCode.AUTHENTICATION_FAILED),
        (516, ErrorCode.AUTHENTICATION_FAILED),
        (497, ErrorCode.PERMISSION_DENIED),
        (164, ErrorCode.QUERY_ERROR),
        (159, ErrorCode.TIMEOUT),
        (209, ErrorCode.TIMEOUT),
        (210, ErrorCode.CONNECTION_ERROR),
        (62, None),
    ],
)
def test_documented_error_codes(code: int, expected: ErrorCode | None) -> None:
    assert code_for_clickhouse(code) is expected
