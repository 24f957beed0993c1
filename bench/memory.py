"""6. Memory: resident size (VmRSS) of the server idle and with 100 concurrent tests.

Idle is measured twice: right after start and sign-in, and after one test of each network
engine (their drivers are imported on first use), which is the steady idle state. Then 100
concurrent tests: against a silent peer (all of them stay in flight for their whole 5 s limit:
32 in probe threads, 68 queued; RIVERGEN_PROBE_QUEUE is raised to 128 so none is refused),
and against the real PostgreSQL. RSS is sampled every 50 ms; the peak is reported.
"""

from __future__ import annotations

import threading
import time

from bench._harness import MARIADB, POSTGRES, REDIS_HOST, REDIS_PORT, Report, say
from bench._peers import SilentPeer, silent_connection
from bench._server import Burst, Server, expect_success, running_server

NAME = "memory"
CONCURRENT = 100
HANG_TIMEOUT_SECONDS = 5
TARGET_IDLE_MB = 200.0


class _PeakRss:
    """Samples the server's RSS in the background until stopped; keeps the peak."""

    def __init__(self, server: Server) -> None:
        self.peak = server.rss_mb()
        self._server = server
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._server.rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def run() -> Report:
    """Run the benchmark and return its figures."""
    report = Report(NAME)
    with (
        SilentPeer() as peer,
        running_server(env={"RIVERGEN_PROBE_QUEUE": "128"}) as server,
    ):
        api = server.api()
        try:
            time.sleep(1.0)
            started_rss = server.rss_mb()
            warm = {
                "postgresql": POSTGRES,
                "mariadb": MARIADB,
                "redis": {"host": REDIS_HOST, "port": REDIS_PORT},
            }
            for engine, connection in warm.items():
                _, data = api.test(api.create_source(f"memory-warm-{engine}", engine, connection))
                expect_success(data, f"warm-up {engine}")
            time.sleep(2.0)  # idle probe threads exit after 1 s
            idle_rss = server.rss_mb()

            silent = silent_connection("postgresql", peer.port)
            silent_ids = [
                api.create_source(f"memory-silent-{i}", "postgresql", silent)
                for i in range(CONCURRENT)
            ]
            sampler = _PeakRss(server)
            hung = Burst(api, silent_ids, HANG_TIMEOUT_SECONDS).start().join(60)
            hanging_peak = sampler.stop()
            busy = sum(1 for _, data in hung if data.get("error_code") == "TIMEOUT")

            real_ids = [
                api.create_source(f"memory-real-{i}", "postgresql", POSTGRES)
                for i in range(CONCURRENT)
            ]
            sampler = _PeakRss(server)
            done = Burst(api, real_ids, 30).start().join(120)
            real_peak = sampler.stop()
            ok = sum(1 for _, data in done if data.get("connection_successful"))
            time.sleep(2.0)
            after_rss = server.rss_mb()
        finally:
            api.close()
    say(f"  {busy} of {CONCURRENT} silent-peer tests timed out as expected; {ok} real ones passed")
    report.add("RSS right after start", started_rss, "MiB")
    report.add("RSS idle (drivers loaded)", idle_rss, "MiB", below=TARGET_IDLE_MB)
    report.add(f"RSS peak, {CONCURRENT} concurrent tests hanging", hanging_peak, "MiB")
    report.add(f"RSS peak, {CONCURRENT} concurrent tests of PostgreSQL", real_peak, "MiB")
    report.add("RSS idle again afterwards", after_rss, "MiB")
    return report
