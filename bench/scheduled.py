"""7. Scheduled checks at scale: N sources at a 60 s interval, the in-process scheduler (default).

A tenth of the sources fail: half point at a closed loopback port, half at a silent peer (a
listener that accepts and never answers); the rest at the local PostgreSQL. The sources are
registered through the API, then the server is watched for OBSERVE_SECONDS:

* checks a minute (`rivergen_scheduled_checks_total`, results ok + failed) against N;
* start lateness p99, read from the `rivergen_scheduled_check_lateness_seconds` histogram (the
  upper bound of the bucket the 99th percentile falls in, so it never flatters);
* checks run twice: two scheduled health records of one source less than half an interval
  apart (read from the SQLite store after the run);
* server CPU per check (all threads, `/proc/<pid>/stat`), at every size, to see it stay flat;
  the CPU of the watching GETs (their count times the CPU of one idle GET) is taken out;
* `GET` of a data source p99 while the checks run, against the same GET before any schedule.

Quick by default (100 sources, 70 s: every source checked at least once). The full run of the
issue: `BENCH_SCHEDULED_SOURCES=100,1000,10000 BENCH_SCHEDULED_SECONDS=180 python -m bench
scheduled`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime

from bench._harness import (
    PG_HOST,
    PG_PORT,
    POSTGRES,
    BenchError,
    Report,
    free_port,
    ms,
    percentile,
    require_port,
    say,
)
from bench._peers import SilentPeer, silent_connection
from bench._server import Server, running_server

NAME = "scheduled"
INTERVAL_SECONDS = 60
TARGET_LATENESS_P99_SECONDS = 2.0
TARGET_GET_RATIO = 2.0
# The first checks are spread over the first interval; a run is long enough for all of them.
GETS = 100


def _sizes() -> list[int]:
    raw = os.environ.get("BENCH_SCHEDULED_SOURCES", "100")
    return [int(part) for part in raw.split(",") if part.strip()]


def _observe_seconds() -> float:
    return float(os.environ.get("BENCH_SCHEDULED_SECONDS", "70"))


def _metric_lines(server: Server, name: str) -> list[tuple[str, float]]:
    """(labels, value) of every sample of `name` on `GET /metrics`."""
    api_text = server.metrics_text()
    samples: list[tuple[str, float]] = []
    for line in api_text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, value = line.rsplit(" ", 1)
            samples.append((head[len(name) :], float(value)))
    return samples


def _checks_done(server: Server) -> float:
    return sum(
        value
        for labels, value in _metric_lines(server, "rivergen_scheduled_checks_total")
        if 'result="ok"' in labels or 'result="failed"' in labels
    )


def _lateness_p99_bound(server: Server) -> float:
    """The upper bound of the lateness bucket holding the 99th percentile (inf past the last)."""
    buckets: list[tuple[float, float]] = []
    for labels, value in _metric_lines(server, "rivergen_scheduled_check_lateness_seconds_bucket"):
        le = labels.split('le="', 1)[1].split('"', 1)[0]
        buckets.append((float(le), value))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        raise BenchError("no scheduled check started")
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= 0.99 * total:
            return bound
    return float("inf")


def _run_twice(server: Server) -> int:
    """Scheduled records of one source less than half an interval after the previous one."""
    conn = sqlite3.connect(str(server.data_dir / "rivergen.db"), timeout=60)
    try:
        rows = conn.execute(
            "SELECT data_source_id, tested_at FROM health_records"
            " WHERE triggered_by = 'schedule' ORDER BY data_source_id, tested_at"
        ).fetchall()
    finally:
        conn.close()
    twice = 0
    previous: tuple[int, datetime] | None = None
    for source_id, tested_at in rows:
        at = datetime.fromisoformat(str(tested_at))
        same_source = previous is not None and previous[0] == source_id
        if same_source and previous and (at - previous[1]).total_seconds() < INTERVAL_SECONDS / 2:
            twice += 1
        previous = (source_id, at)
    return twice


def _size(report: Report, sources: int, observe: float) -> None:
    with SilentPeer() as peer, running_server() as server:
        api = server.api(timeout=120.0)
        try:
            read_id = api.create_source("scheduled-read", "postgresql", POSTGRES)
            path = f"/api/v1/data-sources/{read_id}"
            for _ in range(20):
                api.get(path)
            # The CPU of one GET, so the GETs of the watch can be taken out of the CPU per check.
            cpu_idle = server.cpu_seconds()
            idle = [api.get(path) for _ in range(GETS)]
            cpu_per_get = (server.cpu_seconds() - cpu_idle) / GETS
            closed = {**POSTGRES, "port": free_port()}
            silent = silent_connection("postgresql", peer.port)
            started = time.monotonic()
            for i in range(sources):
                # One in ten fails: every 20th closed port, every 20th (offset 10) silent.
                connection = closed if i % 20 == 0 else silent if i % 20 == 10 else POSTGRES
                api.create_source(
                    f"scheduled-{i}", "postgresql", connection, interval_seconds=INTERVAL_SECONDS
                )
            say(f"  {sources} sources registered in {time.monotonic() - started:.1f} s")
            cpu_before, checks_before = server.cpu_seconds(), _checks_done(server)
            watch_started = time.monotonic()
            busy: list[float] = []
            while time.monotonic() - watch_started < observe:
                busy += [api.get(path) for _ in range(10)]
                time.sleep(0.5)
            elapsed = time.monotonic() - watch_started
            cpu_used = server.cpu_seconds() - cpu_before - cpu_per_get * len(busy)
            checks = _checks_done(server) - checks_before
            lateness = _lateness_p99_bound(server)
        finally:
            api.close()
        twice = _run_twice(server)
    per_minute = checks / elapsed * 60.0
    label = f"{sources} sources"
    say(f"  {label}: {checks:.0f} checks in {elapsed:.0f} s, {len(busy)} GETs meanwhile")
    report.add(f"{label}: checks a minute", per_minute, "/min", at_least=0.95 * sources)
    report.add(
        f"{label}: start lateness p99 (bucket bound)",
        lateness,
        "s",
        at_most=TARGET_LATENESS_P99_SECONDS,
    )
    report.add(f"{label}: checks run twice", float(twice), "", at_most=0)
    report.add(f"{label}: server CPU per check", ms(cpu_used / max(checks, 1.0)), "ms")
    idle_p99, busy_p99 = ms(percentile(idle, 99)), ms(percentile(busy, 99))
    report.add(f"{label}: GET p99 idle", idle_p99, "ms")
    report.add(f"{label}: GET p99 during checks", busy_p99, "ms")
    report.add(
        f"{label}: GET p99 ratio (checks / idle)",
        busy_p99 / idle_p99,
        "x",
        at_most=TARGET_GET_RATIO,
    )


def run() -> Report:
    """Run the benchmark and return its figures."""
    report = Report(NAME)
    require_port(PG_HOST, PG_PORT, "PostgreSQL")
    observe = _observe_seconds()
    for sources in _sizes():
        _size(report, sources, observe)
    return report
