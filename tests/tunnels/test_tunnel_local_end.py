"""The local end of the SSH forward serves the probe and no one else.

Through a real sshd to an in-process echo server: a second client of this process finds the
listener closed once the engine's connections are used, and a client in another process (any
local user) is refused without a byte reaching the destination, leaving the probe's own slot.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from rivergen.core.deadline import Deadline
from rivergen.tunnels import open_tunnel
from tests.fixtures.sshd import SshServer
from tests.tunnels.helpers import EchoServer, echo_round_trip, key_config, until

pytestmark = pytest.mark.anyio

# Another process connects, sends, and prints what came back (b"" when refused or closed).
OTHER_PROCESS = """
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(b"from another process")
    s.shutdown(socket.SHUT_WR)
    print(repr(s.recv(100)))
except OSError as exc:
    print("refused", type(exc).__name__)
"""


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio, the loop the service uses."""
    return "asyncio"


@pytest.fixture
async def echo() -> AsyncIterator[tuple[EchoServer, tuple[str, int]]]:
    """An echo server counting connections, and its address (the tunnel's destination)."""
    counter = EchoServer()
    server = await asyncio.start_server(counter.handle, "127.0.0.1", 0)
    try:
        yield counter, ("127.0.0.1", server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def other_process_round_trip(port: int) -> str:
    """What a client in another process gets from the local port."""
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", OTHER_PROCESS, str(port)],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return result.stdout.strip()


async def test_a_second_client_cannot_use_the_tunnel(
    sshd: SshServer, echo: tuple[EchoServer, tuple[str, int]]
) -> None:
    counter, dest = echo
    config = key_config(sshd, "ed25519")
    async with open_tunnel(config, sshd.host, *dest, Deadline.after(10)) as info:
        await until(lambda: counter.accepted == 1)  # the channel opened up front
        assert await echo_round_trip(info.local_port, b"probe") == b"probe"
        # The probe's one connection is served: nobody else connects, not even this process.
        with pytest.raises(ConnectionRefusedError):
            await echo_round_trip(info.local_port, b"second")
        assert await other_process_round_trip(info.local_port) == "refused ConnectionRefusedError"
        assert counter.accepted == 1


async def test_a_client_in_another_process_is_refused_and_the_probe_still_gets_through(
    sshd: SshServer, echo: tuple[EchoServer, tuple[str, int]]
) -> None:
    counter, dest = echo
    config = key_config(sshd, "ed25519")
    async with open_tunnel(config, sshd.host, *dest, Deadline.after(10)) as info:
        await until(lambda: counter.accepted == 1)
        # Connected first, the other process is closed without its bytes going anywhere.
        # (closed at once: an empty read, or a reset when its bytes were still unread)
        refused = ("b''", "refused ConnectionResetError")
        assert await other_process_round_trip(info.local_port) in refused
        assert counter.accepted == 1
        # The probe's own connection still gets the (only) slot.
        assert await echo_round_trip(info.local_port, b"probe") == b"probe"
        assert counter.accepted == 1
