"""Which network addresses a connection test may reach, judged after DNS resolution.

The policy is applied to the addresses a host name resolves to, never to the name, and the caller
connects to the address returned by `resolve_and_check`, so a name that resolves differently the
second time (DNS rebinding) cannot slip past it.

Rules, in order:

1. Always refused, whatever the settings and allow-lists: cloud metadata endpoints, the whole
   link-local ranges (169.254.0.0/16, fe80::/10: metadata services live there), unspecified
   addresses (0.0.0.0/8, ::), multicast, and reserved/broadcast space (240.0.0.0/4).
2. This machine's own endpoints that the service itself depends on (`reserved_endpoints`: the
   metadata store and the broker, as address and port) are refused whatever the settings; when
   such an endpoint is on this machine, every address of this machine at its port is refused.
3. Loopback (127.0.0.0/8, ::1) and the machine's own addresses (`local_addresses`): refused
   unless `allow_loopback` (which follows `allow_private` when not given), or the address is in
   `allowed_networks`, or the host is in `allowed_hosts`. Services on the machine often trust
   local clients, so a member must not reach them through a test.
4. Private and other non-public space (RFC 1918, 100.64.0.0/10 CGNAT, fc00::/7, documentation and
   benchmarking ranges...): refused unless `allow_private`, or allow-listed as above.
5. Everything else (public unicast) is allowed.

IPv6 addresses that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-translated,
IPv4-compatible, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16, Teredo) are judged by the
embedded IPv4 address, since that is where the packets end up.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rivergen.core.bounded import BoundedExecutor
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from rivergen.security.resolver import getaddrinfo_within

__all__ = ["HostPolicy", "IPAddress", "IPNetwork", "ResolvedHost", "embedded_ipv4"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_net = ipaddress.ip_network
_addr = ipaddress.ip_address

# Cloud instance metadata and platform endpoints. Most sit in link-local space (refused anyway);
# the ones outside it must be listed one by one.
_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    _addr(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle...
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS pod identity agent
        "100.100.100.200",  # Alibaba Cloud (inside CGNAT space)
        "168.63.129.16",  # Azure WireServer (a public address)
        "192.0.0.192",  # Oracle Cloud Classic metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity agent over IPv6
        "fd20:ce::254",  # GCP metadata over IPv6
    )
)

_LINK_LOCAL = (_net("169.254.0.0/16"), _net("fe80::/10"))
_UNSPECIFIED = (_net("0.0.0.0/8"), _net("::/128"))
_MULTICAST = (_net("224.0.0.0/4"), _net("ff00::/8"))
_RESERVED = (_net("240.0.0.0/4"),)  # includes 255.255.255.255, the limited broadcast
_LOOPBACK = (_net("127.0.0.0/8"), _net("::1/128"))
_PRIVATE = (
    _net("10.0.0.0/8"),
    _net("172.16.0.0/12"),
    _net("192.168.0.0/16"),
    _net("100.64.0.0/10"),  # carrier-grade NAT
    _net("fc00::/7"),  # unique local
    _net("fec0::/10"),  # deprecated site-local, still routed inside some networks
)

_ALWAYS_REFUSED = (
    ("link-local", _LINK_LOCAL),
    ("unspecified", _UNSPECIFIED),
    ("multicast", _MULTICAST),
    ("reserved", _RESERVED),
)
_NEVER = {
    "metadata": "a cloud metadata address, which is never allowed",
    "link-local": "a link-local address, which is never allowed",
    "unspecified": "an unspecified address, which is never allowed",
    "multicast": "a multicast address, which is never allowed",
    "reserved": "a reserved or broadcast address, which is never allowed",
}

_IPV4_MAPPED = _net("::ffff:0:0/96")
_IPV4_TRANSLATED = _net("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = _net("::/96")
_NAT64 = _net("64:ff9b::/96")
_NAT64_LOCAL = _net("64:ff9b:1::/48")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, ...), if any."""
    candidates = _embedded_candidates(ip)
    return candidates[-1] if candidates else None


def _bits(value: int, start: int, end: int) -> int:
    """Bits [start, end) of a 128-bit value, counted from the most significant."""
    return (value >> (128 - end)) & ((1 << (end - start)) - 1)


def _local_nat64_readings(value: int) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a local-use NAT64 address (64:ff9b:1::/48) may carry.

    RFC 8215 lets the operator pick the prefix length inside the /48, and RFC 6052 places the
    IPv4 address differently for each (around the zero u-octet, bits 64-71, with a zero suffix).
    The address cannot say which was meant, so every reading its bits allow is returned and
    judged: this fails closed, refusing some /48 and /56 layouts whose /96 reading is 0.0.0.0.
    """
    readings: list[ipaddress.IPv4Address] = []
    if _bits(value, 64, 72) == 0:
        layouts = (  # (high part, low part, start of the zero suffix)
            ((48, 64), (72, 88), 88),
            ((56, 64), (72, 96), 96),
            ((64, 64), (72, 104), 104),
        )
        for (h0, h1), (l0, l1), suffix in layouts:
            if _bits(value, suffix, 128) == 0:
                v4 = _bits(value, h0, h1) << (l1 - l0) | _bits(value, l0, l1)
                readings.append(ipaddress.IPv4Address(v4))
    readings.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))  # the /96 reading, always possible
    return readings


def _embedded_candidates(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address `ip` may stand for; the last is the usual reading."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    value = int(ip)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip in _IPV4_MAPPED or ip in _IPV4_TRANSLATED or ip in _NAT64:
        return [low32]
    if ip in _NAT64_LOCAL:
        return _local_nat64_readings(value)
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return [ip.teredo[1]]  # the client's address, where the traffic is relayed to
    # IPv4-compatible (::a.b.c.d, deprecated); :: and ::1 are judged as themselves.
    if ip in _IPV4_COMPATIBLE and value > 1:
        return [low32]
    return []


def _in_any(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in networks)


def _parse_ip(text: str) -> IPAddress | None:
    """Parse an address literal, accepting `[v6]` brackets and a `%zone` suffix."""
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        ip = _addr(candidate)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        # The zone only picks an interface; judge the address itself.
        ip = ipaddress.IPv6Address(candidate.split("%", 1)[0])
    return ip


@dataclass(frozen=True)
class ResolvedHost:
    """The address a test connects to, after the policy accepted every address of the host."""

    address: str
    family: socket.AddressFamily
    all_addresses: tuple[str, ...]
    dns_ms: float
    host: str = ""
    port: int = 0


@dataclass
class HostPolicy:
    """Decides which resolved addresses a connection test may reach."""

    allow_private: bool = True
    allow_loopback: bool | None = None
    allowed_networks: Sequence[IPNetwork | str] = field(default_factory=list)
    allowed_hosts: Sequence[str] = field(default_factory=list)
    local_addresses: Sequence[str] = field(default_factory=list)
    reserved_endpoints: Sequence[tuple[str, int]] = field(default_factory=list)
    # The bounded pool for host-name lookups (None: the loop's default executor).
    resolver: BoundedExecutor | None = None

    def __post_init__(self) -> None:
        self._networks: tuple[IPNetwork, ...] = tuple(
            n
            if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network)
            else _net(n, strict=False)
            for n in self.allowed_networks
        )
        self._hosts = frozenset(_normalize_host(h) for h in self.allowed_hosts if h.strip())
        self._local: frozenset[IPAddress] = frozenset(
            ip for ip in (_parse_ip(a) for a in self.local_addresses) if ip is not None
        )
        reserved = {(ip, port) for ip, port in _parsed_endpoints(self.reserved_endpoints)}
        self._reserved = frozenset(reserved)
        # An endpoint on this machine is reachable through any of its addresses (a server bound
        # to 0.0.0.0 answers on 127.0.0.2 and on the machine's public address alike).
        self._reserved_local_ports = frozenset(
            port for ip, port in reserved if self._is_on_this_machine(ip)
        )

    def _is_on_this_machine(self, ip: IPAddress) -> bool:
        return _in_any(ip, _LOOPBACK) or ip in self._local

    def reserved_reason(self, ip: IPAddress, port: int) -> str | None:
        """Why (ip, port) is one of the service's own endpoints (store, broker), or None."""
        for judged in (ip, *_embedded_candidates(ip)):
            if (judged, port) in self._reserved or (
                port in self._reserved_local_ports and self._is_on_this_machine(judged)
            ):
                return (
                    "an endpoint of this service's own metadata store or broker, which is never "
                    "allowed"
                )
        return None

    @property
    def loopback_allowed(self) -> bool:
        """Whether loopback addresses are allowed (follows allow_private unless set)."""
        return self.allow_private if self.allow_loopback is None else self.allow_loopback

    def host_is_allow_listed(self, host: str) -> bool:
        """Whether `host` is in allowed_hosts (exactly, or under a `*.domain` entry)."""
        name = _normalize_host(host)
        if name in self._hosts:
            return True
        return any(h.startswith("*.") and name.endswith(h[1:]) for h in self._hosts)

    def refusal_reason(self, ip: str | IPAddress, *, host_allowed: bool = False) -> str | None:
        """Return why `ip` is refused (a phrase such as "a link-local address"), or None."""
        parsed = ip if not isinstance(ip, str) else _parse_ip(ip)
        if parsed is None:
            return "not a valid IP address"
        if parsed in _METADATA_ADDRESSES:
            return _NEVER["metadata"]
        listed = host_allowed or _in_any(parsed, self._networks)
        # Judge the IPv4 address(es) an IPv6 address carries instead of the IPv6 address itself:
        # that is where the packets end up. Any refused reading refuses the address.
        readings: list[IPAddress] = [*_embedded_candidates(parsed)] or [parsed]
        for judged in readings:
            reason = self._judge(judged, listed or _in_any(judged, self._networks))
            if reason is not None:
                return reason
        return None

    def _judge(self, ip: IPAddress, allow_listed: bool) -> str | None:
        if ip in _METADATA_ADDRESSES:
            return _NEVER["metadata"]
        for kind, networks in _ALWAYS_REFUSED:
            if _in_any(ip, networks):
                return _NEVER[kind]
        if self._is_on_this_machine(ip):
            if not (self.loopback_allowed or allow_listed):
                kind = "a loopback address" if _in_any(ip, _LOOPBACK) else "an address"
                return (
                    f"{kind} of this service's own machine, and targets on it are not allowed "
                    "on this server (RIVERGEN_ALLOW_LOOPBACK)"
                )
            if _in_any(ip, _LOOPBACK):
                return None
        if _in_any(ip, _PRIVATE) or not ip.is_global:
            if self.allow_private or allow_listed:
                return None
            return "a private network address, and private networks are not allowed on this server"
        return None

    def check_address(self, ip: str, *, host: str | None = None, port: int | None = None) -> None:
        """Raise ProbeFailure(HOST_NOT_ALLOWED) when the policy refuses `ip` (at `port`)."""
        host_allowed = host is not None and self.host_is_allow_listed(host)
        reason = self.refusal_reason(ip, host_allowed=host_allowed)
        parsed = _parse_ip(ip)
        if reason is None and port is not None and parsed is not None:
            reason = self.reserved_reason(parsed, port)
        if reason is None:
            return
        if host is not None and _parse_ip(host) is None:
            message = f"The host {host} resolves to {ip}, {reason}"
        else:
            message = f"The address {ip} is {reason}"
        raise ProbeFailure(ErrorCode.HOST_NOT_ALLOWED, Phase.POLICY, message)

    def check_resolved(self, host: str, addresses: Sequence[str], port: int | None = None) -> None:
        """Raise ProbeFailure(HOST_NOT_ALLOWED) when ANY of the host's addresses is refused."""
        # One refused address refuses the host: the driver (or a retry) could otherwise end up
        # on it, and whoever controls the DNS zone chooses which addresses a name returns.
        for address in addresses:
            self.check_address(address, host=host, port=port)

    def is_allowed(self, ip: str) -> bool:
        """Whether the policy accepts `ip` on its own (no host allow-list)."""
        return self.refusal_reason(ip) is None

    async def resolve_and_check(self, host: str, port: int, deadline: Deadline) -> ResolvedHost:
        """Resolve `host` within the deadline, refuse it if any address is refused, pick one."""
        name = host.strip()
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        if not name:
            raise ProbeFailure(ErrorCode.CONFIGURATION_ERROR, Phase.DNS, "The host name is empty")
        if len(name) > 253 or any(ord(c) < 33 or ord(c) == 127 for c in name):
            # Whitespace and control characters never belong in a host name, and a NUL would
            # end it early in the C resolver.
            raise ProbeFailure(
                ErrorCode.CONFIGURATION_ERROR, Phase.DNS, f"{name!r} is not a valid host name"
            )
        literal = _parse_ip(name)
        if literal is not None:
            self.check_address(str(literal), host=name, port=port)
            family = socket.AF_INET if literal.version == 4 else socket.AF_INET6
            return ResolvedHost(str(literal), family, (str(literal),), 0.0, host=name, port=port)

        started = time.monotonic()
        addresses = await getaddrinfo_within(name, port, deadline, self.resolver)
        dns_ms = (time.monotonic() - started) * 1000.0

        if not addresses:
            raise ProbeFailure(
                ErrorCode.HOST_NOT_FOUND, Phase.DNS, f"The host name {name} has no IP address"
            )
        self.check_resolved(name, [a for a, _ in addresses], port)
        # getaddrinfo already sorted them by RFC 6724 preference; connect to the first.
        first, first_family = addresses[0]
        return ResolvedHost(
            address=first,
            family=first_family,
            all_addresses=tuple(a for a, _ in addresses),
            dns_ms=dns_ms,
            host=name,
            port=port,
        )


def _parsed_endpoints(
    endpoints: Iterable[tuple[str, int]],
) -> Iterable[tuple[IPAddress, int]]:
    for address, port in endpoints:
        ip = _parse_ip(address)
        if ip is not None:
            yield ip, port


def _normalize_host(host: str) -> str:
    return host.strip().rstrip(".").lower()
