"""What every benchmark shares: the figures it reports, percentiles, the machine, and the
addresses of the local servers.

Everything runs on loopback against the local servers the test suite uses: PostgreSQL
(127.0.0.1:5432, trust), MariaDB (127.0.0.1:3306, root without password), Redis
(127.0.0.1:6379). The `rivergen serve` process and its API client are in bench/_server.py; the
raw-driver baselines and the silent peer in bench/_peers.py.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PG_HOST, PG_PORT = "127.0.0.1", 5432
MY_HOST, MY_PORT = "127.0.0.1", 3306
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

# Connection settings of the local servers, as the API takes them.
POSTGRES = {
    "host": PG_HOST,
    "port": PG_PORT,
    "database": "postgres",
    "username": "postgres",
    "password": "unused-trust-auth",
}
MARIADB = {"host": MY_HOST, "port": MY_PORT, "username": "root"}


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
