"""Shutdown waits as long as the recorder retries an unreachable store (README: no answered
outcome is lost in a failover), not a shorter limit of its own."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from rivergen.probing import recorder as recorder_module
from rivergen.probing.recorder import Outcome, ResultRecorder
from tests.fixtures.datasources import Tenancy, context_of
from tests.probing.test_recorder import passed

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Past the 10 s that shutdown used to wait while the store was retried for a minute.
OLD_SHUTDOWN_LIMIT_SECONDS = 10.0


def test_shutdown_covers_the_whole_retry_window() -> None:
    assert recorder_module.SHUTDOWN_LIMIT_SECONDS > recorder_module.RETRY_WINDOW_SECONDS >= 55


async def test_closing_keeps_retrying_an_unreachable_store(
    tenancy: Tenancy, closed_port: int
) -> None:
    # A store nobody listens for: a failover in progress, for real (connections refused).
    engine = create_async_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/rivergen",
        connect_args={"connect_timeout": 1},
    )
    recorder = ResultRecorder(
        async_sessionmaker(engine, expire_on_commit=False), context_of(tenancy.api).data_sources
    )
    written = recorder.submit(Outcome(1, passed("PostgreSQL 16.4"), "manual", None, None))
    closing = asyncio.create_task(recorder.close())
    try:
        await asyncio.sleep(OLD_SHUTDOWN_LIMIT_SECONDS + 1)
        assert not closing.done(), "shutdown gave up while the store was still being retried"
        assert not written.done()
    finally:
        closing.cancel()
        await asyncio.gather(closing, return_exceptions=True)
        await recorder.close(limit_seconds=0)
        await engine.dispose()
