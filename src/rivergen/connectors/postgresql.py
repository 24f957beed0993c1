"""PostgreSQL through psycopg 3.

The connection is opened with libpq's non-blocking connect API and our own wait loop, because
both libpq and psycopg round `connect_timeout` to whole seconds of at least 2: a 1 s test
would otherwise take 2 s. The loop also tells the TCP phase from the handshake.

Why the first bytes are safe: libpq always opens with SSLRequest (8 fixed bytes) and sends the
startup message (user, database, application_name: typed by a user) only once the peer has
answered it with the one byte `S` or `N`, as only PostgreSQL does. `disable` and `allow` would
send the startup message first, so libpq runs with `sslmode=prefer` for them (`_LIBPQ_SSLMODE`):
a server without TLS answers `N` and the session stays in clear, as asked; one with TLS gets
encrypted, unverified, which `security` reports. A peer that answers anything else is
CONNECTION_ERROR "did not answer like a PostgreSQL server", its answer never shown.

Credentials only to servers that proved themselves: unless the ssl mode verifies the server's
certificate, `require_auth=!password` makes libpq refuse a server's request for the password
in clear text (a man in the middle of a `prefer` connection can ask for it), so only a
challenge-response method (SCRAM, MD5) or none is accepted.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rivergen.connectors._alarms import ReceiveLimit, SocketWatchdog
from rivergen.connectors._denied import refuse_denied_postgres
from rivergen.connectors._pg_connect import open_pgconn
from rivergen.connectors._support import (
    MAX_CELL_BYTES,
    MAX_RESULT_CHARS,
    Clock,
    KeywordGuarded,
    NetworkConnection,
    Port,
    ShortText,
    cell_text,
    clean_query,
    driver_required,
    endpoint,
    first_cell,
    first_keyword,
    query_timeout,
    refuse_unless_read,
    resolve_address,
)
from rivergen.connectors._trust import VERIFYING_MODES, RootCertificates, root_cert_file
from rivergen.connectors.base import ConnectionTarget, ConnectorResult, EngineSpec, OptionValue
from rivergen.connectors.classify import (
    code_for_sqlstate,
)
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.security.scrub import scrub as one_line

if TYPE_CHECKING:
    import psycopg
    from psycopg.pq.abc import PGconn

PostgresSslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

# libpq parameters a user may set. No file paths (sslrootcert, passfile, service), nothing that
# changes where the connection goes (host, hostaddr) or what runs at startup (options).
ALLOWED_OPTIONS: dict[str, type] = {
    "application_name": str,
    "keepalives": bool,
    "keepalives_idle": int,
    "keepalives_interval": int,
    "keepalives_count": int,
    "tcp_user_timeout": int,
    "target_session_attrs": str,
    "channel_binding": str,
}

# What the answers after login (session setup, version, the test query) may bring in all.
MAX_ANSWER_BYTES = 8 << 20
# Statements that can be a subquery: their first cell is bounded by the server (`_bounded`).
_WRAPPABLE = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
_DEFAULT_SSL_MODE = "prefer"  # libpq's own default, for targets built without the model
# What libpq is told for each ssl mode: disable and allow would send the startup message before
# the peer said anything (see the module docstring).
_LIBPQ_SSLMODE = {"disable": "prefer", "allow": "prefer"}
_NO_CLEARTEXT = "!password"
_LIBPQ_16 = 160000  # sslcertmode and sslrootcert=system


@dataclass(frozen=True)
class Flavor:
    """What a PostgreSQL-protocol engine changes: how it names its version, which limits it has.

    `version_query` runs inside the read-only transaction, before the test query; `describe`
    turns the startup version (`PostgreSQL 15.20`) and that query's first cell into the text
    reported. `lock_timeout` is False for servers that do not know the setting (Redshift).
    """

    version_query: str | None = None
    describe: Callable[[str, str | None], str] | None = None
    lock_timeout: bool = True


PLAIN = Flavor()


class PostgresConnection(NetworkConnection):
    """Connection settings of a PostgreSQL data source."""

    allowed_options = ALLOWED_OPTIONS

    port: Port = 5432
    database: ShortText | None = None
    username: ShortText
    ssl_mode: PostgresSslMode = "prefer"
    ssl_root_cert: RootCertificates = None


def _option_text(value: OptionValue) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _conninfo(
    target: ConnectionTarget, address: str, port: int, root_cert_path: str | None = None
) -> str:
    """The libpq connection string; fixed settings keep the service's own files out of it.

    `root_cert_path` is the file of the data source's own CAs (`ssl_root_cert`), if any.
    """
    from psycopg import pq
    from psycopg.conninfo import make_conninfo

    params: dict[str, str | int] = {
        _k: _option_text(_v) for _k, _v in target.options.items() if _k in ALLOWED_OPTIONS
    }
    params.setdefault("application_name", "rivergen")
    sslmode = target.ssl_mode or _DEFAULT_SSL_MODE
    if sslmode not in VERIFYING_MODES:
        params["require_auth"] = _NO_CLEARTEXT
    params.update(
        # `host` keeps the configured name for TLS verification; `hostaddr` is where we go.
        host=target.host or address,
        hostaddr=address,
        port=port,
        sslmode=_LIBPQ_SSLMODE.get(sslmode, sslmode),
        # Never read the service account's ~/.pgpass, client certificate or GSS credentials
        # and offer them to a host a user typed in.
        # A path that cannot exist (/dev/null is not a directory): libpq skips it silently.
        passfile=os.path.join(os.devnull, "pgpass"),
        gssencmode="disable",
    )
    if pq.version() >= _LIBPQ_16:  # older libpq rejects these parameters outright
        params["sslcertmode"] = "disable"
    if sslmode in VERIFYING_MODES and root_cert_path is not None:
        params["sslrootcert"] = root_cert_path
    elif sslmode == "verify-full" and pq.version() >= _LIBPQ_16:
        params["sslrootcert"] = "system"
    elif sslmode in VERIFYING_MODES:
        # libpq's default is ~/.postgresql/root.crt of the service account: use the system
        # CA bundle instead ("system" itself is refused with verify-ca).
        paths = ssl.get_default_verify_paths()
        cafile = paths.cafile or paths.openssl_cafile
        if cafile and os.path.exists(cafile):
            params["sslrootcert"] = cafile
    if target.username:
        params["user"] = target.username
    if target.password is not None:
        params["password"] = target.password
    if target.database:
        params["dbname"] = target.database
    return make_conninfo("", **params)


def _version(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    """`PostgreSQL 15.20` from the parameter the server sent during startup (no round trip)."""
    reported = conn.info.parameter_status("server_version")
    if reported:
        return f"PostgreSQL {reported.split()[0]}"
    number = conn.info.server_version
    return f"PostgreSQL {number // 10000}.{number % 10000}"


def _bounded(sql: str) -> str:
    """The query as a subquery whose first cell the server sends only up to MAX_CELL_BYTES
    (then as NULL, with its first characters in a second column): libpq reads a row whole, so
    SELECT repeat('x', 500000000) would otherwise land in this process. The newline keeps a
    trailing -- comment from swallowing the closing parenthesis."""
    cell = "q.rivergen_cell"
    oversized = f"octet_length({cell}::text) > {MAX_CELL_BYTES}"
    return (
        f"SELECT CASE WHEN {oversized} THEN NULL ELSE {cell} END, "  # noqa: S608  # by design
        f"CASE WHEN {oversized} THEN left({cell}::text, {MAX_RESULT_CHARS}) END "
        f"FROM (\n{sql}\n) AS q(rivergen_cell) LIMIT 1"
    )


def _security(pgconn: PGconn, ssl_mode: str) -> Security:
    """TLS as libpq negotiated it; the login method as far as libpq tells (a password or not:
    when the cleartext request was refused, a password went through SCRAM or MD5)."""
    tls = bool(pgconn.ssl_in_use)
    if not pgconn.used_password:
        method: str | None = "none"
    elif ssl_mode not in VERIFYING_MODES:
        method = "scram-sha-256 or md5"
    else:
        method = None  # password, SCRAM or MD5: libpq does not say which
    return Security(
        tls=tls,
        tls_verified=tls and ssl_mode in VERIFYING_MODES,
        tls_version=None,  # psycopg does not expose libpq's PQsslAttribute
        auth_method=method,
    )


def answer_too_large() -> ProbeFailure:
    """The server sent more than this process reads for one test query."""
    return ProbeFailure(
        ErrorCode.QUERY_ERROR,
        Phase.QUERY,
        f"The server's answer is larger than {MAX_ANSWER_BYTES >> 20} MiB and was not read; "
        "select a shorter value (left(col, 1024))",
    )


def _query_failure(
    exc: Exception, watchdog: SocketWatchdog, deadline: Deadline, secrets: list[str | None]
) -> ProbeFailure:
    import psycopg

    if watchdog.fired:
        return query_timeout(deadline)
    if isinstance(exc, psycopg.Error):
        code = code_for_sqlstate(exc.sqlstate)
        if code is ErrorCode.TIMEOUT:
            return query_timeout(deadline)
        primary = exc.diag.message_primary if exc.sqlstate else None
        message = one_line(primary or str(exc), secrets)
        if code is None and isinstance(exc, psycopg.OperationalError) and not exc.sqlstate:
            # No SQLSTATE: the server reported nothing, libpq lost the connection (the server
            # stopped or crashed, the network dropped it). Not a fault of the query.
            return ProbeFailure(
                ErrorCode.CONNECTION_ERROR,
                Phase.QUERY,
                f"The connection was lost during the query: {message}",
            )
        return ProbeFailure(code or ErrorCode.QUERY_ERROR, Phase.QUERY, message)
    raise exc


class PostgresConnector(KeywordGuarded):
    """Tests a PostgreSQL server: connect, report the version, run one read-only query."""

    def __init__(self, *, check_keywords: bool = True, flavor: Flavor = PLAIN) -> None:
        super().__init__(check_keywords=check_keywords)
        self.flavor = flavor

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        with driver_required("psycopg"):
            import psycopg
        sql = clean_query(query, SPEC.default_query)
        # A read-only transaction does not stop COPY ... TO PROGRAM / TO 'file': refuse always.
        if first_keyword(sql) == "COPY":
            raise ProbeFailure(
                ErrorCode.QUERY_ERROR, Phase.QUERY, "COPY cannot be used in a test query"
            )
        # Nor functions such as pg_terminate_backend or pg_read_file: refuse always as well.
        refuse_denied_postgres(sql)
        if self.check_keywords:
            refuse_unless_read(sql)
        secrets = [target.password]
        clock = Clock()
        address, port = resolve_address(target, deadline)
        if target.address is None:
            clock.lap(Phase.DNS)
        where = endpoint(address, port)
        ssl_mode = target.ssl_mode or _DEFAULT_SSL_MODE
        own_cas = target.ssl_root_cert if ssl_mode in VERIFYING_MODES else None
        trusted = "ssl_root_cert" if own_cas else "this service's system CA bundle"
        # libpq reads the file during the handshake only: it is gone before the query runs.
        with root_cert_file(own_cas) as root_cert_path:
            conninfo = _conninfo(target, address, port, root_cert_path)
            pgconn = open_pgconn(conninfo, deadline, clock, where, ssl_mode, secrets, trusted)
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        try:
            pgconn.nonblocking = 1
            conn = psycopg.Connection(pgconn)
            conn.prepare_threshold = None
            conn.autocommit = True  # we open the transaction ourselves, below
            version = _version(conn)
            security = _security(pgconn, ssl_mode)
            # The guarded path only: with the keyword guard off (tests), the read-only
            # transaction alone must refuse writes, as written.
            wrapped = self.check_keywords and first_keyword(sql) in _WRAPPABLE
            # A server that ignores the subquery could still send one huge message, which
            # libpq reads whole: the kernel's byte count cuts the session past MAX_ANSWER_BYTES.
            with (
                SocketWatchdog(deadline) as watchdog,
                ReceiveLimit(pgconn.socket, MAX_ANSWER_BYTES) as limit,
            ):
                watchdog.watch(pgconn.socket)
                try:
                    version, row = self._run(
                        conn, _bounded(sql) if wrapped else sql, deadline, version
                    )
                except psycopg.Error as exc:
                    if limit.exceeded:
                        raise answer_too_large() from None
                    raise _query_failure(exc, watchdog, deadline, secrets) from None
            clock.lap(Phase.QUERY)
        finally:
            if conn is not None:
                conn.close()
            else:
                pgconn.finish()
        if wrapped and row is not None and row[1] is not None:
            text, truncated = cell_text(row[1]), True  # the server cut the cell for us
        else:
            text, truncated = first_cell(row[0] if row else None)
        return ConnectorResult(
            database_version=version,
            test_query_result=text,
            test_query_result_truncated=truncated,
            timings_ms=clock.timings,
            security=security,
        )

    def _run(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        sql: str,
        deadline: Deadline,
        version: str,
    ) -> tuple[str, tuple[object, ...] | None]:
        """One round trip opens a READ ONLY transaction with server-side time limits, then the
        query runs through the extended protocol (one statement only), streaming one row.

        Returns the version as the flavor describes it, and the row."""
        flavor = self.flavor
        budget_ms = max(1, int(deadline.remaining() * 1000))
        setup = f"BEGIN READ ONLY; SET LOCAL statement_timeout = {budget_ms}"
        if flavor.lock_timeout:
            setup += f"; SET LOCAL lock_timeout = {budget_ms}"
        conn.execute(setup)
        if flavor.describe is not None:
            found = conn.execute(flavor.version_query).fetchone() if flavor.version_query else None
            version = flavor.describe(version, cell_text(found[0]) if found else None)
        rows = conn.cursor().stream(sql)
        try:
            return version, next(rows, None)
        finally:
            # Ending the session rolls the transaction back without reading (or cancelling)
            # the rows we did not ask for; closing the generator afterwards then has no work.
            conn.close()
            close = getattr(rows, "close", None)  # a generator, typed as a plain Iterator
            if close is not None:
                close()


SPEC = EngineSpec(
    tunnel_clients=2,  # libpq retries without TLS when a `prefer` handshake fails
    key="postgresql",
    label="PostgreSQL",
    help=(
        "PostgreSQL; the test query runs in a READ ONLY transaction with statement and "
        "lock timeouts."
    ),
    aliases=("postgres", "pg"),
    connection_model=PostgresConnection,
    connector=PostgresConnector(),
    driver_module="psycopg",
    default_port=5432,
    secret_fields=frozenset({"password"}),
    file_based=False,
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1",
)
