"""2. Non-blocking: `GET /api/v1/data-sources/{id}` latency idle vs while 50 tests hang.

The hanging tests point at a silent peer (a loopback listener that accepts and never answers),
each at its own data source so single-flight cannot merge them. With the default pool
(RIVERGEN_PROBE_WORKERS=32) 32 of them hold a thread and 18 wait in the pool's queue. While they
hang, a keep-alive client measures the GET again: the event loop must not notice them.

Then the burst itself (issue 18): 30 tests against the silent peer sent at once, and the GETs
measured from the moment the burst is sent, not once the tests sit in the pool: the burst's
own request handling must not hold the event loop either.

Idle and busy phases alternate (ROUNDS times each) and their samples are pooled, so a change
in the load of a shared machine touches both sides alike.
"""

from __future__ import annotations

import time

from bench._harness import POSTGRES, BenchError, Report, ms, percentile, say
from bench._peers import SilentPeer, silent_connection
from bench._server import Api, Burst, running_server

NAME = "nonblocking"
HANGING = 50
ROUNDS = 3
REQUESTS_PER_PHASE = 100
WARMUP = 30
HANG_TIMEOUT_SECONDS = 8
TARGET_RATIO = 2.0
BURST = 30
BURST_GETS = 60
BURST_TIMEOUT_SECONDS = 2


def _measure(api: Api, path: str) -> list[float]:
    return [api.get(path) for _ in range(REQUESTS_PER_PHASE)]


def run() -> Report:
    """Run the benchmark and return its figures."""
    report = Report(NAME)
    idle: list[float] = []
    busy: list[float] = []
    first_ms: list[float] = []
    slowest = 0.0
    codes: set[str] = set()
    with SilentPeer() as peer, running_server() as server:
        api = server.api()
        try:
            source_id = api.create_source("nonblocking-read", "postgresql", POSTGRES)
            silent = silent_connection("postgresql", peer.port)
            silent_ids = [
                api.create_source(f"nonblocking-silent-{i}", "postgresql", silent)
                for i in range(HANGING)
            ]
            path = f"/api/v1/data-sources/{source_id}"
            for _ in range(WARMUP):
                api.get(path)
            for _ in range(ROUNDS):
                idle += _measure(api, path)
                burst = Burst(api, silent_ids, HANG_TIMEOUT_SECONDS).start()
                started = time.monotonic()
                # Wait until every test is in the probe pool: running (connected to the peer)
                # or queued for a thread.
                while server.probes_pending() < HANGING and time.monotonic() - started < 5:
                    time.sleep(0.05)
                pending = server.probes_pending()
                if pending < HANGING:
                    raise BenchError(f"only {pending} of {HANGING} tests reached the probe pool")
                busy += _measure(api, path)
                if time.monotonic() - started >= HANG_TIMEOUT_SECONDS:
                    raise BenchError("the busy phase outlasted the hanging tests")
                hung = burst.join(HANG_TIMEOUT_SECONDS + 30)
                codes.update(str(data.get("error_code")) for _, data in hung)
                slowest = max(slowest, *(elapsed for elapsed, _ in hung))
            for _ in range(ROUNDS):
                burst = Burst(api, silent_ids[:BURST], BURST_TIMEOUT_SECONDS).start()
                # From the first millisecond: no wait for the tests to reach the pool.
                first_ms += [api.get(path) for _ in range(BURST_GETS)]
                burst.join(BURST_TIMEOUT_SECONDS + 30)
        finally:
            api.close()
    say(
        f"  {ROUNDS} rounds: {REQUESTS_PER_PHASE} GETs idle, then {REQUESTS_PER_PHASE} while "
        f"{HANGING} tests hung on a silent peer (32 in probe threads, the rest queued)"
    )
    say(f"  the hanging tests ({HANG_TIMEOUT_SECONDS} s limit) answered {sorted(codes)}")
    idle_p50, idle_p99 = ms(percentile(idle, 50)), ms(percentile(idle, 99))
    busy_p50, busy_p99 = ms(percentile(busy, 50)), ms(percentile(busy, 99))
    report.add("GET idle p50", idle_p50, "ms")
    report.add("GET idle p99", idle_p99, "ms")
    report.add(f"GET with {HANGING} hanging tests p50", busy_p50, "ms")
    report.add(f"GET with {HANGING} hanging tests p99", busy_p99, "ms")
    report.add("p99 ratio (hanging / idle)", busy_p99 / idle_p99, "x", at_most=TARGET_RATIO)
    burst_p99 = ms(percentile(first_ms, 99))
    say(f"  {ROUNDS} bursts of {BURST} tests, {BURST_GETS} GETs from the moment each was sent")
    report.add(
        f"GET from the start of a burst of {BURST} tests p50", ms(percentile(first_ms, 50)), "ms"
    )
    report.add(f"GET from the start of a burst of {BURST} tests p99", burst_p99, "ms")
    report.add("p99 ratio (burst start / idle)", burst_p99 / idle_p99, "x", at_most=TARGET_RATIO)
    report.add(f"slowest hanging test answer ({HANG_TIMEOUT_SECONDS} s limit)", slowest, "s")
    return report
