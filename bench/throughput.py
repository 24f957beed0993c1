"""4. Throughput: connection tests per second at concurrency 16 vs raw driver connects.

API side: 16 clients on keep-alive connections, each testing its own data source (so
single-flight never merges two tests) in a loop. Raw side: 16 threads, each connecting to the
same PostgreSQL, running `SELECT 1` and closing, in a loop. Both do the same number of
connections; the two phases alternate twice so a change in machine load touches both.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from bench._harness import PG_HOST, PG_PORT, POSTGRES, BenchError, Report, require_port, say
from bench._peers import raw_postgres_select1
from bench._server import Api, running_server

NAME = "throughput"
CONCURRENCY = 16
PER_WORKER = 15
ROUNDS = 2
TARGET_RATIO = 0.7


def _api_rate(api: Api, source_ids: list[int]) -> float:
    """Tests per second with one task per source, each running PER_WORKER tests in a row."""

    async def main() -> float:
        limits = httpx.Limits(max_connections=CONCURRENCY + 1)
        async with httpx.AsyncClient(
            base_url=api.base_url,
            headers={"Authorization": f"Bearer {api.token}"},
            timeout=api.timeout,
            limits=limits,
        ) as client:

            async def worker(source_id: int) -> None:
                for _ in range(PER_WORKER):
                    response = await client.post(
                        f"/api/v1/data-sources/{source_id}/test", json={"timeout_seconds": 30}
                    )
                    data: dict[str, Any] = response.json().get("data") or {}
                    if response.status_code != 200 or not data.get("connection_successful"):
                        raise BenchError(f"test failed: {response.status_code} {response.text}")

            started = time.perf_counter()
            await asyncio.gather(*(worker(s) for s in source_ids))
            return CONCURRENCY * PER_WORKER / (time.perf_counter() - started)

    return asyncio.run(main())


def _raw_rate() -> float:
    """Raw connects (+ SELECT 1) per second with CONCURRENCY threads."""
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(PER_WORKER):
                raw_postgres_select1()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise BenchError(f"raw connect failed: {errors[0]!r}")
    return CONCURRENCY * PER_WORKER / elapsed


def run() -> Report:
    """Run the benchmark and return its figures."""
    report = Report(NAME)
    require_port(PG_HOST, PG_PORT, "PostgreSQL")
    with running_server() as server:
        api = server.api()
        try:
            source_ids = [
                api.create_source(f"throughput-{i}", "postgresql", POSTGRES)
                for i in range(CONCURRENCY)
            ]
            # Warm-up: every source once, and the raw path once per thread.
            for source_id in source_ids:
                api.test(source_id)
            raw_postgres_select1()
            api_rates: list[float] = []
            raw_rates: list[float] = []
            for _ in range(ROUNDS):
                raw_rates.append(_raw_rate())
                api_rates.append(_api_rate(api, source_ids))
        finally:
            api.close()
    total = CONCURRENCY * PER_WORKER
    say(f"  {ROUNDS} rounds of {total} connections each way, concurrency {CONCURRENCY}")
    raw = sum(raw_rates) / len(raw_rates)
    tests = sum(api_rates) / len(api_rates)
    report.add("raw driver connects + SELECT 1 per second", raw, "/s")
    report.add("POST /test per second", tests, "/s")
    report.add("ratio (tests / raw connects)", tests / raw, "x", at_least=TARGET_RATIO)
    return report
