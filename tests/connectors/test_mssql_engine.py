"""SQL Server: no server can be installed here. Against real sockets with the real driver
(pymssql/FreeTDS): a silent listener, a closed port, an unknown host; the error map from
Microsoft's and FreeTDS's documented numbers; the guards. With RIVERGEN_TEST_MSSQL_URL naming a
real server (mssql://user:password@host:port/database) the last test runs against it."""

from __future__ import annotations

import threading
import time
from urllib.parse import unquote, urlsplit

import pymssql
import pytest

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.mssql_engine import SPEC, describe_version
from rivergen.connectors.mssql_errors import code_for_mssql, failure_of
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from tests.fixtures.engines import settled_threads, sockets_to
from tests.fixtures.required import optional_server

CONNECTOR = SPEC.connector


def fail(target: ConnectionTarget, query: str | None = None, seconds: float = 3) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, query, Deadline.after(seconds))
    return info.value


def local(port: int) -> ConnectionTarget:
    return ConnectionTarget(
        host="localhost", address="127.0.0.1", port=port, username="sa", password="pw"
    )


def test_silent_listener_times_out_on_time(silent_listener: tuple[str, int]) -> None:
    before_threads = {t.ident for t in threading.enumerate()}
    started = time.monotonic()
    failure = fail(local(silent_listener[1]), seconds=1)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.AUTH)
    assert time.monotonic() - started < 2
    assert settled_threads(before_threads) == []
    assert sockets_to(silent_listener[1]) == 0


def test_closed_port(closed_port: int) -> None:
    started = time.monotonic()
    failure = fail(local(closed_port))
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.TCP)
    assert time.monotonic() - started < 0.5


def test_unknown_host(unresolvable_host: str) -> None:
    failure = fail(ConnectionTarget(host=unresolvable_host, port=1433, username="sa"))
    assert (failure.code, failure.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("DELETE FROM t", "DELETE is not allowed"),
        ("EXEC xp_cmdshell 'id'", "xp_cmdshell cannot be used"),
        ("EXEC sp_who", "EXEC is not allowed"),
        ("SELECT * INTO copy FROM t", "SELECT ... INTO"),
        ("SELECT * FROM OPENROWSET('SQLNCLI', 'Server=x;', 'SELECT 1')", "openrowset"),
        ("WITH a AS (SELECT 1 AS x) SELECT * FROM OPENQUERY(lnk, 'SELECT 1')", "openquery"),
    ],
)
def test_statements_refused_before_sending(closed_port: int, query: str, says: str) -> None:
    """Refused before any socket opens: the closed port would fail otherwise."""
    failure = fail(local(closed_port), query)
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
    assert says in failure.message


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (18456, ErrorCode.AUTHENTICATION_FAILED),
        (4060, ErrorCode.DATABASE_NOT_FOUND),
        (229, ErrorCode.PERMISSION_DENIED),
        (1222, ErrorCode.TIMEOUT),
        (208, ErrorCode.QUERY_ERROR),
        (20009, ErrorCode.CONNECTION_ERROR),
        (20003, ErrorCode.TIMEOUT),
        (50000, None),
    ],
)
def test_documented_error_numbers(number: int, expected: ErrorCode | None) -> None:
    assert code_for_mssql(number) is expected


def test_a_server_number_inside_the_driver_text_wins() -> None:
    """pymssql reports a failed login as DB-Lib 20002 with the server's 18456 in the text."""
    exc = pymssql.OperationalError(
        (
            20002,
            b"SQL Server message 18456, severity 14, state 1:\nLogin failed for user 'sa'.\n"
            b"DB-Lib error message 20002, severity 9:\nAdaptive Server connection failed\n",
        )
    )
    failure = failure_of(exc, Phase.AUTH, Deadline.after(1), ["pw"], Security())
    assert (failure.code, failure.phase) == (ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH)


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        (
            "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) \n\tOct  8 2022 05:58:25 \n",
            "Microsoft SQL Server 2022 16.0.1000.6",
        ),
        (
            "Microsoft SQL Server 2019 (RTM-CU22) (KB5027702) - 15.0.4322.2 (X64)",
            "Microsoft SQL Server 2019 15.0.4322.2",
        ),
        (
            "Microsoft SQL Azure (RTM) - 12.0.2000.8 \n\tJul  1 2023",
            "Microsoft SQL Azure 12.0.2000.8",
        ),
    ],
)
def test_version_strings(reported: str, expected: str) -> None:
    assert describe_version(reported) == expected


def test_real_server_when_configured() -> None:
    """Against a real SQL Server named by RIVERGEN_TEST_MSSQL_URL; reported skipped without."""
    parts = urlsplit(optional_server("RIVERGEN_TEST_MSSQL_URL"))
    target = ConnectionTarget(
        host=parts.hostname, port=parts.port or 1433, username=unquote(parts.username or ""),
        password=unquote(parts.password or ""), database=parts.path.lstrip("/") or "master",
    )  # fmt: skip
    result = CONNECTOR.probe(target, None, Deadline.after(10))
    assert result.test_query_result == "1"
    assert result.database_version is not None
    assert "SQL" in result.database_version
    wrong = fail(
        ConnectionTarget(**{**target.__dict__, "password": "wrong-password-x"}), seconds=10
    )
    assert wrong.code is ErrorCode.AUTHENTICATION_FAILED
    slow = fail(
        target,
        "SELECT 1 FROM sys.objects a CROSS JOIN sys.objects b CROSS JOIN sys.objects c",
        seconds=2,
    )
    assert slow.code is ErrorCode.TIMEOUT
