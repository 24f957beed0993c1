"""Scaled out: two `rivergen worker` processes and two `rivergen beat` on Redis and PostgreSQL.

20 sources checked every 2 s for about 20 s. Every source gets its expected number of checks
within one, no source is checked twice in one interval, and SIGKILL of one worker in the middle
of the run loses no more than the checks it held at that moment. Of the two beats, only one
holds the lock and sends the schedule.

Only meaningful on PostgreSQL (concurrent claimers): the test makes its own throwaway database,
whatever RIVERGEN_TEST_STORE says, and does not use the `store_url` fixture, so it is not marked
`store` and runs once, in the first pass of `make test`. Redis keys live in database 5 under a
namespace of their own, deleted afterwards.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio
import httpx
import psycopg
import pytest
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

from rivergen.app import create_app
from rivergen.settings import Settings
from rivergen.store.base import utcnow
from rivergen.store.migrate import upgrade_blocking
from tests.fixtures.app import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    TEST_SECRET_KEY,
    start_api,
)
from tests.fixtures.required import unavailable
from tests.fixtures.store import PG_ADMIN_DSN, pg_url
from tests.health.helpers import sign_in

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(150)]

INTERVAL = 2
SOURCES = 20
RUN_SECONDS = 20.0
KILL_AFTER_SECONDS = 9.0
REDIS_URL = "redis://127.0.0.1:6379/5"
JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"
LOCKED = "beat: Acquired lock"


@pytest.fixture
def scale_store() -> Iterator[str]:
    """A throwaway, migrated PostgreSQL database of this test only."""
    name = f"rivergen_scale_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL unavailable: {exc}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        upgrade_blocking(pg_url(name))
        yield pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def namespace() -> Iterator[str]:
    """A Redis key namespace of this test in database 5, removed afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis unavailable: {exc}")
    prefix = f"rivergen-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
        client.close()


@dataclass
class Process:
    """A rivergen subprocess with its output in a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, wait: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def spawn(name: str, args: list[str], env: dict[str, str], workdir: Path) -> Process:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "rivergen", *args],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(name, popen, log)


async def wait_for(process: Process, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in process.output():
            return
        if process.popen.poll() is not None:
            break
        await anyio.sleep(0.2)
    pytest.fail(f"{process.name} did not log {text!r}:\n{process.output()[-3000:]}")


def pg_connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    database = make_url(url).database
    return psycopg.connect(f"{PG_ADMIN_DSN} dbname={database}", autocommit=True, connect_timeout=5)


def held_claims(url: str) -> set[int]:
    """Sources whose check is claimed by someone right now."""
    with pg_connect(url) as connection:
        rows = connection.execute(
            "SELECT id FROM data_sources WHERE check_claimed_until > now()"
        ).fetchall()
    return {int(str(row[0])) for row in rows}


def scheduled_records(url: str) -> dict[int, list[datetime]]:
    with pg_connect(url) as connection:
        rows = connection.execute(
            "SELECT data_source_id, tested_at FROM health_records "
            "WHERE triggered_by = 'schedule' ORDER BY data_source_id, tested_at"
        ).fetchall()
    grouped: dict[int, list[datetime]] = {}
    for source_id, tested_at in rows:
        assert isinstance(tested_at, datetime)
        grouped.setdefault(int(str(source_id)), []).append(tested_at)
    return grouped


class Phases:
    """Elapsed time at each step (printed with RIVERGEN_SCALE_DEBUG=1)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: list[tuple[str, float]] = []

    def mark(self, label: str) -> None:
        self.marks.append((label, round(time.monotonic() - self.start, 1)))

    def __repr__(self) -> str:
        return ", ".join(f"{label} {at}s" for label, at in self.marks)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metric_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")


def missed(gap: float) -> int:
    """Checks missing between two consecutive ones `gap` seconds apart.

    A check may start up to 3/4 of an interval late without counting as a loss: after a lost
    check, the source waits for the lost claim's lease to run out, then for the next dispatch.
    """
    return max(0, math.floor(gap / INTERVAL + 0.25) - 1)


async def test_workers_and_beat_run_each_check_once(
    scale_store: str, namespace: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "RIVERGEN_DATABASE_URL": scale_store,
        "RIVERGEN_BROKER_URL": REDIS_URL,
        "RIVERGEN_SECRET_KEYS": TEST_SECRET_KEY,
        "RIVERGEN_JWT_SECRET": JWT_SECRET,
        "RIVERGEN_DATA_DIR": str(tmp_path / "data"),
        "RIVERGEN_SCHEDULER_ENABLED": "false",
        "RIVERGEN_ALLOW_LOOPBACK": "true",  # the checked sources are on loopback
        "RIVERGEN_LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
    }
    common = ["--namespace", namespace]
    metrics_port = free_port()
    processes = [
        spawn("worker-a", ["worker", *common, "--concurrency", "4"], env, tmp_path),
        spawn(
            "worker-b",
            ["worker", *common, "--concurrency", "4", "--metrics-port", str(metrics_port)],
            env,
            tmp_path,
        ),
        spawn("beat-1", ["beat", *common], env, tmp_path),
        spawn("beat-2", ["beat", *common], env, tmp_path),
    ]
    worker_a, worker_b, *beats = processes
    phases = Phases()
    try:
        for worker in (worker_a, worker_b):
            await wait_for(worker, " ready.", 90)
        for candidate in beats:
            await wait_for(candidate, "is starting.", 90)
        phases.mark("ready")
        deadline = time.monotonic() + 30
        while not (active := [b for b in beats if LOCKED in b.output()]):
            assert time.monotonic() < deadline, [b.output()[-2000:] for b in beats]
            await anyio.sleep(0.2)
        (beat,) = active
        (standby,) = [b for b in beats if b is not beat]

        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=scale_store,
            admin_email=ADMIN_EMAIL,
            admin_password=ADMIN_PASSWORD,
            jwt_secret=JWT_SECRET,
            secret_keys=TEST_SECRET_KEY,
            scheduler_enabled=False,
            min_health_check_interval_seconds=INTERVAL,
            allow_loopback=True,
            broker_url=REDIS_URL,
        )
        async for api in start_api(create_app(settings)):
            org = await sign_in(api)
            ids = [await org.create_source(interval=INTERVAL) for _ in range(SOURCES)]
        started = time.monotonic()
        phases.mark("sources created")

        await anyio.sleep(KILL_AFTER_SECONDS)
        worker_a.stop(signal.SIGKILL)
        held = held_claims(scale_store)
        phases.mark("killed")
        killed_at = utcnow()

        await anyio.sleep(max(0.0, RUN_SECONDS - (time.monotonic() - started)))
        # Only one beat sends the schedule: the other waited for the lock all along.
        assert LOCKED not in standby.output()
        standby.stop(signal.SIGKILL)
        stopped_at = utcnow()  # no dispatch after this
        beat.stop()
        phases.mark("beat stopped")
        # Checks already claimed start within the dispatch lookahead (1.5 s) and take ms.
        await anyio.sleep(3)
        worker_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        worker_b.stop()
        phases.mark("worker stopped")
    finally:
        for process in processes:
            process.stop(signal.SIGKILL, wait=5)

    records = scheduled_records(scale_store)
    if os.environ.get("RIVERGEN_SCALE_DEBUG"):
        print(phases)
        for source_id, times in sorted(records.items()):
            gaps = [round((b - a).total_seconds(), 2) for a, b in itertools.pairwise(times)]
            first = (times[0] - killed_at).total_seconds()
            stop = (stopped_at - killed_at).total_seconds()
            print(source_id, source_id in held, round(first, 2), round(stop, 2), len(times), gaps)
    assert sorted(records) == sorted(ids), "every source was checked"
    lost_total = 0
    report = []
    for source_id in ids:
        times = records[source_id]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        # Never twice in one interval: a duplicate claim would put two checks together.
        assert min(gaps) >= 0.75 * INTERVAL, (source_id, gaps)
        missing = sum(missed(gap) for gap in gaps)
        # One check per interval from the first until the beat stopped (the last dispatch looks
        # 1.5 s ahead, hence "within one"), less a check the killed worker held.
        expected = int((stopped_at - times[0]).total_seconds() // INTERVAL) + 1
        report.append((source_id, len(times), expected, missing))
        assert expected - 1 - missing <= len(times) <= expected + 1, (source_id, expected, gaps)
        if missing:
            # Only a check the killed worker held can be lost, and only that one.
            assert source_id in held, (source_id, gaps, held)
            assert missing == 1, (source_id, gaps)
            (a, b) = next(
                (a, b) for a, b in itertools.pairwise(times) if missed((b - a).total_seconds())
            )
            assert a <= killed_at <= b, (source_id, times, killed_at)
        lost_total += missing
    assert lost_total <= len(held), (lost_total, held, report)
    assert "Traceback" not in worker_b.output(), worker_b.output()[-3000:]
    # The surviving worker's own metrics: lateness of the checks it started, their outcomes.
    lateness = metric_value(worker_metrics, "rivergen_scheduled_check_lateness_seconds_count")
    assert lateness > 0
    assert metric_value(worker_metrics, 'rivergen_scheduled_checks_total{result="ok"}') > 0
