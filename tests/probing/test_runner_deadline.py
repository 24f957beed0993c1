"""The deadline counts from arrival; time lost inside the server is not a TIMEOUT."""

from __future__ import annotations

import time

import pytest

from rivergen.core.deadline import Deadline
from rivergen.probing.pool import PoolBusy
from tests.fixtures.app import Api
from tests.fixtures.servers import Server

pytestmark = pytest.mark.anyio


def postgres_body(server: Server) -> dict[str, object]:
    """The connection body of the machine's PostgreSQL (the fixture skips, or fails under CI)."""
    return {
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "database": server.database,
    }


async def test_a_deadline_spent_before_the_probe_is_busy_not_timeout(
    api: Api, local_postgres: Server
) -> None:
    context = api.app.state.context
    config = context.data_sources.build_config("postgresql", postgres_body(local_postgres), None)
    arrived = time.monotonic() - 1.9  # the request waited 1.9 s of its 2 s in the server
    with pytest.raises(PoolBusy):
        await context.tests.prober.run(config, None, Deadline(arrived + 2, arrived))


async def test_a_deadline_mostly_left_probes_and_times_from_the_probe(
    api: Api, local_postgres: Server
) -> None:
    context = api.app.state.context
    config = context.data_sources.build_config("postgresql", postgres_body(local_postgres), None)
    arrived = time.monotonic() - 0.5
    result = await context.tests.prober.run(config, None, Deadline(arrived + 5, arrived))
    assert result.connection_successful, result
    # response_time_ms measures the probe, not the half second before it.
    assert result.response_time_ms is not None
    assert result.response_time_ms < 500
