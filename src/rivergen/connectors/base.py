"""The one small protocol every engine module implements, and the spec that registers it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from rivergen.core.deadline import Deadline
from rivergen.core.outcome import Security

__all__ = [
    "ConnectionTarget",
    "Connector",
    "ConnectorResult",
    "EngineSpec",
    "OptionValue",
    "Security",
]

OptionValue = str | int | float | bool


@dataclass(frozen=True)
class ConnectionTarget:
    """Plain connection parameters for one test, secrets already decrypted.

    `host` is the name the user configured (kept for TLS verification); `address` is the
    IP address the host policy checked, and the one the connector must connect to, so that a
    second DNS answer cannot send the connection elsewhere. When a tunnel is in use, `address`
    and `port` are the local end of the forward.
    """

    host: str | None = None
    address: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_mode: str | None = None
    # PEM text of the CAs a verifying ssl_mode trusts instead of the system ones. Public, but
    # up to 64 KiB: kept out of repr like the password.
    ssl_root_cert: str | None = field(default=None, repr=False)
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    path: str | None = None
    # The engine's other secret fields (a JWT, a private key, a service-account key), decrypted.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def connect_host(self) -> str | None:
        """Where to open the socket: the checked address when known, else the host."""
        return self.address or self.host


@dataclass
class ConnectorResult:
    """What a successful probe learned.

    `test_query_result` is at most `MAX_RESULT_CHARS` characters (`_support.first_cell`);
    `test_query_result_truncated` says that the first cell was longer.
    """

    database_version: str | None
    test_query_result: str | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    test_query_result_truncated: bool = False
    security: Security = field(default_factory=Security)


class Connector(Protocol):
    """Connects with native timeouts bounded by `deadline`, runs `query` read-only.

    Blocking: called in a worker thread. Raises `rivergen.core.outcome.ProbeFailure` with a
    classified code, phase and a one-line message free of secrets on any failure.
    """

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        ...


@dataclass(frozen=True)
class EngineSpec:
    """Everything the service knows about one engine; one module defines one of these."""

    key: str
    label: str
    aliases: tuple[str, ...]
    connection_model: type[BaseModel]
    connector: Connector
    driver_module: str
    default_port: int | None = None
    secret_fields: frozenset[str] = frozenset({"password"})
    file_based: bool = False
    allowed_options: Mapping[str, type] = field(default_factory=dict)
    default_query: str = "SELECT 1"
    # One sentence for GET /data-source-types: what the engine connects to and how it tests.
    help: str = ""
    # For engines that find their server through DNS records first (mongodb+srv): the host
    # and port to check and connect to instead of the configured ones, or None to keep them.
    locate: Callable[[BaseModel, Deadline], Awaitable[tuple[str, int] | None]] | None = None
    # How many TCP connections one test may open to the server: behind an SSH tunnel the local
    # end of the forward accepts that many (from this process only), then stops listening.
    tunnel_clients: int = 1
