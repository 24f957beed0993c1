"""Oracle: no server can be installed here. Against real sockets with the real driver
(python-oracledb thin): a silent listener, a closed port, an unknown host, a peer that is not
an Oracle listener; the error map from the documented ORA-/DPY- codes. With
RIVERGEN_TEST_ORACLE_URL naming a real server (oracle://user:password@host:port/service) the
last test runs against it."""

from __future__ import annotations

import threading
import time
from urllib.parse import unquote, urlsplit

import pytest

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.oracle_engine import SPEC, OracleConnection
from rivergen.connectors.oracle_errors import code_for_oracle, codes_in, proves_listener
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.engines import settled_threads, sockets_to
from tests.fixtures.peers import RecordingPeer
from tests.fixtures.required import optional_server

CONNECTOR = SPEC.connector


def fail(target: ConnectionTarget, query: str | None = None, seconds: float = 3) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, query, Deadline.after(seconds))
    return info.value


def local(port: int) -> ConnectionTarget:
    return ConnectionTarget(
        host="localhost", address="127.0.0.1", port=port, username="scott",
        password="pw-canary-0a1b", database="svc-canary-2c3d",
    )  # fmt: skip


def test_silent_listener_times_out_on_time(silent_listener: tuple[str, int]) -> None:
    before = {t.ident for t in threading.enumerate()}
    started = time.monotonic()
    failure = fail(local(silent_listener[1]), seconds=1)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.AUTH)
    assert time.monotonic() - started < 2
    assert settled_threads(before) == []
    assert sockets_to(silent_listener[1]) == 0


def test_closed_port(closed_port: int) -> None:
    failure = fail(local(closed_port))
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.TCP)


def test_unknown_host(unresolvable_host: str) -> None:
    failure = fail(ConnectionTarget(host=unresolvable_host, port=1521, username="scott"))
    assert (failure.code, failure.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


def test_a_peer_that_is_no_listener_never_sees_the_service_or_password(
    memcached_like: RecordingPeer,
) -> None:
    failure = fail(local(memcached_like.port), seconds=1.5)
    memcached_like.wait_idle()
    assert failure.code in (ErrorCode.CONNECTION_ERROR, ErrorCode.TIMEOUT)
    received = memcached_like.received
    for canary in (b"svc-canary-2c3d", b"pw-canary-0a1b", b"scott"):
        assert canary not in received
    assert b"RIVERGEN_PROTOCOL_CHECK" in received  # only the fixed check went out
    assert b"USER=rivergen" in received  # and not this machine's account name


@pytest.mark.parametrize(
    "query", ["BEGIN NULL; END;", "DELETE FROM t", "SELECT * FROM t FOR UPDATE", "CALL p()"]
)
def test_non_reads_are_refused_before_sending(closed_port: int, query: str) -> None:
    failure = fail(local(closed_port), query)
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)


def test_service_name_or_sid_is_required() -> None:
    with pytest.raises(ValueError, match="service name"):
        OracleConnection.model_validate({"host": "db.example", "username": "scott"})
    sid = OracleConnection.model_validate(
        {"host": "db.example", "username": "scott", "options": {"sid": "ORCL"}}
    )
    assert sid.port == 1521


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ORA-01017: invalid credential or not authorized", ErrorCode.AUTHENTICATION_FAILED),
        ("ORA-28000: The account is locked.", ErrorCode.AUTHENTICATION_FAILED),
        ("ORA-01045: Login denied (no CREATE SESSION)", ErrorCode.PERMISSION_DENIED),
        ("ORA-00942: table or view does not exist", ErrorCode.QUERY_ERROR),
        ("DPY-6000: Listener refused. (Similar to ORA-12514)", ErrorCode.DATABASE_NOT_FOUND),
        ("DPY-4024: call timeout of 1000 ms exceeded", ErrorCode.TIMEOUT),
        ("DPY-6005: cannot connect to database (CONNECTION_ID=x).", ErrorCode.CONNECTION_ERROR),
        ("DPY-3010: server version not supported", ErrorCode.CONFIGURATION_ERROR),
        ("ORA-99999: something new", None),
    ],
)  # fmt: skip
def test_documented_error_codes(text: str, expected: ErrorCode | None) -> None:
    assert code_for_oracle(codes_in(text)) is expected


def test_listener_refusals_prove_the_protocol() -> None:
    assert proves_listener(Exception("DPY-6000: cannot connect. (Similar to ORA-12514)"))
    assert proves_listener(Exception("ORA-12505: listener does not currently know of SID"))
    assert not proves_listener(Exception("DPY-4011: the database closed the connection"))


def test_real_server_when_configured() -> None:
    """Against a real Oracle named by RIVERGEN_TEST_ORACLE_URL; reported skipped without."""
    parts = urlsplit(optional_server("RIVERGEN_TEST_ORACLE_URL"))
    target = ConnectionTarget(
        host=parts.hostname, port=parts.port or 1521, username=unquote(parts.username or ""),
        password=unquote(parts.password or ""), database=parts.path.lstrip("/"),
    )  # fmt: skip
    result = CONNECTOR.probe(target, None, Deadline.after(10))
    assert result.test_query_result == "1"
    assert result.database_version is not None
    assert result.database_version.startswith("Oracle Database ")
    wrong = fail(
        ConnectionTarget(**{**target.__dict__, "password": "wrong-password-x"}), seconds=10
    )
    assert wrong.code is ErrorCode.AUTHENTICATION_FAILED
    slow = fail(
        target, "SELECT COUNT(*) FROM all_objects a, all_objects b, all_objects c", seconds=2
    )
    assert slow.code is ErrorCode.TIMEOUT
