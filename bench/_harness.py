"""What every benchmark shares: a real `rivergen serve` process, an API client, a silent peer,
the raw-driver baselines, percentiles and the figures each benchmark reports.

Everything runs on loopback against the local servers the test suite uses: PostgreSQL
(127.0.0.1:5432, trust), MariaDB (127.0.0.1:3306, root without password), Redis
(127.0.0.1:6379).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PG_HOST, PG_PORT = "127.0.0.1", 5432
MY_HOST, MY_PORT = "127.0.0.1", 3306
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
ADMIN_EMAIL = "bench@rivergen.local"
START_TIMEOUT_SECONDS = 60.0
# High enough that no benchmark is ever rate-limited.
UNLIMITED = "1000000000"


class BenchError(RuntimeError):
    """A benchmark cannot run (a server is missing, the service misbehaved)."""


# ----- figures -----------------------------------------------------------------------------------


@dataclass
class Figure:
    """One reported number; `target` and `passed` are set for the figures the issue targets."""

    bench: str
    name: str
    value: float
    unit: str = ""
    target: str | None = None
    passed: bool | None = None

    def text(self) -> str:
        """`name: value unit [target: ..., met]` for the console."""
        shown = f"{self.value:.3f}" if abs(self.value) < 10 else f"{self.value:.1f}"
        line = f"{self.name}: {shown}{(' ' + self.unit) if self.unit else ''}"
        if self.target is not None:
            verdict = "met" if self.passed else "NOT MET"
            line += f"   [target {self.target}: {verdict}]"
        return line


class Report:
    """Collects a benchmark's figures and prints each as it is added."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.figures: list[Figure] = []

    def add(
        self,
        name: str,
        value: float,
        unit: str = "",
        *,
        at_most: float | None = None,
        at_least: float | None = None,
        below: float | None = None,
    ) -> Figure:
        """Record and print a figure, checking it against a target when one is given."""
        target: str | None = None
        passed: bool | None = None
        if at_most is not None:
            target, passed = f"<= {at_most:g}", value <= at_most
        elif at_least is not None:
            target, passed = f">= {at_least:g}", value >= at_least
        elif below is not None:
            target, passed = f"< {below:g}", value < below
        figure = Figure(self.bench, name, value, unit, target, passed)
        self.figures.append(figure)
        say(f"  {figure.text()}")
        return figure


def say(text: str) -> None:
    """Print at once (the output is often piped to a file)."""
    print(text, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (position - lower) * (ordered[upper] - ordered[lower])


def ms(seconds: float) -> float:
    """Seconds to milliseconds."""
    return seconds * 1000.0


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of `fn` took."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ----- the machine -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    load = "unknown"
    with contextlib.suppress(OSError), open("/proc/loadavg", encoding="utf-8") as info:
        load = " ".join(info.read().split()[:3])
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "loadavg": load,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def proc_status(pid: int, key: str) -> str:
    """A field of /proc/<pid>/status (`Threads`, `VmRSS`, ...)."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith(f"{key}:"):
                return line.split(":", 1)[1].strip()
    raise BenchError(f"/proc/{pid}/status has no {key}")


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def require_port(host: str, port: int, what: str) -> None:
    """Stop the benchmark with a clear message when a local server is missing."""
    if not port_open(host, port):
        raise BenchError(f"{what} is not listening on {host}:{port}")


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ----- the server --------------------------------------------------------------------------------


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

    def gauge(self, name: str) -> float:
        """A metric of `GET /metrics` without labels (0 when absent)."""
        text = httpx.get(f"{self.base_url}/metrics", timeout=10.0).text
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
    ) -> int:
        """Register a data source; its id."""
        body: dict[str, Any] = {"name": name, "type": engine, "connection": connection}
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


# Connection settings of the local servers, as the API takes them.
POSTGRES = {
    "host": PG_HOST,
    "port": PG_PORT,
    "database": "postgres",
    "username": "postgres",
    "password": "unused-trust-auth",
}
MARIADB = {"host": MY_HOST, "port": MY_PORT, "username": "root"}


def silent_connection(engine: str, port: int) -> dict[str, Any]:
    """Settings of `engine` pointing at a silent peer on loopback `port`."""
    if engine == "redis":
        return {"host": "127.0.0.1", "port": port}
    return {"host": "127.0.0.1", "port": port, "username": "bench", "password": "bench-secret"}


# ----- the raw drivers ---------------------------------------------------------------------------


def raw_postgres() -> None:
    """psycopg: connect, SELECT 1, the version query, close."""
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", connect_timeout=10
    ) as conn:
        conn.execute("SELECT 1").fetchone()
        conn.execute("SELECT version()").fetchone()


def raw_postgres_select1() -> None:
    """psycopg: connect, SELECT 1, close."""
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", connect_timeout=10
    ) as conn:
        conn.execute("SELECT 1").fetchone()


def raw_mariadb() -> None:
    """PyMySQL with its defaults: connect, SELECT 1, the version query, close.

    PyMySQL 1.2's default (TLS preferred) builds a TLS context and loads the system CA store
    for every connection, even when the server offers no TLS: ~80 ms on the benchmark machine.
    """
    _raw_mariadb({})


def raw_mariadb_no_tls() -> None:
    """The same with `ssl_disabled=True`: the raw driver at its best against a server without
    TLS (the local MariaDB has none, so the product does no TLS work either)."""
    _raw_mariadb({"ssl_disabled": True})


def _raw_mariadb(tls: dict[str, Any]) -> None:
    import pymysql

    conn = pymysql.connect(
        host=MY_HOST,
        port=MY_PORT,
        user="root",
        password="",
        connect_timeout=10,
        read_timeout=10,
        **tls,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
            cursor.execute("SELECT VERSION()")
            cursor.fetchone()
    finally:
        conn.close()


# ----- a silent peer -----------------------------------------------------------------------------


class SilentPeer:
    """A loopback listener that accepts TCP connections and never sends a byte.

    It stands for a database (or SSH bastion) behind a firewall that lets the handshake through,
    or a server wedged after accept. Accepted sockets are held until `close`.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(512)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-peer", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)
            self.accepted += 1

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for conn in self._held:
            conn.close()
        self._held.clear()

    def __enter__(self) -> SilentPeer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
