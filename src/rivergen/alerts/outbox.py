"""Writing an event and its deliveries (the outbox) in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.alerts.models import AlertEvent, NotificationDelivery


def new_event_id() -> str:
    """A fresh event id: the `webhook-id` (idempotency key) of every delivery of the event."""
    return "evt_" + uuid.uuid4().hex


async def emit(
    session: AsyncSession,
    *,
    event_id: str,
    organization_id: int,
    event_type: str,
    occurred_at: datetime,
    payload: dict[str, Any],
    channel_ids: Iterable[int],
    rule_id: int | None = None,
    data_source_id: int | None = None,
) -> list[NotificationDelivery]:
    """Add the event and one pending delivery per channel (none when muted: pass no channels)."""
    session.add(
        AlertEvent(
            id=event_id,
            organization_id=organization_id,
            type=event_type,
            occurred_at=occurred_at,
            rule_id=rule_id,
            data_source_id=data_source_id,
            payload=payload,
        )
    )
    # The event row first: deliveries reference it.
    await session.flush()
    deliveries = [
        NotificationDelivery(
            organization_id=organization_id,
            event_id=event_id,
            channel_id=channel_id,
            status="pending",
            attempts=0,
            next_attempt_at=occurred_at,
            created_at=occurred_at,
        )
        for channel_id in dict.fromkeys(channel_ids)
    ]
    session.add_all(deliveries)
    return deliveries
