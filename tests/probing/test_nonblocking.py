"""Connection tests run in the app's bounded thread pool and never block the event loop.

Hanging tests (a peer that accepts TCP and never answers) must leave other requests fast, be
answered within timeout_seconds + 1 s, and give their threads back; a full pool answers 503
SERVICE_BUSY with Retry-After; concurrent identical tests share one probe (single-flight).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from rivergen.probing.pool import ProbePool
from rivergen.settings import Settings
from tests.fixtures.app import Api
from tests.fixtures.datasources import Tenancy, context_of, error_of, unique_name
from tests.fixtures.probing import (
    assert_failed,
    health_records,
    network_body,
    parse_utc,
    result_of,
    run_test,
    running,
)
from tests.fixtures.servers import Server

pytestmark = pytest.mark.anyio

HANGING = 50
HANG_SECONDS = 5
FAST_SECONDS = 0.5  # generous: a request that waited on a test would take seconds


def busy_settings(factory: Callable[..., Settings], **overrides: Any) -> Settings:
    """Settings whose rate limits stay out of the way of many tests at once."""
    values: dict[str, Any] = {
        "tests_per_minute_per_user": 1000,
        "tests_per_minute_per_organization": 1000,
    }
    values.update(overrides)
    return factory(**values)


async def silent_source(tenancy: Tenancy, listener: tuple[str, int]) -> int:
    """A PostgreSQL data source on a listener that accepts and never answers."""
    host, port = listener
    server = Server(host, port, username="postgres", database="postgres")
    created = await tenancy.create(network_body("postgresql", server, unique_name("silent")))
    return int(created["id"])


async def wait_until(
    condition: Callable[[], bool], seconds: float, what: str | Callable[[], str]
) -> None:
    """Poll `condition` until it holds, failing after `seconds` with `what` (or what it returns)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out waiting until {what if isinstance(what, str) else what()}")
        await asyncio.sleep(0.02)


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    """A response and the seconds it took."""
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


def seconds_since_tested_at(response: httpx.Response) -> float:
    """How long after the test began (its tested_at) the response arrived."""
    tested_at = parse_utc(response.json()["data"]["tested_at"])
    return (datetime.now(UTC) - tested_at).total_seconds()


async def hang(
    api: Api, tenancy: Tenancy, data_source_id: int, index: int, seconds: int
) -> tuple[httpx.Response, float, float]:
    """One hanging test (each index is its own query, so single-flight does not merge tests of
    one source): the response, its seconds from the request and from the test's start."""
    body = {"test_query": f"SELECT {index}", "timeout_seconds": seconds}
    response, elapsed = await timed(run_test(api.client, data_source_id, tenancy.owner, body))
    after_start = seconds_since_tested_at(response) if response.status_code == 200 else 0.0
    return response, elapsed, after_start


def thread_names() -> list[str]:
    """The names of the live threads, for failure messages."""
    return sorted(thread.name for thread in threading.enumerate())


def pool_of(api: Api) -> ProbePool:
    """The running app's probe pool."""
    return context_of(api).pool


async def test_hanging_tests_leave_other_requests_fast_and_threads_return(
    settings_factory: Callable[..., Settings],
    silent_listener: tuple[str, int],
    local_postgres: Server,
) -> None:
    settings = busy_settings(settings_factory, probe_workers=64, probe_queue=64)
    async with running(settings) as (api, tenancy):
        pool = pool_of(api)
        # One data source each: concurrent tests of one source would all write its row at the
        # end, and that queue of writes is not what this test measures.
        ids = await asyncio.gather(
            *(silent_source(tenancy, silent_listener) for _ in range(HANGING))
        )
        # Warm up what lives as long as the app (driver imports, the connectors' alarm thread,
        # a full pool of store connections: one thread each on SQLite), then let the probe
        # pool's idle thread exit, so that the baseline holds no probe thread.
        working = await tenancy.create(network_body("postgresql", local_postgres, "working"))
        assert result_of(await run_test(api.client, working["id"], tenancy.owner))[
            "connection_successful"
        ]
        url = f"/api/v1/data-sources/{ids[0]}"
        await asyncio.gather(*(api.client.get(url, headers=tenancy.owner) for _ in range(30)))
        await wait_until(lambda: pool.threads == 0, 5, "the warm-up thread exited")
        baseline = threading.active_count()

        started = time.monotonic()
        tasks = [
            asyncio.create_task(hang(api, tenancy, data_source_id, 1, HANG_SECONDS))
            for data_source_id in ids
        ]
        # Every one of them is running in its own thread at once, none queued.
        await wait_until(lambda: pool.in_flight == HANGING, 5, f"{HANGING} calls ran at once")
        assert pool.queued == 0
        assert threading.active_count() >= baseline + HANGING

        slowest = 0.0
        while time.monotonic() - started < HANG_SECONDS - 1.5:
            for url in (f"/api/v1/data-sources/{ids[-1]}", "/healthz"):
                response, seconds = await timed(api.client.get(url, headers=tenancy.owner))
                assert response.status_code == 200, response.text
                slowest = max(slowest, seconds)
            await asyncio.sleep(0.05)
        assert pool.in_flight == HANGING, "the hanging tests ended early"
        assert slowest < FAST_SECONDS, f"a request took {slowest:.2f} s while tests hung"

        for response, elapsed, after_start in await asyncio.gather(*tasks):
            assert_failed(result_of(response), "TIMEOUT")
            # The deadline counts from the request's arrival (sign-in and queueing included),
            # and a slow store write does not hold the answer back.
            assert after_start < HANG_SECONDS + 1, f"answered {after_start:.2f} s after start"
            assert elapsed < HANG_SECONDS + 1, f"answered after {elapsed:.2f} s"
        # Writes that outlived their answer finish shortly after.
        for _ in range(50):
            records = [r for r in await health_records(api) if r.data_source_id in ids]
            if len(records) >= len(ids):
                break
            await asyncio.sleep(0.1)
        assert sorted(r.data_source_id for r in records) == sorted(ids)
        assert {r.error_code for r in records} == {"TIMEOUT"}

        # The pool's idle threads exit after ~1 s: the process is back where it was.
        await wait_until(
            lambda: threading.active_count() <= baseline,
            5,
            lambda: f"the thread count returned to {baseline}: {thread_names()}",
        )
        assert pool.threads == 0
        assert pool.in_flight == 0
        assert pool.overrunning == 0


async def test_full_pool_and_queue_answer_503_with_retry_after(
    settings_factory: Callable[..., Settings],
    silent_listener: tuple[str, int],
    local_postgres: Server,
) -> None:
    settings = busy_settings(settings_factory, probe_workers=2, probe_queue=0)
    async with running(settings) as (api, tenancy):
        pool = pool_of(api)
        data_source_id = await silent_source(tenancy, silent_listener)
        tasks = [asyncio.create_task(hang(api, tenancy, data_source_id, i, 3)) for i in range(2)]
        await wait_until(lambda: pool.in_flight == 2, 5, "both workers are busy")

        response, seconds, _ = await hang(api, tenancy, data_source_id, 99, 3)
        error = error_of(response, 503, "SERVICE_BUSY")
        assert "retry" in error["message"].lower()
        assert 1 <= int(response.headers["Retry-After"]) <= 3
        assert seconds < FAST_SECONDS, "a refused test must be refused at once"
        # The unsaved-configuration test shares the pool and is refused the same way.
        unsaved = network_body("postgresql", local_postgres, "unsaved")
        refused = await api.client.post(
            "/api/v1/data-sources/test", json=unsaved, headers=tenancy.owner
        )
        error_of(refused, 503, "SERVICE_BUSY")
        assert int(refused.headers["Retry-After"]) >= 1

        for done, _, _ in await asyncio.gather(*tasks):
            assert_failed(result_of(done), "TIMEOUT")
        # Only the two tests that ran were recorded; the capacity is free again.
        assert len(await health_records(api, data_source_id)) == 2
        again = await api.client.post(
            "/api/v1/data-sources/test", json=unsaved, headers=tenancy.owner
        )
        assert result_of(again)["connection_successful"] is True


async def test_concurrent_identical_tests_share_one_probe(
    settings_factory: Callable[..., Settings], local_postgres: Server
) -> None:
    async with running(busy_settings(settings_factory)) as (api, tenancy):
        created = await tenancy.create(network_body("postgresql", local_postgres, "shared"))
        data_source_id = int(created["id"])
        body = {"test_query": "SELECT 1 FROM pg_sleep(1)", "timeout_seconds": 10}
        first, second = await asyncio.gather(
            run_test(api.client, data_source_id, tenancy.owner, body),
            run_test(api.client, data_source_id, tenancy.owner, body),
        )
        one, two = result_of(first), result_of(second)
        assert one["connection_successful"] is True
        assert one["test_query_result"] == "1"
        assert one == two  # the same probe: same tested_at, same response time
        (record,) = await health_records(api, data_source_id)
        assert record.tested_at == parse_utc(one["tested_at"])

        # Shared while running, never cached: a later test probes again.
        third = result_of(await run_test(api.client, data_source_id, tenancy.owner, body))
        assert parse_utc(third["tested_at"]) > parse_utc(one["tested_at"])
        assert len(await health_records(api, data_source_id)) == 2


async def test_a_change_during_a_test_keeps_its_result_off_the_new_configuration(
    settings_factory: Callable[..., Settings], local_postgres: Server, closed_port: int
) -> None:
    """PATCH resets the status: results of the old destination say nothing about the new one.

    Neither may a test that was already running when the destination changed write its outcome
    over that reset, nor may a test asked for after the change join the old one's probe.
    """
    async with running(busy_settings(settings_factory)) as (api, tenancy):
        created = await tenancy.create(network_body("postgresql", local_postgres, "moving"))
        data_source_id = int(created["id"])
        body = {"test_query": "SELECT 1 FROM pg_sleep(1.5)", "timeout_seconds": 10}
        before = asyncio.create_task(run_test(api.client, data_source_id, tenancy.owner, body))
        await wait_until(lambda: context_of(api).pool.in_flight == 1, 5, "the test is running")
        moved = await tenancy.patch(data_source_id, {"connection": {"port": closed_port}})
        assert moved.status_code == 200, moved.text
        assert moved.json()["data"]["status"] == "pending"

        after = await run_test(api.client, data_source_id, tenancy.owner, body)
        assert_failed(result_of(after), "CONNECTION_ERROR", "tcp")
        # The earlier test still answers its caller with what it found on the old port...
        assert result_of(await before)["connection_successful"] is True
        # ...but the data source and its history only know the new destination's result.
        shown = await tenancy.get(data_source_id)
        assert (shown["status"], shown["last_error_code"]) == ("failed", "CONNECTION_ERROR")
        assert shown["last_connected_at"] is None
        records = await health_records(api, data_source_id)
        assert [(r.connection_successful, r.error_code) for r in records] == [
            (False, "CONNECTION_ERROR")
        ]
