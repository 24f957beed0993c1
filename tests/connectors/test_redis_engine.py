"""Redis connector against the machine's Redis and a private one with a password."""

from __future__ import annotations

import sys
import time

import pytest
import redis

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.redis_engine import (
    SPEC,
    RedisConnection,
    describe_version,
    parse_command,
    reply_text,
)
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.servers import Server, unique_name
from tests.fixtures.tls import unrelated_ca_pem

CONNECTOR = SPEC.connector


def fail(target: ConnectionTarget, query: str | None = None, seconds: float = 10) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, query, Deadline.after(seconds))
    return info.value


def test_ping_reports_version(local_redis: Server) -> None:
    result = CONNECTOR.probe(local_redis.target(), None, Deadline.after(10))
    assert result.test_query_result == "PONG"
    info = redis.Redis(host="127.0.0.1", port=6379).info("server")
    assert result.database_version == f"Redis {info['redis_version']}"
    assert set(result.timings_ms) == {"tcp", "auth", "query"}


def test_custom_read_command(local_redis: Server) -> None:
    key = unique_name("rg_key")
    client = redis.Redis(host="127.0.0.1", port=6379)
    client.set(key, "hello world", ex=60)
    try:
        result = CONNECTOR.probe(local_redis.target(), f"GET {key}", Deadline.after(10))
        assert result.test_query_result == "hello world"
        missing = CONNECTOR.probe(local_redis.target(), "GET rg_absent_key", Deadline.after(10))
        assert missing.test_query_result is None
    finally:
        client.delete(key)
        client.close()


def test_password_server(redis_with_password: Server) -> None:
    result = CONNECTOR.probe(redis_with_password.target(), "PING", Deadline.after(10))
    assert result.test_query_result == "PONG"


def test_wrong_password(redis_with_password: Server) -> None:
    failure = fail(redis_with_password.target(password="not-the-password"))
    assert (failure.code, failure.phase) == (ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH)
    assert "not-the-password" not in failure.message


def test_missing_password(redis_with_password: Server) -> None:
    failure = fail(redis_with_password.target(password=None))
    assert failure.code is ErrorCode.AUTHENTICATION_FAILED


def test_database_index_out_of_range(local_redis: Server) -> None:
    failure = fail(local_redis.target(database="99999"))
    assert (failure.code, failure.phase) == (ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH)


def test_refused_port(local_redis: Server, closed_port: int) -> None:
    failure = fail(local_redis.target(port=closed_port))
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.TCP)


def test_unresolvable_host_without_address(unresolvable_host: str) -> None:
    failure = fail(ConnectionTarget(host=unresolvable_host, port=6379))
    assert (failure.code, failure.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


def test_tls_against_a_plain_server(local_redis: Server) -> None:
    failure = fail(local_redis.target(ssl_mode="require"), seconds=1)
    assert failure.code in (ErrorCode.SSL_ERROR, ErrorCode.TIMEOUT)


def test_silent_listener_times_out_on_time(silent_listener: tuple[str, int]) -> None:
    host, port = silent_listener
    started = time.monotonic()
    failure = fail(ConnectionTarget(host="localhost", address=host, port=port), seconds=2)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.AUTH)
    assert "did not answer within 2 s" in failure.message
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "command",
    ["SET k v", "DEL k", "FLUSHALL", "CONFIG GET requirepass", "KEYS *", "PING\nFLUSHALL", ""],
)
def test_only_read_commands_are_sent(local_redis: Server, command: str) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379)
    before = client.dbsize()
    if command:
        failure = fail(local_redis.target(), command)
        assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
        assert client.dbsize() == before
    else:
        assert CONNECTOR.probe(local_redis.target(), command, Deadline.after(5))
    client.close()


def test_parse_and_replies() -> None:
    assert parse_command("get 'a key'") == ["GET", "a key"]
    assert reply_text([b"x", b"y"]) == ("x", False)
    assert reply_text([]) == (None, False)
    assert reply_text(7) == ("7", False)
    assert reply_text(True) == ("OK", False)
    assert reply_text(b"y" * 5000) == ("y" * 1024, True)
    assert describe_version(b"# Server\r\nredis_version:7.2.4\r\nvalkey_version:8.0.1\r\n") == (
        "Valkey 8.0.1"
    )
    assert describe_version(b"redis_version:7.0.15\r\n") == "Redis 7.0.15"


def test_model_database_is_an_index() -> None:
    model = RedisConnection.model_validate({"host": "cache"})
    assert (model.port, model.database, model.ssl_mode) == (6379, 0, "disable")
    with pytest.raises(ValueError, match="greater than or equal"):
        RedisConnection.model_validate({"host": "cache", "database": -1})


def test_missing_driver_is_classified(local_redis: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` fail
    failure = fail(local_redis.target())
    assert failure.code is ErrorCode.DRIVER_NOT_INSTALLED


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_ssl_root_cert_against_a_plain_server_fails_as_without_it(
    local_redis: Server, mode: str
) -> None:
    # The local Redis offers no TLS: no certificate is ever presented to the CAs.
    without = fail(local_redis.target(ssl_mode=mode), seconds=1)
    with_cas = fail(local_redis.target(ssl_mode=mode, ssl_root_cert=unrelated_ca_pem()), seconds=1)
    assert with_cas.code in (ErrorCode.SSL_ERROR, ErrorCode.TIMEOUT)
    assert (with_cas.code, with_cas.phase) == (without.code, without.phase)


def test_model_takes_ssl_root_cert_with_a_verifying_mode_only() -> None:
    pem = unrelated_ca_pem()
    model = RedisConnection.model_validate(
        {"host": "cache", "ssl_mode": "verify-full", "ssl_root_cert": pem}
    )
    assert model.ssl_root_cert == pem
    with pytest.raises(ValueError, match="ssl_mode disable does not verify"):
        RedisConnection.model_validate({"host": "cache", "ssl_root_cert": pem})
