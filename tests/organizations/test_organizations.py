"""Organizations and members over HTTP: ownership, the role matrix, last owner, tenancy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from rivergen.context import AppContext
from rivergen.identity import repository as users
from tests.fixtures.app import ADMIN_EMAIL, Api
from tests.fixtures.members import PASSWORD, Member, seed_member, signed_in_headers

pytestmark = pytest.mark.anyio


ORGS = "/api/v1/organizations"
NO_ORGANIZATION = "User is not a member of any organization"


def members_url(org_id: int, user_id: int | None = None) -> str:
    base = f"{ORGS}/{org_id}/members"
    return base if user_id is None else f"{base}/{user_id}"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    return body


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


@dataclass
class Acme:
    """An organization with one member of each role, and the default organization's id."""

    api: Api
    id: int
    default_id: int
    owner: Member
    admin: Member
    member: Member
    viewer: Member

    async def add(
        self, actor: Member, email: str, role: str, password: str | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"email": email, "role": role}
        if password is not None:
            body["password"] = password
        return await self.api.client.post(members_url(self.id), json=body, headers=actor.headers)

    async def patch(self, actor: Member, user_id: int, role: str) -> httpx.Response:
        return await self.api.client.patch(
            members_url(self.id, user_id), json={"role": role}, headers=actor.headers
        )

    async def delete(self, actor: Member, user_id: int) -> httpx.Response:
        return await self.api.client.delete(members_url(self.id, user_id), headers=actor.headers)

    async def user_id(self, email: str) -> int:
        page = data(await self.api.client.get(members_url(self.id), headers=self.owner.headers))
        return int(next(i["user_id"] for i in page["items"] if i["email"] == email))

    async def roles(self, actor: Member | None = None) -> dict[str, str]:
        headers = (actor or self.owner).headers
        page = data(await self.api.client.get(members_url(self.id), headers=headers))
        return {item["email"]: item["role"] for item in page["items"]}


@pytest.fixture
async def acme(api: Api) -> Acme:
    context: AppContext = api.app.state.context
    async with context.sessions() as session:
        bootstrap_owner = await users.get_user_by_email(session, ADMIN_EMAIL)
        assert bootstrap_owner is not None
    owner_headers = await signed_in_headers(api, bootstrap_owner.id)
    me = data(await api.client.get("/api/v1/auth/me", headers=owner_headers))
    default_id = me["organizations"][0]["organization_id"]
    created = data(
        await api.client.post(ORGS, json={"name": "Acme"}, headers=owner_headers), status=201
    )
    owner = Member(ADMIN_EMAIL, me["id"], owner_headers)
    people = {
        role: await seed_member(api, created["id"], f"{role}@acme.example", role)
        for role in ("admin", "member", "viewer")
    }
    return Acme(
        api, created["id"], default_id, owner, people["admin"], people["member"], people["viewer"]
    )


async def test_creator_becomes_owner_and_lists_show_only_own_organizations(api: Api) -> None:
    headers = await api.headers_for()
    response = await api.client.post(ORGS, json={"name": "  Globex  "}, headers=headers)
    created = data(response, status=201)
    assert created["name"] == "Globex"
    assert created["role"] == "owner"
    assert created["created_at"].endswith("Z")

    listed = data(await api.client.get(ORGS, headers=headers))
    assert listed["total"] == 2
    assert [(o["name"], o["role"]) for o in listed["items"]] == [
        ("Default", "owner"),
        ("Globex", "owner"),
    ]
    members = data(await api.client.get(members_url(created["id"]), headers=headers))
    assert [(m["email"], m["role"]) for m in members["items"]] == [(ADMIN_EMAIL, "owner")]

    assert_error(
        await api.client.post(ORGS, json={"name": "Globex"}, headers=headers), 409, "CONFLICT"
    )
    for blank in ("", "   "):
        response = await api.client.post(ORGS, json={"name": blank}, headers=headers)
        body = assert_error(response, 422, "VALIDATION_ERROR")
        assert [d["field"] for d in body["error"]["details"]] == ["body.name"]
    assert_error(await api.client.post(ORGS, json={"name": "Nope"}), 401, "UNAUTHORIZED")
    assert_error(await api.client.get(ORGS), 401, "UNAUTHORIZED")


async def test_a_member_lists_only_their_organizations(acme: Acme) -> None:
    listed = data(await acme.api.client.get(ORGS, headers=acme.member.headers))
    assert listed["total"] == 1
    assert [(o["id"], o["name"], o["role"]) for o in listed["items"]] == [
        (acme.id, "Acme", "member")
    ]


async def test_every_role_may_list_members(acme: Acme) -> None:
    expected = {
        ADMIN_EMAIL: "owner",
        "admin@acme.example": "admin",
        "member@acme.example": "member",
        "viewer@acme.example": "viewer",
    }
    for who in (acme.owner, acme.admin, acme.member, acme.viewer):
        page = data(await acme.api.client.get(members_url(acme.id), headers=who.headers))
        assert page["total"] == 4
        assert {m["email"]: m["role"] for m in page["items"]} == expected
        assert all(m["joined_at"].endswith("Z") for m in page["items"])

    page = data(
        await acme.api.client.get(
            members_url(acme.id), params={"limit": 2, "offset": 1}, headers=acme.viewer.headers
        )
    )
    assert page["total"] == 4
    assert [m["email"] for m in page["items"]] == ["admin@acme.example", "member@acme.example"]
    bad_limit = await acme.api.client.get(
        members_url(acme.id), params={"limit": 0}, headers=acme.viewer.headers
    )
    assert_error(bad_limit, 422, "VALIDATION_ERROR")


async def test_members_and_viewers_cannot_manage_members(acme: Acme) -> None:
    for actor, target in ((acme.member, acme.viewer), (acme.viewer, acme.member)):
        new = await acme.add(actor, "new@acme.example", "viewer", PASSWORD)
        assert_error(new, 403, "FORBIDDEN")
        assert_error(await acme.add(actor, acme.admin.email, "viewer"), 403, "FORBIDDEN")
        assert_error(await acme.patch(actor, target.user_id, "admin"), 403, "FORBIDDEN")
        assert_error(await acme.patch(actor, actor.user_id, "admin"), 403, "FORBIDDEN")
        assert_error(await acme.delete(actor, target.user_id), 403, "FORBIDDEN")
        assert_error(await acme.delete(actor, actor.user_id), 403, "FORBIDDEN")
    roles = await acme.roles()
    assert roles[acme.member.email] == "member"
    assert roles[acme.viewer.email] == "viewer"
    assert "new@acme.example" not in roles


async def test_admins_manage_members_below_owner(acme: Acme) -> None:
    added = data(await acme.add(acme.admin, "new@acme.example", "member", PASSWORD), status=202)
    assert added == {"email": "new@acme.example", "role": "member"}
    added_id = await acme.user_id("new@acme.example")

    changed = data(await acme.patch(acme.admin, added_id, "admin"))
    assert changed["role"] == "admin"
    assert changed["joined_at"].endswith("Z")
    assert (await acme.roles())["new@acme.example"] == "admin"

    removed = await acme.delete(acme.admin, added_id)
    assert data(removed) is None
    assert "new@acme.example" not in await acme.roles()

    # Unknown member ids are 404.
    assert_error(await acme.patch(acme.admin, 999_999, "viewer"), 404, "NOT_FOUND")
    assert_error(await acme.delete(acme.admin, 999_999), 404, "NOT_FOUND")
    # A role outside the four is a validation error naming the field.
    body = assert_error(
        await acme.patch(acme.admin, acme.viewer.user_id, "superuser"), 422, "VALIDATION_ERROR"
    )
    assert [d["field"] for d in body["error"]["details"]] == ["body.role"]


async def test_only_owners_grant_change_or_remove_the_owner_role(acme: Acme) -> None:
    owner_id = acme.owner.user_id
    assert_error(
        await acme.add(acme.admin, "boss@acme.example", "owner", PASSWORD), 403, "FORBIDDEN"
    )
    assert_error(await acme.patch(acme.admin, acme.member.user_id, "owner"), 403, "FORBIDDEN")
    assert_error(await acme.patch(acme.admin, acme.admin.user_id, "owner"), 403, "FORBIDDEN")
    assert_error(await acme.patch(acme.admin, owner_id, "admin"), 403, "FORBIDDEN")
    assert_error(await acme.delete(acme.admin, owner_id), 403, "FORBIDDEN")
    roles = await acme.roles()
    assert roles[ADMIN_EMAIL] == "owner"
    assert roles[acme.admin.email] == "admin"
    assert "boss@acme.example" not in roles

    # An owner may do all of it.
    data(await acme.patch(acme.owner, acme.admin.user_id, "owner"))
    added = data(await acme.add(acme.owner, "boss@acme.example", "owner", PASSWORD), status=202)
    assert added["role"] == "owner"
    boss_id = await acme.user_id("boss@acme.example")
    data(await acme.patch(acme.owner, boss_id, "member"))
    data(await acme.delete(acme.owner, boss_id))
    roles = await acme.roles()
    assert roles[acme.admin.email] == "owner"
    assert "boss@acme.example" not in roles


async def test_the_last_owner_can_be_neither_removed_nor_demoted(acme: Acme) -> None:
    owner_id = acme.owner.user_id
    body = assert_error(await acme.delete(acme.owner, owner_id), 409, "CONFLICT")
    assert "last owner" in body["error"]["message"].lower()
    body = assert_error(await acme.patch(acme.owner, owner_id, "admin"), 409, "CONFLICT")
    assert "last owner" in body["error"]["message"].lower()
    assert (await acme.roles())[ADMIN_EMAIL] == "owner"

    # With a second owner, the first may step down; then the second is the last one.
    data(await acme.patch(acme.owner, acme.admin.user_id, "owner"))
    data(await acme.patch(acme.owner, owner_id, "member"))
    assert_error(await acme.patch(acme.admin, acme.admin.user_id, "viewer"), 409, "CONFLICT")
    assert_error(await acme.delete(acme.admin, acme.admin.user_id), 409, "CONFLICT")
    # Re-promoting the first keeps it removable again.
    data(await acme.patch(acme.admin, owner_id, "owner"))
    data(await acme.delete(acme.admin, owner_id))
    roles = await acme.roles(acme.admin)
    assert ADMIN_EMAIL not in roles
    assert roles[acme.admin.email] == "owner"


async def test_creating_accounts_and_the_same_answer_for_existing_ones(acme: Acme) -> None:
    api = acme.api
    # A new account with a password; the email is stored lower-case.
    created = await acme.add(acme.admin, "New.Person@Acme.example", "viewer", PASSWORD)
    assert data(created, 202) == {"email": "new.person@acme.example", "role": "viewer"}
    new_headers = await api.headers_for("new.person@acme.example", PASSWORD)
    listed = data(await api.client.get(ORGS, headers=new_headers))
    assert [(o["name"], o["role"]) for o in listed["items"]] == [("Acme", "viewer")]

    # An existing account (member of Acme) "created" again for the default organization: the
    # same answer as for a new email, and nothing changes: not added, password not replaced.
    existing = await api.client.post(
        members_url(acme.default_id),
        json={"email": acme.member.email.upper(), "role": "viewer", "password": "another-pw-1"},
        headers=acme.owner.headers,
    )
    fresh = await api.client.post(
        members_url(acme.default_id),
        json={"email": "ghost@acme.example", "role": "viewer", "password": "another-pw-1"},
        headers=acme.owner.headers,
    )
    assert existing.status_code == fresh.status_code == 202
    assert existing.json()["message"] == fresh.json()["message"]
    assert data(existing, 202) == {"email": acme.member.email, "role": "viewer"}
    assert data(fresh, 202) == {"email": "ghost@acme.example", "role": "viewer"}
    listed = data(await api.client.get(ORGS, headers=acme.member.headers))
    assert {o["name"]: o["role"] for o in listed["items"]} == {"Acme": "member"}
    await api.login(acme.member.email, PASSWORD)  # the password was not replaced
    # A current member, too: same answer, role unchanged.
    again = await acme.add(acme.admin, acme.viewer.email, "admin", "another-pw-1")
    assert again.status_code == 202
    assert again.json()["message"] == fresh.json()["message"]
    assert (await acme.roles())[acme.viewer.email] == "viewer"

    # Without a password nobody is added, known or not: existing accounts are invited.
    for email in (acme.member.email, "nobody@acme.example"):
        body = assert_error(
            await acme.add(acme.admin, email, "viewer", None), 422, "VALIDATION_ERROR"
        )
        assert "/invitations" in body["error"]["message"]
        assert [d["field"] for d in body["error"]["details"]] == ["body.password"]
    assert set(await acme.roles()) == {
        ADMIN_EMAIL,
        acme.admin.email,
        acme.member.email,
        acme.viewer.email,
        "new.person@acme.example",
    }

    # Validation: a bad email and a short password, each named, the password not echoed.
    body = assert_error(
        await api.client.post(
            members_url(acme.id),
            json={"email": "not-an-email", "role": "viewer", "password": "short"},
            headers=acme.admin.headers,
        ),
        422,
        "VALIDATION_ERROR",
    )
    assert sorted(d["field"] for d in body["error"]["details"]) == ["body.email", "body.password"]
    assert "short" not in str([d.get("input") for d in body["error"]["details"]])


async def test_a_user_without_organization_is_forbidden(acme: Acme) -> None:
    api = acme.api
    lonely = await seed_member(api, acme.id, "lonely@acme.example", "member")
    headers = lonely.headers
    data(await acme.delete(acme.admin, lonely.user_id))

    for org_id in (acme.id, acme.default_id, 999_999):
        body = assert_error(
            await api.client.get(members_url(org_id), headers=headers), 403, "FORBIDDEN"
        )
        assert body["error"]["message"] == NO_ORGANIZATION
    response = await api.client.post(
        members_url(acme.id), json={"email": "x@acme.example", "role": "viewer"}, headers=headers
    )
    assert assert_error(response, 403, "FORBIDDEN")["error"]["message"] == NO_ORGANIZATION

    # Signed in all the same: the user sees an empty list, and may start an organization.
    assert data(await api.client.get(ORGS, headers=headers)) == {"items": [], "total": 0}
    me = data(await api.client.get("/api/v1/auth/me", headers=headers))
    assert me["organizations"] == []
    fresh = data(await api.client.post(ORGS, json={"name": "Own"}, headers=headers), 201)
    assert fresh["role"] == "owner"
    data(await api.client.get(members_url(fresh["id"]), headers=headers))


async def test_another_organizations_members_are_not_found(acme: Acme) -> None:
    api = acme.api
    # An admin of the default organization only.
    outsider = await seed_member(api, acme.default_id, "outsider@example.com", "admin")
    foreign = assert_error(
        await api.client.get(members_url(acme.id), headers=outsider.headers), 404, "NOT_FOUND"
    )
    missing = assert_error(
        await api.client.get(members_url(999_999), headers=outsider.headers), 404, "NOT_FOUND"
    )
    # An existing foreign organization looks exactly like one that does not exist.
    assert foreign["error"] == missing["error"]
    assert_error(await acme.add(outsider, "x@example.com", "viewer", PASSWORD), 404, "NOT_FOUND")
    assert_error(await acme.patch(outsider, acme.viewer.user_id, "admin"), 404, "NOT_FOUND")
    assert_error(await acme.delete(outsider, acme.viewer.user_id), 404, "NOT_FOUND")
    assert (await acme.roles())[acme.viewer.email] == "viewer"
    # An Acme admin cannot reach into the default organization either.
    response = await api.client.delete(
        members_url(acme.default_id, outsider.user_id), headers=acme.admin.headers
    )
    assert_error(response, 404, "NOT_FOUND")


async def test_x_organization_id_header_must_name_one_of_the_callers_organizations(
    acme: Acme,
) -> None:
    client = acme.api.client
    url = members_url(acme.id)
    own = {**acme.owner.headers, "X-Organization-Id": str(acme.default_id)}
    assert data(await client.get(url, headers=own))["total"] == 4
    for value in ("999999", "abc", "", str(acme.default_id)):
        headers = {**acme.member.headers, "X-Organization-Id": value}
        response = await client.get(url, headers=headers)
        assert_error(response, 404, "NOT_FOUND")
