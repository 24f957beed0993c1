"""Redis through redis-py's single Connection (no pool, no retries).

We open the TCP socket (and TLS) ourselves in the Connection's `_connect` hook: that times and
classifies the TCP phase by errno, and lets a watchdog cut the socket at the deadline. Named
redis_engine so that nothing can mistake it for the redis package itself.

Why the first bytes are safe: RESP frames every argument as a line of its own, so AUTH, CLIENT
SETNAME or the test command sent to another line-based service (memcached, SMTP...) would be
commands to it. Nothing a user typed leaves before the peer has answered a fixed `PING` (the
bytes of `_GREETING`, the same for every test) with a RESP line that only Redis sends (`+PONG`
or a `-PREFIX message` error such as NOAUTH). Any other answer is CONNECTION_ERROR "did not
answer like a Redis server", and the answer itself is never shown. Only then does redis-py send
AUTH, CLIENT SETNAME, SELECT, INFO and the command.

Redis AUTH sends the password in clear: without TLS, `security` and the hint say so. Every
byte received is counted (`_BoundedSocket`): a reply larger than `MAX_REPLY_BYTES` (a huge
value, or a hostile server's endless bulk string) stops the test before it is read whole.
"""

from __future__ import annotations

import functools
import re
import shlex
import socket
import ssl
from typing import Annotated, Any, Literal

from pydantic import Field

from rivergen.connectors._alarms import SocketWatchdog
from rivergen.connectors._support import (
    Clock,
    NetworkConnection,
    Port,
    cell_text,
    client_context,
    driver_required,
    first_cell,
    open_tcp,
    query_timeout,
    resolve_address,
    silent_server,
)
from rivergen.connectors._trust import RootCertificates
from rivergen.connectors.base import ConnectionTarget, ConnectorResult, EngineSpec
from rivergen.connectors.classify import code_for_os_error, code_for_redis_error
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.security.scrub import scrub as one_line

RedisSslMode = Literal["disable", "require", "verify-ca", "verify-full"]

ALLOWED_OPTIONS: dict[str, type] = {"client_name": str}

# Redis has no read-only session, so this allow-list is the guarantee: commands that only read
# and stay cheap on a big keyspace (no KEYS, SCAN loops, DEBUG, CONFIG GET requirepass...).
READ_COMMANDS = frozenset(
    {
        "PING", "ECHO", "INFO", "DBSIZE", "TIME", "LASTSAVE", "ROLE", "TYPE", "EXISTS", "TTL",
        "PTTL", "GET", "MGET", "STRLEN", "GETRANGE", "HGET", "HMGET", "HLEN", "HEXISTS",
        "HSTRLEN", "LLEN", "LINDEX", "SCARD", "SISMEMBER", "SMISMEMBER", "ZCARD", "ZSCORE",
        "ZRANK", "ZCOUNT", "XLEN",
    }
)  # fmt: skip


# A RESP array holding the one word PING: the first bytes after TCP (and TLS), fixed.
_GREETING = b"*1\r\n$4\r\nPING\r\n"
# A Redis answer to it: PONG, or an error line with an upper-case prefix (NOAUTH, DENIED...).
_RESP_ANSWER = re.compile(rb"\+PONG\r\n|-[A-Z]+(?: [\x20-\x7e]*)?\r\n")
_MAX_GREETING_ANSWER = 512
# What a test may read in all (greeting, AUTH, INFO, the reply): INFO server is ~4 KiB, and
# the API shows 1024 characters of the reply.
MAX_REPLY_BYTES = 1024 * 1024


class ReplyTooLarge(OSError):
    """The server sent more than MAX_REPLY_BYTES; raised from recv so redis-py gives up."""


class _BoundedSocket:
    """The socket redis-py reads from, counting what it receives (redis-py buffers a bulk
    reply of any announced length whole)."""

    def __init__(self, sock: socket.socket, budget: int) -> None:
        self._sock = sock
        self._left = budget
        self.exceeded = False

    def recv(self, size: int, *flags: int) -> bytes:
        if self._left <= 0:
            self.exceeded = True
            raise ReplyTooLarge("reply too large")
        data = self._sock.recv(min(size, self._left), *flags)
        self._left -= len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class RedisConnection(NetworkConnection):
    """Connection settings of a Redis data source; `database` is the numeric db index."""

    allowed_options = ALLOWED_OPTIONS

    port: Port = 6379
    database: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    ssl_mode: RedisSslMode = "disable"
    ssl_root_cert: RootCertificates = None


def parse_command(query: str | None) -> list[str]:
    """The test command split into words; one read-only command from the allow-list only."""
    text = (query or "").strip() or "PING"
    if "\n" in text or "\r" in text:
        raise ProbeFailure(ErrorCode.QUERY_ERROR, Phase.QUERY, "Only one command may be sent")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ProbeFailure(ErrorCode.QUERY_ERROR, Phase.QUERY, f"Invalid command: {exc}") from None
    if not words or words[0].upper() not in READ_COMMANDS:
        name = words[0].upper() if words else "an empty command"
        raise ProbeFailure(
            ErrorCode.QUERY_ERROR,
            Phase.QUERY,
            f"{name} is not allowed; the test command must be a read-only command such as PING",
        )
    return [words[0].upper(), *words[1:]]


def reply_text(reply: object) -> tuple[str | None, bool]:
    """A reply as the API returns it: the first element of an array, text for the rest, at
    most MAX_RESULT_CHARS, and was-it-truncated."""
    if isinstance(reply, list | tuple):
        return reply_text(reply[0]) if reply else (None, False)
    if reply is True:
        return "OK", False
    return first_cell(reply)


def describe_version(info: object) -> str | None:
    """`Redis 7.0.15` (or `Valkey 8.0.1`) from an INFO server reply."""
    text = cell_text(info[0] if isinstance(info, list | tuple) and info else info) or ""
    fields = dict(
        line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#")
    )
    if "valkey_version" in fields:
        return f"Valkey {fields['valkey_version'].strip()}"
    version = fields.get("redis_version")
    return f"Redis {version.strip()}" if version else None


@functools.cache
def _connection_class(redis_mod: Any) -> Any:
    """redis-py's Connection with our socket: TCP and TLS opened, timed and watched by us."""

    class _Connection(redis_mod.connection.Connection):  # type: ignore[misc]
        def __init__(self, *, probe: _Probe, **kwargs: Any) -> None:
            self._probe = probe
            super().__init__(**kwargs)

        def _connect(self) -> socket.socket:
            return self._probe.open_socket()

    return _Connection


class _Probe:
    """State of one test, shared with the connection's socket hook."""

    def __init__(
        self, target: ConnectionTarget, address: str, port: int, deadline: Deadline
    ) -> None:
        self.target = target
        self.address = address
        self.port = port
        self.deadline = deadline
        self.clock = Clock()
        self.watchdog = SocketWatchdog(deadline)
        self.sock: socket.socket | None = None
        self.bounded: _BoundedSocket | None = None
        self.tls_version: str | None = None

    def open_socket(self) -> socket.socket:
        sock = open_tcp(self.address, self.port, self.deadline)
        self.sock = sock
        self.watchdog.watch(sock.fileno())
        self.clock.lap(Phase.TCP)
        mode = self.target.ssl_mode or "disable"
        if mode != "disable":
            sock.settimeout(max(0.001, self.deadline.remaining()))
            try:
                context = client_context(mode, self.target.ssl_root_cert)
                sock = context.wrap_socket(sock, server_hostname=self.target.host or self.address)
            except (OSError, ValueError) as exc:
                self.sock.close()
                if isinstance(exc, TimeoutError):
                    raise silent_server(self.deadline) from None
                raise ProbeFailure(
                    ErrorCode.SSL_ERROR, Phase.TLS, f"TLS negotiation failed: {exc}"
                ) from None
            self.sock = sock
            self.tls_version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
            self.clock.lap(Phase.TLS)
        sock.settimeout(max(0.001, self.deadline.remaining()))
        self._greet(sock)
        self.bounded = _BoundedSocket(sock, MAX_REPLY_BYTES)
        return self.bounded  # type: ignore[return-value]  # a socket to redis-py in all it uses

    def _greet(self, sock: socket.socket) -> None:
        """Send the fixed PING and require a Redis answer before anything a user typed."""
        answer = b""
        try:
            sock.sendall(_GREETING)
            while not answer.endswith(b"\r\n") and len(answer) < _MAX_GREETING_ANSWER:
                chunk = sock.recv(_MAX_GREETING_ANSWER - len(answer))
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            raise silent_server(self.deadline) from None
        except OSError as exc:
            if self.watchdog.fired:
                raise silent_server(self.deadline) from None
            raise ProbeFailure(
                code_for_os_error(exc),
                Phase.AUTH,
                f"The connection failed before the server answered: {exc.strerror or exc}",
                security=self.security(),
            ) from None
        if _RESP_ANSWER.fullmatch(answer) is None:
            raise ProbeFailure(
                ErrorCode.CONNECTION_ERROR,
                Phase.AUTH,
                "The server did not answer like a Redis server (its answer to PING is not "
                "RESP); check the port",
                security=self.security(),
            )

    def security(self) -> Security:
        """What protects this connection: TLS as negotiated, AUTH always in clear text."""
        mode = self.target.ssl_mode or "disable"
        tls = self.tls_version is not None
        password = bool(self.target.password)
        method = "AUTH (over TLS)" if tls else "AUTH (cleartext)"
        return Security(
            tls=tls,
            tls_verified=tls and mode in ("verify-ca", "verify-full"),
            tls_version=self.tls_version,
            auth_method=method if password else "none",
            cleartext_password=password and not tls,
        )

    def failure(self, exc: Exception, phase: Phase) -> ProbeFailure:
        failure = self._classify(exc, phase)
        failure.security = self.security()
        return failure

    def _classify(self, exc: Exception, phase: Phase) -> ProbeFailure:
        if self.bounded is not None and self.bounded.exceeded:
            return ProbeFailure(
                ErrorCode.QUERY_ERROR,
                Phase.QUERY,
                f"The server's reply is larger than {MAX_REPLY_BYTES // 1024} KiB and was not "
                "read; test with a command whose reply is small (GETRANGE key 0 1023, STRLEN)",
            )
        if self.watchdog.fired:
            return (
                silent_server(self.deadline)
                if phase is Phase.AUTH
                else query_timeout(self.deadline)
            )
        code = code_for_redis_error(exc)
        if code is ErrorCode.TIMEOUT:
            return (
                silent_server(self.deadline)
                if phase is Phase.AUTH
                else query_timeout(self.deadline)
            )
        if code is ErrorCode.DATABASE_NOT_FOUND:
            message = f"Database index {self.target.database} does not exist on this server"
            return ProbeFailure(code, Phase.AUTH, message)
        return ProbeFailure(code, phase, one_line(str(exc), [self.target.password]))


class RedisConnector:
    """Tests a Redis server: connect, authenticate, report the version, run one read command."""

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        with driver_required("redis-py"):
            import redis
        command = parse_command(query)
        try:
            db = int(target.database or 0)
        except ValueError:
            raise ProbeFailure(
                ErrorCode.CONFIGURATION_ERROR, Phase.POLICY, "The database must be a number"
            ) from None
        address, port = resolve_address(target, deadline)
        probe = _Probe(target, address, port, deadline)
        if target.address is None:
            probe.clock.lap(Phase.DNS)
        client_name = target.options.get("client_name")
        conn = _connection_class(redis)(
            probe=probe,
            host=address,
            port=port,
            db=db,
            username=target.username or None,
            password=target.password or None,
            client_name=str(client_name) if client_name else None,
            socket_timeout=max(0.001, deadline.remaining()),
            socket_connect_timeout=max(0.001, deadline.remaining()),
            driver_info=None,  # no CLIENT SETINFO round trips
            protocol=2,
        )
        with probe.watchdog:
            try:
                try:
                    conn.connect()
                except redis.RedisError as exc:
                    raise probe.failure(exc, Phase.AUTH) from None
                probe.clock.lap(Phase.AUTH)
                # INFO and the command go out together: one round trip for both.
                conn.send_packed_command(conn.pack_commands([("INFO", "server"), command]))
                try:
                    info = conn.read_response()
                except redis.ResponseError:
                    info = None  # an ACL may forbid INFO; the test itself can still pass
                except redis.RedisError as exc:
                    # Without AUTH or SELECT this is the server's first answer: a silence
                    # here is a server that accepted the connection and never spoke.
                    raise probe.failure(exc, Phase.AUTH) from None
                try:
                    reply = conn.read_response()
                except redis.RedisError as exc:
                    raise probe.failure(exc, Phase.QUERY) from None
                probe.clock.lap(Phase.QUERY)
            finally:
                conn.disconnect()
                if probe.sock is not None:
                    probe.sock.close()
        text, truncated = reply_text(reply)
        return ConnectorResult(
            database_version=describe_version(info) if info is not None else None,
            test_query_result=text,
            test_query_result_truncated=truncated,
            timings_ms=probe.clock.timings,
            security=probe.security(),
        )


SPEC = EngineSpec(
    key="redis",
    label="Redis",
    help="Redis or Valkey; the test command is a read-only command (PING by default).",
    aliases=(),
    connection_model=RedisConnection,
    connector=RedisConnector(),
    driver_module="redis",
    default_port=6379,
    secret_fields=frozenset({"password"}),
    file_based=False,
    allowed_options=ALLOWED_OPTIONS,
    default_query="PING",
)
