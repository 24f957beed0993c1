"""Two owners demoting or removing each other at the same moment never leave no owner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlalchemy import func, select

from rivergen.app import create_app
from rivergen.context import AppContext
from rivergen.identity import repository as users
from rivergen.identity.models import Membership
from rivergen.organizations import repository as orgs
from rivergen.settings import Settings
from tests.fixtures.app import ADMIN_EMAIL, Api, start_api
from tests.fixtures.members import Member, seed_member, signed_in_headers

pytestmark = pytest.mark.anyio

ROUNDS = 10


@pytest.fixture
async def uncached_api(settings_factory: Callable[..., Settings]) -> AsyncIterator[Api]:
    """An app that checks roles in the store on every request (the test edits them there)."""
    async for running in start_api(create_app(settings_factory(auth_cache_seconds=0))):
        yield running


async def owners(api: Api, organization_id: int) -> int:
    context: AppContext = api.app.state.context
    async with context.sessions() as session:
        query = select(func.count(Membership.id)).where(
            Membership.organization_id == organization_id, Membership.role == "owner"
        )
        return int((await session.execute(query)).scalar_one())


async def make_owner(api: Api, organization_id: int, user_id: int) -> None:
    """Give `user_id` the owner role again (or back), straight in the store."""
    context: AppContext = api.app.state.context
    async with context.sessions() as session, session.begin():
        membership = await orgs.get_membership(session, organization_id, user_id)
        if membership is None:
            await orgs.add_membership(session, organization_id, user_id, "owner")
        else:
            membership.role = "owner"


async def at_once(*requests: Awaitable[httpx.Response]) -> list[httpx.Response]:
    return list(await asyncio.gather(*requests))


@pytest.mark.parametrize("action", ["demote", "remove"])
async def test_two_owners_acting_on_each_other_at_once_leave_one_owner(
    uncached_api: Api, action: str
) -> None:
    api = uncached_api
    context: AppContext = api.app.state.context
    async with context.sessions() as session:
        first_user = await users.get_user_by_email(session, ADMIN_EMAIL)
        assert first_user is not None
        memberships = await orgs.memberships_of(session, first_user.id)
    organization_id = memberships[0][1].id
    first = Member(ADMIN_EMAIL, first_user.id, await signed_in_headers(api, first_user.id))
    second = await seed_member(api, organization_id, "second-owner@example.com", "owner")
    url = f"/api/v1/organizations/{organization_id}/members"

    def act(actor: Member, target: Member) -> Awaitable[httpx.Response]:
        if action == "demote":
            return api.client.patch(
                f"{url}/{target.user_id}", json={"role": "admin"}, headers=actor.headers
            )
        return api.client.delete(f"{url}/{target.user_id}", headers=actor.headers)

    for _ in range(ROUNDS):
        assert await owners(api, organization_id) == 2
        responses = await at_once(act(first, second), act(second, first))
        statuses = sorted(r.status_code for r in responses)
        # One wins; the other finds itself no longer an owner (403), no longer a member (404)
        # or the last owner (409).
        assert statuses[0] == 200, [r.text for r in responses]
        assert statuses[1] in (403, 404, 409), [r.text for r in responses]
        assert await owners(api, organization_id) == 1
        for user in (first, second):
            await make_owner(api, organization_id, user.user_id)


async def test_an_admin_service_token_of_an_owner_cannot_touch_owners(uncached_api: Api) -> None:
    api = uncached_api
    context: AppContext = api.app.state.context
    async with context.sessions() as session:
        first_user = await users.get_user_by_email(session, ADMIN_EMAIL)
        assert first_user is not None
        organization_id = (await orgs.memberships_of(session, first_user.id))[0][1].id
    owner_headers = await signed_in_headers(api, first_user.id)
    second = await seed_member(api, organization_id, "other-owner@example.com", "owner")
    minted = await api.client.post(
        f"/api/v1/organizations/{organization_id}/api-tokens",
        json={"name": "ci", "role": "admin", "expires_at": None},
        headers=owner_headers,
    )
    assert minted.status_code == 201, minted.text
    token = {"Authorization": f"Bearer {minted.json()['data']['token']}"}
    url = f"/api/v1/organizations/{organization_id}/members/{second.user_id}"
    # The token acts with its own role (admin), not its creator's (owner), under the lock too.
    demote = await api.client.patch(url, json={"role": "member"}, headers=token)
    assert demote.status_code == 403, demote.text
    assert (await api.client.delete(url, headers=token)).status_code == 403
    assert await owners(api, organization_id) == 2
