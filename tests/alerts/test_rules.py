"""Rules and channels through the API: validation, roles, tenancy, audit; per-source gauges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from rivergen.datasources.models import DataSource
from rivergen.health.source_gauges import SourceGauges
from rivergen.security.crypto import SecretBox, generate_key
from tests.alerts.helpers import CHANNELS, RULES, add_channel
from tests.fixtures.app import TEST_SECRET_KEY
from tests.fixtures.datasources import Tenancy, error_of, ok_data
from tests.fixtures.hardening import postgres_source
from tests.fixtures.receivers import HttpReceiver

pytestmark = pytest.mark.anyio


async def audit_actions(tenancy: Tenancy) -> list[str]:
    """The audit log's actions, oldest first."""
    response = await tenancy.client.get(
        "/api/v1/audit-events", params={"limit": 500}, headers=tenancy.owner
    )
    return [e["action"] for e in reversed(ok_data(response)["items"])]


async def test_rule_references_must_be_of_the_organization(
    tenancy: Tenancy, http_receiver: HttpReceiver, closed_port: int
) -> None:
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    outsider, other = await tenancy.outsider("admin")
    theirs = await tenancy.create(
        postgres_source("127.0.0.1", closed_port, name="theirs"), outsider
    )
    foreign_channel = await tenancy.client.post(
        CHANNELS,
        json={"name": "x", "type": "webhook", "config": {"url": http_receiver.url()}},
        headers=outsider,
    )
    foreign_id = ok_data(foreign_channel, 201)["id"]
    for body, field in (
        ({"channel_ids": [foreign_id]}, "body.channel_ids"),
        (
            {"channel_ids": [channel["id"]], "data_source_ids": [theirs["id"]]},
            "body.data_source_ids",
        ),
    ):
        response = await tenancy.client.post(
            RULES, json={"name": "r", **body}, headers=tenancy.owner
        )
        assert error_of(response, 422, "VALIDATION_ERROR")["details"][0]["field"] == field
    response = await tenancy.client.post(RULES, json={"name": "r"}, headers=tenancy.owner)
    error_of(response, 422, "VALIDATION_ERROR")
    assert other != tenancy.organization_id


async def test_rule_defaults_roles_and_audit(tenancy: Tenancy, http_receiver: HttpReceiver) -> None:
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    response = await tenancy.client.post(
        RULES, json={"name": "all", "channel_ids": [channel["id"]]}, headers=tenancy.owner
    )
    rule = ok_data(response, 201)
    assert rule["failures_before_alert"] == 3
    assert rule["successes_before_recovery"] == 1
    assert rule["renotify_minutes"] is None
    assert rule["data_source_ids"] is None
    assert rule["enabled"] is True

    viewer = await tenancy.member("viewer")
    listed = ok_data(await tenancy.client.get(RULES, headers=viewer))
    assert [r["id"] for r in listed] == [rule["id"]]
    member = await tenancy.member("member")
    response = await tenancy.client.post(
        RULES, json={"name": "m", "channel_ids": [channel["id"]]}, headers=member
    )
    error_of(response, 403, "FORBIDDEN")
    outsider, _ = await tenancy.outsider("owner")
    response = await tenancy.client.get(f"{RULES}/{rule['id']}", headers=outsider)
    error_of(response, 404, "NOT_FOUND")

    until = datetime(2030, 1, 1, tzinfo=UTC).isoformat()
    response = await tenancy.client.patch(
        f"{RULES}/{rule['id']}",
        json={"muted_until": until, "renotify_minutes": 30},
        headers=tenancy.owner,
    )
    patched = ok_data(response)
    assert patched["muted_until"].startswith("2030-01-01T00:00:00")
    assert patched["renotify_minutes"] == 30
    response = await tenancy.client.patch(
        f"{RULES}/{rule['id']}", json={"channel_ids": None}, headers=tenancy.owner
    )
    error_of(response, 422, "VALIDATION_ERROR")

    await tenancy.client.patch(
        f"{CHANNELS}/{channel['id']}", json={"enabled": False}, headers=tenancy.owner
    )
    await tenancy.client.post(f"{CHANNELS}/{channel['id']}/rotate-secret", headers=tenancy.owner)
    assert (
        await tenancy.client.delete(f"{RULES}/{rule['id']}", headers=tenancy.owner)
    ).status_code == 204
    assert (
        await tenancy.client.delete(f"{CHANNELS}/{channel['id']}", headers=tenancy.owner)
    ).status_code == 204
    actions = [a for a in await audit_actions(tenancy) if a.startswith(("alert_", "notif"))]
    assert actions == [
        "notification_channel.create",
        "alert_rule.create",
        "alert_rule.update",
        "notification_channel.update",
        "notification_channel.rotate_secret",
        "alert_rule.delete",
        "notification_channel.delete",
    ]


async def test_email_password_does_not_follow_a_new_host(tenancy: Tenancy) -> None:
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 2525,
        "security": "none",
        "username": "u",
        "password": "mail-pw-Hq3",
        "from": "a@example.com",
        "to": ["b@example.com"],
    }
    channel = await add_channel(tenancy, "email", config)
    response = await tenancy.client.patch(
        f"{CHANNELS}/{channel['id']}",
        json={"config": {**config, "host": "localhost", "password": "********"}},
        headers=tenancy.owner,
    )
    error = error_of(response, 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "body.config.password"
    assert "mail-pw-Hq3" not in response.text


def test_source_gauges_and_switch() -> None:
    row = DataSource(
        id=987654, organization_id=876543, type="postgresql", status="active", name="g"
    )
    row.last_tested_at = datetime(2026, 1, 1, tzinfo=UTC)
    row.last_response_time_ms = 42.0
    labels = {"organization_id": "876543", "data_source_id": "987654", "engine": "postgresql"}
    SourceGauges(enabled=False).observe([row])
    assert REGISTRY.get_sample_value("rivergen_data_source_up", labels) is None
    SourceGauges(enabled=True).observe([row])
    assert REGISTRY.get_sample_value("rivergen_data_source_up", labels) == 1.0
    assert REGISTRY.get_sample_value(
        "rivergen_data_source_last_response_time_seconds", labels
    ) == pytest.approx(0.042)
    assert REGISTRY.get_sample_value(
        "rivergen_data_source_last_check_timestamp_seconds", labels
    ) == pytest.approx(row.last_tested_at.timestamp())
    SourceGauges(enabled=True).forget(row)
    assert REGISTRY.get_sample_value("rivergen_data_source_up", labels) is None


async def test_metrics_show_a_tested_source(tenancy: Tenancy, closed_port: int) -> None:
    source = await tenancy.create(postgres_source("127.0.0.1", closed_port, name="gauged"))
    await tenancy.client.post(
        f"/api/v1/data-sources/{source['id']}/test",
        json={"timeout_seconds": 1},
        headers=tenancy.owner,
    )
    await tenancy.client.get("/api/v1/alert-events", headers=tenancy.owner)
    text = (await tenancy.client.get("/metrics")).text
    line = (
        f'rivergen_data_source_up{{data_source_id="{source["id"]}",engine="postgresql",'
        f'organization_id="{tenancy.organization_id}"}} 0.0'
    )
    assert line in text


async def test_key_rotation_re_encrypts_channel_secrets(
    tenancy: Tenancy, http_receiver: HttpReceiver
) -> None:
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    context = tenancy.api.app.state.context
    newest = generate_key()
    context.channels._box = SecretBox([newest, TEST_SECRET_KEY])
    assert await context.channels.rotate_keys() == (1, [])
    # Only the new key is needed now: reading the channel decrypts its secrets with it alone.
    context.channels._box = SecretBox([newest])
    shown = ok_data(await tenancy.client.get(f"{CHANNELS}/{channel['id']}", headers=tenancy.owner))
    assert shown["id"] == channel["id"]
    assert await context.channels.rotate_keys() == (0, [])
