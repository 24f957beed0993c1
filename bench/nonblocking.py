"""2. Non-blocking: `GET /api/v1/data-sources/{id}` latency idle vs while 50 tests hang.

The hanging tests point at a silent peer (a loopback listener that accepts and never answers),
each at its own data source so single-flight cannot merge them. With the default pool
(RIVERGEN_PROBE_WORKERS=32) 32 of them hold a thread and 18 wait in the pool's queue. While they
hang, a keep-alive client measures the GET again: the event loop must not notice them.
"""

from __future__ import annotations

import time

from bench._harness import (
    POSTGRES,
    Api,
    BenchError,
    Burst,
    Report,
    SilentPeer,
    ms,
    percentile,
    running_server,
    say,
    silent_connection,
)

NAME = "nonblocking"
HANGING = 50
REQUESTS = 300
WARMUP = 30
HANG_TIMEOUT_SECONDS = 15
TARGET_RATIO = 2.0


def _measure(api: Api, path: str) -> list[float]:
    return [api.get(path) for _ in range(REQUESTS)]


def run() -> Report:
    """Run the benchmark and return its figures."""
    report = Report(NAME)
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
            idle = _measure(api, path)

            burst = Burst(api, silent_ids, HANG_TIMEOUT_SECONDS).start()
            started = time.monotonic()
            # Wait until every test is in the probe pool: running (connected to the peer) or
            # queued for a thread.
            while server.probes_pending() < HANGING and time.monotonic() - started < 10:
                time.sleep(0.05)
            pending, connected = server.probes_pending(), peer.accepted
            if pending < HANGING:
                raise BenchError(f"only {pending} of {HANGING} tests reached the probe pool")
            busy = _measure(api, path)
            measured_in = time.monotonic() - started
            hung = burst.join(HANG_TIMEOUT_SECONDS + 30)
        finally:
            api.close()
    if measured_in >= HANG_TIMEOUT_SECONDS:
        raise BenchError("the busy measurement outlasted the hanging tests; lower REQUESTS")
    codes = sorted({str(data.get("error_code")) for _, data in hung})
    slowest = max(elapsed for elapsed, _ in hung)
    say(f"  {REQUESTS} GETs idle, then {REQUESTS} while {HANGING} tests hung on a silent peer")
    say(f"  ({connected} connected to the peer, the others queued for a probe thread)")
    say(f"  the hanging tests ({HANG_TIMEOUT_SECONDS} s limit) answered {codes}")
    idle_p50, idle_p99 = ms(percentile(idle, 50)), ms(percentile(idle, 99))
    busy_p50, busy_p99 = ms(percentile(busy, 50)), ms(percentile(busy, 99))
    report.add("GET idle p50", idle_p50, "ms")
    report.add("GET idle p99", idle_p99, "ms")
    report.add(f"GET with {HANGING} hanging tests p50", busy_p50, "ms")
    report.add(f"GET with {HANGING} hanging tests p99", busy_p99, "ms")
    report.add("p99 ratio (hanging / idle)", busy_p99 / idle_p99, "x", at_most=TARGET_RATIO)
    report.add(f"slowest hanging test answer ({HANG_TIMEOUT_SECONDS} s limit)", slowest, "s")
    return report
