"""Faults: the store restarting, a target dying mid-test, and a flood of tests against a hang.

* The PostgreSQL metadata store (a private cluster started here, never the machine's server)
  is killed and started again while requests run: errors meanwhile are prompt 503
  SERVICE_UNAVAILABLE envelopes, and the same process serves normally afterwards.
* A target PostgreSQL (private too) is stopped while tests run on it: every test answers 200
  with a classified error (never INTERNAL_ERROR), and no thread or socket is left behind.
* 1000 concurrent tests against a target that accepts and never speaks, on a real server
  process with a small probe pool: only 200, 429 or 503 come back, and /healthz keeps answering
  fast all along.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from rivergen.app import create_app
from rivergen.settings import Settings
from tests.fixtures.app import ADMIN_EMAIL, ADMIN_PASSWORD, TEST_SECRET_KEY, Api, start_api
from tests.fixtures.clusters import PrivatePostgres
from tests.fixtures.hardening import (
    DATA_SOURCES,
    METADATA_ADDRESS,
    context_of,
    ok_data,
    postgres_source,
    sign_in_owner,
)
from tests.fixtures.servers import free_port
from tests.tunnels.procnet import own_tcp_sockets

pytestmark = pytest.mark.anyio

CLASSIFIED_OUTAGE = {"CONNECTION_ERROR", "TIMEOUT"}


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Api]:
    """The app, started with these settings, and a client."""
    async for api in start_api(create_app(settings)):
        yield api


# ----- (a) the metadata store restarts -------------------------------------------------------


@pytest.mark.usefixtures("production_logging")
async def test_the_service_recovers_by_itself_after_its_postgresql_store_restarts(
    postgres_store: tuple[PrivatePostgres, Settings],
) -> None:
    store, settings = postgres_store
    answers: list[tuple[str, float, int, str | None]] = []  # (phase, seconds, status, code)
    phase = "before"

    async with running(settings) as api:
        tenant = await sign_in_owner(api)
        source_id = await tenant.create(postgres_source(METADATA_ADDRESS))
        headers = tenant.owner.headers

        async def load(stop: anyio.Event) -> None:
            urls = (f"{DATA_SOURCES}/{source_id}", DATA_SOURCES, "/api/v1/auth/me", "/readyz")
            while not stop.is_set():
                for url in urls:
                    started, started_in = time.monotonic(), phase
                    response = await api.client.get(url, headers=headers)
                    body = response.json()
                    code = None if body["success"] else body["error"]["code"]
                    seconds = time.monotonic() - started
                    # A request belongs to a phase when it started and ended in it.
                    label = started_in if started_in == phase else "between"
                    answers.append((label, seconds, response.status_code, code))
                await anyio.sleep(0.01)

        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(load, stop)
            await anyio.sleep(0.5)
            phase = "stopping"
            await anyio.to_thread.run_sync(store.stop, "immediate")
            phase = "down"
            await anyio.sleep(1.5)
            phase = "starting"
            await anyio.to_thread.run_sync(store.start)
            await anyio.sleep(0.5)  # pooled connections are replaced as they are checked out
            phase = "after"
            await anyio.sleep(1.0)
            stop.set()

        # After the restart, the same process reads and writes as before.
        assert ok_data(await api.client.get("/readyz"))["status"] == "ready"
        assert ok_data(await api.client.get(f"{DATA_SOURCES}/{source_id}", headers=headers))
        second = await tenant.create(postgres_source(METADATA_ADDRESS, name="after-restart"))
        tested = ok_data(await tenant.test(second, {"timeout_seconds": 2}))
        assert tested["error_code"] == "HOST_NOT_ALLOWED"
        assert await api.headers_for()  # sign-in writes a session and an audit event

    by_phase = {p: [a for a in answers if a[0] == p] for p in ("before", "down", "after")}
    assert all(len(items) >= 4 for items in by_phase.values()), {
        p: len(v) for p, v in by_phase.items()
    }
    assert {status for _, _, status, _ in by_phase["before"]} == {200}
    assert {status for _, _, status, _ in by_phase["after"]} == {200}
    # Meanwhile: "try again later" envelopes, promptly (a refused connection, not a hang).
    down = by_phase["down"]
    assert {status for _, _, status, _ in down} == {503}, down
    assert {code for _, _, _, code in down} == {"SERVICE_UNAVAILABLE"}, down
    assert max(seconds for _, seconds, _, _ in answers) < 5, max(answers, key=lambda a: a[1])


# ----- (b) a target stops in the middle of tests ---------------------------------------------


def probe_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rivergen-probe")]


async def test_a_target_stopped_mid_test_gives_classified_errors_and_leaks_nothing(
    settings_factory: Callable[..., Settings],
    private_postgres: Callable[[], PrivatePostgres],
    production_logging: io.StringIO,
) -> None:
    target = private_postgres()
    listening_before = {s.local for s in own_tcp_sockets() if s.listening}
    settings = settings_factory(
        tests_per_minute_per_user=10_000, tests_per_minute_per_organization=10_000
    )
    async with running(settings) as api:
        tenant = await sign_in_owner(api)
        source_id = await tenant.create(postgres_source(target.host, target.port))
        ok = ok_data(await tenant.test(source_id, {"timeout_seconds": 10}))
        assert ok["connection_successful"] is True, ok

        async def batch(stop_mode: str | None, size: int = 10) -> list[dict[str, Any]]:
            """`size` tests of 3 s queries; stop the target half a second in (if told)."""
            results: list[dict[str, Any]] = []

            async def one(n: int) -> None:
                # Distinct queries: concurrent identical tests would share one probe.
                body = {"test_query": f"SELECT pg_sleep(3), {n}", "timeout_seconds": 8}
                started = time.monotonic()
                response = await tenant.test(source_id, body)
                assert response.status_code == 200, production_logging.getvalue()[-4000:]
                data = ok_data(response)
                data["seconds"] = time.monotonic() - started
                results.append(data)

            async with anyio.create_task_group() as group:
                for n in range(size):
                    group.start_soon(one, n)
                if stop_mode is not None:
                    await anyio.sleep(0.5)
                    await anyio.to_thread.run_sync(target.stop, stop_mode)
            return results

        results = await batch("fast")  # clients are told: admin_shutdown
        await anyio.to_thread.run_sync(target.start)
        results += await batch("immediate")  # as a crash: connections just drop
        results += await batch(None, size=4)  # and while it stays down: refused
        for data in results:
            assert data["connection_successful"] is False, data
            assert data["error_code"] in CLASSIFIED_OUTAGE, (
                data["error_code"],
                data["error_phase"],
                data["error_message"],
            )
            assert data["hint"], data
            assert data["seconds"] < 9, data
        assert {d["error_code"] for d in results[-4:]} == {"CONNECTION_ERROR"}
        # Every outcome was recorded, none as an internal error.
        health = await api.client.get(
            f"{DATA_SOURCES}/{source_id}/health",
            params={"limit": 100},
            headers=tenant.owner.headers,
        )
        assert health.status_code == 200, production_logging.getvalue()[-4000:]
        shown = ok_data(health)
        assert shown["summary"]["checks"] == 1 + len(results)
        assert "INTERNAL_ERROR" not in {h["error_code"] for h in shown["history"]}

        # Threads return (idle pool threads exit after a second) and no socket stays open.
        pool = context_of(api).pool
        for _ in range(50):
            if pool.threads == 0 and pool.in_flight == 0 and not probe_threads():
                break
            await anyio.sleep(0.1)
        assert (pool.threads, pool.in_flight, pool.queued, pool.overrunning) == (0, 0, 0, 0)
        assert probe_threads() == []
        assert not [s for s in own_tcp_sockets() if s.remote[1] == target.port]
        assert {s.local for s in own_tcp_sockets() if s.listening} <= listening_before


# ----- (c) a flood of tests against a silent target ------------------------------------------


@contextmanager
def serve(tmp_path: Path, **env: str) -> Iterator[str]:
    """`python -m rivergen serve` on a free loopback port; its base URL."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGEN_")}
    # The targets of these tests are on loopback.
    environment.update(
        RIVERGEN_HOST="127.0.0.1", RIVERGEN_PORT=str(port), RIVERGEN_ALLOW_LOOPBACK="true", **env
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rivergen", "serve"],
            cwd=tmp_path,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match is not None, name
    return float(match.group(1))


async def test_a_thousand_concurrent_tests_against_a_silent_target_never_stall_the_server(
    store_url: str, tmp_path: Path, silent_listener: tuple[str, int]
) -> None:
    env = {
        "RIVERGEN_DATA_DIR": str(tmp_path / "data"),
        "RIVERGEN_DATABASE_URL": store_url,
        "RIVERGEN_ADMIN_EMAIL": ADMIN_EMAIL,
        "RIVERGEN_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "RIVERGEN_SECRET_KEYS": TEST_SECRET_KEY,
        "RIVERGEN_JWT_SECRET": "test-jwt-secret-that-is-long-enough-for-hs256",
        "RIVERGEN_SCHEDULER_ENABLED": "false",
        "RIVERGEN_LOG_LEVEL": "warning",
        "RIVERGEN_PROBE_WORKERS": "8",
        "RIVERGEN_PROBE_QUEUE": "8",
        "RIVERGEN_TESTS_PER_MINUTE_PER_USER": "100000",
        "RIVERGEN_TESTS_PER_MINUTE_PER_ORGANIZATION": "100000",
    }
    host, port = silent_listener
    with serve(tmp_path, **env) as base_url:
        # A connection per request: a kept-alive one may be closed by the server as it is reused.
        limits = httpx.Limits(max_connections=1100, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
            login = await client.post(
                "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {ok_data(login)['access_token']}"}
            created = await client.post(
                DATA_SOURCES, json=postgres_source(host, port, name="silent"), headers=headers
            )
            source_id = ok_data(created, 201)["id"]

            statuses: list[int] = []
            health: list[tuple[float, int]] = []
            done = threading.Event()

            async def one(n: int) -> None:
                # Distinct queries, so the tests do not share one probe.
                # The deadline counts from arrival; 8 s leaves the first of 1000 simultaneous
                # requests time to get past sign-in and start a probe on two cores.
                body = {"test_query": f"SELECT {n}", "timeout_seconds": 8}
                response = await client.post(
                    f"{DATA_SOURCES}/{source_id}/test", json=body, headers=headers
                )
                statuses.append(response.status_code)
                if response.status_code == 200:
                    assert response.json()["data"]["error_code"] == "TIMEOUT", response.text
                else:
                    assert response.headers["Retry-After"], response.headers

            def poll_health() -> None:
                # Its own thread and connection: the flood's client loop does not delay it.
                with httpx.Client(base_url=base_url, timeout=30) as own:
                    while not done.is_set():
                        started = time.monotonic()
                        response = own.get("/healthz")
                        health.append((time.monotonic() - started, response.status_code))
                        time.sleep(0.05)

            poller = threading.Thread(target=poll_health, name="healthz-poller")
            poller.start()
            started = time.monotonic()
            try:
                async with anyio.create_task_group() as flood:
                    for n in range(1000):
                        flood.start_soon(one, n)
                elapsed = time.monotonic() - started
                await anyio.sleep(0.3)
            finally:
                done.set()
                await anyio.to_thread.run_sync(poller.join)

            metrics = httpx.get(f"{base_url}/metrics", timeout=30).text

    assert len(statuses) == 1000
    counts = {status: statuses.count(status) for status in set(statuses)}
    assert set(counts) <= {200, 429, 503}, counts
    assert counts.get(503, 0) >= 500, counts  # 16 places for 1000 tests
    assert counts.get(200, 0) >= 1, counts  # probes did run for the first arrivals
    assert elapsed < 80, elapsed
    latencies = sorted(seconds for seconds, _ in health)
    assert {status for _, status in health} == {200}
    assert len(latencies) >= 10, latencies
    # A busy server (the flood costs it tens of seconds of CPU) still answers at once.
    # (Its worst answer gets a loose bound: the flood shares two cores with the rest.)
    assert latencies[-1] < 3.0, latencies[-5:]
    assert latencies[len(latencies) // 2] < 0.1, latencies
    # Nothing is left running or queued once the flood is over.
    assert metric(metrics, "rivergen_probe_calls_queued") == 0


# ----- sign-ins do not stall the server ------------------------------------------------------


@pytest.mark.production_hashing
async def test_a_burst_of_sign_ins_leaves_the_event_loop_free(
    settings_factory: Callable[..., Settings],
) -> None:
    """Argon2 (real parameters: a large fraction of a second of CPU each) runs off the loop.

    The app and the poller share the event loop here, so a blocked loop shows as a gap between
    two /healthz answers (the poller itself cannot run), not as one slow answer.
    """
    async with running(settings_factory()) as api:
        answered: list[float] = []
        done = anyio.Event()

        async def sign_in(n: int) -> None:
            body = {"email": f"nobody-{n}@hardening.example.com", "password": "wrong-password-1"}
            response = await api.client.post("/api/v1/auth/login", json=body)
            assert response.status_code == 401, response.text

        async def poll() -> None:
            while not done.is_set():
                assert (await api.client.get("/healthz")).status_code == 200
                answered.append(time.monotonic())
                await anyio.sleep(0.02)

        async with anyio.create_task_group() as group:
            group.start_soon(poll)
            await anyio.sleep(0.1)
            started = time.monotonic()
            async with anyio.create_task_group() as burst:
                for n in range(8):
                    burst.start_soon(sign_in, n)
            took = time.monotonic() - started
            done.set()
    assert took > 0.2, took  # the real hash did run
    gaps = [later - earlier for earlier, later in itertools.pairwise(answered)]
    assert len(gaps) >= 5, answered
    assert max(gaps) < 0.3, (took, sorted(gaps)[-3:])
