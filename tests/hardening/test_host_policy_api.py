"""The host policy end to end: judged after DNS, before any packet, for the database and bastion.

Each refusal is proven by a loopback listener that counts connections: a refused test leaves its
count at 0, while the same target with the policy relaxed is reached (so the count is not
vacuous). Settings are the real ones (`RIVERGEN_ALLOW_PRIVATE_NETWORKS`,
`RIVERGEN_ALLOW_LOOPBACK`, `RIVERGEN_ALLOWED_NETWORKS`), fed to a fresh app per test.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from rivergen.settings import Settings
from tests.fixtures.hardening import (
    METADATA_ADDRESS,
    CountingListener,
    ok_data,
)
from tests.fixtures.policy import (
    app_with,
    assert_refused_by_policy,
    saved_and_unsaved,
    source,
    tunnel_to,
)
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.anyio

NETWORK_ENGINES = ("postgresql", "mysql", "mariadb", "redis")


# ----- loopback and private ranges, by setting ----------------------------------------------


@pytest.mark.parametrize("engine", NETWORK_ENGINES)
async def test_loopback_is_refused_before_any_packet_when_private_networks_are_off(
    settings_factory: Callable[..., Settings], counting_listener: CountingListener, engine: str
) -> None:
    async with app_with(
        settings_factory(allow_private_networks=False, allow_loopback=False)
    ) as tenant:
        body = source(engine, counting_listener.host, counting_listener.port)
        for data in await saved_and_unsaved(tenant, body):
            assert_refused_by_policy(data)
            assert "127.0.0.1" in data["error_message"]
            assert "loopback" in data["error_message"]
        # The refusal is recorded like any failed test.
        shown = ok_data(
            await tenant.client.get("/api/v1/data-sources", headers=tenant.owner.headers)
        )
        assert [s["last_error_code"] for s in shown["items"]] == ["HOST_NOT_ALLOWED"]
    assert counting_listener.accepted == 0


@pytest.mark.parametrize("engine", ["postgresql", "redis"])
async def test_the_same_loopback_target_is_reached_when_loopback_is_allowed(
    settings_factory: Callable[..., Settings], counting_listener: CountingListener, engine: str
) -> None:
    """The control of the test above: with RIVERGEN_ALLOW_LOOPBACK=true (the tests' settings)."""
    async with app_with(settings_factory()) as tenant:
        body = source(engine, counting_listener.host, counting_listener.port)
        for data in await saved_and_unsaved(tenant, body):
            assert data["connection_successful"] is False  # the listener hangs up at once
            assert data["error_code"] != "HOST_NOT_ALLOWED", data
    assert counting_listener.accepted >= 2


async def test_a_name_resolving_to_a_refused_address_is_refused_the_same_way(
    settings_factory: Callable[..., Settings], counting_listener: CountingListener
) -> None:
    async with app_with(
        settings_factory(allow_private_networks=False, allow_loopback=False)
    ) as tenant:
        body = source("postgresql", "localhost", counting_listener.port)
        for data in await saved_and_unsaved(tenant, body):
            assert_refused_by_policy(data)
            # The message names the host and the address it resolved to.
            assert data["error_message"].startswith("The host localhost resolves to "), data
    assert counting_listener.accepted == 0


PRIVATE_AND_LOOPBACK = (
    "10.1.2.3",
    "172.16.0.9",
    "192.168.10.10",
    "100.64.0.1",
    "fd12:3456::1",
    "::1",
    "127.1",
)


async def test_private_and_loopback_ranges_are_refused_when_private_networks_are_off(
    settings_factory: Callable[..., Settings],
) -> None:
    async with app_with(
        settings_factory(allow_private_networks=False, allow_loopback=False)
    ) as tenant:
        for host in PRIVATE_AND_LOOPBACK:
            data = ok_data(await tenant.test_unsaved(source("postgresql", host, 5432)))
            assert_refused_by_policy(data)


# ----- the allow-list -----------------------------------------------------------------------


async def test_allowed_networks_let_a_listed_private_range_through(
    settings_factory: Callable[..., Settings], counting_listener: CountingListener
) -> None:
    # The setting as the environment gives it: comma-separated CIDRs.
    settings = settings_factory(
        allow_private_networks=False,
        allow_loopback=False,
        allowed_networks="10.0.0.0/8, 127.0.0.0/8",
    )
    assert settings.allowed_networks == ["10.0.0.0/8", "127.0.0.0/8"]
    async with app_with(settings) as tenant:
        listed = source("postgresql", counting_listener.host, counting_listener.port)
        for data in await saved_and_unsaved(tenant, listed):
            assert data["error_code"] != "HOST_NOT_ALLOWED", data
        # Other private ranges stay refused.
        other = ok_data(await tenant.test_unsaved(source("postgresql", "192.168.1.1", 5432)))
        assert_refused_by_policy(other)
    assert counting_listener.accepted >= 2


async def test_an_allow_list_entry_covers_only_its_own_addresses(
    settings_factory: Callable[..., Settings], counting_listener: CountingListener
) -> None:
    settings = settings_factory(
        allow_private_networks=False, allow_loopback=False, allowed_networks="127.0.0.2/32"
    )
    async with app_with(settings) as tenant:
        body = source("postgresql", counting_listener.host, counting_listener.port)
        for data in await saved_and_unsaved(tenant, body):
            assert_refused_by_policy(data)
    assert counting_listener.accepted == 0


NEVER_ALLOWED = (
    METADATA_ADDRESS,
    "169.254.170.2",
    "169.254.1.1",
    "fe80::1",
    "::ffff:169.254.169.254",
)


@pytest.mark.parametrize(
    "allowed", ["169.254.0.0/16", "0.0.0.0/0,::/0", "169.254.169.254/32,fe80::/10"]
)
async def test_metadata_and_link_local_are_refused_even_when_allow_listed(
    settings_factory: Callable[..., Settings], allowed: str
) -> None:
    settings = settings_factory(allow_private_networks=True, allowed_networks=allowed)
    async with app_with(settings) as tenant:
        for host in NEVER_ALLOWED:
            data = ok_data(await tenant.test_unsaved(source("postgresql", host, 5432)))
            assert_refused_by_policy(data)
            assert "never allowed" in data["error_message"], data


# ----- the SSH bastion ----------------------------------------------------------------------


async def test_a_bastion_at_a_refused_address_is_refused_before_any_packet(
    settings_factory: Callable[..., Settings], counting_listener: CountingListener
) -> None:
    async with app_with(
        settings_factory(allow_private_networks=False, allow_loopback=False)
    ) as tenant:
        for bastion_host in (counting_listener.host, "localhost"):
            body = source(
                "postgresql",
                "db.internal.example",
                5432,
                ssh_tunnel=tunnel_to(bastion_host, counting_listener.port),
            )
            body["name"] = f"behind-{bastion_host}"
            for data in await saved_and_unsaved(tenant, body):
                assert_refused_by_policy(data)
                assert data["ssh_host_key_fingerprint"] is None
    assert counting_listener.accepted == 0


async def test_a_bastion_at_a_metadata_address_is_refused_with_default_settings(
    settings_factory: Callable[..., Settings],
) -> None:
    async with app_with(settings_factory()) as tenant:
        body = source(
            "mysql", "db.internal.example", 3306, ssh_tunnel=tunnel_to(METADATA_ADDRESS, 22)
        )
        for data in await saved_and_unsaved(tenant, body):
            assert_refused_by_policy(data)
            assert METADATA_ADDRESS in data["error_message"]


async def test_a_literal_refused_database_address_behind_an_allowed_bastion_is_refused(
    settings_factory: Callable[..., Settings], counting_listener: CountingListener
) -> None:
    """The bastion would resolve a name itself, but a literal address is judged here first."""
    async with app_with(settings_factory()) as tenant:
        body = source(
            "postgresql",
            METADATA_ADDRESS,
            80,
            ssh_tunnel=tunnel_to(counting_listener.host, counting_listener.port),
        )
        for data in await saved_and_unsaved(tenant, body):
            assert_refused_by_policy(data)
    assert counting_listener.accepted == 0  # the bastion was never contacted


# ----- the connection goes to the address that was checked ----------------------------------


@pytest.mark.parametrize("engine", NETWORK_ENGINES)
async def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(
    settings_factory: Callable[..., Settings],
    counting_listener: CountingListener,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
) -> None:
    """A name answers the listener's address once, then a refused one (DNS rebinding).

    If any layer looked the name up again it would reach a closed port (Python drivers) or fail
    to resolve it at all (libpq's own resolver knows no such name): the listener counting a
    connection and the absence of HOST_NOT_FOUND prove the driver used the checked address.
    """
    real_getaddrinfo = socket.getaddrinfo
    closed = free_port()
    lookups: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.hardening.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        target = counting_listener.port if len(lookups) == 1 else closed
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", target))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    async with app_with(settings_factory()) as tenant:
        body = source(engine, "rebind.hardening.test", counting_listener.port)
        data = ok_data(await tenant.test_unsaved({**body, "timeout_seconds": 5}))
    assert data["error_code"] not in ("HOST_NOT_FOUND", "HOST_NOT_ALLOWED"), data
    assert lookups == ["rebind.hardening.test"]
    assert counting_listener.accepted == 1
