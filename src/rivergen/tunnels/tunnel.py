"""An SSH local port forward through a bastion that lives for the duration of one test."""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from rivergen.tunnels.forwarder import LocalForwarder
from rivergen.tunnels.host_keys import HostKeyPin, fingerprint_of_key, parse_host_key_pin
from rivergen.tunnels.keys import load_private_key
from rivergen.tunnels.schemas import SshTunnelConfig

# asyncssh logs every connection, auth step and channel at INFO (users, addresses, key
# fingerprints); only its warnings belong in our logs.
logging.getLogger("asyncssh").setLevel(logging.WARNING)

LOCAL_HOST = "127.0.0.1"
# How long teardown may wait for a clean SSH close before the socket is simply aborted.
_CLOSE_GRACE_SECONDS = 1.0
_BACKSTOP_SLACK_SECONDS = 1.0

# OpenSSH's client order, without certificates: the plain key is what users pin. ssh-rsa
# (SHA-1 signatures) comes last only so that very old bastions still connect.
_HOST_KEY_ALGS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
)

_UNREACHABLE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
)


@dataclass(frozen=True)
class TunnelInfo:
    """Where the forward listens, which bastion key was seen, and how long setup took."""

    local_host: str
    local_port: int
    host_key_fingerprint: str
    timings_ms: dict[str, float] = field(default_factory=dict)


class _HostKeyCheck(asyncssh.SSHClient):
    """Decides on the bastion's key during key exchange, so before any credential is sent."""

    def __init__(self, pin: HostKeyPin | None) -> None:
        self._pin = pin
        self.seen_keys: list[asyncssh.SSHKey] = []

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        """Accept the key only when it is the pinned one; remember it for the error message."""
        self.seen_keys.append(key)
        return self._pin is not None and self._pin.matches(key)


async def _connect(
    address: str, client: _HostKeyCheck, pin: HostKeyPin | None, options: dict[str, Any]
) -> asyncssh.SSHClientConnection:
    """Connect to the bastion; with a bare fingerprint pin, try each host key type in turn.

    A bastion shows one host key per connection, of its preferred type among those offered,
    and a `SHA256:` fingerprint does not say which type it is of. So after a mismatch the
    types already seen are left out of the offer and the bastion is asked again, until a key
    matches or no type is left. Each try ends during key exchange: no credential is sent.
    """
    offered = list(options["server_host_key_algs"])
    while True:
        keys_seen = len(client.seen_keys)
        try:
            return await asyncssh.connect(
                address,
                client_factory=lambda: client,
                **{**options, "server_host_key_algs": offered},
            )
        except asyncssh.HostKeyNotVerifiable:
            if pin is None or pin.key is not None or not client.seen_keys:
                raise
            seen_types = {alg.decode("ascii") for alg in client.seen_keys[-1].sig_algorithms}
            offered = [alg for alg in offered if alg not in seen_types]
            if not offered:
                raise
        except (asyncssh.Error, ConnectionError):
            if keys_seen == 0 or len(client.seen_keys) > keys_seen:
                raise
            # A bastion with no key of the types left ends the key exchange (OpenSSH resets
            # the connection): every key it has was seen, and none matched.
            raise asyncssh.HostKeyNotVerifiable("No host key matches the pin") from None


def _known_hosts(pin: HostKeyPin | None) -> asyncssh.SSHKnownHosts | None:
    """The trust list for key exchange: None (accept and record) only without a pin."""
    # With a pin nothing is trusted up front, so asyncssh hands every key the bastion
    # presents to _HostKeyCheck during key exchange; a mismatch ends it before userauth.
    return None if pin is None else asyncssh.SSHKnownHosts()


def _host_key_algs(pin: HostKeyPin | None) -> list[str]:
    """Host key algorithms in preference order, the pinned key's type first."""
    # asyncssh alone would restrict the offer to the pinned type (a bastion without it then
    # just drops the connection) and otherwise prefers RSA; OpenSSH's order keeps the
    # fingerprint we record the one `ssh-keyscan` and `ssh-keygen -lf` users compare with.
    preferred = [alg.decode("ascii") for alg in pin.key.sig_algorithms] if pin and pin.key else []
    return list(dict.fromkeys([*preferred, *_HOST_KEY_ALGS]))


async def _client_key(config: SshTunnelConfig) -> asyncssh.SSHKey:
    text = config.private_key or ""
    passphrase = config.private_key_passphrase or None
    # Key derivation (bcrypt, PBKDF2, scrypt) and the RSA prime checks take real CPU time
    # (seconds for an 8192-bit RSA key): keep the event loop free.
    return await asyncio.to_thread(load_private_key, text, passphrase)


def _connect_options(
    config: SshTunnelConfig,
    pin: HostKeyPin | None,
    client_key: asyncssh.SSHKey | None,
    deadline: Deadline,
) -> dict[str, Any]:
    by_key = config.auth_method == "private_key"
    # asyncssh's own timers are only a backstop: asyncio.timeout(deadline) in open_tunnel
    # fires first, so an expiry is always reported as TIMEOUT rather than a dropped login.
    backstop = deadline.remaining() + _BACKSTOP_SLACK_SECONDS
    return {
        "port": config.port,
        "username": config.username,
        "known_hosts": _known_hosts(pin),
        "server_host_key_algs": _host_key_algs(pin),
        # Only what the data source holds may be used: no ~/.ssh/config, no default keys,
        # no agent, no GSSAPI, no host-based auth of the machine running the service.
        "config": [],
        "client_keys": [client_key] if by_key and client_key is not None else None,
        "ignore_encrypted": True,
        "agent_path": None,
        "agent_identities": None,
        "agent_forwarding": False,
        "password": None if by_key else config.password,
        "public_key_auth": by_key,
        "password_auth": not by_key,
        "kbdint_auth": not by_key,
        "preferred_auth": ("publickey",) if by_key else ("keyboard-interactive", "password"),
        "gss_auth": False,
        "gss_kex": False,
        "host_based_auth": False,
        "x509_trusted_certs": None,
        "x509_trusted_cert_paths": [],
        "connect_timeout": backstop,
        "login_timeout": backstop,
    }


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: asyncssh.Error) -> str:
    reason = " ".join(str(exc.reason).split())
    return reason[:200] if reason else "no reason given"


def _classify(
    exc: BaseException,
    stage: str,
    config: SshTunnelConfig,
    bastion: str,
    target: str,
    pin: HostKeyPin | None,
    seen_keys: list[asyncssh.SSHKey],
) -> ProbeFailure:
    """Map an exception raised while opening the tunnel to a code, by its type and errno."""

    def fail(code: ErrorCode, message: str) -> ProbeFailure:
        return ProbeFailure(code, Phase.SSH, message)

    if isinstance(exc, TimeoutError):
        what = {
            "key": "loading the private key",
            "connect": f"connecting to the SSH bastion {bastion}",
            "forward": "opening the local end of the tunnel",
            "verify": f"the bastion opened the forward to {target}",
        }[stage]
        return fail(ErrorCode.TIMEOUT, f"Timed out while {what}")
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        shown = ", ".join(f"{fingerprint_of_key(k)} ({k.get_algorithm()})" for k in seen_keys)
        seen = f" ({shown})" if shown else ""
        pinned = f" ({pin.fingerprint})" if pin is not None else ""
        return fail(
            ErrorCode.SSH_HOST_KEY_MISMATCH,
            f"No host key of the SSH bastion {bastion}{seen} matches the pinned "
            f"key{pinned}; no credentials were sent",
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        what = "private key" if config.auth_method == "private_key" else "password"
        return fail(
            ErrorCode.SSH_AUTHENTICATION_FAILED,
            f"The SSH bastion {bastion} rejected the {what} for user {config.username!r}",
        )
    if isinstance(exc, asyncssh.ChannelOpenError):
        if exc.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
            return fail(
                ErrorCode.SSH_TUNNEL_ERROR,
                f"The SSH bastion {bastion} refused to forward to {target} (TCP forwarding "
                f"is disabled or not permitted for this user): {_reason(exc)}",
            )
        if exc.code == asyncssh.OPEN_CONNECT_FAILED:
            return fail(
                ErrorCode.SSH_TUNNEL_ERROR,
                f"The SSH bastion {bastion} could not connect to {target}: {_reason(exc)}",
            )
        return fail(
            ErrorCode.SSH_TUNNEL_ERROR,
            f"The SSH bastion {bastion} could not open a channel to {target}: {_reason(exc)}",
        )
    if isinstance(exc, asyncssh.KeyExchangeFailed):
        return fail(
            ErrorCode.SSH_CONNECTION_ERROR,
            f"No SSH algorithms in common with the bastion {bastion}: {_reason(exc)}",
        )
    if isinstance(exc, asyncssh.ProtocolError):
        return fail(
            ErrorCode.SSH_CONNECTION_ERROR,
            f"{bastion} did not answer as an SSH server: {_reason(exc)}",
        )
    if isinstance(exc, asyncssh.Error):  # ConnectionLost and the other disconnects
        return fail(
            ErrorCode.SSH_CONNECTION_ERROR,
            f"The SSH bastion {bastion} closed the connection: {_reason(exc)}",
        )
    if isinstance(exc, OSError):
        if stage == "forward":
            return fail(
                ErrorCode.SSH_TUNNEL_ERROR,
                f"Could not listen on {LOCAL_HOST} for the tunnel: {exc.strerror or exc}",
            )
        if isinstance(exc, ConnectionRefusedError):
            return fail(
                ErrorCode.SSH_CONNECTION_ERROR,
                f"Connection to the SSH bastion {bastion} was refused",
            )
        if exc.errno == errno.ETIMEDOUT:
            return fail(ErrorCode.TIMEOUT, f"Timed out connecting to the SSH bastion {bastion}")
        if exc.errno in _UNREACHABLE_ERRNOS:
            return fail(ErrorCode.SSH_CONNECTION_ERROR, f"The SSH bastion {bastion} is unreachable")
        return fail(
            ErrorCode.SSH_CONNECTION_ERROR,
            f"Could not connect to the SSH bastion {bastion}: {exc.strerror or type(exc).__name__}",
        )
    return ProbeFailure(
        ErrorCode.INTERNAL_ERROR,
        Phase.SSH,
        f"Unexpected error while opening the SSH tunnel ({type(exc).__name__})",
    )


async def _teardown(
    conn: asyncssh.SSHClientConnection | None, forwarder: LocalForwarder | None
) -> None:
    """Stop listening and close the connection; abort it if a clean close takes too long."""
    # The synchronous closes come first: nothing listens and the SSH shutdown has begun
    # even if the awaits below are cancelled.
    if forwarder is not None:
        forwarder.close()
    if conn is not None:
        conn.close()
    try:
        if forwarder is not None:
            await forwarder.wait_closed()
        if conn is not None:
            async with asyncio.timeout(_CLOSE_GRACE_SECONDS):
                await conn.wait_closed()
    except TimeoutError:
        if conn is not None:
            conn.abort()
    except asyncio.CancelledError:
        if conn is not None:
            conn.abort()
        raise


@asynccontextmanager
async def open_tunnel(
    config: SshTunnelConfig,
    bastion_address: str,
    dest_host: str,
    dest_port: int,
    deadline: Deadline,
    max_clients: int = 1,
) -> AsyncIterator[TunnelInfo]:
    """Forward a local port to `dest_host:dest_port` through the bastion at `bastion_address`.

    `bastion_address` is the IP the host policy checked; the socket goes there and nowhere
    else. `dest_host` is resolved by the bastion. Setup is bounded by `deadline` and every
    failure is raised as ProbeFailure (phase ssh); the forward and the SSH connection are
    closed when the block exits, however it exits.
    """
    started = time.monotonic()
    bastion = _host_port(bastion_address, config.port)
    target = _host_port(dest_host, dest_port)
    try:
        pin = parse_host_key_pin(config.host_key) if config.host_key else None
    except ValueError as exc:  # the schema validates it; this guards unvalidated configs
        raise ProbeFailure(ErrorCode.CONFIGURATION_ERROR, Phase.SSH, str(exc)) from None
    client = _HostKeyCheck(pin)
    conn: asyncssh.SSHClientConnection | None = None
    forwarder: LocalForwarder | None = None
    stage = "key"
    try:
        try:
            async with asyncio.timeout(deadline.remaining()):
                client_key = None
                if config.auth_method == "private_key":
                    client_key = await _client_key(config)
                stage = "connect"
                options = _connect_options(config, pin, client_key, deadline)
                conn = await _connect(bastion_address, client, pin, options)
                server_key = conn.get_server_host_key()
                # The first channel is opened before anything listens, so that a refused
                # forward is reported here; the first client then gets this very channel.
                stage = "verify"
                first_channel = await conn.open_connection(dest_host, dest_port)
                stage = "forward"
                forwarder = LocalForwarder(conn, dest_host, dest_port, first_channel, max_clients)
                local_port = await forwarder.start(LOCAL_HOST)
        except ProbeFailure:
            raise
        except Exception as exc:
            # `from None`: the driver's own exception text can repeat user input verbatim.
            raise _classify(exc, stage, config, bastion, target, pin, client.seen_keys) from None
        if server_key is None:  # only possible with a certificate-less, keyless kex
            raise ProbeFailure(
                ErrorCode.SSH_CONNECTION_ERROR,
                Phase.SSH,
                f"The SSH bastion {bastion} presented no host key",
            )
        elapsed_ms = round((time.monotonic() - started) * 1000.0, 1)
        yield TunnelInfo(
            local_host=LOCAL_HOST,
            local_port=local_port,
            host_key_fingerprint=fingerprint_of_key(server_key),
            timings_ms={"ssh": elapsed_ms},
        )
    finally:
        await _teardown(conn, forwarder)
