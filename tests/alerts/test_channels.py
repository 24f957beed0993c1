"""Channels against real receivers on loopback: signed webhooks, Slack payloads, SMTP mail."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rivergen.app import create_app
from rivergen.settings import Settings
from tests.alerts.helpers import CHANNELS, QUICK, add_channel, deliveries, send_test, wait_delivery
from tests.fixtures.app import start_api
from tests.fixtures.datasources import Tenancy, error_of, ok_data, sign_in
from tests.fixtures.receivers import SMTP_PASSWORD, SMTP_USER, HttpReceiver, SmtpReceiver

pytestmark = pytest.mark.anyio


@pytest.fixture
async def tenancy(settings_factory: Any) -> AsyncIterator[Tenancy]:
    """An app with quick retries (its dispatcher running), signed in as the owner."""
    settings: Settings = settings_factory(**QUICK)
    async for api in start_api(create_app(settings)):
        yield await sign_in(api)


def verify(secret: str, received: Any) -> dict[str, Any]:
    """Verify a received webhook with the Standard Webhooks reference library."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    payload: dict[str, Any] = Webhook(secret).verify(received.body, headers)
    return payload


async def test_webhook_is_signed_and_secret_shown_once(
    tenancy: Tenancy, http_receiver: HttpReceiver
) -> None:
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    secret = channel["secret"]
    assert secret.startswith("whsec_")
    shown = ok_data(await tenancy.client.get(f"{CHANNELS}/{channel['id']}", headers=tenancy.owner))
    assert shown["secret"] is None
    assert secret not in json.dumps(shown)
    listed = ok_data(await tenancy.client.get(CHANNELS, headers=tenancy.owner))
    assert secret not in json.dumps(listed)

    delivery = await send_test(tenancy, channel["id"])
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200
    (received,) = await http_receiver.wait_for(1)
    payload = verify(secret, received)
    assert payload["type"] == "test"
    assert payload["id"] == delivery["event_id"]
    assert received.headers["webhook-id"] == delivery["event_id"]
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60
    # The Host header names the URL's host although the connection went to the checked address.
    assert received.headers["Host"] == f"127.0.0.1:{http_receiver.port}"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(
            received.body, {k.lower(): v for k, v in received.headers.items()}
        )


async def test_rotated_secret_signs_and_old_one_stops(
    tenancy: Tenancy, http_receiver: HttpReceiver
) -> None:
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    response = await tenancy.client.post(
        f"{CHANNELS}/{channel['id']}/rotate-secret", headers=tenancy.owner
    )
    rotated = ok_data(response)["secret"]
    assert rotated.startswith("whsec_")
    assert rotated != channel["secret"]
    await send_test(tenancy, channel["id"])
    (received,) = await http_receiver.wait_for(1)
    verify(rotated, received)
    with pytest.raises(WebhookVerificationError):
        verify(channel["secret"], received)


async def test_500_twice_then_delivered_with_same_webhook_id(
    tenancy: Tenancy, http_receiver: HttpReceiver
) -> None:
    http_receiver.statuses[:] = [500, 500]
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    first = await send_test(tenancy, channel["id"])
    assert first["status"] == "pending"
    assert first["attempts"] == 1
    assert first["last_status_code"] == 500
    assert "500" in first["last_error"]
    assert first["next_attempt_at"] is not None
    done = await wait_delivery(tenancy, first["event_id"], "sent")
    assert done["attempts"] == 3
    assert done["last_status_code"] == 200
    assert done["sent_at"]
    received = await http_receiver.wait_for(3)
    assert len(received) == 3
    assert {r.headers["webhook-id"] for r in received} == {first["event_id"]}
    assert [r.status for r in received] == [500, 500, 200]
    for one in received:
        verify(channel["secret"], one)
    # Backoff: the attempts are spaced, not sent back to back.
    assert received[2].at - received[0].at >= 0.1


async def test_slack_payload_has_text_and_blocks_and_url_is_masked(
    tenancy: Tenancy, http_receiver: HttpReceiver
) -> None:
    url = http_receiver.url("/services/T000/B000/XXXXSECRET")
    channel = await add_channel(tenancy, "slack", {"url": url})
    assert channel["config"] == {"url": "********"}
    assert channel["secret"] is None
    delivery = await send_test(tenancy, channel["id"])
    assert delivery["status"] == "sent"
    (received,) = await http_receiver.wait_for(1)
    assert received.path == "/services/T000/B000/XXXXSECRET"
    body = json.loads(received.body)
    assert set(body) == {"text", "blocks"}
    assert "test notification" in body["text"]
    assert body["blocks"][0]["type"] == "header"
    assert all(block["type"] in {"header", "section", "context"} for block in body["blocks"])
    assert "webhook-signature" not in {k.lower() for k in received.headers}
    listed = await tenancy.client.get(CHANNELS, headers=tenancy.owner)
    assert "XXXXSECRET" not in listed.text


async def test_email_over_smtp_with_auth(tenancy: Tenancy, smtp_receiver: SmtpReceiver) -> None:
    config = {
        "host": smtp_receiver.host,
        "port": smtp_receiver.port,
        "security": "none",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "from": "rivergen@example.com",
        "to": ["oncall@example.com", "dba@example.com"],
    }
    channel = await add_channel(tenancy, "email", config)
    assert channel["config"]["password"] == "********"
    delivery = await send_test(tenancy, channel["id"])
    assert delivery["status"] == "sent", delivery
    (mail,) = await smtp_receiver.wait_for(1)
    assert mail.mail_from == "rivergen@example.com"
    assert sorted(mail.rcpt_tos) == ["dba@example.com", "oncall@example.com"]
    text = mail.content.decode() if isinstance(mail.content, bytes) else str(mail.content)
    assert "Subject: [RiverGen]" in text
    assert delivery["event_id"] in text
    assert SMTP_PASSWORD not in text

    wrong = await add_channel(tenancy, "email", {**config, "password": "wrong"}, name="bad")
    failed = await send_test(tenancy, wrong["id"])
    assert failed["status"] == "pending"
    assert "username and password" in failed["last_error"]
    assert len(smtp_receiver.mailbox.messages) == 1


async def test_metadata_address_refused(tenancy: Tenancy) -> None:
    for config in ({"url": "http://169.254.169.254/latest/meta-data/"},):
        response = await tenancy.client.post(
            CHANNELS,
            json={"name": "imds", "type": "webhook", "config": config},
            headers=tenancy.owner,
        )
        error = error_of(response, 422, "VALIDATION_ERROR")
        assert error["details"][0]["field"] == "body.config.url"
        assert "metadata" in error["details"][0]["message"]


async def test_redirect_is_not_followed(tenancy: Tenancy, http_receiver: HttpReceiver) -> None:
    http_receiver.statuses[:] = [302]
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    delivery = await send_test(tenancy, channel["id"])
    assert delivery["status"] == "pending"
    assert delivery["last_status_code"] == 302
    assert "redirect" in delivery["last_error"]
    assert len(http_receiver.requests) == 1


async def test_silent_receiver_times_out_and_blocks_nothing(
    tenancy: Tenancy, http_receiver: HttpReceiver, silent_listener: tuple[str, int]
) -> None:
    host, port = silent_listener
    silent = await add_channel(tenancy, "webhook", {"url": f"http://{host}:{port}/"}, "silent")
    good = await add_channel(tenancy, "webhook", {"url": http_receiver.url()}, "good")

    async def timed(channel_id: int) -> tuple[float, dict[str, Any]]:
        started = time.monotonic()
        delivery = await send_test(tenancy, channel_id)
        return time.monotonic() - started, delivery

    slow, fast = await asyncio.gather(timed(silent["id"]), timed(good["id"]))
    assert fast[1]["status"] == "sent"
    assert fast[0] < 0.9
    assert slow[1]["status"] == "pending"
    assert "No answer within 1 s" in slow[1]["last_error"]
    assert 0.9 <= slow[0] < 5
    # It is retried later, by the dispatcher.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        (again,) = await deliveries(tenancy, event_id=slow[1]["event_id"])
        if again["attempts"] >= 2:
            break
        await asyncio.sleep(0.1)
    assert again["attempts"] >= 2


async def test_roles_and_tenancy(tenancy: Tenancy, http_receiver: HttpReceiver) -> None:
    channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
    member = await tenancy.member("member")
    response = await tenancy.client.get(CHANNELS, headers=member)
    error_of(response, 403, "FORBIDDEN")
    outsider, _ = await tenancy.outsider("admin")
    for method, path in (
        ("GET", f"{CHANNELS}/{channel['id']}"),
        ("POST", f"{CHANNELS}/{channel['id']}/test"),
        ("POST", f"{CHANNELS}/{channel['id']}/rotate-secret"),
        ("DELETE", f"{CHANNELS}/{channel['id']}"),
    ):
        response = await tenancy.client.request(method, path, headers=outsider)
        error_of(response, 404, "NOT_FOUND")
    assert http_receiver.requests == []
    listed = ok_data(await tenancy.client.get(CHANNELS, headers=outsider))
    assert listed == []
