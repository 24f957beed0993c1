"""MongoDB: no real MongoDB server can be installed here. The protocol path (hello, ping,
buildInfo, a find, a refused login) runs against mockupdb, an EMULATOR scripted in
tests/fixtures/mongo.py; the faults run over real sockets with the real driver; SRV lookups
against a loopback DNS responder; the error map from MongoDB's documented codes. With
RIVERGEN_TEST_MONGODB_URL naming a real server (mongodb://user:password@host:port/db), the
last test runs against it."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.mongodb_engine import SPEC, parse_command
from rivergen.connectors.mongodb_errors import code_for_mongo
from rivergen.connectors.mongodb_srv import locate_srv
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from rivergen.security.host_policy import HostPolicy
from tests.fixtures.engines import settled_threads, sockets_to
from tests.fixtures.mongo import EMULATED_VERSION, DnsResponder
from tests.fixtures.required import optional_server
from tests.fixtures.servers import Server

CONNECTOR = SPEC.connector


def fail(target: ConnectionTarget, query: str | None = None, seconds: float = 3) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, query, Deadline.after(seconds))
    return info.value


def test_emulator_ping_and_version(mongo_emulator: Server) -> None:
    result = CONNECTOR.probe(mongo_emulator.target(), None, Deadline.after(3))
    assert result.database_version == f"MongoDB {EMULATED_VERSION}"
    assert result.test_query_result == '{"ok": 1}'
    assert set(result.timings_ms) == {"tcp", "auth", "query"}


def test_emulator_find_returns_the_first_document(mongo_emulator: Server) -> None:
    query = '{"find": "items", "filter": {"n": "a"}}'
    result = CONNECTOR.probe(mongo_emulator.target(), query, Deadline.after(3))
    assert result.test_query_result == '{"_id": 1, "n": "a"}'


def test_emulator_refused_login(mongo_emulator: Server) -> None:
    target = mongo_emulator.target(username="app", password="Secret-" + "q" * 8)
    failure = fail(target)
    assert (failure.code, failure.phase) == (ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH)
    assert "Secret-" not in failure.message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"insert": "items", "documents": [{}]}', "'insert' is not allowed"),
        ('{"dropDatabase": 1}', "'dropDatabase' is not allowed"),
        ('{"find": "items", "filter": {"$where": "sleep(1000)"}}', "$where runs JavaScript"),
        ('{"find": "items", "filter": {"$expr": {"$function": {}}}}', "$function runs JavaScript"),
        ('{"find": "items", "let": {}}', "Fields not allowed in find: let"),
        ('{"find": {"$ne": 1}}', "find takes a collection name"),
        ("SELECT 1", "must be a JSON command"),
        ("[1]", "must be a JSON object"),
    ],
)
def test_commands_outside_the_allow_list_are_refused(text: str, says: str) -> None:
    with pytest.raises(ProbeFailure) as info:
        parse_command(text, 1000)
    assert info.value.code is ErrorCode.QUERY_ERROR
    assert says in info.value.message


def test_limits_are_forced() -> None:
    name, document = parse_command('{"find": "items", "filter": {}}', 1500)
    assert name == "find"
    assert document | {} == {
        "find": "items", "filter": {}, "limit": 1, "singleBatch": True, "batchSize": 1,
        "maxTimeMS": 1500,
    }  # fmt: skip
    assert parse_command(None, 10) == ("ping", {"ping": 1})


def test_closed_port(closed_port: int) -> None:
    started = time.monotonic()
    failure = fail(ConnectionTarget(host="localhost", address="127.0.0.1", port=closed_port))
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.TCP)
    assert time.monotonic() - started < 0.5


def test_silent_listener_times_out_on_time(silent_listener: tuple[str, int]) -> None:
    host, port = silent_listener
    before = {t.ident for t in threading.enumerate()}
    started = time.monotonic()
    failure = fail(ConnectionTarget(host="localhost", address=host, port=port), seconds=1)
    assert failure.code is ErrorCode.TIMEOUT
    assert time.monotonic() - started < 2
    assert settled_threads(before) == []  # pymongo's monitors end soon after close()
    assert sockets_to(port) == 0


def test_unknown_host(unresolvable_host: str) -> None:
    failure = fail(ConnectionTarget(host=unresolvable_host, port=27017))
    assert (failure.code, failure.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


async def _locate(responder: DnsResponder, host: str) -> tuple[str, int]:
    resolver: Any = responder.resolver()
    return await locate_srv(host, Deadline.after(2), resolver)


@pytest.mark.anyio
async def test_srv_picks_the_preferred_member(dns_responder: DnsResponder) -> None:
    dns_responder.records["_mongodb._tcp.cluster.example.com"] = [
        (10, 5, 27018, "b.example.com"),
        (0, 5, 27017, "a.example.com"),
    ]
    assert await _locate(dns_responder, "cluster.example.com") == ("a.example.com", 27017)


@pytest.mark.anyio
async def test_srv_outside_the_domain_is_refused(dns_responder: DnsResponder) -> None:
    dns_responder.records["_mongodb._tcp.cluster.example.com"] = [(0, 0, 80, "evil.test")]
    with pytest.raises(ProbeFailure) as info:
        await _locate(dns_responder, "cluster.example.com")
    assert info.value.code is ErrorCode.HOST_NOT_ALLOWED


@pytest.mark.anyio
async def test_srv_member_goes_through_the_host_policy(dns_responder: DnsResponder) -> None:
    """The member found is checked like a typed host: a metadata address is refused."""
    dns_responder.records["_mongodb._tcp.db.example.com"] = [(0, 0, 27017, "169.254.169.254")]
    with pytest.raises(ProbeFailure) as info:
        await _locate(dns_responder, "db.example.com")
    # A bare address is outside the name's domain already; a name there resolving to a
    # metadata address is refused by the policy the runner applies next.
    assert info.value.code is ErrorCode.HOST_NOT_ALLOWED
    with pytest.raises(ProbeFailure) as policy:
        await HostPolicy().resolve_and_check("169.254.169.254", 27017, Deadline.after(2))
    assert policy.value.code is ErrorCode.HOST_NOT_ALLOWED


@pytest.mark.anyio
async def test_srv_missing_record(dns_responder: DnsResponder) -> None:
    with pytest.raises(ProbeFailure) as info:
        await _locate(dns_responder, "nothing.example.com")
    assert (info.value.code, info.value.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (18, ErrorCode.AUTHENTICATION_FAILED),
        (13, ErrorCode.PERMISSION_DENIED),
        (50, ErrorCode.TIMEOUT),
        (26, ErrorCode.QUERY_ERROR),
        (11600, ErrorCode.CONNECTION_ERROR),
        (12345, None),
    ],
)
def test_documented_error_codes(code: int, expected: ErrorCode | None) -> None:
    assert code_for_mongo(code) is expected


def test_real_server_when_configured() -> None:
    """Against a real MongoDB named by RIVERGEN_TEST_MONGODB_URL; skipped (never passed)
    without one."""
    url = optional_server("RIVERGEN_TEST_MONGODB_URL")
    parts = urlsplit(url)
    target = ConnectionTarget(
        host=parts.hostname, port=parts.port or 27017, username=parts.username,
        password=parts.password, database=parts.path.lstrip("/") or "admin",
    )  # fmt: skip
    result = CONNECTOR.probe(target, None, Deadline.after(10))
    assert result.database_version is not None
    assert result.database_version.startswith("MongoDB ")
    if parts.password:
        wrong = fail(ConnectionTarget(**{**target.__dict__, "password": "wrong-password"}))
        assert wrong.code is ErrorCode.AUTHENTICATION_FAILED


def test_plain_mechanism_needs_verified_tls(mongo_emulator: Server) -> None:
    target = mongo_emulator.target(
        username="app", password="pw", options={"authMechanism": "PLAIN"}
    )
    failure = fail(target)
    assert (failure.code, failure.phase) == (ErrorCode.SSL_ERROR, Phase.AUTH)
