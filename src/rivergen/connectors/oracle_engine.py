"""Oracle Database through python-oracledb in thin mode (pure Python, no Instant Client).

Deadline: measured here, no synchronous setting of the thin driver (tcp_connect_timeout,
expire_time, retry_count, CONNECT_TIMEOUT in the descriptor) stopped a listener that accepts and
stays silent within 30 s; `connect_async` under `asyncio.timeout` stopped at the deadline. So
the whole test runs as one coroutine (in the probe's worker thread) under the deadline, with
`call_timeout` on every round trip as well.

First bytes: Oracle Net's CONNECT packet carries the connect descriptor, with the service name
or SID the user typed. So a first connection asks for a fixed service name
(`RIVERGEN_PROTOCOL_CHECK`): only a listener answering it with a refusal (ORA-12514 /
ORA-12505) or an acceptance has proved it speaks Oracle Net, and only then does the real
connection go out. The descriptor's client fields (program, machine, OS user) are fixed to
`rivergen` so the service's own host and account names are never sent. The password goes only
through O5LOGON's challenge-response.

The query runs after `SET TRANSACTION READ ONLY`, and the session is closed (rolled back).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from pydantic import model_validator

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
from rivergen.connectors.oracle_errors import failure_of, proves_listener
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security

OracleSslMode = Literal["disable", "require", "verify-ca"]
ALLOWED_OPTIONS: dict[str, type] = {"sid": str}
READ_KEYWORDS = frozenset({"SELECT", "WITH"})
CHECK_SERVICE = "RIVERGEN_PROTOCOL_CHECK"
_CLIENT_FIELDS = {"program": "rivergen", "machine": "rivergen", "osuser": "rivergen"}


def _transport(target: ConnectionTarget) -> dict[str, Any]:
    """oracledb's TLS arguments for the ssl mode: plain TCP, or TCPS with our context."""
    mode = target.ssl_mode or "disable"
    if mode == "disable":
        return {"protocol": "tcp"}
    # Neither mode checks the host name (the shared contexts already leave it off).
    context = client_context(mode, target.ssl_root_cert)
    return {"protocol": "tcps", "ssl_context": context, "ssl_server_dn_match": False}


class OracleConnection(NetworkConnection):
    """Connection settings of an Oracle database: a service name (`database`) or a SID."""

    allowed_options = ALLOWED_OPTIONS

    port: Port = 1521
    database: ShortText | None = None
    username: ShortText
    # TCPS. verify-ca checks the chain, not the name: the connection goes to the checked
    # address, and the thin driver matches names against the address it connects to.
    ssl_mode: OracleSslMode = "disable"
    ssl_root_cert: RootCertificates = None

    @model_validator(mode="after")
    def _service_or_sid(self) -> OracleConnection:
        if not self.database and not self.options.get("sid"):
            raise ValueError("set database (the service name) or options.sid")
        return self


def _version(conn: Any) -> str:
    """`Oracle Database 19.3.0.0.0` from the version the server sent at login."""
    version = str(getattr(conn, "version", "") or "")
    return f"Oracle Database {version}".strip()


class OracleConnector(KeywordGuarded):
    """Tests an Oracle database: prove the listener, log in, run one read-only query."""

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        with driver_required("oracledb"):
            import oracledb
        sql = clean_query(query, SPEC.default_query)
        # PL/SQL blocks (BEGIN/DECLARE/CALL) are never a read; the guard stays on.
        refuse_unless_read(sql, READ_KEYWORDS)
        if re.search(r"(?i)\bfor\s+update\b", sql):
            raise ProbeFailure(
                ErrorCode.QUERY_ERROR, Phase.QUERY, "FOR UPDATE cannot be used in a test query"
            )
        clock = Clock()
        address, port = resolve_address(target, deadline)
        if target.address is None:
            clock.lap(Phase.DNS)
        open_tcp(address, port, deadline).close()  # errno-classified at once, timed
        clock.lap(Phase.TCP)
        mode = target.ssl_mode or "disable"
        security = Security(
            tls=mode != "disable", tls_verified=mode == "verify-ca", auth_method="O5LOGON"
        )
        return asyncio.run(
            self._probe(oracledb, target, address, port, sql, deadline, clock, security)
        )

    async def _probe(
        self,
        oracledb: Any,
        target: ConnectionTarget,
        address: str,
        port: int,
        sql: str,
        deadline: Deadline,
        clock: Clock,
        security: Security,
    ) -> ConnectorResult:
        secrets = [target.password]
        phase = Phase.AUTH
        try:
            async with asyncio.timeout(max(0.001, deadline.remaining())):
                await self._check_listener(oracledb, target, address, port, deadline, security)
                conn = await self._connect(oracledb, target, address, port, deadline)
                clock.lap(Phase.AUTH)
                phase = Phase.QUERY
                try:
                    conn.call_timeout = max(1, int(deadline.remaining() * 1000))
                    version = _version(conn)
                    cursor = conn.cursor()
                    await cursor.execute("SET TRANSACTION READ ONLY")
                    cursor.arraysize = 1
                    cursor.prefetchrows = 1
                    await cursor.execute(sql)
                    row = await cursor.fetchone()
                finally:
                    await conn.close()
        except TimeoutError:
            failure = silent_server(deadline) if phase is Phase.AUTH else query_timeout(deadline)
            failure.security = security
            raise failure from None
        except oracledb.Error as exc:
            raise failure_of(exc, phase, deadline, secrets, security) from None
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
    async def _check_listener(
        oracledb: Any,
        target: ConnectionTarget,
        address: str,
        port: int,
        deadline: Deadline,
        security: Security,
    ) -> None:
        """Ask for a fixed service: a refusal in Oracle Net's terms proves the listener."""
        try:
            conn = await oracledb.connect_async(
                user="rivergen", password="x", host=address, port=port,
                service_name=CHECK_SERVICE, tcp_connect_timeout=deadline.remaining(),
                retry_count=0, **_CLIENT_FIELDS, **_transport(target),
            )  # fmt: skip
        except oracledb.Error as exc:
            if proves_listener(exc):
                return
            raise ProbeFailure(
                ErrorCode.CONNECTION_ERROR,
                Phase.AUTH,
                "The server did not answer like an Oracle listener",
                security=security,
            ) from None
        await conn.close()  # a database that accepts anyone for that service: still Oracle

    @staticmethod
    async def _connect(
        oracledb: Any, target: ConnectionTarget, address: str, port: int, deadline: Deadline
    ) -> Any:
        sid = target.options.get("sid")
        where: dict[str, Any] = (
            {"sid": str(sid)} if sid and not target.database else {"service_name": target.database}
        )
        return await oracledb.connect_async(
            user=target.username, password=target.password or "", host=address, port=port,
            tcp_connect_timeout=max(0.001, deadline.remaining()), retry_count=0,
            **where, **_CLIENT_FIELDS, **_transport(target),
        )  # fmt: skip


SPEC = EngineSpec(
    key="oracle",
    label="Oracle Database",
    help=(
        "Oracle Database (thin driver, no Instant Client); database is the service name, "
        "or set options.sid."
    ),
    aliases=("oracledb",),
    connection_model=OracleConnection,
    connector=OracleConnector(),
    driver_module="oracledb",
    default_port=1521,
    secret_fields=frozenset({"password"}),
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1 FROM DUAL",
)
