"""Microsoft SQL Server through pymssql (FreeTDS, shipped inside the wheel).

pymssql rather than Microsoft's mssql-python: its wheels carry FreeTDS for Linux, macOS and
Windows, so nothing else (an ODBC driver manager, msodbcsql) has to be installed, and it is
the driver measured on this machine. FreeTDS honours `login_timeout` only with a pinned TDS
version: in auto mode it retries other versions and a silent listener took about
2 x login_timeout + 5 s here, so TDS 7.4 (SQL Server 2012 and later) is pinned. Its timeouts
are whole seconds: the login timeout is the deadline rounded down (at least 1 s), so a test
never outlasts its deadline by more than that rounding.

SQL Server has no read-only transaction: the test query runs inside a transaction that is
always rolled back, with `SET LOCK_TIMEOUT` and a statement timeout from the deadline, after
the keyword guard (always on: only SELECT and WITH) and a scan refusing functions that reach
other servers or files (OPENROWSET, OPENDATASOURCE, OPENQUERY).

First bytes: TDS 7.4 opens with PRELOGIN (fixed fields: version, encryption, the default
instance name, thread id) and FreeTDS waits for the server's PRELOGIN answer before LOGIN7,
which carries the user name, the password (obfuscated, not encrypted) and the database. With
`ssl_mode` `disable` or `prefer` the login may go in clear: the security report says so.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from rivergen.connectors._denied import refuse_denied_mssql
from rivergen.connectors._support import (
    Clock,
    KeywordGuarded,
    NetworkConnection,
    Port,
    ShortText,
    clean_query,
    driver_required,
    first_cell,
    open_tcp,
    resolve_address,
)
from rivergen.connectors.base import ConnectionTarget, ConnectorResult, EngineSpec
from rivergen.connectors.mssql_errors import failure_of
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security

MssqlSslMode = Literal["disable", "prefer", "require"]
ALLOWED_OPTIONS: dict[str, type] = {"appname": str, "read_only_intent": bool}
READ_KEYWORDS = frozenset({"SELECT", "WITH"})
_ENCRYPTION = {"disable": "off", "prefer": "request", "require": "require"}
_VERSION = re.compile(
    r"^(Microsoft SQL Server|Microsoft SQL Azure|Azure SQL Edge)\s*(\d{4})?.*?-\s*([\d.]+)"
)


class MssqlConnection(NetworkConnection):
    """Connection settings of a SQL Server (or Azure SQL) database."""

    allowed_options = ALLOWED_OPTIONS

    port: Port = 1433
    database: ShortText | None = "master"
    username: ShortText
    ssl_mode: MssqlSslMode = "prefer"


def describe_version(text: str) -> str:
    """`Microsoft SQL Server 2022 16.0.1000.6` from @@VERSION's first line."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    match = _VERSION.match(first)
    if not match:
        return first[:120] or "SQL Server"
    product, year, number = match.groups()
    return " ".join(part for part in (product, year, number) if part)


class MssqlConnector(KeywordGuarded):
    """Tests a SQL Server: log in, read @@VERSION, run one query in a rolled-back transaction."""

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        with driver_required("pymssql"):
            import pymssql
        sql = clean_query(query, SPEC.default_query)
        refuse_denied_mssql(sql)
        # Without a read-only transaction the guard is not optional here.
        refuse_guard(sql)
        clock = Clock()
        address, port = resolve_address(target, deadline)
        if target.address is None:
            clock.lap(Phase.DNS)
        open_tcp(address, port, deadline).close()  # errno-classified at once, timed
        clock.lap(Phase.TCP)
        mode = target.ssl_mode or "prefer"
        security = Security(
            tls=True if mode == "require" else None,
            tls_verified=False,
            auth_method="sql login" if target.username else None,
            cleartext_password=bool(target.password) and mode != "require",
        )
        secrets = [target.password]
        login_seconds = max(1, int(deadline.remaining()))
        options = {k: v for k, v in target.options.items() if k in ALLOWED_OPTIONS}
        try:
            conn = pymssql.connect(
                server=address,
                port=str(port),
                user=target.username or "",
                password=target.password or "",
                database=target.database or "master",
                login_timeout=login_seconds,
                timeout=login_seconds,
                tds_version="7.4",
                appname=str(options.get("appname", "rivergen")),
                encryption=_ENCRYPTION.get(mode, "request"),
                read_only=bool(options.get("read_only_intent", False)),
                autocommit=False,
            )
        except pymssql.Error as exc:
            raise failure_of(exc, Phase.AUTH, deadline, secrets, security) from None
        clock.lap(Phase.AUTH)
        try:
            version, row = self._run(conn, sql, deadline)
        except pymssql.Error as exc:
            raise failure_of(exc, Phase.QUERY, deadline, secrets, security) from None
        finally:
            conn.close()  # ends the session: the open transaction is rolled back
        clock.lap(Phase.QUERY)
        text, truncated = first_cell(row[0] if row else None)
        return ConnectorResult(
            database_version=version,
            test_query_result=text,
            timings_ms=clock.timings,
            test_query_result_truncated=truncated,
            security=security,
        )

    @staticmethod
    def _run(conn: Any, sql: str, deadline: Deadline) -> tuple[str, tuple[Any, ...] | None]:
        """@@VERSION, then the query in a transaction that is rolled back, one row at most."""
        budget_ms = max(1, int(deadline.remaining() * 1000))
        cursor = conn.cursor()
        cursor.execute(f"SET LOCK_TIMEOUT {budget_ms}; SELECT @@VERSION")
        found = cursor.fetchone()
        version = describe_version(str(found[0]) if found else "")
        cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        try:
            cursor.execute(sql)
            row: tuple[Any, ...] | None = cursor.fetchone()
        finally:
            conn.rollback()
        return version, row


def refuse_guard(sql: str) -> None:
    """Only SELECT and WITH: T-SQL has no read-only transaction to fall back on."""
    from rivergen.connectors._support import refuse_unless_read

    refuse_unless_read(sql, READ_KEYWORDS)
    if re.search(r"(?i)\binto\b", sql):
        raise ProbeFailure(
            ErrorCode.QUERY_ERROR, Phase.QUERY, "SELECT ... INTO cannot be used in a test query"
        )


SPEC = EngineSpec(
    key="mssql",
    label="Microsoft SQL Server",
    help=(
        "SQL Server or Azure SQL (TDS 7.4); the test query runs in a transaction that is "
        "always rolled back."
    ),
    aliases=("sqlserver", "azuresql"),
    connection_model=MssqlConnection,
    connector=MssqlConnector(),
    driver_module="pymssql",
    default_port=1433,
    secret_fields=frozenset({"password"}),
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1",
)
