"""A real `rivergen serve` process for a benchmark, and the API client that talks to it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._harness import BenchError, free_port, proc_status

ADMIN_EMAIL = "bench@rivergen.local"
START_TIMEOUT_SECONDS = 60.0
# High enough that no benchmark is ever rate-limited.
UNLIMITED = "1000000000"


@dataclass
class Server:
    """A running `python -m rivergen serve` process."""

    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log_path: Path
    admin_password: str = field(repr=False)

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def threads(self) -> int:
        """Threads of the server process now."""
        return int(proc_status(self.pid, "Threads"))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far, all threads."""
        with open(f"/proc/{self.pid}/stat", encoding="utf-8") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident size of the server process now, in MiB."""
        return int(proc_status(self.pid, "VmRSS").split()[0]) / 1024.0

    def metrics_text(self) -> str:
        """The text of `GET /metrics`."""
        return httpx.get(f"{self.base_url}/metrics", timeout=10.0).text

    def gauge(self, name: str) -> float:
        """A metric of `GET /metrics` without labels (0 when absent)."""
        text = self.metrics_text()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def probes_pending(self) -> int:
        """Probe calls running in threads or queued for one."""
        running = self.gauge("rivergen_probe_calls_in_flight")
        return int(running + self.gauge("rivergen_probe_calls_queued"))

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's output, for error messages."""
        return self.log_path.read_text(errors="replace")[-chars:]

    def api(self, *, timeout: float = 60.0) -> Api:
        """A signed-in, keep-alive client."""
        return Api.sign_in(self.base_url, ADMIN_EMAIL, self.admin_password, timeout=timeout)


def _clean_env(overrides: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGEN_")}
    env.update(overrides)
    return env


def _wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"rivergen serve exited early:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise BenchError(f"rivergen serve did not become ready:\n{server.log_tail()}")


@contextlib.contextmanager
def running_server(
    *, database_url: str | None = None, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Start `python -m rivergen serve` on a free loopback port with a temporary data directory.

    Settings are the defaults except: a known admin password, rate limits out of the way, and
    whatever `env` adds. Stopped (SIGTERM, then SIGKILL) and cleaned up on the way out.
    """
    workdir = Path(tempfile.mkdtemp(prefix="rivergen-bench-"))
    data_dir = workdir / "data"
    password = secrets.token_urlsafe(18)
    port = free_port()
    settings = {
        "RIVERGEN_HOST": "127.0.0.1",
        "RIVERGEN_PORT": str(port),
        "RIVERGEN_DATA_DIR": str(data_dir),
        "RIVERGEN_ADMIN_EMAIL": ADMIN_EMAIL,
        "RIVERGEN_ADMIN_PASSWORD": password,
        "RIVERGEN_TESTS_PER_MINUTE_PER_USER": UNLIMITED,
        "RIVERGEN_TESTS_PER_MINUTE_PER_ORGANIZATION": UNLIMITED,
        "RIVERGEN_ACCESS_TOKEN_TTL_SECONDS": "3600",
        # The benchmarked servers are on loopback.
        "RIVERGEN_ALLOW_LOOPBACK": "true",
    }
    if database_url:
        settings["RIVERGEN_DATABASE_URL"] = database_url
    settings.update(env or {})
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rivergen", "serve"],
            cwd=workdir,
            env=_clean_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", data_dir, log_path, password)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


class Api:
    """A keep-alive HTTP client signed in as the bootstrap admin."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        self.client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    @classmethod
    def sign_in(cls, base_url: str, email: str, password: str, *, timeout: float = 60.0) -> Api:
        """Sign in and keep the access token."""
        response = httpx.post(
            f"{base_url}/api/v1/auth/login",
            json={"email": email, "password": password},
            timeout=30.0,
        )
        if response.status_code != 200:
            raise BenchError(f"sign-in failed: {response.status_code} {response.text}")
        return cls(base_url, str(response.json()["data"]["access_token"]), timeout=timeout)

    def close(self) -> None:
        """Close the connection."""
        self.client.close()

    def create_source(
        self,
        name: str,
        engine: str,
        connection: dict[str, Any],
        ssh_tunnel: dict[str, Any] | None = None,
        interval_seconds: int | None = None,
    ) -> int:
        """Register a data source (scheduled every `interval_seconds` when given); its id."""
        body: dict[str, Any] = {"name": name, "type": engine, "connection": connection}
        if interval_seconds is not None:
            body["health_check_interval_seconds"] = interval_seconds
        if ssh_tunnel is not None:
            body["ssh_tunnel"] = ssh_tunnel
        response = self.client.post("/api/v1/data-sources", json=body)
        if response.status_code != 201:
            raise BenchError(f"creating {name} failed: {response.status_code} {response.text}")
        return int(response.json()["data"]["id"])

    def test(self, source_id: int, timeout_seconds: int = 30) -> tuple[float, dict[str, Any]]:
        """POST /test; the seconds it took as the client saw them, and the response `data`."""
        started = time.perf_counter()
        response = self.client.post(
            f"/api/v1/data-sources/{source_id}/test", json={"timeout_seconds": timeout_seconds}
        )
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise BenchError(f"test of {source_id}: {response.status_code} {response.text}")
        data: dict[str, Any] = response.json()["data"]
        return elapsed, data

    def get(self, path: str) -> float:
        """GET `path` (must answer 200); the seconds it took."""
        started = time.perf_counter()
        response = self.client.get(path)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise BenchError(f"GET {path}: {response.status_code} {response.text}")
        return elapsed


class Burst:
    """Concurrent `POST /test` calls from one asyncio client running in a background thread.

    One client and one thread for all of them: the measuring thread of a benchmark is not
    slowed by dozens of client threads fighting for the GIL.
    """

    def __init__(self, api: Api, source_ids: Sequence[int], timeout_seconds: int) -> None:
        self.results: list[tuple[float, dict[str, Any]]] = []
        self.error: BaseException | None = None
        self._api = api
        self._ids = list(source_ids)
        self._timeout_seconds = timeout_seconds
        self._thread = threading.Thread(target=self._main, name="burst", daemon=True)

    def start(self) -> Burst:
        """Send every call now."""
        self._thread.start()
        return self

    def join(self, timeout: float) -> list[tuple[float, dict[str, Any]]]:
        """Wait for every answer; (seconds, response `data`) per call."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise BenchError("the concurrent tests did not all answer in time")
        if self.error is not None:
            raise BenchError(f"a concurrent test failed: {self.error!r}")
        return self.results

    def _main(self) -> None:
        try:
            asyncio.run(self._send_all())
        except BaseException as exc:  # handed to join()
            self.error = exc

    async def _send_all(self) -> None:
        limits = httpx.Limits(max_connections=len(self._ids) + 1, max_keepalive_connections=None)
        async with httpx.AsyncClient(
            base_url=self._api.base_url,
            headers={"Authorization": f"Bearer {self._api.token}"},
            timeout=self._api.timeout,
            limits=limits,
        ) as client:

            async def one(source_id: int) -> tuple[float, dict[str, Any]]:
                started = time.perf_counter()
                response = await client.post(
                    f"/api/v1/data-sources/{source_id}/test",
                    json={"timeout_seconds": self._timeout_seconds},
                )
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise BenchError(f"test of {source_id}: {response.status_code} {response.text}")
                data: dict[str, Any] = response.json()["data"]
                return elapsed, data

            self.results = list(await asyncio.gather(*(one(i) for i in self._ids)))


def expect_success(data: dict[str, Any], what: str) -> None:
    """Stop when a test that should work did not."""
    if not data.get("connection_successful"):
        raise BenchError(f"{what}: {data.get('error_code')} {data.get('error_message')}")
