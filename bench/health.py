"""5. Health history: `GET /api/v1/data-sources/{id}/health` on a big store, SQLite and PostgreSQL.

The store holds 10,000 data sources, one of which has 1,000,000 health records spread over the
last 29 days (inside the 30-day retention, so the purge leaves them alone). Rows go in with
plain SQL while the server runs: one `executemany` transaction on SQLite, `COPY` on
PostgreSQL, followed on PostgreSQL by the `ANALYZE` autovacuum would run after such a load.
The request is the default one (summary over all retained history, first page of 50).
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._harness import PG_HOST, PG_PORT, POSTGRES, Report, ms, percentile, require_port, say
from bench._server import running_server

NAME = "health"
SOURCES = 10_000
RECORDS = 1_000_000
SPAN = timedelta(days=29)
REQUESTS = 50
MIN_REQUESTS = 5
BUDGET_SECONDS = 20.0
WARMUP = 2
TARGET_P50_MS = 20.0
# SQLAlchemy's text form of a DateTime on SQLite (naive UTC, see rivergen.store.base).
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
SOURCE_COLUMNS = (
    "organization_id",
    "name",
    "type",
    "connection",
    "status",
    "created_at",
    "updated_at",
)
RECORD_COLUMNS = (
    "data_source_id",
    "organization_id",
    "tested_at",
    "connection_successful",
    "response_time_ms",
    "error_code",
    "error_message",
    "error_phase",
    "ssh_tunnel_established",
    "database_version",
    "triggered_by",
    "user_id",
)


def _records(source_id: int, organization_id: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """RECORDS rows, newest first, about 2% failures; reproducible (fixed seed)."""
    rng = random.Random(5)
    step = SPAN / RECORDS
    for i in range(RECORDS):
        tested_at = now - step * (i + 1)
        if rng.random() < 0.02:
            yield (
                source_id,
                organization_id,
                tested_at,
                False,
                None,
                "TIMEOUT",
                "The server accepted the connection but did not answer within 30 s",
                "auth",
                False,
                None,
                "schedule",
                None,
            )
        else:
            yield (
                source_id,
                organization_id,
                tested_at,
                True,
                round(rng.uniform(3.0, 60.0), 1),
                None,
                None,
                None,
                False,
                "PostgreSQL 15.20",
                "schedule",
                None,
            )


def _sources(organization_id: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    connection = json.dumps({k: v for k, v in POSTGRES.items() if k != "password"})
    for i in range(SOURCES - 1):
        yield (organization_id, f"bulk-{i}", "postgresql", connection, "pending", now, now)


def _insert_sql(table: str, columns: tuple[str, ...], marker: str) -> str:
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
    )


def _fill_sqlite(path: str, source_id: int, organization_id: int, now: datetime) -> None:
    def text_time(row: tuple[Any, ...], index: int) -> tuple[Any, ...]:
        stamp = row[index].astimezone(UTC).replace(tzinfo=None).strftime(SQLITE_TIME)
        return (*row[:index], stamp, *row[index + 1 :])

    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        with conn:  # one transaction
            conn.executemany(
                _insert_sql("data_sources", SOURCE_COLUMNS, "?"),
                (text_time(text_time(r, 5), 6) for r in _sources(organization_id, now)),
            )
            conn.executemany(
                _insert_sql("health_records", RECORD_COLUMNS, "?"),
                (text_time(r, 2) for r in _records(source_id, organization_id, now)),
            )
    finally:
        conn.close()


def _fill_postgres(dsn: str, source_id: int, organization_id: int, now: datetime) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=False) as conn:
        with conn.cursor() as cursor:
            cursor.executemany(
                _insert_sql("data_sources", SOURCE_COLUMNS, "%s"),
                list(_sources(organization_id, now)),
            )
            columns = ", ".join(RECORD_COLUMNS)
            with cursor.copy(f"COPY health_records ({columns}) FROM STDIN") as copy:
                for row in _records(source_id, organization_id, now):
                    copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE data_sources")
        conn.execute("ANALYZE health_records")


@contextlib.contextmanager
def _scratch_database() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL; its name."""
    import psycopg

    name = f"rivergen_bench_{secrets.token_hex(4)}"
    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _sample(request: Callable[[], float]) -> list[float]:
    """Up to REQUESTS timings, fewer when they are slow (at least MIN_REQUESTS, ~BUDGET s)."""
    times: list[float] = []
    started = time.monotonic()
    while len(times) < REQUESTS and (
        len(times) < MIN_REQUESTS or time.monotonic() - started < BUDGET_SECONDS
    ):
        times.append(request())
    return times


def _measure(report: Report, store: str, database_url: str | None, dsn: str | None) -> None:
    with running_server(database_url=database_url) as server:
        api = server.api()
        try:
            source_id = api.create_source("health-big", "postgresql", POSTGRES)
            organization_id = int(
                api.client.get(f"/api/v1/data-sources/{source_id}").json()["data"][
                    "organization_id"
                ]
            )
            now = datetime.now(UTC)
            started = time.monotonic()
            if dsn is None:
                _fill_sqlite(str(server.data_dir / "rivergen.db"), source_id, organization_id, now)
            else:
                _fill_postgres(dsn, source_id, organization_id, now)
            say(
                f"  {store}: {SOURCES:,} sources and {RECORDS:,} records for one of them "
                f"inserted in {time.monotonic() - started:.0f} s"
            )
            path = f"/api/v1/data-sources/{source_id}/health"
            response = api.client.get(path)
            summary = response.json()["data"]["summary"]
            if summary["checks"] != RECORDS:
                say(f"  warning: the summary counts {summary['checks']} checks, not {RECORDS}")
            for _ in range(WARMUP):
                api.get(path)
            times = _sample(lambda: api.get(path))
            since = (now - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
            day = _sample(lambda: api.get(f"{path}?since={since}"))
        finally:
            api.close()
    say(f"  {store}: {len(times)} requests (default window), {len(day)} (last 24 h)")
    report.add(f"{store} GET /health p50", ms(percentile(times, 50)), "ms", below=TARGET_P50_MS)
    report.add(f"{store} GET /health p99", ms(percentile(times, 99)), "ms")
    report.add(f"{store} GET /health?since=24h ago p50", ms(percentile(day, 50)), "ms")


def run() -> Report:
    """Run the benchmark and return its figures."""
    report = Report(NAME)
    _measure(report, "SQLite", None, None)
    require_port(PG_HOST, PG_PORT, "PostgreSQL")
    with _scratch_database() as name:
        url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
        dsn = f"host={PG_HOST} port={PG_PORT} user=postgres dbname={name}"
        _measure(report, "PostgreSQL", url, dsn)
    return report
