"""The sender on its own: the host policy after DNS, over real sockets on loopback."""

from __future__ import annotations

import pytest

from rivergen.alerts.delivery import Sender
from rivergen.security.host_policy import HostPolicy
from tests.fixtures.receivers import HttpReceiver

pytestmark = pytest.mark.anyio
PAYLOAD = {"id": "evt_1", "type": "test", "organization": {"id": 1, "name": "o"}}


async def test_name_resolving_to_a_refused_address_is_not_contacted(
    http_receiver: HttpReceiver,
) -> None:
    sender = Sender(HostPolicy(allow_private=False, allow_loopback=False), timeout_seconds=1)
    url = f"http://localhost:{http_receiver.port}/hook"
    attempt = await sender.send("webhook", {"url": url}, {"secret": "whsec_AAAA"}, "evt_1", PAYLOAD)
    assert not attempt.ok
    assert attempt.permanent
    assert attempt.error is not None
    assert "loopback" in attempt.error
    assert http_receiver.requests == []


async def test_allowed_name_is_reached_at_the_checked_address(http_receiver: HttpReceiver) -> None:
    sender = Sender(HostPolicy(allow_private=True, allow_loopback=True), timeout_seconds=1)
    url = f"http://localhost:{http_receiver.port}/hook"
    attempt = await sender.send("slack", {}, {"url": url}, "evt_1", PAYLOAD)
    assert attempt.ok
    assert attempt.status_code == 200
    (received,) = await http_receiver.wait_for(1)
    assert received.headers["Host"] == f"localhost:{http_receiver.port}"


async def test_bad_scheme_is_permanent() -> None:
    sender = Sender(HostPolicy(), timeout_seconds=1)
    attempt = await sender.send("slack", {}, {"url": "file:///etc/passwd"}, "evt_1", PAYLOAD)
    assert not attempt.ok
    assert attempt.permanent
    assert attempt.error is not None
