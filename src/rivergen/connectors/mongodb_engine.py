"""MongoDB through pymongo: `ping`, the version from `buildInfo`, one read-only command.

The test "query" is a command written as JSON from an allow-list (`ping`, `buildInfo`,
`hello`, `listCollections`, `find` and `count` limited to one document); anything else, and
server-side JavaScript (`$where`, `$function`, `$accumulator`), is refused before sending.

Deadlines: pymongo connects lazily and, without a socket timeout, waits forever for an
unanswered command, so every timeout (`serverSelectionTimeoutMS`, `connectTimeoutMS`,
`socketTimeoutMS`) and the client-side operation timeout `timeoutMS` come from the deadline,
and reads are not retried (a retry doubles the wait). We first open the TCP connection
ourselves, to classify a refused or unreachable port by errno at once instead of after the
server-selection timeout; pymongo then connects to the same checked address with
`directConnection`. SRV records (`mongodb+srv`) are resolved by `mongodb_srv.locate` before
the host policy, which then checks the member it found; that is where we connect.

First bytes: a client without credentials sends `hello` (driver metadata only) and `ping`; only
once the peer has answered them as a MongoDB server does a second client log in, since
pymongo's own handshake would carry the user name (`saslSupportedMechs`, speculative auth).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from rivergen.connectors._support import (
    Clock,
    NetworkConnection,
    Port,
    ShortText,
    driver_required,
    first_cell,
    open_tcp,
    resolve_address,
    silent_server,
)
from rivergen.connectors._trust import RootCertificates, root_cert_file
from rivergen.connectors.base import ConnectionTarget, ConnectorResult, EngineSpec
from rivergen.connectors.mongodb_errors import failure_of
from rivergen.connectors.mongodb_srv import locate
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security

if TYPE_CHECKING:
    from pymongo import MongoClient

MongoSslMode = Literal["disable", "require", "verify-ca"]

ALLOWED_OPTIONS: dict[str, type] = {
    "appName": str,
    "authMechanism": str,
    "authSource": str,
    "replicaSet": str,
}
_MECHANISMS = frozenset({"SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"})
DEFAULT_COMMAND = '{"ping": 1}'
# Per command, the fields a test may set; the limits below are forced whatever is sent.
COMMANDS: dict[str, frozenset[str]] = {
    "ping": frozenset(),
    "buildInfo": frozenset(),
    "hello": frozenset(),
    "listCollections": frozenset({"filter", "nameOnly", "authorizedCollections"}),
    "find": frozenset({"filter", "projection", "sort", "skip", "hint", "collation"}),
    "count": frozenset({"query", "skip", "hint", "collation"}),
}
_JAVASCRIPT = frozenset({"$where", "$function", "$accumulator"})
_MAX_COMMAND_CHARS = 16_384


class MongoConnection(NetworkConnection):
    """Connection settings of a MongoDB server (or one member of a replica set)."""

    allowed_options = ALLOWED_OPTIONS

    port: Port = 27017
    database: ShortText | None = "admin"
    username: ShortText | None = None
    srv: bool = Field(
        default=False,
        description="Look the members up as mongodb+srv does (DNS SRV records of `host`)",
    )
    ssl_mode: MongoSslMode = "disable"
    ssl_root_cert: RootCertificates = None


def _refuse(message: str) -> ProbeFailure:
    return ProbeFailure(ErrorCode.QUERY_ERROR, Phase.QUERY, message)


def _no_javascript(value: object) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _JAVASCRIPT:
                raise _refuse(f"{key} runs JavaScript on the server and cannot be used")
            _no_javascript(item)
    elif isinstance(value, list):
        for item in value:
            _no_javascript(item)


def parse_command(text: str | None, budget_ms: int) -> tuple[str, dict[str, Any]]:
    """The command's name and document, checked against the allow-list, with limits forced."""
    text = (text or "").strip() or DEFAULT_COMMAND
    if len(text) > _MAX_COMMAND_CHARS:
        raise _refuse("The test command is too long")
    try:
        document = json.loads(text)
    except ValueError:
        raise _refuse('The test query must be a JSON command such as {"ping": 1}') from None
    if not isinstance(document, dict) or not document:
        raise _refuse('The test query must be a JSON object such as {"ping": 1}')
    name = next(iter(document))
    allowed = COMMANDS.get(name)
    if allowed is None:
        known = ", ".join(COMMANDS)
        raise _refuse(f"The command {name!r} is not allowed in a test (allowed: {known})")
    extra = set(document) - {name} - allowed
    if extra:
        raise _refuse(f"Fields not allowed in {name}: {', '.join(sorted(extra))}")
    _no_javascript(document)
    if name in ("find", "count") and not isinstance(document[name], str):
        raise _refuse(f"{name} takes a collection name")
    if name == "find":
        document.update(limit=1, singleBatch=True, batchSize=1, maxTimeMS=budget_ms)
    elif name == "count":
        document.update(limit=1, maxTimeMS=budget_ms)
    elif name == "listCollections":
        document.update(cursor={"batchSize": 1}, maxTimeMS=budget_ms)
    return name, document


def _result_text(name: str, reply: Mapping[str, Any]) -> object:
    """What the test reports: the first document of a cursor, the count, or the reply."""
    from bson import json_util

    if name in ("find", "listCollections"):
        batch = reply.get("cursor", {}).get("firstBatch", [])
        return json_util.dumps(batch[0]) if batch else None
    if name == "count":
        return reply.get("n")
    shown = {k: v for k, v in reply.items() if not k.startswith("$") and k != "operationTime"}
    return json_util.dumps(shown)


class MongoConnector:
    """Tests a MongoDB server: hello and ping, buildInfo, log in, one allowed command."""

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        with driver_required("pymongo"):
            import pymongo  # noqa: F401
        name, command = parse_command(query, max(1, int(deadline.remaining() * 1000)))
        mechanism = str(target.options.get("authMechanism", "SCRAM-SHA-256"))
        if mechanism not in _MECHANISMS:
            raise ProbeFailure(
                ErrorCode.CONFIGURATION_ERROR, Phase.POLICY, f"Unknown authMechanism {mechanism}"
            )
        if mechanism == "PLAIN" and target.username and target.ssl_mode != "verify-ca":
            # PLAIN (LDAP) hands the server the password itself: only to a verified server.
            raise ProbeFailure(
                ErrorCode.SSL_ERROR,
                Phase.AUTH,
                "authMechanism PLAIN sends the password itself; it needs ssl_mode verify-ca",
            )
        clock = Clock()
        address, port = resolve_address(target, deadline)
        if target.address is None:
            clock.lap(Phase.DNS)
        open_tcp(address, port, deadline).close()  # errno-classified, at once
        clock.lap(Phase.TCP)
        mode = target.ssl_mode or "disable"
        secrets = [target.password]
        security = Security(
            tls=mode != "disable",
            tls_verified=mode == "verify-ca",
            auth_method=mechanism if target.username else "none",
        )
        with root_cert_file(target.ssl_root_cert if mode == "verify-ca" else None) as ca_file:
            client = self._client(target, address, port, deadline, mode, ca_file, False)
            try:
                try:
                    client.admin.command("ping")
                    info = client.admin.command("buildInfo")
                except Exception as exc:
                    raise failure_of(exc, Phase.AUTH, deadline, secrets, security) from None
                version = f"MongoDB {info.get('version', '')}".strip()
                if target.username or target.options.get("appName"):
                    # The peer has proved itself: now a client that logs in.
                    client.close()
                    client = self._client(target, address, port, deadline, mode, ca_file, True)
                    try:
                        client.admin.command("ping")
                    except Exception as exc:
                        raise failure_of(exc, Phase.AUTH, deadline, secrets, security) from None
                clock.lap(Phase.AUTH)
                try:
                    reply = client[target.database or "admin"].command(command)
                except Exception as exc:
                    raise failure_of(exc, Phase.QUERY, deadline, secrets, security) from None
            finally:
                client.close()
        clock.lap(Phase.QUERY)
        text, truncated = first_cell(_result_text(name, reply))
        return ConnectorResult(
            database_version=version,
            test_query_result=text,
            timings_ms=clock.timings,
            test_query_result_truncated=truncated,
            security=security,
        )

    @staticmethod
    def _client(
        target: ConnectionTarget,
        address: str,
        port: int,
        deadline: Deadline,
        mode: str,
        ca_file: str | None,
        with_credentials: bool,
    ) -> MongoClient[dict[str, Any]]:
        """A client bounded by the deadline, connected directly to the checked address."""
        from pymongo import MongoClient

        budget_ms = int(deadline.remaining() * 1000)
        if budget_ms <= 0:
            raise silent_server(deadline)
        options: dict[str, Any] = {
            "directConnection": True,
            "serverSelectionTimeoutMS": budget_ms,
            "connectTimeoutMS": budget_ms,
            "socketTimeoutMS": budget_ms,
            "timeoutMS": budget_ms,
            "retryReads": False,
            "retryWrites": False,
            # hello carries appName: the user's own only once the peer has proved itself.
            "appName": str(target.options.get("appName", "rivergen"))
            if with_credentials
            else "rivergen",
            "maxPoolSize": 1,
            "document_class": dict,
        }
        if target.options.get("replicaSet"):
            options["replicaSet"] = str(target.options["replicaSet"])
        if mode != "disable":
            options["tls"] = True
            # verify-ca checks the chain but not the name: the connection goes to the checked
            # address, and pymongo can only verify the name it connects to.
            options["tlsAllowInvalidHostnames"] = True
            options["tlsAllowInvalidCertificates"] = mode == "require"
            if ca_file is not None:
                options["tlsCAFile"] = ca_file
        if with_credentials:
            options.update(
                username=target.username,
                password=target.password or "",
                authSource=str(target.options.get("authSource") or target.database or "admin"),
                authMechanism=str(target.options.get("authMechanism", "SCRAM-SHA-256")),
            )
        return MongoClient(address, port, **options)


SPEC = EngineSpec(
    tunnel_clients=4,  # an anonymous client, then one that logs in: a monitor and a pool each
    key="mongodb",
    label="MongoDB",
    help=(
        "MongoDB; the test query is a JSON command (ping, buildInfo, hello, "
        "listCollections, find, count); srv looks the members up as mongodb+srv does."
    ),
    aliases=("mongo",),
    connection_model=MongoConnection,
    connector=MongoConnector(),
    driver_module="pymongo",
    default_port=27017,
    secret_fields=frozenset({"password"}),
    allowed_options=ALLOWED_OPTIONS,
    default_query=DEFAULT_COMMAND,
    locate=locate,
)
