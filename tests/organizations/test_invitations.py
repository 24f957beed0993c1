"""Invitations: nobody joins an organization without accepting, and nothing reveals accounts.

A second account (Mallory) creates her own organization and tries to pull the first (the
bootstrap owner) into it to read their sign-ins; the invitee accepts a token once, signed in
with the invited email, before it expires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from rivergen.app import create_app
from rivergen.context import AppContext
from rivergen.identity import repository as users
from rivergen.organizations.models import Invitation
from rivergen.settings import Settings
from rivergen.store.base import utcnow
from tests.fixtures.app import ADMIN_EMAIL, Api, start_api
from tests.fixtures.members import PASSWORD, Member, seed_member, signed_in_headers

pytestmark = pytest.mark.anyio

ORGS = "/api/v1/organizations"
ACCEPT = "/api/v1/invitations/accept"
SIGN_INS = "/api/v1/auth/me/sign-ins"
WRONG = "wrong-password-for-the-victim"


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    return str(response.json()["error"]["message"])


@dataclass
class World:
    api: Api
    victim: Member  # the bootstrap owner, in "Default"
    mallory: Member  # owner of "Trap", an organization she made herself
    trap_id: int

    def invitations(self, organization_id: int | None = None) -> str:
        return f"{ORGS}/{organization_id or self.trap_id}/invitations"

    async def invite(
        self, email: str, role: str = "viewer", actor: Member | None = None
    ) -> httpx.Response:
        return await self.api.client.post(
            self.invitations(),
            json={"email": email, "role": role},
            headers=(actor or self.mallory).headers,
        )

    async def accept(self, who: Member, token: str) -> httpx.Response:
        return await self.api.client.post(ACCEPT, json={"token": token}, headers=who.headers)

    async def organizations_of(self, who: Member) -> dict[str, str]:
        listed = data(await self.api.client.get(ORGS, headers=who.headers))
        return {o["name"]: o["role"] for o in listed["items"]}


@pytest.fixture
async def world(api: Api) -> World:
    context: AppContext = api.app.state.context
    async with context.sessions() as session:
        owner = await users.get_user_by_email(session, ADMIN_EMAIL)
        assert owner is not None
    victim = Member(ADMIN_EMAIL, owner.id, await signed_in_headers(api, owner.id))
    mallory = await seed_member(api, None, "mallory@example.com", "owner")
    trap = data(await api.client.post(ORGS, json={"name": "Trap"}, headers=mallory.headers), 201)
    return World(api, victim, mallory, int(trap["id"]))


async def test_an_existing_account_is_not_added_and_its_sign_ins_stay_its_own(
    world: World,
) -> None:
    api = world.api
    # The victim signs in from their address, once with a wrong password.
    error(
        await api.client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": WRONG}),
        401,
        "UNAUTHORIZED",
    )
    await api.login()

    # Mallory tries every way to add them: by email alone, with a password, by invitation.
    members = f"{ORGS}/{world.trap_id}/members"
    error(
        await api.client.post(members, json={"email": ADMIN_EMAIL}, headers=world.mallory.headers),
        422,
        "VALIDATION_ERROR",
    )
    data(
        await api.client.post(
            members,
            json={"email": ADMIN_EMAIL, "role": "viewer", "password": "mallory-chose-this"},
            headers=world.mallory.headers,
        ),
        202,
    )
    error(
        await api.client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "mallory-chose-this"}
        ),
        401,
        "UNAUTHORIZED",
    )
    token = data(await world.invite(ADMIN_EMAIL), 201)["token"]
    assert await world.organizations_of(world.victim) == {"Default": "owner"}
    listed = data(await api.client.get(members, headers=world.mallory.headers))
    assert [m["email"] for m in listed["items"]] == ["mallory@example.com"]

    # Nothing Mallory can read shows the victim's sign-ins.
    audit = data(await api.client.get("/api/v1/audit-events", headers=world.mallory.headers))
    assert all(i["action"] != "auth.login" for i in audit["items"])
    assert world.victim.user_id not in {i["actor_user_id"] for i in audit["items"]}
    assert data(await api.client.get(SIGN_INS, headers=world.mallory.headers))["total"] == 0
    # The victim sees their own, newest first, with the address: the try with Mallory's
    # password, the sign-in, the wrong password.
    own = data(await api.client.get(SIGN_INS, headers=world.victim.headers))
    assert [i["outcome"] for i in own["items"]] == ["failure", "success", "failure"]
    assert all(i["client_address"] for i in own["items"])

    # Only by accepting does the victim join; then Mallory still sees no sign-in of theirs.
    accepted = data(await world.accept(world.victim, token))
    assert accepted == {
        "organization_id": world.trap_id,
        "organization_name": "Trap",
        "role": "viewer",
    }
    assert await world.organizations_of(world.victim) == {"Default": "owner", "Trap": "viewer"}
    audit = data(
        await api.client.get(
            "/api/v1/audit-events", params={"limit": 500}, headers=world.mallory.headers
        )
    )
    actions = [i["action"] for i in audit["items"]]
    assert "auth.login" not in actions
    assert {"invitation.create", "invitation.accept"} <= set(actions)
    assert token not in str(audit)


async def test_the_same_answer_for_an_existing_and_an_unknown_email(world: World) -> None:
    known = await world.invite(ADMIN_EMAIL)
    unknown = await world.invite("nobody-has-this@example.com")
    assert known.status_code == unknown.status_code == 201
    assert known.json()["message"] == unknown.json()["message"]
    known_data, unknown_data = known.json()["data"], unknown.json()["data"]
    assert set(known_data) == set(unknown_data)
    varying = {"id", "email", "token", "created_at", "expires_at"}
    assert {k: v for k, v in known_data.items() if k not in varying} == {
        k: v for k, v in unknown_data.items() if k not in varying
    }
    # The unknown email's invitation waits for an account with that email.
    newcomer = await seed_member(world.api, None, "nobody-has-this@example.com", "viewer")
    data(await world.accept(newcomer, unknown_data["token"]))
    assert await world.organizations_of(newcomer) == {"Trap": "viewer"}


async def test_expired_reused_revoked_and_other_email_tokens_are_refused(world: World) -> None:
    api = world.api
    context: AppContext = api.app.state.context
    other = await seed_member(api, None, "other@example.com", "viewer")

    # Another account cannot use a token sent to the victim, and does not use it up.
    token = data(await world.invite(ADMIN_EMAIL), 201)["token"]
    assert "another email" in error(await world.accept(other, token), 403, "FORBIDDEN")
    assert await world.organizations_of(other) == {}
    data(await world.accept(world.victim, token))
    # Once used, never again (for anyone).
    error(await world.accept(world.victim, token), 404, "NOT_FOUND")
    error(await world.accept(other, token), 404, "NOT_FOUND")

    # Expired: the row's expiry moved into the past.
    expiring = data(await world.invite("other@example.com"), 201)
    async with context.sessions() as session, session.begin():
        await session.execute(
            update(Invitation)
            .where(Invitation.id == expiring["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    error(await world.accept(other, expiring["token"]), 404, "NOT_FOUND")
    pending = data(await api.client.get(world.invitations(), headers=world.mallory.headers))
    assert [(i["id"], i["expired"]) for i in pending["items"]] == [(expiring["id"], True)]

    # Revoked: gone from the list, and refused.
    revoked = data(await world.invite("other@example.com", "member"), 201)
    url = f"{world.invitations()}/{revoked['id']}"
    data(await api.client.delete(url, headers=world.mallory.headers))
    error(await api.client.delete(url, headers=world.mallory.headers), 404, "NOT_FOUND")
    error(await world.accept(other, revoked["token"]), 404, "NOT_FOUND")
    # A made-up token, and one of a wrong shape.
    error(await world.accept(other, "x" * 43), 404, "NOT_FOUND")
    error(await world.accept(other, ""), 422, "VALIDATION_ERROR")
    assert await world.organizations_of(other) == {}

    # The store keeps only hashes of tokens.
    async with context.sessions() as session:
        rows = (await session.scalars(select(Invitation))).all()
    stored = str([(row.token_hash, row.email) for row in rows])
    for issued in (token, expiring["token"], revoked["token"]):
        assert issued not in stored


async def test_one_token_accepted_twice_at_once_joins_once(world: World) -> None:
    token = data(await world.invite(ADMIN_EMAIL), 201)["token"]
    first, second = await asyncio.gather(
        world.accept(world.victim, token), world.accept(world.victim, token)
    )
    assert sorted((first.status_code, second.status_code)) in ([200, 404], [200, 409])
    assert await world.organizations_of(world.victim) == {"Default": "owner", "Trap": "viewer"}


async def test_roles_and_who_may_invite_list_and_revoke(world: World) -> None:
    api = world.api
    admin = await seed_member(api, world.trap_id, "trap-admin@example.com", "admin")
    member = await seed_member(api, world.trap_id, "trap-member@example.com", "member")
    # Never a role above the inviter's own; an admin may offer admin and below.
    assert "owner role" in error(
        await world.invite("a@example.com", "owner", admin), 403, "FORBIDDEN"
    )
    data(await world.invite("a@example.com", "admin", admin), 201)
    owner_offer = data(await world.invite("b@example.com", "owner"), 201)
    # Members and viewers neither invite nor see invitations.
    error(await world.invite("c@example.com", "viewer", member), 403, "FORBIDDEN")
    error(await api.client.get(world.invitations(), headers=member.headers), 403, "FORBIDDEN")
    # An admin lists them (no token in the list) but cannot revoke the owner offer.
    listed = data(await api.client.get(world.invitations(), headers=admin.headers))
    assert [i["email"] for i in listed["items"]] == ["b@example.com", "a@example.com"]
    assert "token" not in str(listed)
    revoke = f"{world.invitations()}/{owner_offer['id']}"
    error(await api.client.delete(revoke, headers=admin.headers), 403, "FORBIDDEN")
    data(await api.client.delete(revoke, headers=world.mallory.headers))
    # A new invitation for the same email replaces the pending one.
    data(await world.invite("a@example.com", "viewer", admin), 201)
    listed = data(await api.client.get(world.invitations(), headers=admin.headers))
    assert [(i["email"], i["role"]) for i in listed["items"]] == [("a@example.com", "viewer")]
    # A current member cannot be invited again; another organization's list is not found.
    assert "already a member" in error(
        await world.invite("trap-member@example.com", "viewer"), 409, "CONFLICT"
    )
    other_org = world.invitations(999_999)
    error(await api.client.get(other_org, headers=world.mallory.headers), 404, "NOT_FOUND")
    default_id = next(
        o["organization_id"]
        for o in data(await api.client.get("/api/v1/auth/me", headers=world.victim.headers))[
            "organizations"
        ]
    )
    error(
        await api.client.get(world.invitations(default_id), headers=world.mallory.headers),
        404,
        "NOT_FOUND",
    )
    audit = data(
        await api.client.get(
            "/api/v1/audit-events",
            params={"action": "invitation.revoke"},
            headers=world.mallory.headers,
        )
    )
    assert [i["target_id"] for i in audit["items"]] == [str(owner_offer["id"])]
    assert PASSWORD not in str(audit)


async def test_accounts_and_invitations_share_a_per_user_budget(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_app(settings_factory(accounts_per_day_per_user=2))
    async for api in start_api(app):
        headers = await api.headers_for()
        me = data(await api.client.get("/api/v1/auth/me", headers=headers))
        org = me["organizations"][0]["organization_id"]
        members = f"{ORGS}/{org}/members"
        body = {"role": "viewer", "password": "budget-password-1"}
        data(
            await api.client.post(members, json={"email": "a@x.example", **body}, headers=headers),
            202,
        )
        invite = {"email": "b@x.example", "role": "viewer"}
        data(await api.client.post(f"{ORGS}/{org}/invitations", json=invite, headers=headers), 201)
        # Spent: refused alike for an existing and an unknown email, nothing created.
        for email in (ADMIN_EMAIL, "c@x.example"):
            response = await api.client.post(
                members, json={"email": email, **body}, headers=headers
            )
            error(response, 429, "RATE_LIMITED")
            assert int(response.headers["Retry-After"]) >= 1
        error(
            await api.client.post(f"{ORGS}/{org}/invitations", json=invite, headers=headers),
            429,
            "RATE_LIMITED",
        )
        listed = data(await api.client.get(members, headers=headers))
        assert "c@x.example" not in {m["email"] for m in listed["items"]}
