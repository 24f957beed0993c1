"""The host policy: every rule on addresses, and resolution through the real system resolver."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from rivergen.security.host_policy import (
    _METADATA_ADDRESSES,
    HostPolicy,
    embedded_ipv4,
)
from rivergen.security.resolver import _classify_gaierror


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


OPEN = HostPolicy(allow_private=True)
CLOSED = HostPolicy(allow_private=False)
EVERYTHING_LISTED = HostPolicy(
    allow_private=False, allowed_networks=["0.0.0.0/0", "::/0"], allowed_hosts=["*"]
)

NEVER_ALLOWED = [
    "169.254.169.254",
    "169.254.170.2",
    "169.254.0.1",
    "169.254.255.255",
    "fe80::1",
    "fe80::1%lo",
    "febf::1",
    "::ffff:169.254.169.254",
    "::ffff:0:a9fe:a9fe",  # IPv4-translated
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
    "64:ff9b:1:a9fe:a9:fe00::",  # local-use NAT64, /48 layout (RFC 6052)
    "64:ff9b:1:a9:fe:a9fe::",  # local-use NAT64, /56 layout
    "64:ff9b:1:0:a9:fea9:fe00:0",  # local-use NAT64, /64 layout
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "::a9fe:a9fe",  # IPv4-compatible
    "100.100.100.200",
    "::ffff:100.100.100.200",
    "168.63.129.16",
    "fd00:ec2::254",
    "fd20:ce::254",
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "::ffff:0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "255.255.255.255",
    "240.0.0.1",
    "::ffff:255.255.255.255",
    "not-an-ip",
    "",
]

PRIVATE = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "fc00::1",
    "fd12:3456::1",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "192.0.2.10",  # documentation: not public either
]

LOOPBACK = ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "64:ff9b:1::808:808",  # local-use NAT64, /96 layout
    "64:ff9b:1:0:8:808:800:0",  # local-use NAT64, /64 layout
]


def refused(policy: HostPolicy, ip: str) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        policy.check_address(ip)
    failure = info.value
    assert failure.code is ErrorCode.HOST_NOT_ALLOWED
    assert failure.phase is Phase.POLICY
    return failure


@pytest.mark.parametrize("ip", NEVER_ALLOWED)
@pytest.mark.parametrize(
    "policy", [OPEN, CLOSED, EVERYTHING_LISTED], ids=["open", "closed", "listed"]
)
def test_never_allowed(policy: HostPolicy, ip: str) -> None:
    refused(policy, ip)


def test_metadata_message_says_why() -> None:
    failure = refused(OPEN, "169.254.169.254")
    assert failure.message == (
        "The address 169.254.169.254 is a cloud metadata address, which is never allowed"
    )
    assert "link-local" in refused(OPEN, "fe80::1").message


@pytest.mark.parametrize("ip", PRIVATE)
def test_private_follows_setting(ip: str) -> None:
    OPEN.check_address(ip)
    assert "private" in refused(CLOSED, ip).message


@pytest.mark.parametrize("ip", LOOPBACK)
def test_loopback_follows_setting(ip: str) -> None:
    OPEN.check_address(ip)
    assert "loopback" in refused(CLOSED, ip).message
    HostPolicy(allow_private=False, allow_loopback=True).check_address(ip)
    refused(HostPolicy(allow_private=True, allow_loopback=False), ip)


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_always_allowed(ip: str) -> None:
    CLOSED.check_address(ip)
    OPEN.check_address(ip)


def test_allowed_networks_lift_private_and_loopback_only() -> None:
    policy = HostPolicy(
        allow_private=False,
        allowed_networks=[ipaddress.ip_network("10.1.0.0/16"), "127.0.0.1/32", "169.254.0.0/16"],
    )
    policy.check_address("10.1.2.3")
    policy.check_address("::ffff:10.1.2.3")
    policy.check_address("127.0.0.1")
    refused(policy, "10.2.0.1")
    refused(policy, "127.0.0.2")
    refused(policy, "169.254.169.254")
    refused(policy, "169.254.1.1")


def test_allowed_hosts() -> None:
    policy = HostPolicy(allow_private=False, allowed_hosts=["DB.internal.", "*.corp.example"])
    policy.check_address("10.0.0.1", host="db.internal")
    policy.check_address("10.0.0.1", host="a.b.corp.example")
    with pytest.raises(ProbeFailure, match=r"The host other\.internal resolves to 10\.0\.0\.1"):
        policy.check_address("10.0.0.1", host="other.internal")
    with pytest.raises(ProbeFailure, match="metadata"):
        policy.check_address("169.254.169.254", host="db.internal")


def test_any_refused_address_refuses_the_host() -> None:
    policy = HostPolicy(allow_private=False)
    policy.check_resolved("db.example", ["8.8.8.8", "2001:4860:4860::8888"])
    with pytest.raises(ProbeFailure, match=r"resolves to 10\.0\.0\.1") as info:
        policy.check_resolved("db.example", ["8.8.8.8", "10.0.0.1"])
    assert info.value.code is ErrorCode.HOST_NOT_ALLOWED
    with pytest.raises(ProbeFailure, match="metadata"):
        OPEN.check_resolved("db.example", ["8.8.8.8", "169.254.169.254"])


@pytest.mark.parametrize(
    ("ip", "inner"),
    [
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("64:ff9b::102:304", "1.2.3.4"),
        ("2002:102:304::", "1.2.3.4"),
        ("::102:304", "1.2.3.4"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo client
        ("::1", None),
        ("::", None),
        ("2001:4860:4860::8888", None),
        ("1.2.3.4", None),
    ],
)
def test_embedded_ipv4(ip: str, inner: str | None) -> None:
    found = embedded_ipv4(ipaddress.ip_address(ip))
    assert (str(found) if found else None) == inner


policies = st.builds(
    HostPolicy,
    allow_private=st.booleans(),
    allow_loopback=st.none() | st.booleans(),
    allowed_networks=st.sampled_from(
        [[], ["169.254.0.0/16"], ["0.0.0.0/0", "::/0"], ["169.254.169.254/32", "fe80::/10"]]
    ),
    allowed_hosts=st.sampled_from([[], ["metadata.internal"]]),
)
link_local_v4 = st.integers(0, 2**16 - 1).map(
    lambda n: ipaddress.IPv4Address(int(ipaddress.IPv4Address("169.254.0.0")) + n)
)


@given(policies, link_local_v4, st.sampled_from(["plain", "mapped", "nat64", "6to4"]))
def test_link_local_v4_refused_whatever_the_settings(
    policy: HostPolicy, ip: ipaddress.IPv4Address, form: str
) -> None:
    text = {
        "plain": str(ip),
        "mapped": f"::ffff:{ip}",
        "nat64": str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) + int(ip))),
        "6to4": str(ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80) | 1)),
    }[form]
    with pytest.raises(ProbeFailure) as info:
        policy.check_address(text, host="metadata.internal")
    assert info.value.code is ErrorCode.HOST_NOT_ALLOWED


@given(policies, st.integers(0, 2**118 - 1))
def test_link_local_v6_refused_whatever_the_settings(policy: HostPolicy, low: int) -> None:
    ip = ipaddress.IPv6Address(int(ipaddress.IPv6Address("fe80::")) + low)
    assert not policy.is_allowed(str(ip))


@given(st.ip_addresses(v=4))
def test_closed_policy_allows_only_global_ipv4(ip: ipaddress.IPv4Address) -> None:
    # Only globally routable unicast passes a policy with private networks refused.
    expected = ip.is_global and not ip.is_multicast and ip not in _METADATA_ADDRESSES
    assert CLOSED.is_allowed(str(ip)) == expected
    assert CLOSED.is_allowed(str(ip)) == CLOSED.is_allowed(f"::ffff:{ip}")


# Resolution, through the machine's own resolver.


@pytest.mark.anyio
async def test_literal_ip_skips_dns() -> None:
    resolved = await OPEN.resolve_and_check("127.0.0.1", 5432, Deadline.after(5))
    assert resolved.address == "127.0.0.1"
    assert resolved.family == socket.AF_INET
    assert resolved.all_addresses == ("127.0.0.1",)
    assert resolved.dns_ms == 0.0
    resolved = await OPEN.resolve_and_check("[::1]", 5432, Deadline.after(5))
    assert (resolved.address, resolved.family) == ("::1", socket.AF_INET6)


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "169.254.169.254", "[fe80::1]"])
async def test_literal_ip_refused(host: str) -> None:
    policy = CLOSED if host in ("127.0.0.1", "::1") else OPEN
    with pytest.raises(ProbeFailure) as info:
        await policy.resolve_and_check(host, 5432, Deadline.after(5))
    assert (info.value.code, info.value.phase) == (ErrorCode.HOST_NOT_ALLOWED, Phase.POLICY)


@pytest.mark.anyio
async def test_localhost_resolves_to_loopback() -> None:
    resolved = await OPEN.resolve_and_check("localhost", 5432, Deadline.after(5))
    assert ipaddress.ip_address(resolved.address).is_loopback
    assert resolved.address in resolved.all_addresses
    assert resolved.family in (socket.AF_INET, socket.AF_INET6)
    assert resolved.dns_ms >= 0


@pytest.mark.anyio
async def test_localhost_refused_when_private_disallowed() -> None:
    with pytest.raises(ProbeFailure) as info:
        await CLOSED.resolve_and_check("localhost", 5432, Deadline.after(5))
    assert (info.value.code, info.value.phase) == (ErrorCode.HOST_NOT_ALLOWED, Phase.POLICY)
    assert info.value.message.startswith("The host localhost resolves to ")
    assert "loopback" in info.value.message


@pytest.mark.anyio
async def test_allow_listed_host_passes() -> None:
    policy = HostPolicy(allow_private=False, allowed_hosts=["localhost"])
    resolved = await policy.resolve_and_check("localhost", 5432, Deadline.after(5))
    assert ipaddress.ip_address(resolved.address).is_loopback


@pytest.mark.anyio
async def test_numeric_forms_are_judged_after_resolution() -> None:
    # "127.1" is no literal for ipaddress but the resolver reads it as 127.0.0.1.
    with pytest.raises(ProbeFailure, match=r"The host 127\.1 resolves to 127\.0\.0\.1"):
        await CLOSED.resolve_and_check("127.1", 5432, Deadline.after(5))


@pytest.mark.anyio
async def test_unknown_host() -> None:
    with pytest.raises(ProbeFailure) as info:
        await OPEN.resolve_and_check("no-such-host.invalid", 5432, Deadline.after(10))
    assert (info.value.code, info.value.phase) == (ErrorCode.HOST_NOT_FOUND, Phase.DNS)
    assert info.value.message.startswith("The host name no-such-host.invalid could not be resolved")


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["", "  ", "a..b", "bad\x00host"])
async def test_invalid_host_names(host: str) -> None:
    with pytest.raises(ProbeFailure) as info:
        await OPEN.resolve_and_check(host, 5432, Deadline.after(5))
    assert (info.value.code, info.value.phase) == (ErrorCode.CONFIGURATION_ERROR, Phase.DNS)


@pytest.mark.anyio
async def test_expired_deadline_is_a_dns_timeout() -> None:
    with pytest.raises(ProbeFailure) as info:
        await OPEN.resolve_and_check("localhost", 5432, Deadline.after(0))
    assert (info.value.code, info.value.phase) == (ErrorCode.TIMEOUT, Phase.DNS)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (socket.EAI_NONAME, ErrorCode.HOST_NOT_FOUND),
        (socket.EAI_NODATA, ErrorCode.HOST_NOT_FOUND),
        (socket.EAI_AGAIN, ErrorCode.HOST_NOT_FOUND),
        (socket.EAI_FAIL, ErrorCode.HOST_NOT_FOUND),
    ],
)
def test_gaierror_classified_by_code_not_text(code: int, expected: ErrorCode) -> None:
    failure = _classify_gaierror(socket.gaierror(code, "some unrelated wording"), "db.example")
    assert (failure.code, failure.phase) == (expected, Phase.DNS)
    assert "unrelated" not in failure.message
    assert "db.example" in failure.message
