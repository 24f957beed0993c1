"""The in-process scheduler: due sources are tested on schedule, never twice at once."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import anyio
import pytest
from sqlalchemy import select

from rivergen.app import create_app
from rivergen.health.models import HealthRecord
from rivergen.probing.runner import ProbeResult
from rivergen.settings import Settings
from rivergen.store.base import utcnow
from tests.fixtures.app import Api, start_api
from tests.health.helpers import context_of, data_of, sign_in

pytestmark = pytest.mark.anyio


class ProbeWatch:
    """Wraps the test service's probe_and_record to count concurrent calls."""

    def __init__(self, api: Api) -> None:
        self.running: Counter[int] = Counter()
        self.max_per_source: Counter[int] = Counter()
        self.total = 0
        self.max_total = 0
        tests = context_of(api).tests
        original = tests.probe_and_record

        async def watched(data_source_id: int, *args: Any, **kwargs: Any) -> ProbeResult:
            if kwargs.get("trigger") != "schedule":
                return await original(data_source_id, *args, **kwargs)
            self.running[data_source_id] += 1
            self.total += 1
            self.max_per_source[data_source_id] = max(
                self.max_per_source[data_source_id], self.running[data_source_id]
            )
            self.max_total = max(self.max_total, self.total)
            try:
                # Long enough for overlaps to show if the scheduler allowed them.
                await anyio.sleep(0.3)
                return await original(data_source_id, *args, **kwargs)
            finally:
                self.running[data_source_id] -= 1
                self.total -= 1

        tests.probe_and_record = watched  # type: ignore[method-assign]


async def scheduled_times(api: Api, data_source_id: int) -> list[datetime]:
    async with context_of(api).sessions() as session:
        query = (
            select(HealthRecord.tested_at)
            .where(
                HealthRecord.data_source_id == data_source_id,
                HealthRecord.triggered_by == "schedule",
            )
            .order_by(HealthRecord.tested_at)
        )
        return list((await session.execute(query)).scalars())


def make_api(settings_factory: Callable[..., Settings], **overrides: Any) -> AsyncIterator[Api]:
    settings = settings_factory(scheduler_enabled=True, **overrides)
    return start_api(create_app(settings))


@pytest.fixture
async def scheduled_api(settings_factory: Callable[..., Settings]) -> AsyncIterator[Api]:
    async for running in make_api(settings_factory):
        yield running


@pytest.mark.slow
async def test_a_two_second_source_is_checked_on_schedule(scheduled_api: Api) -> None:
    api = scheduled_api
    assert context_of(api).scheduler is not None
    watch = ProbeWatch(api)
    org = await sign_in(api)
    created = utcnow()
    started = time.monotonic()
    source_id = await org.create_source(interval=2)
    times: list[datetime] = []
    while time.monotonic() - started < 10 and len(times) < 4:
        await anyio.sleep(0.25)
        times = await scheduled_times(api, source_id)
    in_ten_seconds = [t for t in times if (t - created).total_seconds() <= 10]
    assert len(in_ten_seconds) >= 3, times
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # One check per 2-second interval, never two at once.
    assert all(gap >= 1.5 for gap in gaps), gaps
    assert watch.max_per_source[source_id] == 1
    health = data_of(await org.health(source_id))
    assert health["status"] == "active"
    assert {h["triggered_by"] for h in health["history"]} == {"schedule"}
    assert all(h["connection_successful"] for h in health["history"])
    # A manual test still runs alongside the schedule.
    manual = await api.client.post(
        f"/api/v1/data-sources/{source_id}/test", json={"timeout_seconds": 5}, headers=org.owner
    )
    assert data_of(manual)["connection_successful"] is True


@pytest.mark.slow
async def test_scheduled_checks_are_limited(settings_factory: Callable[..., Settings]) -> None:
    async for api in make_api(settings_factory, scheduler_max_concurrent=2):
        watch = ProbeWatch(api)
        org = await sign_in(api)
        ids = [await org.create_source(interval=2) for _ in range(6)]
        deadline = time.monotonic() + 8
        checked: set[int] = set()
        while time.monotonic() < deadline and len(checked) < len(ids):
            await anyio.sleep(0.2)
            checked = {i for i in ids if await scheduled_times(api, i)}
        assert checked == set(ids)
        assert watch.max_total <= 2
        assert max(watch.max_per_source.values()) == 1


async def test_no_scheduler_when_disabled(api: Api) -> None:
    assert context_of(api).scheduler is None
