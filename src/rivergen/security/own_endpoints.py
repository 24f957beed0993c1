"""What the host policy must know about the service's own machine and its own dependencies.

The machine's addresses (every interface, not only loopback) are judged like loopback: a
service bound to the machine's LAN address trusts local clients just as much. The metadata
store's and the broker's endpoints are never a target: a member could otherwise probe, time or
brute-force the service's own database through a connection test.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import psutil
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from rivergen.settings import Settings

__all__ = ["machine_addresses", "service_endpoints"]

log = structlog.get_logger(__name__)

_BROKER_PORTS = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671}


def machine_addresses() -> list[str]:
    """Every IPv4 and IPv6 address configured on this machine's interfaces."""
    found: list[str] = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                found.append(entry.address.split("%", 1)[0])
    return found


def service_endpoints(settings: Settings) -> list[tuple[str, int]]:
    """The resolved (address, port) of the metadata store and the broker (TCP only)."""
    named: list[tuple[str, int]] = []
    store = _store_endpoint(settings.effective_database_url)
    if store is not None:
        named.append(store)
    broker = _broker_endpoint(settings.broker_url)
    if broker is not None:
        named.append(broker)
    endpoints: list[tuple[str, int]] = []
    for host, port in named:
        endpoints.extend((address, port) for address in _resolve(host, port))
    return endpoints


def _store_endpoint(url: str) -> tuple[str, int] | None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if not parsed.drivername.startswith("postgresql"):
        return None  # SQLite: a file, no network endpoint
    host = parsed.host or _first(parsed.query.get("host"))
    if not host or host.startswith("/"):
        return None  # a Unix-domain socket is not reachable as a TCP target
    return host, parsed.port or 5432


def _broker_endpoint(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    default = _BROKER_PORTS.get(parts.scheme)
    if default is None or not parts.hostname:
        return None  # e.g. redis+socket://: no TCP endpoint
    try:
        port = parts.port or default
    except ValueError:
        return None
    return parts.hostname, port


def _first(value: str | tuple[str, ...] | None) -> str | None:
    if isinstance(value, tuple):
        return value[0] if value else None
    return value


def _resolve(host: str, port: int) -> list[str]:
    # Blocking, but only once at start-up, before any request is served.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        log.warning("service_endpoint_unresolved", host=host, port=port, error=type(exc).__name__)
        return []
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})
