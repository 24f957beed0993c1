"""What the SSH tunnel tests share: tunnel configs for the test sshd, driver calls through a
tunnel, an echo destination, and the checks of what a tunnel left behind."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import pymysql
import pytest

from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ProbeFailure
from rivergen.tunnels import SshTunnelConfig, open_tunnel
from tests.fixtures.sshd import SshServer

T = TypeVar("T")
PG = ("127.0.0.1", 5432)
MARIADB = ("127.0.0.1", 3306)


def listening(address: tuple[str, int]) -> bool:
    """Whether something accepts TCP connections at `address`."""
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return False
    return True


def key_config(sshd: SshServer, key: str, **overrides: Any) -> SshTunnelConfig:
    """A private-key tunnel config for the test user with one of the fixture's keys."""
    client_key = sshd.keys[key]
    fields: dict[str, Any] = {
        "host": "bastion.test",
        "port": sshd.port,
        "username": sshd.username,
        "auth_method": "private_key",
        "private_key": client_key.private_key,
        "private_key_passphrase": client_key.passphrase,
    }
    fields.update(overrides)
    return SshTunnelConfig(**fields)


def password_config(sshd: SshServer, password: str, **overrides: Any) -> SshTunnelConfig:
    """A password tunnel config for the test user."""
    fields: dict[str, Any] = {
        "host": "bastion.test",
        "port": sshd.port,
        "username": sshd.username,
        "auth_method": "password",
        "password": password,
    }
    fields.update(overrides)
    return SshTunnelConfig(**fields)


async def in_own_thread(func: Callable[[], T]) -> T:
    """Run a blocking driver call in a thread joined afterwards, so no pool thread lingers."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = func()
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    thread = threading.Thread(target=run, name="driver-call", daemon=True)
    thread.start()
    try:
        return await future
    finally:
        thread.join(timeout=10)


def pg_select_one(host: str, port: int) -> Any:
    """SELECT 1 on the local PostgreSQL (trust auth) through host:port."""
    with psycopg.connect(
        host=host,
        port=port,
        user="postgres",
        dbname="postgres",
        connect_timeout=5,
        sslmode="disable",
    ) as conn:
        row = conn.execute("SELECT 1").fetchone()
    return row[0] if row else None


def mariadb_select_one(host: str, port: int) -> Any:
    """SELECT 1 on the local MariaDB (root, no password) through host:port."""
    conn = pymysql.connect(
        host=host,
        port=port,
        user="root",
        password="",
        connect_timeout=5,
        read_timeout=5,
        write_timeout=5,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            row = cursor.fetchone()
    finally:
        conn.close()
    return row[0] if row else None


AUTH_WORDS = re.compile(r"Accepted|Failed|Postponed|password|publickey|authenticating", re.I)


def connection_log(sshd: SshServer, offset: int) -> list[str]:
    """The sshd log lines of the one connection made after `offset`, once it has ended."""
    opened = sshd.wait_for_log(offset, rf"Connection from \S+ port \d+ on \S+ port {sshd.port}\b")
    match = re.search(rf"Connection from \S+ port (\d+) on \S+ port {sshd.port}\b", opened)
    assert match, opened
    own = re.compile(rf"port {match.group(1)}\b")
    text = sshd.wait_for_log(offset, rf"(Disconnected from|Connection closed by) .*{own.pattern}")
    return [line.strip() for line in text.splitlines() if own.search(line)]


def assert_closed(port: int) -> None:
    """Nothing accepts connections on the tunnel's local port any more."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def failure_of(
    config: SshTunnelConfig,
    address: str = "127.0.0.1",
    dest: tuple[str, int] = PG,
    seconds: float = 10.0,
) -> ProbeFailure:
    """The ProbeFailure raised while opening the tunnel."""
    with pytest.raises(ProbeFailure) as caught:
        async with open_tunnel(config, address, dest[0], dest[1], Deadline.after(seconds)):
            pytest.fail("the tunnel should not have opened")
    return caught.value


class EchoServer:
    """An in-process TCP echo server that counts the connections it receives."""

    def __init__(self) -> None:
        self.accepted = 0
        self.finished = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Echo until EOF, then close."""
        self.accepted += 1
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            self.finished += 1


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for `condition` to hold, polling the event loop."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def echo_round_trip(port: int, payload: bytes) -> bytes:
    """Send `payload` through the local port, half-close, and read the echo until EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
