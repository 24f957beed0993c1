"""A DNS server that never answers: lookups are bounded and refused beyond the bound.

A real `rivergen serve` runs in its own mount namespace whose /etc/resolv.conf names a UDP
socket on loopback that reads every query and never replies. Forty tests of names in that
"zone" meet the DNS pool (RIVERGEN_DNS_WORKERS=2, RIVERGEN_DNS_QUEUE=2): all answer within
their deadline, those beyond the bound are refused at once with a classified error (before the
pool existed they all queued in the loop's default executor; this assertion failed), and
meanwhile a sign-in and a test of a literal address answer promptly.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.required import unavailable
from tests.fixtures.serve import Server, serve_wrapped

pytestmark = pytest.mark.anyio
PASSWORD = "dns-test-password-1"
SILENT_DNS = "127.0.0.153"
# More than the loop's default executor has threads (at most 32).
LOOKUPS = 40


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio."""
    return "asyncio"


@pytest.fixture
def silent_dns() -> Iterator[list[bytes]]:
    """A UDP 'DNS server' on 127.0.0.153:53 that reads queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((SILENT_DNS, 53))
    except OSError as exc:
        sock.close()
        unavailable(f"cannot bind {SILENT_DNS}:53 (needs root): {exc}")
    sock.settimeout(0.1)
    queries: list[bytes] = []
    stop = threading.Event()

    def swallow() -> None:
        while not stop.is_set():
            try:
                queries.append(sock.recvfrom(4096)[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    try:
        yield queries
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()


@pytest.fixture
def server(tmp_path: Path, silent_dns: list[bytes]) -> Iterator[Server]:
    """`rivergen serve` whose resolver is the silent DNS server (its own mount namespace)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        unavailable("a private /etc/resolv.conf needs root and unshare")
    if subprocess.run(["unshare", "-m", "true"], check=False).returncode != 0:
        unavailable("unshare -m is not permitted here")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {SILENT_DNS}\noptions timeout:4 attempts:1\n")
    wrap = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"']
    env = {
        "RIVERGEN_DATA_DIR": str(tmp_path / "data"),
        "RIVERGEN_ADMIN_PASSWORD": PASSWORD,
        "RIVERGEN_ALLOW_LOOPBACK": "true",
        "RIVERGEN_DNS_WORKERS": "2",
        "RIVERGEN_DNS_QUEUE": "2",
        "RIVERGEN_TESTS_PER_MINUTE_PER_USER": "1000",
        "RIVERGEN_TESTS_PER_MINUTE_PER_ORGANIZATION": "1000",
    }
    with serve_wrapped(tmp_path, "dns", [*wrap, str(resolv)], env) as running:
        yield running


def unsaved(host: str, port: int = 5432) -> dict[str, object]:
    """An unsaved PostgreSQL test of host:port with a 2 s deadline."""
    connection = {"host": host, "port": port, "username": "u", "database": "d"}
    return {"name": "n", "type": "postgresql", "connection": connection, "timeout_seconds": 2}


async def test_a_silent_dns_server_does_not_stall_sign_ins_or_other_tests(
    server: Server, silent_dns: list[bytes]
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        login = {"email": "admin@rivergen.local", "password": PASSWORD}
        token = (await client.post("/api/v1/auth/login", json=login)).json()["data"]
        headers = {"Authorization": f"Bearer {token['access_token']}"}

        async def test(body: dict[str, object]) -> tuple[float, dict[str, object]]:
            started = time.monotonic()
            response = await client.post("/api/v1/data-sources/test", json=body, headers=headers)
            assert response.status_code == 200, response.text
            return time.monotonic() - started, response.json()["data"]

        lookups = [
            asyncio.create_task(test(unsaved(f"db{i}.blackhole.test"))) for i in range(LOOKUPS)
        ]
        # Wait until lookups hang at the silent server (more than the pool's threads' worth).
        waited = time.monotonic() + 5
        while len(silent_dns) < 8 and time.monotonic() < waited:
            await asyncio.sleep(0.05)

        started = time.monotonic()
        signed_in = await client.post("/api/v1/auth/login", json=login)
        sign_in_took = time.monotonic() - started
        literal_took, literal = await test(unsaved("127.0.0.1", 1))

        results = await asyncio.gather(*lookups)
    assert silent_dns, f"no query reached the silent DNS server: {results[0]}"
    assert signed_in.status_code == 200, signed_in.text
    assert sign_in_took < 2.0, sign_in_took
    assert literal_took < 2.0, literal_took
    assert literal["error_code"] == "CONNECTION_ERROR", literal
    for took, data in results:
        assert took < 3.5, took  # within the 2 s deadline (+1 s)
        assert (data["error_code"], data["error_phase"]) == ("TIMEOUT", "dns"), data
    refused = [d for _, d in results if "lookup slot" in str(d["error_message"])]
    assert len(refused) >= LOOKUPS - 4, [d["error_message"] for _, d in results]
