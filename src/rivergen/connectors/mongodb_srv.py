"""`mongodb+srv`: the member a test connects to, from the DNS SRV records of the configured name.

Runs in the probing layer before the host policy, which then checks (and pins) the address of
the member found, exactly as for a host typed in. As the MongoDB SRV specification requires,
a record pointing outside the configured name's parent domain is refused: otherwise whoever
controls a DNS zone could point a test at any host. TXT options are not read; authSource and
replicaSet are options of the data source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

if TYPE_CHECKING:
    import dns.asyncresolver
    from pydantic import BaseModel


def _same_domain(target: str, host: str) -> bool:
    """Whether `target` lies under `host`'s parent domain (under `host` itself if it has fewer
    than three labels), as the SRV specification says."""
    labels = host.lower().rstrip(".").split(".")
    parent = labels if len(labels) < 3 else labels[1:]
    suffix = "." + ".".join(parent)
    return target.lower().rstrip(".").endswith(suffix)


async def locate_srv(
    host: str, deadline: Deadline, resolver: dns.asyncresolver.Resolver | None = None
) -> tuple[str, int]:
    """The preferred member (lowest priority, then highest weight) of `_mongodb._tcp.<host>`."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = resolver or dns.asyncresolver.Resolver()
    name = f"_mongodb._tcp.{host.strip().rstrip('.')}"
    try:
        answer = await resolver.resolve(name, "SRV", lifetime=max(0.01, deadline.remaining()))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        raise ProbeFailure(
            ErrorCode.HOST_NOT_FOUND, Phase.DNS, f"No SRV record {name} was found"
        ) from None
    except dns.exception.Timeout:
        raise ProbeFailure(
            ErrorCode.TIMEOUT, Phase.DNS, f"Looking up the SRV record {name} timed out"
        ) from None
    except dns.exception.DNSException as exc:
        raise ProbeFailure(ErrorCode.HOST_NOT_FOUND, Phase.DNS, f"{name}: {exc}") from None
    records = sorted(answer, key=lambda r: (r.priority, -r.weight))
    for record in records:
        target = record.target.to_text(omit_final_dot=True)
        if _same_domain(target, host):
            return target, int(record.port)
    raise ProbeFailure(
        ErrorCode.HOST_NOT_ALLOWED,
        Phase.POLICY,
        f"The SRV records of {host} point outside its domain; they are not followed",
    )


async def locate(connection: BaseModel, deadline: Deadline) -> tuple[str, int] | None:
    """The member to test when the connection asks for SRV lookup; None otherwise."""
    if not getattr(connection, "srv", False):
        return None
    return await locate_srv(str(getattr(connection, "host", "")), deadline)
