"""Trino (and Starburst) through the `trino` client over HTTP(S).

Every request goes to the checked address: a requests adapter keeps the configured name for
TLS (SNI and certificate checks) and the Host header while the TCP connection goes to the
address the host policy accepted. Timeouts: `request_timeout` from the deadline on each HTTP
request, one attempt (no retries), and the session property `query_max_run_time` so the
coordinator stops the query itself.

First bytes: `GET /v1/info` (fixed, no user name, no credentials, no SQL) must answer with
Trino's node information (it also gives the version); only then does the query go out with
the user name. A password (HTTP basic) or a JWT (bearer) is the credential itself, so either
is sent only over verified TLS (`ssl_mode` `verify-ca` or `verify-full`).

Read-only by statement type: SELECT, WITH, SHOW, DESCRIBE, EXPLAIN (not EXPLAIN ANALYZE, which
runs the statement), VALUES, TABLE.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from rivergen.connectors._support import (
    Clock,
    NetworkConnection,
    Port,
    ShortText,
    clean_query,
    driver_required,
    endpoint,
    first_cell,
    open_tcp,
    refuse_unless_read,
    resolve_address,
)
from rivergen.connectors._trust import RootCertificates, root_cert_file
from rivergen.connectors.base import ConnectionTarget, ConnectorResult, EngineSpec
from rivergen.connectors.trino_errors import failure_of, info_failure
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security

TrinoSslMode = Literal["disable", "require", "verify-ca", "verify-full"]
ALLOWED_OPTIONS: dict[str, type] = {"catalog": str, "schema": str, "source": str}
READ_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "EXPLAIN", "VALUES", "TABLE"})
_EXPLAIN_ANALYZE = re.compile(r"(?is)^\W*explain\s*(\([^)]*\))?\s*analyze\b")
_MAX_INFO_BYTES = 64 * 1024


class TrinoConnection(NetworkConnection):
    """Connection settings of a Trino coordinator."""

    allowed_options = ALLOWED_OPTIONS

    port: Port = 8080
    username: ShortText = "rivergen"
    jwt: str | None = Field(
        default=None,
        repr=False,
        description="A JWT sent as a bearer token (instead of a password)",
        json_schema_extra={"format": "password", "writeOnly": True},
    )
    ssl_mode: TrinoSslMode = "disable"
    ssl_root_cert: RootCertificates = None


def _adapter(requests: Any, host: str, check_name: bool) -> Any:
    """A requests adapter whose pools speak TLS to `host` (SNI, and the certificate's name when
    `check_name`) whatever address they reach."""

    class _PinnedName(requests.adapters.HTTPAdapter):  # type: ignore[misc]
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["server_hostname"] = host
            kwargs["assert_hostname"] = host if check_name else False
            super().init_poolmanager(*args, **kwargs)

    return _PinnedName(max_retries=0)


class TrinoConnector:
    """Tests a Trino coordinator: /v1/info, then one read-only statement as the user."""

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        with driver_required("trino"):
            import requests
            import trino
        sql = clean_query(query, SPEC.default_query)
        refuse_unless_read(sql, READ_KEYWORDS)
        if _EXPLAIN_ANALYZE.match(sql):
            raise ProbeFailure(
                ErrorCode.QUERY_ERROR, Phase.QUERY, "EXPLAIN ANALYZE runs the statement"
            )
        mode = target.ssl_mode or "disable"
        jwt = target.secrets.get("jwt") if target.secrets else None
        if (target.password or jwt) and mode not in ("verify-ca", "verify-full"):
            raise ProbeFailure(
                ErrorCode.SSL_ERROR,
                Phase.AUTH,
                "A password or JWT is the credential itself: it is sent only over verified "
                "TLS (ssl_mode verify-ca or verify-full)",
            )
        clock = Clock()
        address, port = resolve_address(target, deadline)
        if target.address is None:
            clock.lap(Phase.DNS)
        open_tcp(address, port, deadline).close()  # errno-classified at once, timed
        clock.lap(Phase.TCP)
        host = target.host or address
        scheme = "http" if mode == "disable" else "https"
        security = Security(
            tls=mode != "disable",
            tls_verified=mode in ("verify-ca", "verify-full"),
            auth_method="jwt" if jwt else ("password" if target.password else "none"),
        )
        secrets = [target.password, jwt]
        with root_cert_file(target.ssl_root_cert) as ca_file, requests.Session() as session:
            session.mount("https://", _adapter(requests, host, mode == "verify-full"))
            session.mount("http://", requests.adapters.HTTPAdapter(max_retries=0))
            session.verify = (ca_file or True) if mode in ("verify-ca", "verify-full") else False
            session.headers["Host"] = endpoint(host, port)
            base = f"{scheme}://{endpoint(address, port)}"
            version = self._info(session, base, deadline, secrets, security)
            clock.lap(Phase.AUTH)
            where = (address, port, scheme)
            row = self._run(trino, session, target, where, sql, jwt, deadline, security)
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
    def _info(
        session: Any, base: str, deadline: Deadline, secrets: list[str | None], security: Security
    ) -> str:
        """`Trino 435` from GET /v1/info, or the failure saying the peer is not Trino."""
        try:
            budget = max(0.001, deadline.remaining())
            with session.get(f"{base}/v1/info", timeout=budget, stream=True) as response:
                body = response.raw.read(_MAX_INFO_BYTES, decode_content=True)
                status = response.status_code
        except Exception as exc:
            raise info_failure(exc, deadline, secrets, security) from None
        try:
            import json

            info = json.loads(body)
            version = info["nodeVersion"]["version"]
        except (ValueError, KeyError, TypeError):
            info, version = None, None
        if status != 200 or not isinstance(version, str):
            raise ProbeFailure(
                ErrorCode.CONNECTION_ERROR,
                Phase.AUTH,
                "The server did not answer like a Trino coordinator",
                security=security,
            )
        return f"Trino {version}"

    @staticmethod
    def _run(
        trino: Any,
        session: Any,
        target: ConnectionTarget,
        where: tuple[str, int, str],
        sql: str,
        jwt: str | None,
        deadline: Deadline,
        security: Security,
    ) -> tuple[Any, ...] | None:
        """The statement as the user, with the coordinator's own time limit; one row."""
        auth: Any = None
        if jwt:
            auth = trino.auth.JWTAuthentication(jwt)
        elif target.password:
            auth = trino.auth.BasicAuthentication(target.username or "", target.password)
        options = {k: v for k, v in target.options.items() if k in ALLOWED_OPTIONS}
        seconds = max(1, int(deadline.remaining()))
        secrets = [target.password, jwt]
        address, port, scheme = where
        try:
            conn = trino.dbapi.connect(
                host=address, port=port, user=target.username or "rivergen",
                http_scheme=scheme, auth=auth, http_session=session, max_attempts=1,
                request_timeout=max(0.001, deadline.remaining()),
                catalog=options.get("catalog"), schema=options.get("schema"),
                source=str(options.get("source", "rivergen")),
                session_properties={"query_max_run_time": f"{seconds}s"},
            )  # fmt: skip
            try:
                cursor = conn.cursor()
                cursor.execute(sql)
                row = cursor.fetchone()
                return tuple(row) if row is not None else None
            finally:
                conn.close()
        except Exception as exc:
            raise failure_of(exc, deadline, secrets, security) from None


SPEC = EngineSpec(
    tunnel_clients=2,  # /v1/info, then the statement (a server may close the kept-alive one)
    key="trino",
    label="Trino",
    help=(
        "A Trino (or Starburst) coordinator over HTTP(S); a password or JWT needs "
        "ssl_mode verify-ca or verify-full."
    ),
    aliases=("starburst",),
    connection_model=TrinoConnection,
    connector=TrinoConnector(),
    driver_module="trino",
    default_port=8080,
    secret_fields=frozenset({"password", "jwt"}),
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1",
)
