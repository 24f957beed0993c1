"""Trino: no coordinator can be installed here. Against real sockets with the real client: a
silent listener, a closed port, an unknown host, and a real HTTP server that is not Trino
(which must never see the user name or the query); the error map from Trino's documented
error names. With RIVERGEN_TEST_TRINO_URL naming a coordinator (http://user@host:port) the last
test runs against it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.trino_engine import SPEC
from rivergen.connectors.trino_errors import code_for_trino
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.engines import settled_threads, sockets_to
from tests.fixtures.required import optional_server

CONNECTOR = SPEC.connector
USER = "user-canary-6e2f"
QUERY = "SELECT 'query-canary-81aa'"


def fail(target: ConnectionTarget, query: str | None = None, seconds: float = 3) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, query, Deadline.after(seconds))
    return info.value


def local(port: int, **changes: object) -> ConnectionTarget:
    base = ConnectionTarget(host="localhost", address="127.0.0.1", port=port, username=USER)
    return ConnectionTarget(**{**base.__dict__, **changes})


class _Recorder(BaseHTTPRequestHandler):
    seen: list[bytes] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(bytes(self.requestline, "latin-1") + bytes(self.headers) + body)
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>not here</html>")

    def do_GET(self) -> None:
        """Record and refuse."""
        self._answer()

    def do_POST(self) -> None:
        """Record and refuse."""
        self._answer()

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def plain_http() -> Iterator[tuple[int, list[bytes]]]:
    """A real HTTP server that answers 404 to everything and records each request."""
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _Recorder.seen
    finally:
        server.shutdown()
        server.server_close()


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
    failure = fail(ConnectionTarget(host=unresolvable_host, port=8080, username="u"))
    assert (failure.code, failure.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)


def test_an_http_server_that_is_not_trino(plain_http: tuple[int, list[bytes]]) -> None:
    port, seen = plain_http
    failure = fail(local(port), QUERY)
    assert (failure.code, failure.phase) == (ErrorCode.CONNECTION_ERROR, Phase.AUTH)
    assert "not here" not in failure.message
    assert len(seen) == 1
    assert seen[0].startswith(b"GET /v1/info ")
    assert b"Host: localhost:" in seen[0]  # the configured name, at the checked address
    for canary in (USER.encode(), b"query-canary"):
        assert canary not in seen[0]


@pytest.mark.parametrize("secret", [{"password": "pw-x"}, {"secrets": {"jwt": "eyJ.x.y"}}])
@pytest.mark.parametrize("mode", ["disable", "require"])
def test_credentials_need_verified_tls(
    closed_port: int, secret: dict[str, object], mode: str
) -> None:
    failure = fail(local(closed_port, ssl_mode=mode, **secret))
    assert (failure.code, failure.phase) == (ErrorCode.SSL_ERROR, Phase.AUTH)


@pytest.mark.parametrize(
    "query",
    ["INSERT INTO t VALUES (1)", "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
     "EXPLAIN (TYPE DISTRIBUTED) ANALYZE SELECT 1", "CALL system.runtime.kill_query('x')"],
)  # fmt: skip
def test_non_reads_are_refused_before_sending(closed_port: int, query: str) -> None:
    failure = fail(local(closed_port), query)
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PERMISSION_DENIED", ErrorCode.PERMISSION_DENIED),
        ("CATALOG_NOT_FOUND", ErrorCode.DATABASE_NOT_FOUND),
        ("SCHEMA_NOT_FOUND", ErrorCode.DATABASE_NOT_FOUND),
        ("EXCEEDED_TIME_LIMIT", ErrorCode.TIMEOUT),
        ("SYNTAX_ERROR", ErrorCode.QUERY_ERROR),
        ("TABLE_NOT_FOUND", ErrorCode.QUERY_ERROR),
        ("SERVER_STARTING_UP", ErrorCode.CONNECTION_ERROR),
        ("GENERIC_INTERNAL_ERROR", None),
    ],
)
def test_documented_error_names(name: str, expected: ErrorCode | None) -> None:
    assert code_for_trino(name) is expected


def test_real_server_when_configured() -> None:
    """Against a coordinator named by RIVERGEN_TEST_TRINO_URL; reported skipped without."""
    parts = urlsplit(optional_server("RIVERGEN_TEST_TRINO_URL"))
    mode = "verify-full" if parts.scheme == "https" else "disable"
    target = ConnectionTarget(
        host=parts.hostname, port=parts.port or 8080, username=unquote(parts.username or "u"),
        password=unquote(parts.password) if parts.password else None, ssl_mode=mode,
    )  # fmt: skip
    result = CONNECTOR.probe(target, None, Deadline.after(10))
    assert result.test_query_result == "1"
    assert result.database_version is not None
    assert result.database_version.startswith("Trino ")
    missing = fail(target, "SELECT * FROM no_catalog_x.no_schema.t", seconds=10)
    assert missing.code in (ErrorCode.DATABASE_NOT_FOUND, ErrorCode.QUERY_ERROR)
