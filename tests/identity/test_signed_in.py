"""Verified sign-in sessions kept for a few seconds: what is forgotten at once, what waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from rivergen.app import create_app
from rivergen.identity.models import Role, User
from rivergen.identity.signed_in import SignedIn, SignedInCache
from rivergen.settings import Settings
from tests.fixtures.app import Api, start_api

ME = "/api/v1/auth/me"
SOURCES = "/api/v1/data-sources"


def signed_in(user_id: int, roles: dict[int, Role] | None = None) -> SignedIn:
    user = User(id=user_id, email=f"u{user_id}@example.com", password_hash="x", is_active=True)
    return SignedIn(user=user, roles=roles or {1: Role.MEMBER})


def test_a_kept_check_is_found_for_its_own_user_only() -> None:
    cache = SignedInCache(5)
    cache.put("s1", signed_in(7), cache.generation)
    found = cache.get("s1", 7)
    assert found is not None
    assert found.user.id == 7
    assert cache.get("s1", 8) is None  # a token naming another user never matches
    assert cache.get("s2", 7) is None


def test_a_ttl_of_zero_keeps_nothing() -> None:
    cache = SignedInCache(0)
    cache.put("s1", signed_in(7), cache.generation)
    assert cache.get("s1", 7) is None


def test_a_check_expires_after_the_ttl() -> None:
    cache = SignedInCache(0.2)
    cache.put("s1", signed_in(7), cache.generation)
    assert cache.get("s1", 7) is not None
    time.sleep(0.3)
    assert cache.get("s1", 7) is None


def test_forgetting_a_session_or_a_user() -> None:
    cache = SignedInCache(5)
    for session_id, user_id in (("a", 1), ("b", 1), ("c", 2)):
        cache.put(session_id, signed_in(user_id), cache.generation)
    cache.forget_session("a")
    assert cache.get("a", 1) is None
    assert cache.get("b", 1) is not None
    cache.forget_user(1)
    assert cache.get("b", 1) is None
    assert cache.get("c", 2) is not None


def test_a_check_that_began_before_a_change_is_not_kept() -> None:
    cache = SignedInCache(5)
    began = cache.generation  # a request starts reading the store...
    cache.forget_user(7)  # ...a membership of the user changes meanwhile...
    cache.put("s1", signed_in(7), began)  # ...and its outdated answer arrives
    assert cache.get("s1", 7) is None


@asynccontextmanager
async def two_servers(
    settings_factory: Callable[..., Settings], ttl: float
) -> AsyncIterator[tuple[Api, Api]]:
    """Two server processes' worth of app on one store, as behind a load balancer."""
    settings = settings_factory(auth_cache_seconds=ttl)
    async with AsyncExitStack() as stack:
        apis: list[Api] = []
        for app in (create_app(settings), create_app(settings)):
            apis.append(await stack.enter_async_context(asynccontextmanager(start_api)(app)))
        yield apis[0], apis[1]


@pytest.mark.anyio
async def test_a_logout_ends_access_at_once_here_and_within_the_ttl_elsewhere(
    settings_factory: Callable[..., Settings],
) -> None:
    ttl = 3.0
    async with two_servers(settings_factory, ttl=ttl) as (first, second):
        tokens = await first.login()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        before_kept = time.monotonic()
        assert (await second.client.get(ME, headers=bearer)).status_code == 200  # now kept
        after_kept = time.monotonic()
        assert (await first.client.get(ME, headers=bearer)).status_code == 200
        logout = await first.client.post(
            "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}
        )
        assert logout.status_code == 200, logout.text
        assert (await first.client.get(ME, headers=bearer)).status_code == 401
        # The other server trusts its check until the TTL runs out, never longer.
        assert time.monotonic() < before_kept + ttl, "the machine was too slow to tell"
        assert (await second.client.get(ME, headers=bearer)).status_code == 200
        while (await second.client.get(ME, headers=bearer)).status_code == 200:
            assert time.monotonic() < after_kept + ttl + 1.0
            await asyncio.sleep(0.05)
        assert time.monotonic() >= before_kept + ttl


@pytest.mark.anyio
async def test_without_the_cache_a_logout_ends_access_everywhere_at_once(
    settings_factory: Callable[..., Settings],
) -> None:
    async with two_servers(settings_factory, ttl=0) as (first, second):
        tokens = await first.login()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await second.client.get(ME, headers=bearer)).status_code == 200
        logout = await first.client.post(
            "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}
        )
        assert logout.status_code == 200, logout.text
        assert (await second.client.get(ME, headers=bearer)).status_code == 401


@pytest.mark.anyio
async def test_a_membership_change_applies_at_once_in_the_server_that_made_it(api: Api) -> None:
    admin = await api.headers_for()
    org_id = (await api.client.get("/api/v1/organizations", headers=admin)).json()["data"]["items"][
        0
    ]["id"]
    added = await api.client.post(
        f"/api/v1/organizations/{org_id}/members",
        json={"email": "member@example.com", "role": "admin", "password": "member-password-1"},
        headers=admin,
    )
    assert added.status_code == 202, added.text
    member = await api.headers_for("member@example.com", "member-password-1")
    member_id = (await api.client.get(ME, headers=member)).json()["data"]["id"]
    create = {"name": "pg", "type": "postgresql", "connection": {"host": "db.example.com"}}
    assert (await api.client.get(SOURCES, headers=member)).status_code == 200  # now kept

    demoted = await api.client.patch(
        f"/api/v1/organizations/{org_id}/members/{member_id}",
        json={"role": "viewer"},
        headers=admin,
    )
    assert demoted.status_code == 200, demoted.text
    refused = await api.client.post(SOURCES, json=create, headers=member)
    assert refused.status_code == 403, refused.text
    assert "admin role" in refused.json()["error"]["message"]

    removed = await api.client.delete(
        f"/api/v1/organizations/{org_id}/members/{member_id}", headers=admin
    )
    assert removed.status_code in (200, 204), removed.text
    gone = await api.client.get(SOURCES, headers=member)
    assert gone.status_code == 403, gone.text
    assert gone.json()["error"]["message"] == "User is not a member of any organization"
