"""Helpers of the alerts tests: settings with quick retries, creating channels and rules."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.fixtures.datasources import Tenancy, ok_data

CHANNELS = "/api/v1/notification-channels"
RULES = "/api/v1/alert-rules"
# Retries within a fraction of a second, polls every 50 ms: the tests take seconds, not hours.
QUICK = {
    "alert_retry_base_seconds": 0.1,
    "alert_poll_seconds": 0.05,
    "alert_delivery_timeout_seconds": 1.0,
}


async def add_channel(
    tenancy: Tenancy, channel_type: str, config: dict[str, Any], name: str = "ops"
) -> dict[str, Any]:
    """Create a channel as the owner and return its data (with the secret, for webhooks)."""
    response = await tenancy.client.post(
        CHANNELS,
        json={"name": name, "type": channel_type, "config": config},
        headers=tenancy.owner,
    )
    data: dict[str, Any] = ok_data(response, 201)
    return data


async def send_test(tenancy: Tenancy, channel_id: int) -> dict[str, Any]:
    """The `send test` action; returns the delivery."""
    response = await tenancy.client.post(f"{CHANNELS}/{channel_id}/test", headers=tenancy.owner)
    data: dict[str, Any] = ok_data(response)
    return data


async def deliveries(tenancy: Tenancy, **params: Any) -> list[dict[str, Any]]:
    """The delivery log."""
    response = await tenancy.client.get(
        "/api/v1/notification-deliveries", params=params, headers=tenancy.owner
    )
    data: list[dict[str, Any]] = ok_data(response)
    return data


async def events(tenancy: Tenancy, **params: Any) -> list[dict[str, Any]]:
    """The alert events, newest first."""
    response = await tenancy.client.get(
        "/api/v1/alert-events", params=params, headers=tenancy.owner
    )
    data: list[dict[str, Any]] = ok_data(response)
    return data


async def wait_delivery(
    tenancy: Tenancy, event_id: str, status: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Poll the delivery log until the event's delivery has `status`."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = await deliveries(tenancy, event_id=event_id)
        if seen and seen[0]["status"] == status:
            return seen[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"delivery of {event_id} never became {status}: {seen}")
