"""What an SSH tunnel leaves behind: a connection still in use closed at teardown, a silent
bastion given up at the deadline, a tunnel torn down when its block raises or is cancelled, and
no listener, SSH connection or thread left over by any tunnel test (tests/tunnels/test_tunnel.py
takes the baseline that the last test here checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase
from rivergen.tunnels import TunnelInfo, open_tunnel
from tests.fixtures.required import unavailable
from tests.fixtures.sshd import SshServer
from tests.tunnels.helpers import (
    PG,
    EchoServer,
    assert_closed,
    failure_of,
    key_config,
    listening,
    until,
)
from tests.tunnels.procnet import own_tcp_sockets

# The baseline is taken before this module's first test when it runs on its own.
pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("tunnel_baseline")]


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio, the loop the service uses."""
    return "asyncio"


@pytest.fixture(scope="module", autouse=True)
def postgres() -> tuple[str, int]:
    """The machine's PostgreSQL (trust auth), the default destination of every tunnel here."""
    # Skip, or fail under CI, when it is not running.
    if not listening(PG):
        unavailable("PostgreSQL is not running on 127.0.0.1:5432")
    return PG


async def test_teardown_closes_a_connection_still_in_use(sshd: SshServer) -> None:
    echo = EchoServer()
    server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    dest = ("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        config = key_config(sshd, "ed25519")
        async with open_tunnel(config, sshd.host, *dest, Deadline.after(10)) as info:
            reader, writer = await asyncio.open_connection("127.0.0.1", info.local_port)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            started = time.monotonic()
        # Teardown did not need its grace period: the piped connection was closed, not waited on.
        assert time.monotonic() - started < 0.9
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        await until(lambda: echo.finished == 1)
        assert_closed(info.local_port)
    finally:
        server.close()
        await server.wait_closed()


async def test_silent_bastion_times_out_within_the_deadline(
    sshd: SshServer, silent_bastion: tuple[str, int]
) -> None:
    host, port = silent_bastion
    started = time.monotonic()
    failure = await failure_of(key_config(sshd, "ed25519", port=port), address=host, seconds=2)
    elapsed = time.monotonic() - started
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.SSH)
    assert 1.5 <= elapsed < 3.0
    assert not [s for s in own_tcp_sockets() if s.remote[1] == port]


async def test_torn_down_when_the_block_raises(sshd: SshServer) -> None:
    port = 0

    async def use_then_fail() -> None:
        nonlocal port
        config = key_config(sshd, "ed25519")
        async with open_tunnel(config, sshd.host, *PG, Deadline.after(10)) as info:
            port = info.local_port
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await use_then_fail()
    assert port
    assert_closed(port)


async def test_torn_down_when_cancelled_inside_the_block(sshd: SshServer) -> None:
    opened: asyncio.Future[TunnelInfo] = asyncio.get_running_loop().create_future()

    async def hold_open() -> None:
        async with open_tunnel(
            key_config(sshd, "ed25519"), sshd.host, *PG, Deadline.after(10)
        ) as info:
            opened.set_result(info)
            await asyncio.sleep(60)

    task = asyncio.create_task(hold_open())
    info = await asyncio.wait_for(opened, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_closed(info.local_port)
    assert not [s for s in own_tcp_sockets() if s.remote == (sshd.host, sshd.port)]


async def test_cancelled_during_setup_leaves_nothing(
    sshd: SshServer, silent_bastion: tuple[str, int]
) -> None:
    host, port = silent_bastion

    async def open_it() -> None:
        config = key_config(sshd, "ed25519", port=port)
        async with open_tunnel(config, host, *PG, Deadline.after(30)):
            pytest.fail("the silent bastion never completes a handshake")

    task = asyncio.create_task(open_it())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [s for s in own_tcp_sockets() if s.remote[1] == port]


async def test_nothing_left_behind(
    sshd: SshServer, tunnel_baseline: tuple[set[tuple[str, int]], set[threading.Thread]]
) -> None:
    """Runs last of the tunnel tests: no listener, SSH connection or thread outlives the tests."""
    listening, threads = tunnel_baseline
    await asyncio.sleep(0.1)
    # "No new" rather than "equal": other modules' idle threads or sockets may go meanwhile.
    assert {s.local for s in own_tcp_sockets() if s.listening} <= listening
    assert not [s for s in own_tcp_sockets() if s.remote[1] == sshd.port]
    assert [t.name for t in threading.enumerate() if t not in threads] == []
