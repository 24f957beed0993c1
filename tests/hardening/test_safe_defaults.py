"""Safe defaults of a shared installation: no targets on the service's own machine unless
`RIVERGEN_ALLOW_LOOPBACK=true`, and never the service's own metadata store or broker.

Each refusal is proven by a real listener that counts connections (a refused test leaves it at
0) beside a control that reaches the same listener once the setting allows it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from rivergen.security.own_endpoints import machine_addresses
from rivergen.settings import Settings
from rivergen.store.migrate import upgrade_blocking
from tests.fixtures.app import build_test_settings
from tests.fixtures.hardening import CountingListener, ok_data
from tests.fixtures.policy import (
    app_with,
    assert_refused_by_policy,
    saved_and_unsaved,
    source,
    tunnel_to,
)
from tests.fixtures.required import unavailable
from tests.fixtures.servers import Server
from tests.fixtures.store import PG_ADMIN_DSN

pytestmark = pytest.mark.anyio


def assert_names_the_setting(data: dict[str, Any]) -> None:
    """The refusal tells the operator which setting would allow it."""
    assert_refused_by_policy(data)
    assert "RIVERGEN_ALLOW_LOOPBACK" in data["hint"], data
    assert "own machine" in data["error_message"], data


async def test_loopback_is_off_unless_the_setting_says_so() -> None:
    assert Settings(_env_file=None).allow_loopback is False


async def test_a_loopback_target_is_refused_by_default_with_a_hint_naming_the_setting(
    settings_factory: Callable[..., Settings], counting_listener: CountingListener
) -> None:
    # allow_loopback=False is the default; the tests' settings builder turns it on.
    async with app_with(settings_factory(allow_loopback=False)) as tenant:
        for host in (counting_listener.host, "localhost", "127.0.0.2", "::ffff:127.0.0.1"):
            body = source("postgresql", host, counting_listener.port)
            body["name"] = f"local-{host}"
            for data in await saved_and_unsaved(tenant, body):
                assert_names_the_setting(data)
        # A bastion on this machine is refused the same way, before any packet.
        body = source("redis", "db.example.com", 6379, ssh_tunnel=tunnel_to("127.0.0.1", 22))
        assert_names_the_setting(ok_data(await tenant.test_unsaved(body)))
    assert counting_listener.accepted == 0

    async with app_with(settings_factory(allow_loopback=True)) as tenant:
        body = source("postgresql", counting_listener.host, counting_listener.port)
        data = ok_data(await tenant.test_unsaved({**body, "timeout_seconds": 5}))
        assert data["error_code"] != "HOST_NOT_ALLOWED", data
    assert counting_listener.accepted >= 1


@pytest.fixture
def own_address_listener() -> Iterator[CountingListener]:
    """A counting listener on one of this machine's own non-loopback addresses."""
    candidates = [
        a
        for a in machine_addresses()
        if not ipaddress.ip_address(a).is_loopback and not ipaddress.ip_address(a).is_link_local
    ]
    if not candidates:
        unavailable("this machine has no non-loopback address to listen on")
    listener = CountingListener(candidates[0])
    try:
        yield listener
    finally:
        listener.close()


async def test_the_machines_own_address_is_judged_like_loopback(
    settings_factory: Callable[..., Settings], own_address_listener: CountingListener
) -> None:
    host, port = own_address_listener.host, own_address_listener.port
    async with app_with(settings_factory(allow_loopback=False)) as tenant:
        data = ok_data(await tenant.test_unsaved(source("postgresql", host, port)))
        assert_names_the_setting(data)
    assert own_address_listener.accepted == 0

    async with app_with(settings_factory(allow_loopback=True)) as tenant:
        data = ok_data(await tenant.test_unsaved(source("postgresql", host, port)))
        assert data["error_code"] != "HOST_NOT_ALLOWED", data
    assert own_address_listener.accepted >= 1


async def test_the_brokers_endpoint_is_never_a_target(
    settings_factory: Callable[..., Settings], counting_listener: CountingListener
) -> None:
    port = counting_listener.port
    settings = settings_factory(
        allow_loopback=True,
        allowed_networks="0.0.0.0/0,::/0",
        broker_url=f"redis://localhost:{port}/0",
    )
    async with app_with(settings) as tenant:
        # Every address of this machine at the broker's port: a broker bound to 0.0.0.0 answers
        # on all of them.
        for host in ("127.0.0.1", "localhost", "127.0.0.2", "::ffff:127.0.0.1"):
            body = source("redis", host, port)
            body["name"] = f"broker-{host}"
            for data in await saved_and_unsaved(tenant, body):
                assert_refused_by_policy(data)
                assert "metadata store or broker" in data["error_message"], data
        # Through a tunnel, a literal destination is judged too.
        tunnelled = source("redis", "127.0.0.1", port, ssh_tunnel=tunnel_to("127.0.0.1", 1))
        assert_refused_by_policy(ok_data(await tenant.test_unsaved(tunnelled)))
    assert counting_listener.accepted == 0


@pytest.fixture
def tcp_store_url(local_postgres: Server) -> Iterator[str]:
    """A fresh migrated store on the machine's PostgreSQL, reached over TCP (127.0.0.1:5432)."""
    name = f"rivergen_test_{os.getpid()}_tcp_store"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"postgresql+psycopg://postgres@{local_postgres.host}:{local_postgres.port}/{name}"
    try:
        upgrade_blocking(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def test_the_metadata_stores_endpoint_is_never_a_target(
    tmp_path: Path,
    tcp_store_url: str,
    local_postgres: Server,
    local_redis: Server,
) -> None:
    settings = build_test_settings(
        tmp_path / "data", tcp_store_url, allow_loopback=True, allowed_networks="0.0.0.0/0,::/0"
    )
    async with app_with(settings) as tenant:
        own = source("postgresql", local_postgres.host, local_postgres.port)
        own["connection"].update(username="postgres", database="postgres")
        for data in await saved_and_unsaved(tenant, own):
            assert_refused_by_policy(data)
            assert "metadata store or broker" in data["error_message"], data
        # Another server on the same machine is an ordinary (allowed) target.
        other = source("redis", local_redis.host, local_redis.port)
        data = ok_data(await tenant.test_unsaved({**other, "timeout_seconds": 5}))
        assert data["connection_successful"] is True, data
