"""This process's TCP sockets, read from /proc (Linux), to prove a tunnel left nothing open."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"


@dataclass(frozen=True)
class OwnSocket:
    """One TCP socket held by a file descriptor of this process."""

    local: tuple[str, int]
    remote: tuple[str, int]
    state: str

    @property
    def listening(self) -> bool:
        """Whether the socket is in the LISTEN state."""
        return self.state == _LISTEN


def _own_socket_inodes() -> set[str]:
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # the descriptor closed while listing
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(text: str, family: socket.AddressFamily) -> tuple[str, int]:
    host_hex, port_hex = text.split(":")
    raw = bytes.fromhex(host_hex)
    # /proc prints the address as native-endian 32-bit words.
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw), int(port_hex, 16)


def own_tcp_sockets() -> list[OwnSocket]:
    """TCP sockets (IPv4 and IPv6) whose inode is held by one of this process's descriptors."""
    inodes = _own_socket_inodes()
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                found.append(
                    OwnSocket(
                        local=_address(fields[1], family),
                        remote=_address(fields[2], family),
                        state=fields[3],
                    )
                )
    return found
