"""MySQL and MariaDB through PyMySQL (one connector, two engine specs).

We open the TCP socket ourselves and hand it to PyMySQL: that times the TCP phase, classifies
its failure by errno, and lets a watchdog cut the socket at the deadline, since PyMySQL's
`read_timeout` bounds each read rather than the whole test.

Why the first bytes are safe, and why the password goes only to a server that proved itself:
see `_mysql_login` (the server speaks first and its greeting is checked; methods that hand the
password over readable are refused unless TLS is verified).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from rivergen.connectors._alarms import SocketWatchdog
from rivergen.connectors._denied import refuse_denied_mysql
from rivergen.connectors._mysql_login import MAX_ROW_BYTES, connection_class, login_security
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
from rivergen.connectors._trust import RootCertificates
from rivergen.connectors.base import ConnectionTarget, ConnectorResult, EngineSpec
from rivergen.connectors.classify import code_for_mysql_errno, code_for_os_error, find_os_error
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from rivergen.security.scrub import scrub as one_line

if TYPE_CHECKING:
    from pymysql.connections import Connection

MySqlSslMode = Literal["disable", "prefer", "require", "verify-ca", "verify-full"]

# Never local_infile, init_command, plugin directories, option files or certificate paths.
ALLOWED_OPTIONS: dict[str, type] = {
    "charset": str,
    "collation": str,
    "program_name": str,
}

_VERSION = re.compile(r"(\d+\.\d+\.\d+)")
_TIDB = re.compile(r"-TiDB-v?(\d+\.\d+\.\d+\S*)")
_UNKNOWN_SYSTEM_VARIABLE = 1193


class MySQLConnection(NetworkConnection):
    """Connection settings of a MySQL or MariaDB data source."""

    allowed_options = ALLOWED_OPTIONS

    port: Port = 3306
    database: ShortText | None = None
    username: ShortText
    ssl_mode: MySqlSslMode = "prefer"
    ssl_root_cert: RootCertificates = None


ServerKind = Literal["mysql", "mariadb", "tidb"]


def describe_version(server_info: str) -> tuple[str, ServerKind]:
    """`MariaDB 10.11.19`, `MySQL 8.0.36` or `TiDB 7.5.0` from the handshake's version."""
    # MariaDB 10.x prefixes "5.5.5-" for old replication clients; Debian appends "-0+deb12u1".
    # TiDB announces the MySQL version it emulates, then its own: "8.0.11-TiDB-v7.5.0".
    info = server_info.removeprefix("5.5.5-")
    tidb = _TIDB.search(info)
    if tidb:
        return f"TiDB {tidb.group(1)}", "tidb"
    match = _VERSION.search(info)
    number = match.group(1) if match else info.split("-")[0]
    if "mariadb" in info.lower():
        return f"MariaDB {number}", "mariadb"
    return f"MySQL {number}", "mysql"


def ssl_arguments(mode: str, root_cert: str | None = None) -> dict[str, Any]:
    """PyMySQL's TLS arguments: none means PREFERRED, an explicit context means REQUIRED."""
    if mode == "disable":
        return {"ssl_disabled": True}
    if mode == "prefer":
        return {}
    # verify-full checks the certificate against `host`, the configured name, not the address;
    # with `root_cert` the verifying modes trust its CAs instead of the system ones.
    return {"ssl": client_context(mode, root_cert)}


def _session_limits(kind: ServerKind, budget: float) -> str:
    """One SET that makes every later transaction read-only and bounds statements server-side.

    TiDB treats the read-only settings as "noop functions" and refuses them unless an
    administrator enabled those; there the keyword guard and the denied-function scan (always
    on for TiDB) keep the query a read, and the server's time limit still applies.
    """
    if kind == "tidb":
        return f"SET SESSION max_execution_time = {max(1, int(budget * 1000))}"
    if kind == "mariadb":
        return f"SET SESSION tx_read_only = 1, SESSION max_statement_time = {budget:.3f}"
    return (
        "SET SESSION transaction_read_only = 1, "
        f"SESSION max_execution_time = {max(1, int(budget * 1000))}"
    )


# The session settings to try, in order, for what the banner claims: the server's answer (which
# variables it has) decides, since any server can announce any version string.
_CANDIDATES: dict[ServerKind, tuple[ServerKind, ...]] = {
    "mysql": ("mysql", "mariadb"),
    "mariadb": ("mariadb", "mysql"),
    "tidb": ("tidb",),
}


def no_time_limit() -> ProbeFailure:
    """Fail closed: the server took none of the statement time limits we know."""
    return ProbeFailure(
        ErrorCode.QUERY_ERROR,
        Phase.QUERY,
        "The server accepts neither max_execution_time (MySQL 5.7.8+) nor max_statement_time "
        "(MariaDB 10.1+): the test query is not run without a server-side time limit",
    )


def relabel(version: str, kind: ServerKind) -> str:
    """The version text under the name of the server the session settings found."""
    if kind == "tidb":
        return version
    number = version.split(" ", 1)[-1]
    return f"{'MariaDB' if kind == 'mariadb' else 'MySQL'} {number}"


def _failure(
    exc: Exception,
    phase: Phase,
    watchdog: SocketWatchdog,
    deadline: Deadline,
    secrets: list[str | None],
) -> ProbeFailure:
    """Classify a PyMySQL error by vendor number, then by the socket error inside it."""
    if watchdog.fired:
        return silent_server(deadline) if phase is Phase.AUTH else query_timeout(deadline)
    args = exc.args
    number = args[0] if args and isinstance(args[0], int) else None
    text = str(args[1]) if len(args) > 1 else str(exc)
    code = code_for_mysql_errno(number)
    if code is None or number in (2003, 2013):
        inner = find_os_error(exc)
        if inner is not None:
            code = code_for_os_error(inner)
    if code is ErrorCode.TIMEOUT:
        return silent_server(deadline) if phase is Phase.AUTH else query_timeout(deadline)
    if number is None and phase is Phase.AUTH:
        # PyMySQL fails with struct/index errors when the peer speaks another protocol.
        text = "The server did not answer like a MySQL server"
    if code is ErrorCode.SSL_ERROR:
        phase = Phase.TLS
    default = ErrorCode.QUERY_ERROR if phase is Phase.QUERY else ErrorCode.CONNECTION_ERROR
    return ProbeFailure(code or default, phase, one_line(text, secrets))


class MySQLConnector(KeywordGuarded):
    """Tests a MySQL or MariaDB server: connect, report the version, run one read-only query."""

    def __init__(self, *, check_keywords: bool = True, always_guarded: bool = False) -> None:
        super().__init__(check_keywords=check_keywords)
        # For engines whose own read-only mode cannot be relied on (TiDB): the guard stays on.
        self.always_guarded = always_guarded

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        with driver_required("PyMySQL"):
            import pymysql
        sql = clean_query(query, "SELECT 1")
        # A read-only transaction lets SELECT ... INTO OUTFILE write and LOAD_FILE read server
        # files: refuse always, whatever the keyword guard says.
        refuse_denied_mysql(sql)
        if self.check_keywords or self.always_guarded:
            refuse_unless_read(sql, hash_comments=True)
        secrets = [target.password]
        clock = Clock()
        address, port = resolve_address(target, deadline)
        if target.address is None:
            clock.lap(Phase.DNS)
        sock = open_tcp(address, port, deadline)
        clock.lap(Phase.TCP)
        conn: Connection[Any] | None = None
        try:
            with SocketWatchdog(deadline) as watchdog:
                watchdog.watch(sock.fileno())
                try:
                    conn = self._connect(pymysql, target, address, port, deadline)
                    conn.connect(sock)
                except ProbeFailure as refused:
                    refused.security = refused.security or login_security(conn)
                    raise
                except Exception as exc:
                    lost = _failure(exc, Phase.AUTH, watchdog, deadline, secrets)
                    lost.security = login_security(conn)
                    raise lost from None
                clock.lap(Phase.AUTH)
                security = login_security(conn)
                version, claimed = describe_version(str(conn.get_server_info() or ""))  # type: ignore[no-untyped-call]
                try:
                    row, kind = self._run(pymysql, conn, sql, claimed, deadline)
                    version = relabel(version, kind)
                except pymysql.Error as exc:
                    failed = _failure(exc, Phase.QUERY, watchdog, deadline, secrets)
                    failed.security = security
                    raise failed from None
                clock.lap(Phase.QUERY)
        finally:
            if conn is not None and conn.open:
                # Ending the session rolls the transaction back without draining rows.
                conn.close()
            sock.close()
        text, truncated = first_cell(row[0] if row else None)
        return ConnectorResult(
            database_version=version,
            test_query_result=text,
            test_query_result_truncated=truncated,
            timings_ms=clock.timings,
            security=security,
        )

    @staticmethod
    def _connect(
        pymysql: Any, target: ConnectionTarget, address: str, port: int, deadline: Deadline
    ) -> Connection[Any]:
        """An unconnected PyMySQL connection with every timeout set from the deadline."""
        budget = deadline.remaining()
        if budget <= 0:
            raise ProbeFailure(ErrorCode.TIMEOUT, Phase.AUTH, "No time was left to log in")
        options = {k: v for k, v in target.options.items() if k in ALLOWED_OPTIONS}
        hostname = target.host or address
        charset = str(options.get("charset", "utf8mb4"))
        if pymysql.charset.charset_by_name(charset) is None:
            raise ProbeFailure(
                ErrorCode.CONFIGURATION_ERROR, Phase.POLICY, f"Unknown character set {charset!r}"
            )
        try:
            conn: Connection[Any] = connection_class(pymysql)(
                ssl_mode=target.ssl_mode or "prefer",
                host=hostname,
                port=port,
                user=target.username or "",
                # PyMySQL encodes a str password as Latin-1 and its error names the character
                # and its position; UTF-8 bytes are what MySQL clients send under utf8mb4.
                password=(target.password or "").encode("utf-8"),
                database=target.database or None,
                charset=charset,
                collation=options.get("collation"),
                program_name=str(options.get("program_name", "rivergen")),
                connect_timeout=budget,
                read_timeout=budget,
                write_timeout=budget,
                autocommit=None,  # keep the server default: saves a round trip
                local_infile=False,
                client_flag=0,  # in particular no CLIENT.MULTI_STATEMENTS
                defer_connect=True,
                **ssl_arguments(target.ssl_mode or "prefer", target.ssl_root_cert),
            )
        except (AttributeError, KeyError, ValueError, TypeError, LookupError) as exc:
            raise ProbeFailure(
                ErrorCode.CONFIGURATION_ERROR, Phase.POLICY, f"Invalid MySQL settings: {exc}"
            ) from None
        return conn

    @staticmethod
    def _run(
        pymysql: Any,
        conn: Connection[Any],
        sql: str,
        claimed: ServerKind,
        deadline: Deadline,
    ) -> tuple[tuple[Any, ...] | None, ServerKind]:
        """Read-only session and transaction, server-side time limit, then one row at most;
        and the kind of server whose settings the session took."""
        setup = conn.cursor()
        for kind in _CANDIDATES[claimed]:
            try:
                setup.execute(_session_limits(kind, max(0.001, deadline.remaining())))
                break
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != _UNKNOWN_SYSTEM_VARIABLE:
                    raise
        else:
            raise no_time_limit()  # fail closed: never a query without a server-side limit
        # The first row may cost this process at most MAX_ROW_BYTES from here on.
        conn.rivergen_read_budget = MAX_ROW_BYTES  # type: ignore[attr-defined]  # our subclass
        # Session read-only matters: DDL commits implicitly and would escape the transaction.
        setup.execute("START TRANSACTION" if kind == "tidb" else "START TRANSACTION READ ONLY")
        setup.close()
        # Unbuffered: fetch one row; closing the session then discards the rest.
        cursor = conn.cursor(pymysql.cursors.SSCursor)
        cursor.execute(sql)
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row, kind


MYSQL_SPEC = EngineSpec(
    key="mysql",
    label="MySQL",
    help="MySQL; the test query runs in a read-only session and transaction.",
    aliases=(),
    connection_model=MySQLConnection,
    connector=MySQLConnector(),
    driver_module="pymysql",
    default_port=3306,
    secret_fields=frozenset({"password"}),
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1",
)
MARIADB_SPEC = EngineSpec(
    key="mariadb",
    label="MariaDB",
    help="MariaDB; the test query runs in a read-only session and transaction.",
    aliases=(),
    connection_model=MySQLConnection,
    connector=MYSQL_SPEC.connector,
    driver_module="pymysql",
    default_port=3306,
    secret_fields=frozenset({"password"}),
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1",
)


class TiDBConnection(MySQLConnection):
    """Connection settings of a TiDB cluster (MySQL protocol, SQL port 4000)."""

    port: Port = 4000


TIDB_SPEC = EngineSpec(
    key="tidb",
    label="TiDB",
    help="TiDB over the MySQL protocol (port 4000); reads only, by statement type.",
    aliases=(),
    connection_model=TiDBConnection,
    connector=MySQLConnector(always_guarded=True),
    driver_module="pymysql",
    default_port=4000,
    secret_fields=frozenset({"password"}),
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1",
)
SPECS = (MYSQL_SPEC, MARIADB_SPEC, TIDB_SPEC)
