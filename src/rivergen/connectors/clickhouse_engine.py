"""ClickHouse through clickhouse-driver (the native TCP protocol, plain on 9000 or TLS on 9440).

The native driver rather than clickhouse-connect (HTTP): clickhouse-connect 1.7 and later cannot
talk to servers as old as 18.16 (its first query reads a `system.settings` column they lack),
and the native protocol is what every ClickHouse version serves. HTTP is not supported.

We open the TCP socket (and TLS) ourselves and hand it to the driver: errno-classified
failures, our own TLS contexts (system CAs or `ssl_root_cert`, in memory), the connection made
to the checked address with the configured name verified, and a watchdog that cuts the socket
at the deadline. The query runs with `readonly=1` and `max_execution_time` as query settings;
a user whose profile is already read-only may not change settings on newer servers, so a
refusal of the settings is answered by running the query without them (still read-only by
profile, still cut at the deadline by the socket timeout and the watchdog).

First bytes: the native protocol has the client speak first, and its Hello carries the user
name, the password and the database. So a first connection sends a fixed Hello (user
`default`, no password, database `default`, client name `rivergen`): only when the peer has
answered it with a ClickHouse Hello or Exception packet does a second connection log in with
the configured credentials. The native protocol has no challenge-response login: the password
goes in the Hello as it is, so without TLS the security report says it went in clear and the
hint warns (as for Redis AUTH).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import replace
from typing import Any, Literal

from rivergen.connectors._alarms import SocketWatchdog
from rivergen.connectors._denied import refuse_denied_clickhouse
from rivergen.connectors._support import (
    Clock,
    KeywordGuarded,
    NetworkConnection,
    Port,
    ShortText,
    clean_query,
    client_context,
    driver_required,
    first_cell,
    open_tcp,
    query_timeout,
    refuse_unless_read,
    resolve_address,
    silent_server,
)
from rivergen.connectors._trust import VERIFYING_MODES, RootCertificates
from rivergen.connectors.base import ConnectionTarget, ConnectorResult, EngineSpec
from rivergen.connectors.classify import code_for_os_error, find_os_error
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.security.scrub import scrub as one_line

ClickHouseSslMode = Literal["disable", "require", "verify-ca", "verify-full"]

ALLOWED_OPTIONS: dict[str, type] = {"client_name": str, "compression": bool}
READ_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})

# Server error codes (ClickHouse src/Common/ErrorCodes.cpp) and the driver's own (errors.py).
CLICKHOUSE_CODES: dict[int, ErrorCode] = {
    81: ErrorCode.DATABASE_NOT_FOUND,  # UNKNOWN_DATABASE
    192: ErrorCode.AUTHENTICATION_FAILED,  # UNKNOWN_USER
    193: ErrorCode.AUTHENTICATION_FAILED,  # WRONG_PASSWORD
    194: ErrorCode.AUTHENTICATION_FAILED,  # REQUIRED_PASSWORD
    195: ErrorCode.AUTHENTICATION_FAILED,  # IP_ADDRESS_NOT_ALLOWED
    516: ErrorCode.AUTHENTICATION_FAILED,  # AUTHENTICATION_FAILED (20.x and later)
    291: ErrorCode.PERMISSION_DENIED,  # DATABASE_ACCESS_DENIED
    497: ErrorCode.PERMISSION_DENIED,  # ACCESS_DENIED
    164: ErrorCode.QUERY_ERROR,  # READONLY: the test query tried to write
    159: ErrorCode.TIMEOUT,  # TIMEOUT_EXCEEDED (max_execution_time)
    209: ErrorCode.TIMEOUT,  # SOCKET_TIMEOUT
    210: ErrorCode.CONNECTION_ERROR,  # NETWORK_ERROR
    202: ErrorCode.CONNECTION_ERROR,  # TOO_MANY_SIMULTANEOUS_QUERIES
    102: ErrorCode.CONNECTION_ERROR,  # UNEXPECTED_PACKET_FROM_SERVER
}
_READONLY = 164


class ClickHouseConnection(NetworkConnection):
    """Connection settings of a ClickHouse server (native protocol; TLS on its secure port)."""

    allowed_options = ALLOWED_OPTIONS

    port: Port = 9000
    database: ShortText | None = "default"
    username: ShortText = "default"
    ssl_mode: ClickHouseSslMode = "disable"
    ssl_root_cert: RootCertificates = None


def code_for_clickhouse(code: int | None) -> ErrorCode | None:
    """The stable code of a ClickHouse server or driver error code."""
    return CLICKHOUSE_CODES.get(code) if code is not None else None


def _failure(
    exc: BaseException,
    phase: Phase,
    watchdog: SocketWatchdog,
    deadline: Deadline,
    secrets: list[str | None],
    security: Security,
) -> ProbeFailure:
    """Classify a driver error by the server's code, then by the socket error inside it."""
    if watchdog.fired or isinstance(exc, TimeoutError):
        failure = silent_server(deadline) if phase is Phase.AUTH else query_timeout(deadline)
        failure.security = security
        return failure
    code = code_for_clickhouse(getattr(exc, "code", None))
    if code is ErrorCode.TIMEOUT:
        failure = silent_server(deadline) if phase is Phase.AUTH else query_timeout(deadline)
        failure.security = security
        return failure
    inner = find_os_error(exc)
    if code in (None, ErrorCode.CONNECTION_ERROR) and inner is not None:
        code = code_for_os_error(inner)
    raw = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = one_line(str(raw).split("\n")[0].split(". Stack trace")[0], secrets)
    if code is None and phase is Phase.AUTH:
        code, text = (
            ErrorCode.CONNECTION_ERROR,
            f"The server did not answer like ClickHouse: {text}",
        )
    default = ErrorCode.QUERY_ERROR if phase is Phase.QUERY else ErrorCode.CONNECTION_ERROR
    return ProbeFailure(code or default, phase, text, security=security)


class ClickHouseConnector(KeywordGuarded):
    """Tests a ClickHouse server: log in, read version(), run one read-only query."""

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        with driver_required("clickhouse-driver"):
            from clickhouse_driver import Client
            from clickhouse_driver import errors as ch_errors
        sql = clean_query(query, SPEC.default_query)
        # readonly=1 does not stop table functions that reach other hosts or server files.
        refuse_denied_clickhouse(sql)
        if self.check_keywords:
            refuse_unless_read(sql, READ_KEYWORDS, hash_comments=True)
        clock = Clock()
        address, port = resolve_address(target, deadline)
        if target.address is None:
            clock.lap(Phase.DNS)
        mode = target.ssl_mode or "disable"
        verified = mode in VERIFYING_MODES
        security = Security(
            tls=mode != "disable",
            tls_verified=verified,
            auth_method="native hello (password)" if target.password else "none",
            cleartext_password=bool(target.password) and mode == "disable",
        )
        greeting = replace(
            target, username="default", password=None, database="default", options={}
        )
        where = (address, port, deadline, clock, security)
        self._session(Client, ch_errors, greeting, *where, None)
        version, row, tls_version = self._session(Client, ch_errors, target, *where, sql)
        security = replace(security, tls_version=tls_version)
        text, truncated = first_cell(row[0] if row else None)
        return ConnectorResult(
            database_version=version,
            test_query_result=text,
            timings_ms=clock.timings,
            test_query_result_truncated=truncated,
            security=security,
        )

    def _session(
        self,
        client_class: Any,
        ch_errors: Any,
        target: ConnectionTarget,
        address: str,
        port: int,
        deadline: Deadline,
        clock: Clock,
        security: Security,
        sql: str | None,
    ) -> tuple[str, tuple[Any, ...] | None, str | None]:
        """One connection: TCP, TLS, Hello, then (with `sql`) version() and the query.

        Without `sql` it is the fixed greeting: any Hello or Exception packet proves that the
        peer speaks ClickHouse's protocol; anything else fails without showing what it said.
        """
        mode = target.ssl_mode or "disable"
        secrets = [target.password]
        first = sql is None
        sock = open_tcp(address, port, deadline)
        if first:
            clock.lap(Phase.TCP)
        with SocketWatchdog(deadline) as watchdog:
            watchdog.watch(sock.fileno())
            tls_version = None
            try:
                if mode != "disable":
                    sock = self._tls(sock, target, mode, deadline)
                    tls_version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
                    if first:
                        clock.lap(Phase.TLS)
                client = self._client(client_class, target, address, port, sock, deadline)
            except BaseException:
                sock.close()
                raise
            try:
                try:
                    client.connection.connect()
                except ch_errors.ServerException as exc:
                    if first:
                        return "", None, tls_version  # a ClickHouse server refusing `default`
                    raise _failure(exc, Phase.AUTH, watchdog, deadline, secrets, security) from None
                except (ch_errors.Error, OSError, EOFError) as exc:
                    failure = _failure(exc, Phase.AUTH, watchdog, deadline, secrets, security)
                    if first and failure.code is not ErrorCode.TIMEOUT:
                        failure = ProbeFailure(
                            ErrorCode.CONNECTION_ERROR,
                            Phase.AUTH,
                            "The server did not answer like a ClickHouse server",
                            security=security,
                        )
                    raise failure from None
                if sql is None:
                    return "", None, tls_version
                clock.lap(Phase.AUTH)
                try:
                    version, row = self._run(client, ch_errors, sql, deadline)
                except (ch_errors.Error, OSError, EOFError) as exc:
                    raise _failure(
                        exc, Phase.QUERY, watchdog, deadline, secrets, security
                    ) from None
                clock.lap(Phase.QUERY)
                return version, row, tls_version
            finally:
                client.disconnect()
                sock.close()

    @staticmethod
    def _tls(
        sock: socket.socket, target: ConnectionTarget, mode: str, deadline: Deadline
    ) -> socket.socket:
        """The TLS handshake on our socket; the configured name is what verify-full checks."""
        context = client_context(mode, target.ssl_root_cert)
        sock.settimeout(max(0.001, deadline.remaining()))
        try:
            wrapped = context.wrap_socket(sock, server_hostname=target.host or None)
        except TimeoutError:
            raise silent_server(deadline) from None
        except (ssl.SSLError, OSError) as exc:
            raise ProbeFailure(
                ErrorCode.SSL_ERROR, Phase.TLS, f"The TLS handshake failed: {exc}"
            ) from None
        return wrapped

    @staticmethod
    def _client(
        client_class: Any,
        target: ConnectionTarget,
        address: str,
        port: int,
        sock: socket.socket,
        deadline: Deadline,
    ) -> Any:
        """A driver client whose connection uses `sock` instead of opening its own."""
        budget = max(0.001, deadline.remaining())
        options = {k: v for k, v in target.options.items() if k in ALLOWED_OPTIONS}
        client = client_class(
            host=address,
            port=port,
            database=target.database or "default",
            user=target.username or "default",
            password=target.password or "",
            client_name=str(options.get("client_name", "rivergen")),
            compression=bool(options.get("compression", False)),
            connect_timeout=budget,
            send_receive_timeout=budget,
            sync_request_timeout=budget,
            disable_reconnect=True,
        )
        # The driver has no parameter for a ready socket; its one socket factory is replaced
        # on this instance only, so that its connect() logs in over the socket we checked.
        client.connection._create_socket = lambda _host, _port: sock
        return client

    @staticmethod
    def _run(
        client: Any, ch_errors: Any, sql: str, deadline: Deadline
    ) -> tuple[str, tuple[Any, ...] | None]:
        """version(), then the first row of the query; both read-only and time-limited."""

        def settings() -> dict[str, Any]:
            seconds = max(1, int(deadline.remaining() + 0.999))
            return {"readonly": 1, "max_execution_time": seconds, "max_result_rows": 1000,
                    "result_overflow_mode": "break"}  # fmt: skip

        try:
            rows = client.execute("SELECT version()", settings=settings())
            use_settings = True
        except ch_errors.ServerException as exc:
            if exc.code != _READONLY or "setting" not in str(exc.message).lower():
                raise
            # A read-only profile that may not change settings (newer servers say so).
            rows = client.execute("SELECT version()")
            use_settings = False
        version = f"ClickHouse {rows[0][0]}" if rows else "ClickHouse"
        client.connection.socket.settimeout(max(0.001, deadline.remaining()))
        stream = client.execute_iter(sql, settings=settings() if use_settings else None)
        row = next(iter(stream), None)
        return version, (tuple(row) if row is not None else None)


SPEC = EngineSpec(
    tunnel_clients=2,  # the fixed Hello, then the login
    key="clickhouse",
    label="ClickHouse",
    help=(
        "ClickHouse over the native protocol (port 9000, TLS on the secure port 9440); "
        "the test query runs with readonly=1."
    ),
    aliases=(),
    connection_model=ClickHouseConnection,
    connector=ClickHouseConnector(),
    driver_module="clickhouse_driver",
    default_port=9000,
    secret_fields=frozenset({"password"}),
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1",
)
