"""The SSH tunnel against a real OpenSSH sshd, with real PostgreSQL and MariaDB behind it:
forwarding with each kind of key and login, authentication failures, host-key pinning and
refused forwards. What a tunnel leaves behind when it closes, fails or is cancelled is in
test_tunnel_teardown.py.
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase
from rivergen.tunnels import forwarder, open_tunnel
from tests.fixtures.required import unavailable
from tests.fixtures.sshd import SshServer
from tests.tunnels.helpers import (
    AUTH_WORDS,
    MARIADB,
    PG,
    EchoServer,
    assert_closed,
    connection_log,
    echo_round_trip,
    failure_of,
    in_own_thread,
    key_config,
    listening,
    mariadb_select_one,
    password_config,
    pg_select_one,
    until,
)

pytestmark = pytest.mark.anyio


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


@pytest.fixture(scope="module")
def mariadb() -> tuple[str, int]:
    """The machine's MariaDB (root, no password); skip, or fail under CI, when not running."""
    if not listening(MARIADB):
        unavailable("MariaDB is not running on 127.0.0.1:3306")
    return MARIADB


async def test_baseline_taken(
    tunnel_baseline: tuple[set[tuple[str, int]], set[threading.Thread]],
) -> None:
    """Records the process's sockets and threads before any tunnel (checked by the last test
    of test_tunnel_teardown.py)."""
    assert threading.current_thread() in tunnel_baseline[1]


@pytest.mark.parametrize(
    "key",
    [
        "ed25519",
        "ecdsa",
        "rsa",
        "rsa_pem",
        "ecdsa_pem",
        "rsa_pem_passphrase",
        "ecdsa_pkcs8_passphrase",
    ],
)
async def test_postgres_through_the_tunnel_with_each_key(sshd: SshServer, key: str) -> None:
    async with open_tunnel(key_config(sshd, key), sshd.host, *PG, Deadline.after(10)) as info:
        assert info.local_host == "127.0.0.1"
        assert await in_own_thread(lambda: pg_select_one(info.local_host, info.local_port)) == 1
        assert info.host_key_fingerprint == sshd.host_key_fingerprint
        assert 0 < info.timings_ms["ssh"] < 10_000
    assert_closed(info.local_port)


async def test_mariadb_through_the_tunnel(sshd: SshServer, mariadb: tuple[str, int]) -> None:
    config = key_config(sshd, "ed25519")
    async with open_tunnel(config, sshd.host, *mariadb, Deadline.after(10), 2) as info:
        port = info.local_port
        assert await in_own_thread(lambda: mariadb_select_one("127.0.0.1", port)) == 1
        # The forward serves as many connections as the engine declares (here two).
        assert await in_own_thread(lambda: mariadb_select_one("127.0.0.1", port)) == 1
    assert_closed(port)


async def test_the_destination_sees_one_connection_per_client(sshd: SshServer) -> None:
    echo = EchoServer()
    server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    dest = ("127.0.0.1", server.sockets[0].getsockname()[1])
    payload = os.urandom(512 * 1024)
    try:
        config = key_config(sshd, "ed25519")
        async with open_tunnel(config, sshd.host, *dest, Deadline.after(10), 2) as info:
            # The channel that proved the forward waits for the first client: no extra
            # connection is opened and dropped at the destination.
            await until(lambda: echo.accepted == 1)
            assert await echo_round_trip(info.local_port, payload) == payload
            assert echo.accepted == 1
            assert await echo_round_trip(info.local_port, payload[:1000]) == payload[:1000]
            assert echo.accepted == 2
        async with open_tunnel(config, sshd.host, *dest, Deadline.after(10)):
            await until(lambda: echo.accepted == 3)
        # Unused, the first channel is closed with the tunnel.
        await until(lambda: echo.finished == 3)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_stale_first_channel_is_replaced(
    sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server may have dropped the pre-opened connection by the time a slow client comes.
    monkeypatch.setattr(forwarder, "_SPARE_MAX_AGE_SECONDS", 0.1)
    echo = EchoServer()
    server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    dest = ("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        config = key_config(sshd, "ed25519")
        async with open_tunnel(config, sshd.host, *dest, Deadline.after(10)) as info:
            await asyncio.sleep(0.2)
            assert await echo_round_trip(info.local_port, b"late") == b"late"
            assert echo.accepted == 2
        await until(lambda: echo.finished == 2)
    finally:
        server.close()
        await server.wait_closed()


async def test_encrypted_openssh_key(sshd: SshServer) -> None:
    # OpenSSH-format keys with a passphrase need bcrypt, a declared dependency.
    config = key_config(sshd, "ed25519_passphrase")
    async with open_tunnel(config, sshd.host, *PG, Deadline.after(10)) as info:
        assert await in_own_thread(lambda: pg_select_one("127.0.0.1", info.local_port)) == 1


async def test_password_login(sshd: SshServer) -> None:
    config = password_config(sshd, sshd.require_password())
    async with open_tunnel(config, sshd.host, *PG, Deadline.after(10)) as info:
        assert await in_own_thread(lambda: pg_select_one("127.0.0.1", info.local_port)) == 1


async def test_wrong_password(sshd: SshServer) -> None:
    sshd.require_password()
    wrong = "not-the-password-4711"
    failure = await failure_of(password_config(sshd, wrong))
    assert (failure.code, failure.phase) == (ErrorCode.SSH_AUTHENTICATION_FAILED, Phase.SSH)
    assert "password" in failure.message
    assert wrong not in failure.message


async def test_key_not_authorized(sshd: SshServer) -> None:
    failure = await failure_of(key_config(sshd, "stranger"))
    assert (failure.code, failure.phase) == (ErrorCode.SSH_AUTHENTICATION_FAILED, Phase.SSH)
    assert "private key" in failure.message


@pytest.mark.parametrize("key", ["rsa_pem_passphrase", "ecdsa_pkcs8_passphrase"])
async def test_wrong_passphrase(sshd: SshServer, key: str) -> None:
    failure = await failure_of(key_config(sshd, key, private_key_passphrase="wrong phrase"))
    assert (failure.code, failure.phase) == (ErrorCode.SSH_AUTHENTICATION_FAILED, Phase.SSH)
    assert failure.message == "The private key passphrase is wrong"


async def test_missing_passphrase(sshd: SshServer) -> None:
    failure = await failure_of(key_config(sshd, "rsa_pem_passphrase", private_key_passphrase=None))
    assert failure.code is ErrorCode.CONFIGURATION_ERROR
    assert "passphrase" in failure.message


async def test_closed_ssh_port(sshd: SshServer, closed_ssh_port: tuple[str, int]) -> None:
    host, port = closed_ssh_port
    failure = await failure_of(key_config(sshd, "ed25519", port=port), address=host)
    assert (failure.code, failure.phase) == (ErrorCode.SSH_CONNECTION_ERROR, Phase.SSH)
    assert "refused" in failure.message


@pytest.mark.parametrize("form", ["known_hosts_line", "bare_line", "sha256"])
async def test_pinned_host_key_that_matches(sshd: SshServer, form: str) -> None:
    pin = {
        "known_hosts_line": f"[bastion.test]:{sshd.port} {sshd.host_public_line}",
        "bare_line": f"{sshd.host_public_line} root@bastion",
        "sha256": sshd.host_key_fingerprint,
    }[form]
    config = key_config(sshd, "ed25519", host_key=pin)
    async with open_tunnel(config, sshd.host, *PG, Deadline.after(10)) as info:
        assert info.host_key_fingerprint == sshd.host_key_fingerprint
        assert await in_own_thread(lambda: pg_select_one("127.0.0.1", info.local_port)) == 1


async def test_pinned_rsa_host_key_of_a_bastion_that_prefers_ed25519(sshd: SshServer) -> None:
    config = key_config(sshd, "ed25519", host_key=f"bastion.test {sshd.host_rsa_public_line}")
    async with open_tunnel(config, sshd.host, *PG, Deadline.after(10)) as info:
        assert info.host_key_fingerprint == sshd.host_rsa_key_fingerprint
        assert await in_own_thread(lambda: pg_select_one("127.0.0.1", info.local_port)) == 1


async def test_sha256_pin_of_the_bastions_other_key_type(sshd: SshServer) -> None:
    # The bastion prefers its ed25519 key; a bare fingerprint of its RSA key still matches,
    # on a second key exchange that offers only the types not yet seen.
    config = key_config(sshd, "ed25519", host_key=sshd.host_rsa_key_fingerprint)
    async with open_tunnel(config, sshd.host, *PG, Deadline.after(10)) as info:
        assert info.host_key_fingerprint == sshd.host_rsa_key_fingerprint
        assert await in_own_thread(lambda: pg_select_one("127.0.0.1", info.local_port)) == 1


async def test_a_sha256_pin_that_matches_no_key_names_every_key_seen(sshd: SshServer) -> None:
    failure = await failure_of(key_config(sshd, "ed25519", host_key="SHA256:" + "B" * 43))
    assert (failure.code, failure.phase) == (ErrorCode.SSH_HOST_KEY_MISMATCH, Phase.SSH)
    # Both of the bastion's keys were asked for and shown, each on its own key exchange.
    assert sshd.host_key_fingerprint in failure.message
    assert sshd.host_rsa_key_fingerprint in failure.message
    assert "no credentials were sent" in failure.message


@pytest.mark.parametrize("form", ["same_type_line", "other_type_line", "sha256"])
async def test_pinned_host_key_that_does_not_match(sshd: SshServer, form: str) -> None:
    password = sshd.require_password()
    pin = {
        "same_type_line": f"[bastion.test]:{sshd.port} {sshd.keys['stranger'].public_line}",
        "other_type_line": sshd.keys["ecdsa"].public_line,
        "sha256": "SHA256:" + "A" * 43,
    }[form]
    offset = sshd.log_offset()
    failure = await failure_of(password_config(sshd, password, host_key=pin))
    assert (failure.code, failure.phase) == (ErrorCode.SSH_HOST_KEY_MISMATCH, Phase.SSH)
    assert password not in failure.message
    # sshd logs every authentication attempt (VERBOSE) with the user name and method; this
    # connection must have ended during key exchange, before any of them.
    lines = connection_log(sshd, offset)
    assert lines[-1].endswith("[preauth]"), lines
    assert not [line for line in lines if sshd.username in line or AUTH_WORDS.search(line)]


async def test_the_log_check_sees_a_password_attempt(sshd: SshServer) -> None:
    """Control for the test above: the same log reading does see a password login."""
    offset = sshd.log_offset()
    config = password_config(sshd, sshd.require_password())
    async with open_tunnel(config, sshd.host, *PG, Deadline.after(10)):
        pass
    lines = connection_log(sshd, offset)
    assert [line for line in lines if sshd.username in line and AUTH_WORDS.search(line)]


@pytest.mark.parametrize("which", ["AllowTcpForwarding no", "PermitOpen none"])
async def test_forwarding_refused(sshd: SshServer, which: str) -> None:
    port = sshd.no_forwarding_port if which.startswith("Allow") else sshd.no_permit_open_port
    failure = await failure_of(key_config(sshd, "ed25519", port=port))
    assert (failure.code, failure.phase) == (ErrorCode.SSH_TUNNEL_ERROR, Phase.SSH)
    assert "refused to forward" in failure.message


async def test_destination_refused_behind_the_bastion(
    sshd: SshServer, closed_ssh_port: tuple[str, int]
) -> None:
    failure = await failure_of(key_config(sshd, "ed25519"), dest=closed_ssh_port)
    assert (failure.code, failure.phase) == (ErrorCode.SSH_TUNNEL_ERROR, Phase.SSH)
    assert "could not connect" in failure.message


async def test_unpinned_fingerprint_is_the_one_ssh_keygen_prints(sshd: SshServer) -> None:
    async with open_tunnel(key_config(sshd, "ecdsa"), sshd.host, *PG, Deadline.after(10)) as info:
        assert info.host_key_fingerprint == sshd.host_key_fingerprint
        assert info.host_key_fingerprint.startswith("SHA256:")
