"""Audit events have a retention: older than RIVERGEN_AUDIT_RETENTION_DAYS, they are purged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from rivergen.app import create_app
from rivergen.audit.models import AuditEvent
from rivergen.health.scheduler import build_scheduled_checks
from rivergen.settings import Settings
from rivergen.store.base import utcnow
from tests.fixtures.app import start_api
from tests.health.helpers import context_of

pytestmark = [pytest.mark.anyio, pytest.mark.store]


async def test_the_purge_removes_audit_events_past_their_retention(
    settings_factory: Callable[..., Settings],
) -> None:
    async for api in start_api(create_app(settings_factory(audit_retention_days=30))):
        context = context_of(api)
        now = utcnow()
        async with context.sessions() as session, session.begin():
            for days in (400, 31, 29, 0):
                session.add(
                    AuditEvent(
                        action=f"test.aged_{days}",
                        details={},
                        created_at=now - timedelta(days=days),
                    )
                )
        checks = build_scheduled_checks(
            context.settings, context.sessions, context.data_sources, context.tests
        )
        await checks.purge(now=now, batch=1)  # batches of one: the loop must go on
        async with context.sessions() as session:
            kept = set(
                (
                    await session.scalars(
                        select(AuditEvent.action).where(AuditEvent.action.like("test.aged_%"))
                    )
                ).all()
            )
        assert kept == {"test.aged_29", "test.aged_0"}
