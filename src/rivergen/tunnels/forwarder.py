"""A loopback listener that carries each accepted connection over its own SSH channel.

asyncssh's `forward_local_port` opens a channel only when a client connects, so a refused
forward shows up as a database driver error. Opening the first channel up front reports it
as a tunnel error instead; handing that same channel to the first client means the database
never sees a connection opened and dropped unused (MySQL counts those towards
`max_connect_errors` and eventually blocks the bastion's address).

The local end serves the probe and no one else: any local process (or another tenant's test
aimed at 127.0.0.1) could otherwise ride the tunnel into the private network. A connection is
carried only when its peer is a socket of this very process, and after as many connections as
the engine opens in one test (`EngineSpec.tunnel_clients`, usually one) the listener closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol

import asyncssh
import psutil

_CHUNK = 64 * 1024
_CLOSE_GRACE_SECONDS = 1.0
# The first channel is handed over only while fresh: a server may drop an idle pre-auth
# connection (MySQL's connect_timeout can be as low as 2 s), and a stale channel would fail
# the client's first connection. A client normally connects within milliseconds.
_SPARE_MAX_AGE_SECONDS = 1.0

Channel = tuple["asyncssh.SSHReader[bytes]", "asyncssh.SSHWriter[bytes]"]


class _Reader(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class _Writer(Protocol):
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def can_write_eof(self) -> bool: ...
    def write_eof(self) -> None: ...
    def close(self) -> None: ...


async def _pipe(reader: _Reader, writer: _Writer) -> None:
    """Copy one direction until EOF, then pass the EOF on (half-close, as TCP does)."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncssh.Error):
        # The peer went away; closing this side ends the other direction too.
        writer.close()


def _peer_is_this_process(writer: asyncio.StreamWriter) -> bool:
    """Whether the accepted connection's other end is a socket owned by this process."""
    peer = writer.get_extra_info("peername")
    local = writer.get_extra_info("sockname")
    if not peer or not local:
        return False
    try:
        # /proc/self lists only this process's sockets: the client end of a driver's
        # connection to us has laddr == peer and raddr == our listening address.
        connections = psutil.Process().net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return False
    return any(
        c.laddr
        and c.raddr
        and tuple(c.laddr[:2]) == tuple(peer[:2])
        and tuple(c.raddr[:2]) == tuple(local[:2])
        for c in connections
    )


class LocalForwarder:
    """Listens on a loopback port and pipes every connection to `dest` through `conn`."""

    def __init__(
        self,
        conn: asyncssh.SSHClientConnection,
        dest_host: str,
        dest_port: int,
        first_channel: Channel | None = None,
        max_clients: int = 1,
    ) -> None:
        self._conn = conn
        self._dest = (dest_host, dest_port)
        self._spare = first_channel
        self._spare_opened_at = time.monotonic()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[_Writer] = set()
        self._closed = False
        self._clients_left = max_clients
        self.refused_clients = 0
        self.last_error: BaseException | None = None

    async def start(self, host: str) -> int:
        """Start listening on `host` at a free port and return the port."""
        self._server = await asyncio.start_server(self._serve, host, 0, backlog=16)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closed or task is None or self._clients_left <= 0:
            writer.close()
            return
        if not _peer_is_this_process(writer):
            self.refused_clients += 1
            writer.close()
            return
        self._clients_left -= 1
        if self._clients_left == 0 and self._server is not None:
            self._server.close()  # stops accepting; the connection being served goes on
        self._tasks.add(task)
        self._writers.add(writer)
        channel: Channel | None = None
        try:
            channel, self._spare = self._spare, None
            if (
                channel is not None
                and time.monotonic() - self._spare_opened_at > _SPARE_MAX_AGE_SECONDS
            ):
                channel[1].close()
                channel = None
            if channel is None:
                channel = await self._conn.open_connection(*self._dest)
            if self._closed:
                return
            self._writers.add(channel[1])
            await asyncio.gather(_pipe(reader, channel[1]), _pipe(channel[0], writer))
        except (OSError, asyncssh.Error) as exc:
            # Keep the cause for diagnostics; the client sees its connection closed.
            self.last_error = exc
        finally:
            writer.close()
            self._writers.discard(writer)
            if channel is not None:
                channel[1].close()
                self._writers.discard(channel[1])
            self._tasks.discard(task)

    def close(self) -> None:
        """Stop listening and close every piped connection and the unused first channel."""
        self._closed = True
        if self._server is not None:
            self._server.close()
        if self._spare is not None:
            self._spare[1].close()
            self._spare = None
        # Closing both ends lets every pipe see EOF and its handler return on its own:
        # cancelling a stream handler makes Python 3.11's asyncio log a spurious error.
        for writer in list(self._writers):
            writer.close()

    async def wait_closed(self) -> None:
        """Wait (boundedly) for the handlers to finish; cancel any that do not."""
        # asyncio.wait, unlike gather, leaves the handlers alone if this wait is cancelled.
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=_CLOSE_GRACE_SECONDS)
            for task in pending:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_GRACE_SECONDS):
                    await self._server.wait_closed()
