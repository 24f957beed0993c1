"""No network engine sends a byte a user typed to a peer that has not proved it speaks the
engine's protocol: a real loopback listener plays memcached (answers ERROR to every line) or
SMTP (greets first), records everything, and must never see the password, the user name, the
client name or the test query. What the peer answered is never shown back."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rivergen.connectors.base import ConnectionTarget, Connector, OptionValue
from rivergen.connectors.clickhouse_engine import SPEC as CLICKHOUSE_SPEC
from rivergen.connectors.mongodb_engine import SPEC as MONGODB_SPEC
from rivergen.connectors.mysql import MARIADB_SPEC, MYSQL_SPEC
from rivergen.connectors.postgresql import SPEC as POSTGRES_SPEC
from rivergen.connectors.redis_engine import SPEC as REDIS_SPEC
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, ProbeFailure
from tests.fixtures.peers import RecordingPeer

PASSWORD = "pw-canary-7c1f"
USER = "user-canary-52ab"
CLIENT = "client-canary-9d0e"
ARGUMENT = "arg-canary-31f4"
CANARIES = (PASSWORD, USER, CLIENT, ARGUMENT)


@dataclass(frozen=True)
class Case:
    """One engine, the option that names the client, and a test query with a canary in it."""

    connector: Connector
    client_option: str
    query: str
    ssl_modes: tuple[str, ...]
    database: str | None = "db-canary"


CASES = {
    "redis": Case(REDIS_SPEC.connector, "client_name", f"GET {ARGUMENT}", ("disable",), None),
    "postgresql": Case(
        POSTGRES_SPEC.connector,
        "application_name",
        f"SELECT '{ARGUMENT}'",
        ("disable", "allow", "prefer"),
    ),
    "mysql": Case(
        MYSQL_SPEC.connector, "program_name", f"SELECT '{ARGUMENT}'", ("disable", "prefer")
    ),
    "mariadb": Case(MARIADB_SPEC.connector, "program_name", f"SELECT '{ARGUMENT}'", ("prefer",)),
    "clickhouse": Case(
        CLICKHOUSE_SPEC.connector, "client_name", f"SELECT '{ARGUMENT}'", ("disable",)
    ),
    "mongodb": Case(MONGODB_SPEC.connector, "appName", f'{{"find": "{ARGUMENT}"}}', ("disable",)),
}
PARAMS = [
    pytest.param(name, mode, id=f"{name}-{mode}")
    for name, case in CASES.items()
    for mode in case.ssl_modes
]


def _target(peer: RecordingPeer, case: Case, ssl_mode: str) -> ConnectionTarget:
    options: dict[str, OptionValue] = {case.client_option: CLIENT}
    return ConnectionTarget(
        host=peer.host,
        address=peer.host,
        port=peer.port,
        database=case.database,
        username=USER,
        password=PASSWORD,
        ssl_mode=ssl_mode,
        options=options,
    )


def _probe(peer: RecordingPeer, case: Case, ssl_mode: str) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        case.connector.probe(_target(peer, case, ssl_mode), case.query, Deadline.after(1.5))
    peer.wait_idle()
    return info.value


def _assert_nothing_typed_left(peer: RecordingPeer) -> None:
    received = peer.received
    for canary in CANARIES:
        assert canary.encode() not in received, (canary, received)


@pytest.mark.parametrize(("engine", "ssl_mode"), PARAMS)
def test_a_memcached_like_peer_never_sees_a_typed_byte(
    memcached_like: RecordingPeer, engine: str, ssl_mode: str
) -> None:
    failure = _probe(memcached_like, CASES[engine], ssl_mode)
    _assert_nothing_typed_left(memcached_like)
    assert failure.code in (ErrorCode.CONNECTION_ERROR, ErrorCode.TIMEOUT), failure
    assert "ERROR" not in failure.message  # the peer's answer is not shown


@pytest.mark.parametrize(("engine", "ssl_mode"), PARAMS)
def test_an_smtp_like_peer_never_sees_a_typed_byte(
    smtp_like: RecordingPeer, engine: str, ssl_mode: str
) -> None:
    failure = _probe(smtp_like, CASES[engine], ssl_mode)
    _assert_nothing_typed_left(smtp_like)
    assert failure.code in (ErrorCode.CONNECTION_ERROR, ErrorCode.TIMEOUT), failure
    assert "220" not in failure.message
    assert "ESMTP" not in failure.message
    assert "ERROR" not in failure.message


def test_redis_says_the_peer_is_not_redis(memcached_like: RecordingPeer) -> None:
    failure = _probe(memcached_like, CASES["redis"], "disable")
    assert failure.code is ErrorCode.CONNECTION_ERROR
    assert "did not answer like a Redis server" in failure.message
    # Only the fixed greeting reached the peer.
    assert memcached_like.received == b"*1\r\n$4\r\nPING\r\n"
