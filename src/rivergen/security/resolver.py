"""Host-name resolution within a test's deadline, its failures classified by resolver code."""

from __future__ import annotations

import asyncio
import socket

from rivergen.core.bounded import BoundedExecutor, Saturated
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

__all__ = ["getaddrinfo_within"]

# getaddrinfo failures meaning "this name does not exist / has no address". EAI_AGAIN (the
# resolver got no definite answer) is reported as HOST_NOT_FOUND too, not TIMEOUT: the user's
# remedy is the same (check the name and the server's DNS), and TIMEOUT is kept for a target that
# does not answer within the test's deadline.
_NOT_FOUND_CODES = frozenset(
    code
    for code in (
        getattr(socket, "EAI_NONAME", None),
        getattr(socket, "EAI_NODATA", None),
        getattr(socket, "EAI_ADDRFAMILY", None),
        getattr(socket, "EAI_FAIL", None),
    )
    if code is not None
)
_TRY_AGAIN_CODES = frozenset(c for c in (getattr(socket, "EAI_AGAIN", None),) if c is not None)


async def getaddrinfo_within(
    name: str, port: int, deadline: Deadline, executor: BoundedExecutor | None = None
) -> list[tuple[str, socket.AddressFamily]]:
    """Resolve to distinct (address, family) pairs in the resolver's order, within the deadline."""
    loop = asyncio.get_running_loop()
    if deadline.expired():
        raise ProbeFailure(
            ErrorCode.TIMEOUT, Phase.DNS, f"No time was left to resolve the host name {name}"
        )
    try:
        # The resolver thread cannot be interrupted; on timeout it finishes on its own within
        # the system resolver's limits (resolv.conf timeout x attempts), holding one executor
        # thread until then.
        async with asyncio.timeout(deadline.remaining()):
            if executor is None:
                infos = await loop.getaddrinfo(
                    name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            else:
                # The service's own bounded pool: lookups that never end cannot take the
                # threads sign-ins and key loading use, nor pile up without bound.
                infos = await executor.run(
                    socket.getaddrinfo, name, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP
                )
    except Saturated:
        raise ProbeFailure(
            ErrorCode.TIMEOUT,
            Phase.DNS,
            f"The host name {name} was not looked up: every DNS lookup slot of this service is "
            "taken by lookups that have not finished (a DNS server that does not answer?); "
            "try again later",
        ) from None
    except TimeoutError:
        raise ProbeFailure(
            ErrorCode.TIMEOUT,
            Phase.DNS,
            f"Resolving the host name {name} did not finish within the time limit",
        ) from None
    except socket.gaierror as exc:
        raise _classify_gaierror(exc, name) from None
    except (UnicodeError, ValueError):
        # IDNA encoding failures and embedded NUL characters.
        raise ProbeFailure(
            ErrorCode.CONFIGURATION_ERROR, Phase.DNS, f"{name!r} is not a valid host name"
        ) from None
    except OSError as exc:
        raise ProbeFailure(
            ErrorCode.HOST_NOT_FOUND,
            Phase.DNS,
            f"The host name {name} could not be resolved (system error {exc.errno})",
        ) from None
    addresses: list[tuple[str, socket.AddressFamily]] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        address = sockaddr[0]
        if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, str):
            continue
        if all(address != seen for seen, _ in addresses):
            addresses.append((address, family))
    return addresses


def _classify_gaierror(exc: socket.gaierror, name: str) -> ProbeFailure:
    """Map a getaddrinfo error code (never its text) to a failure."""
    code = exc.errno
    if code in _TRY_AGAIN_CODES:
        return ProbeFailure(
            ErrorCode.HOST_NOT_FOUND,
            Phase.DNS,
            f"The host name {name} could not be resolved: the DNS server gave no definite "
            "answer (temporary failure)",
        )
    if code in _NOT_FOUND_CODES:
        return ProbeFailure(
            ErrorCode.HOST_NOT_FOUND, Phase.DNS, f"The host name {name} could not be resolved"
        )
    return ProbeFailure(
        ErrorCode.HOST_NOT_FOUND,
        Phase.DNS,
        f"The host name {name} could not be resolved (resolver error {code})",
    )
