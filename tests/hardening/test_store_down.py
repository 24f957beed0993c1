"""A stopped PostgreSQL metadata store (a private cluster, really stopped): every request that
needs it answers 503 SERVICE_UNAVAILABLE with Retry-After and the error envelope, without a
trace or a detail of the store, logs one warning line, and the service serves again once the
store is back."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import anyio
import pytest

from rivergen.app import create_app
from rivergen.context import AppContext
from rivergen.settings import Settings
from tests.fixtures.app import ADMIN_EMAIL, ADMIN_PASSWORD, start_api
from tests.fixtures.clusters import PrivatePostgres
from tests.fixtures.hardening import (
    AUDIT_EVENTS,
    DATA_SOURCES,
    error_of,
    ok_data,
    sign_in_owner,
)

pytestmark = pytest.mark.anyio

LOGIN = "/api/v1/auth/login"


async def test_requests_answer_503_with_retry_after_while_the_store_is_stopped(
    postgres_store: tuple[PrivatePostgres, Settings], production_logging: io.StringIO
) -> None:
    store, settings = postgres_store
    async for api in start_api(create_app(settings)):
        tenant = await sign_in_owner(api)
        headers = tenant.owner.headers
        await anyio.to_thread.run_sync(store.stop, "immediate")

        requests: list[tuple[str, str, dict[str, str] | None, Any]] = [
            ("GET", DATA_SOURCES, headers, None),
            ("GET", AUDIT_EVENTS, headers, None),
            ("POST", LOGIN, None, {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
            ("GET", "/readyz", None, None),
        ]
        for method, url, request_headers, body in requests:
            response = await api.client.request(method, url, headers=request_headers, json=body)
            error = error_of(response, 503, "SERVICE_UNAVAILABLE")
            assert response.headers["content-type"].startswith("application/json")
            assert set(error) == {"code", "message", "details"}
            assert "try again later" in error["message"]
            assert int(response.headers["retry-after"]) >= 1, url
            if url != "/readyz":  # the readiness probe is not a request anyone reports
                assert error["details"] == {"request_id": response.headers["x-request-id"]}
            for leak in (
                "Traceback", 'File "', "psycopg", "OperationalError", "sqlalchemy",
                "Connection refused", str(store.port), ADMIN_PASSWORD,
            ):  # fmt: skip
                assert leak not in response.text, (url, leak)

        # Still answering without the store: liveness is not readiness.
        assert (await api.client.get("/healthz")).status_code == 200

        log = production_logging.getvalue()
        outage_lines = [line for line in log.splitlines() if "store_unreachable" in line]
        assert len(outage_lines) == 3, log  # one per request; /readyz logs its own line
        assert all("Connection refused" in line for line in outage_lines), outage_lines
        assert "unhandled_error" not in log
        assert "Traceback" not in log

        await anyio.to_thread.run_sync(store.start)
        # Pooled connections are checked before use: the first requests may still meet
        # the outage while the pool refills; within seconds, everything answers again.
        with anyio.fail_after(10):
            while (await api.client.get(DATA_SOURCES, headers=headers)).status_code != 200:
                await anyio.sleep(0.1)
        assert ok_data(await api.client.get("/readyz"))["status"] == "ready"
        assert await api.headers_for()  # sign-in reads and writes the store again


async def test_an_outcome_answered_while_the_store_stops_is_written_once_it_is_back(
    postgres_store: tuple[PrivatePostgres, Settings],
    silent_listener: tuple[str, int],
    production_logging: io.StringIO,
) -> None:
    store, settings = postgres_store
    async for api in start_api(create_app(settings)):
        tenant = await sign_in_owner(api)
        host, port = silent_listener
        connection = {"host": host, "port": port, "username": "postgres", "database": "postgres"}
        source_id = await tenant.create(
            {"name": "silent", "type": "postgresql", "connection": connection}
        )
        context: AppContext = api.app.state.context
        testing = asyncio.create_task(tenant.test(source_id, {"timeout_seconds": 2}))
        # The source is loaded and the probe hangs on the listener: now the store goes away.
        with anyio.fail_after(5):
            while context.pool.in_flight == 0:
                await anyio.sleep(0.02)
        await anyio.to_thread.run_sync(store.stop, "immediate")

        answer = ok_data(await testing)  # the answer does not need the store
        assert answer["connection_successful"] is False
        assert answer["error_code"] == "TIMEOUT"
        with anyio.fail_after(10):
            while "test_record_retry" not in production_logging.getvalue():
                await anyio.sleep(0.1)
        # A read meanwhile does not wait for that write: it meets the outage at once.
        with anyio.fail_after(3):
            read = await tenant.client.get(
                f"{DATA_SOURCES}/{source_id}", headers=tenant.owner.headers
            )
        error_of(read, 503, "SERVICE_UNAVAILABLE")

        await anyio.to_thread.run_sync(store.start)
        # Reads do not wait for a write that is waiting for the store; the outcome appears at
        # the writer's next try (at most 5 s apart).
        health_url = f"{DATA_SOURCES}/{source_id}/health"
        history: list[dict[str, Any]] = []
        with anyio.fail_after(30):
            while not history:
                await anyio.sleep(0.2)
                health = await tenant.client.get(health_url, headers=tenant.owner.headers)
                if health.status_code == 200:
                    history = ok_data(health)["history"]
        assert [(r["connection_successful"], r["error_code"]) for r in history] == [
            (False, "TIMEOUT")
        ]
        shown = ok_data(
            await tenant.client.get(f"{DATA_SOURCES}/{source_id}", headers=tenant.owner.headers)
        )
        assert (shown["status"], shown["last_error_code"]) == ("failed", "TIMEOUT")
        log = production_logging.getvalue()
        assert "test_record_failed" not in log
        assert "Traceback" not in log
