"""Connection tests are rate-limited per user and per organization: 429 RATE_LIMITED, Retry-After.

Both limits come from settings (RIVERGEN_TESTS_PER_MINUTE_PER_USER and _PER_ORGANIZATION); saved
and unsaved tests count alike, and a refused test runs nothing and records nothing. The target is
a metadata address, refused by the host policy at once, so the tests cost nothing to run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from rivergen.app import create_app
from rivergen.audit.models import AuditEvent
from rivergen.health.models import HealthRecord
from rivergen.settings import Settings, load_settings
from tests.fixtures.app import start_api
from tests.fixtures.hardening import (
    METADATA_ADDRESS,
    Tenant,
    context_of,
    error_of,
    ok_data,
    postgres_source,
    sign_in_owner,
)

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def app_with(settings: Settings) -> AsyncIterator[Tenant]:
    async for api in start_api(create_app(settings)):
        yield await sign_in_owner(api)


def unsaved_body() -> dict[str, Any]:
    return {**postgres_source(METADATA_ADDRESS, name="unsaved"), "timeout_seconds": 2}


async def ran(response: httpx.Response) -> None:
    """A test that ran (and was refused by the host policy, as every target here is)."""
    data = ok_data(response)
    assert data["error_code"] == "HOST_NOT_ALLOWED", data


def assert_rate_limited(response: httpx.Response) -> int:
    """A 429 RATE_LIMITED with a Retry-After of 1..60 s; returns it."""
    error_of(response, 429, "RATE_LIMITED")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60, retry_after
    return retry_after


async def count(tenant: Tenant, model: Any) -> int:
    await context_of(tenant.api).tests.settled()  # answered tests are written just after
    async with context_of(tenant.api).sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_the_per_user_limit_stops_one_user_not_their_colleagues(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(tests_per_minute_per_user=3, tests_per_minute_per_organization=100)
    async with app_with(settings) as tenant:
        source_id = await tenant.create(postgres_source(METADATA_ADDRESS))
        alice, bob = await tenant.user("member"), await tenant.user("member")
        await ran(await tenant.test(source_id, headers=alice.headers))
        await ran(await tenant.test_unsaved(unsaved_body(), headers=alice.headers))
        await ran(await tenant.test(source_id, {"test_query": "SELECT 2"}, alice.headers))
        assert_rate_limited(await tenant.test(source_id, headers=alice.headers))
        assert_rate_limited(await tenant.test_unsaved(unsaved_body(), headers=alice.headers))
        # Bob, in the same organization, has his own budget.
        for _ in range(3):
            await ran(await tenant.test(source_id, headers=bob.headers))
        assert_rate_limited(await tenant.test(source_id, headers=bob.headers))
        # Refused tests ran nothing: 2 + 3 saved tests, as many health records and audit events.
        assert await count(tenant, HealthRecord) == 5
        async with context_of(tenant.api).sessions() as session:
            tests = await session.scalar(
                select(func.count()).where(AuditEvent.action == "data_source.test")
            )
        assert tests == 5


async def test_the_per_organization_limit_adds_up_its_users_and_spares_other_organizations(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(tests_per_minute_per_user=100, tests_per_minute_per_organization=4)
    async with app_with(settings) as tenant:
        source_id = await tenant.create(postgres_source(METADATA_ADDRESS))
        alice, bob = await tenant.user("member"), await tenant.user("admin")
        other_org = await tenant.organization("Elsewhere")
        carol = await tenant.user("admin", other_org)
        other_source = await tenant.create(
            postgres_source(METADATA_ADDRESS, name="theirs"), headers=carol.headers
        )

        await ran(await tenant.test(source_id, headers=alice.headers))
        await ran(await tenant.test(source_id, {"test_query": "SELECT 2"}, alice.headers))
        await ran(await tenant.test_unsaved(unsaved_body(), headers=bob.headers))
        await ran(await tenant.test(source_id, headers=bob.headers))
        # Four tests in the organization: everyone in it is refused now, whoever ran them.
        assert_rate_limited(await tenant.test(source_id, headers=bob.headers))
        assert_rate_limited(await tenant.test(source_id, headers=alice.headers))
        assert_rate_limited(await tenant.test_unsaved(unsaved_body(), headers=alice.headers))
        # Another organization keeps its own budget.
        for _ in range(4):
            await ran(await tenant.test(other_source, headers=carol.headers))
        assert_rate_limited(await tenant.test(other_source, headers=carol.headers))


async def test_a_rate_limited_answer_is_the_error_envelope_and_says_when_to_retry(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(tests_per_minute_per_user=1, tests_per_minute_per_organization=1)
    async with app_with(settings) as tenant:
        source_id = await tenant.create(postgres_source(METADATA_ADDRESS))
        await ran(await tenant.test(source_id))
        response = await tenant.test(source_id)
        retry_after = assert_rate_limited(response)
        assert retry_after >= 50  # the window is a minute and the only test just ran
        body = response.json()
        assert body == {
            "success": False,
            "error": {"code": "RATE_LIMITED", "message": body["error"]["message"], "details": None},
        }
        assert body["error"]["message"]
        assert response.headers["x-request-id"]


def test_both_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERGEN_TESTS_PER_MINUTE_PER_ORGANIZATION", "7")
    monkeypatch.setenv("RIVERGEN_TESTS_PER_MINUTE_PER_USER", "3")
    settings = load_settings()
    assert (settings.tests_per_minute_per_organization, settings.tests_per_minute_per_user) == (
        7,
        3,
    )
    monkeypatch.delenv("RIVERGEN_TESTS_PER_MINUTE_PER_ORGANIZATION")
    monkeypatch.delenv("RIVERGEN_TESTS_PER_MINUTE_PER_USER")
    defaults = Settings(_env_file=None)
    assert (defaults.tests_per_minute_per_organization, defaults.tests_per_minute_per_user) == (
        120,
        60,
    )
