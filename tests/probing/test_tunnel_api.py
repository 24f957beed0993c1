"""The connection test through a real OpenSSH bastion, end to end through the HTTP API."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

from tests.fixtures.app import Api
from tests.fixtures.sshd import SshServer

pytestmark = pytest.mark.anyio

DATABASES: dict[str, dict[str, Any]] = {
    "postgresql": {
        "host": "127.0.0.1",
        "port": 5432,
        "username": "postgres",
        "database": "postgres",
    },
    "mariadb": {"host": "127.0.0.1", "port": 3306, "username": "root"},
}


def tunnel(sshd: SshServer, **overrides: Any) -> dict[str, Any]:
    """An ssh_tunnel block with the fixture's Ed25519 key."""
    key = sshd.keys["ed25519"]
    block: dict[str, Any] = {
        "host": sshd.host,
        "port": sshd.port,
        "username": sshd.username,
        "auth_method": "private_key",
        "private_key": key.private_key,
    }
    block.update(overrides)
    return block


async def run_test(
    api: Api, engine: str, ssh_tunnel: dict[str, Any], timeout: int = 10
) -> dict[str, Any]:
    headers = await api.headers_for()
    body = {
        "name": f"via-bastion-{engine}",
        "type": engine,
        "connection": DATABASES[engine],
        "ssh_tunnel": ssh_tunnel,
    }
    created = await api.client.post("/api/v1/data-sources", json=body, headers=headers)
    assert created.status_code == 201, created.text
    shown = created.json()["data"]["ssh_tunnel"]
    for secret in ("password", "private_key", "private_key_passphrase"):
        assert shown[secret] == ("********" if ssh_tunnel.get(secret) else None)
    source_id = created.json()["data"]["id"]
    started = time.monotonic()
    response = await api.client.post(
        f"/api/v1/data-sources/{source_id}/test", json={"timeout_seconds": timeout}, headers=headers
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    data["_elapsed_s"] = time.monotonic() - started
    return data


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
async def test_through_bastion_succeeds(api: Api, sshd: SshServer, engine: str) -> None:
    data = await run_test(api, engine, tunnel(sshd))
    assert data["connection_successful"] is True, data
    assert data["ssh_tunnel_established"] is True
    assert data["test_query_result"] == "1"
    assert data["ssh_host_key_fingerprint"] == sshd.host_key_fingerprint
    assert "ssh" in data["timings_ms"]
    assert data["database_version"].startswith(
        "PostgreSQL" if engine == "postgresql" else "MariaDB"
    )


async def test_pinned_key_mismatch_is_reported(api: Api, sshd: SshServer) -> None:
    pin = "SHA256:" + "A" * 43
    data = await run_test(api, "postgresql", tunnel(sshd, host_key=pin))
    assert data["error_code"] == "SSH_HOST_KEY_MISMATCH"
    assert data["error_phase"] == "ssh"
    assert data["ssh_tunnel_established"] is False


async def test_pinned_key_that_matches(api: Api, sshd: SshServer) -> None:
    data = await run_test(api, "postgresql", tunnel(sshd, host_key=sshd.host_key_fingerprint))
    assert data["connection_successful"] is True, data


async def test_database_error_behind_a_working_tunnel_keeps_its_code(
    api: Api, sshd: SshServer
) -> None:
    headers = await api.headers_for()
    body = {
        "type": "postgresql",
        "ssh_tunnel": tunnel(sshd),
        "connection": {**DATABASES["postgresql"], "database": "no_such_database_here"},
    }
    response = await api.client.post("/api/v1/data-sources/test", json=body, headers=headers)
    data = response.json()["data"]
    assert data["error_code"] == "DATABASE_NOT_FOUND"
    assert data["ssh_tunnel_established"] is True


async def test_silent_bastion_answers_within_the_deadline(
    api: Api, silent_bastion: tuple[str, int]
) -> None:
    host, port = silent_bastion
    block = {
        "host": host,
        "port": port,
        "username": "x",
        "auth_method": "password",
        "password": "irrelevant-password",
    }
    threads_before = set(threading.enumerate())
    data = await run_test(api, "postgresql", block, timeout=2)
    assert data["_elapsed_s"] < 3.0
    assert data["error_code"] == "TIMEOUT"
    assert data["error_phase"] == "ssh"

    # The tunnel runs on the event loop: no thread may be left behind by it. The loop's own
    # default executor (asyncio_N, used for getaddrinfo) is bounded and reused, not a leak;
    # nor is a SQLite store connection the pool opens meanwhile (aiosqlite gives each one its
    # own worker thread, e.g. for the alert dispatcher's poll).
    def extra() -> set[threading.Thread]:
        new = set(threading.enumerate()) - threads_before
        return {
            t
            for t in new
            if not t.name.startswith("asyncio_") and "_connection_worker_thread" not in t.name
        }

    deadline = time.monotonic() + 5
    while extra() and time.monotonic() < deadline:
        await anyio.sleep(0.1)
    assert not extra()


async def test_closed_ssh_port(api: Api, closed_ssh_port: tuple[str, int], sshd: SshServer) -> None:
    host, port = closed_ssh_port
    data = await run_test(api, "postgresql", tunnel(sshd, host=host, port=port))
    assert data["error_code"] == "SSH_CONNECTION_ERROR"
    assert data["ssh_tunnel_established"] is False
