"""Redis: what a reply may cost, what `security` says, against real servers and a hostile one."""

from __future__ import annotations

import pytest
import redis

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.redis_engine import MAX_REPLY_BYTES, SPEC
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.probing.hints import hint_for
from tests.fixtures.peers import RecordingPeer, refused_with_peak_growth
from tests.fixtures.servers import Server, unique_name

CONNECTOR = SPEC.connector


def test_a_hostile_servers_huge_bulk_reply_is_not_read_whole(
    huge_reply_redis: RecordingPeer,
) -> None:
    target = ConnectionTarget(host="127.0.0.1", address="127.0.0.1", port=huge_reply_redis.port)
    failure, growth = refused_with_peak_growth(
        lambda: CONNECTOR.probe(target, "PING", Deadline.after(5))
    )
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY), failure
    assert "larger than" in failure.message
    assert growth < 3 * MAX_REPLY_BYTES / (1 << 20) + 16, growth  # not the 400 MB announced


def test_a_big_value_is_refused_and_a_medium_one_truncated(local_redis: Server) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379)
    big, medium = unique_name("rg_big"), unique_name("rg_medium")
    client.set(big, b"y" * (MAX_REPLY_BYTES + 1), ex=60)
    client.set(medium, b"z" * 5000, ex=60)
    try:
        with pytest.raises(ProbeFailure) as info:
            CONNECTOR.probe(local_redis.target(), f"GET {big}", Deadline.after(5))
        assert info.value.code is ErrorCode.QUERY_ERROR
        result = CONNECTOR.probe(local_redis.target(), f"GET {medium}", Deadline.after(5))
        assert result.test_query_result == "z" * 1024
        assert result.test_query_result_truncated is True
    finally:
        client.delete(big, medium)
        client.close()


def test_security_without_a_password(local_redis: Server) -> None:
    result = CONNECTOR.probe(local_redis.target(), None, Deadline.after(5))
    assert result.security == Security(
        tls=False, tls_verified=False, tls_version=None, auth_method="none"
    )
    assert hint_for(None, result.security) is None


def test_security_says_auth_went_in_clear(redis_with_password: Server) -> None:
    result = CONNECTOR.probe(redis_with_password.target(), None, Deadline.after(5))
    assert result.security.auth_method == "AUTH (cleartext)"
    assert result.security.tls is False
    assert result.security.cleartext_password is True
    hint = hint_for(None, result.security)
    assert hint is not None
    assert "clear text" in hint


def test_a_wrong_password_failure_carries_security(redis_with_password: Server) -> None:
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(redis_with_password.target(password="wrong"), None, Deadline.after(5))
    assert info.value.code is ErrorCode.AUTHENTICATION_FAILED
    assert info.value.security is not None
    assert info.value.security.cleartext_password is True
