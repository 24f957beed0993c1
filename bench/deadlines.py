"""3. Deadlines: `timeout_seconds: 2` against a silent peer, for every network engine and
through a silent SSH bastion; how far past 2 s the answer comes, and whether threads leak.

The silent peer accepts TCP and never sends a byte: the worst case for drivers (a read with no
timeout waits forever). The bastion case uses such a peer as the `ssh_tunnel` host: the SSH
client waits for a banner that never comes.
"""

from __future__ import annotations

import time
from typing import Any

from bench._harness import PG_HOST, PG_PORT, POSTGRES, Report, say
from bench._peers import SilentPeer, silent_connection
from bench._server import expect_success, running_server

NAME = "deadlines"
TIMEOUT_SECONDS = 2
REPEATS = 2
SETTLE_SECONDS = 10.0
TARGET_OVERRUN_SECONDS = 0.3
ENGINES = ("postgresql", "mysql", "mariadb", "redis")


def _wait_for_threads(server: Any, at_most: int) -> int:
    """Wait up to SETTLE_SECONDS for the thread count to come down to `at_most`."""
    deadline = time.monotonic() + SETTLE_SECONDS
    count: int = server.threads()
    while count > at_most and time.monotonic() < deadline:
        time.sleep(0.2)
        count = server.threads()
    return count


def run() -> Report:
    """Run the benchmark and return its figures."""
    report = Report(NAME)
    with SilentPeer() as peer, SilentPeer() as bastion, running_server() as server:
        api = server.api()
        try:
            cases: dict[str, int] = {}
            for engine in ENGINES:
                cases[engine] = api.create_source(
                    f"deadline-{engine}", engine, silent_connection(engine, peer.port)
                )
            tunnel = {
                "host": "127.0.0.1",
                "port": bastion.port,
                "username": "bench",
                "auth_method": "password",
                "password": "bench-secret",
            }
            connection = {**POSTGRES, "host": PG_HOST, "port": PG_PORT}
            cases["postgresql via silent SSH bastion"] = api.create_source(
                "deadline-ssh", "postgresql", connection, ssh_tunnel=tunnel
            )
            # Warm up (imports, the alarm thread) with one working test, then let the pool's
            # idle threads exit before counting.
            warm = api.create_source("deadline-warm", "postgresql", POSTGRES)
            _, data = api.test(warm)
            expect_success(data, "warm-up")
            time.sleep(2.5)
            before = server.threads()

            worst = 0.0
            for label, source_id in cases.items():
                times: list[float] = []
                codes: set[str] = set()
                for _ in range(REPEATS):
                    elapsed, data = api.test(source_id, timeout_seconds=TIMEOUT_SECONDS)
                    times.append(elapsed)
                    codes.add(f"{data.get('error_code')}/{data.get('error_phase')}")
                worst = max(worst, *times)
                say(
                    f"  {label}: answered in {min(times):.3f}..{max(times):.3f} s "
                    f"({REPEATS} tests, {', '.join(sorted(codes))})"
                )
            right_after = server.threads()
            settled = _wait_for_threads(server, before)
        finally:
            api.close()
    report.add(f"worst response time (timeout_seconds {TIMEOUT_SECONDS})", worst, "s")
    report.add(
        "worst overrun past the limit",
        worst - TIMEOUT_SECONDS,
        "s",
        at_most=TARGET_OVERRUN_SECONDS,
    )
    report.add("server threads before", before)
    report.add("server threads right after the last answer", right_after)
    report.add(f"server threads after settling (<= {SETTLE_SECONDS:g} s)", settled)
    report.add("threads left behind", settled - before)
    return report
