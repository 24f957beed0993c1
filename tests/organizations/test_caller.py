"""The caller dependency: roles per organization, the active organization and its header."""

from __future__ import annotations

import pytest

from rivergen.api.deps import current_caller
from rivergen.context import AppContext
from rivergen.core.errors import Forbidden, NotFound
from rivergen.identity import repository as users
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role, User
from rivergen.identity.signed_in import SignedIn
from tests.fixtures.app import Api


def make_caller(active: int = 1) -> Caller:
    user = User(id=7, email="someone@example.com", password_hash="x", is_active=True)
    return Caller(
        user=user,
        roles={1: Role.ADMIN, 2: Role.VIEWER, 3: Role.OWNER, 4: Role.MEMBER},
        active_organization_id=active,
    )


def test_role_order() -> None:
    assert [r.value for r in sorted(Role, key=lambda r: r.rank)] == [
        "viewer",
        "member",
        "admin",
        "owner",
    ]
    assert Role.OWNER.at_least(Role.ADMIN)
    assert Role.ADMIN.at_least(Role.ADMIN)
    assert not Role.MEMBER.at_least(Role.ADMIN)
    assert not Role.VIEWER.at_least(Role.MEMBER)


def test_require_defaults_to_the_active_organization() -> None:
    assert make_caller(active=1).require(Role.ADMIN) == 1
    assert make_caller(active=4).require(Role.MEMBER) == 4
    with pytest.raises(Forbidden, match="admin role"):
        make_caller(active=4).require(Role.ADMIN)


@pytest.mark.parametrize(
    ("org_id", "minimum", "allowed"),
    [
        (1, Role.VIEWER, True),
        (1, Role.ADMIN, True),
        (1, Role.OWNER, False),
        (2, Role.VIEWER, True),
        (2, Role.MEMBER, False),
        (3, Role.OWNER, True),
        (4, Role.MEMBER, True),
        (4, Role.ADMIN, False),
    ],
)
def test_require_checks_the_role_in_the_named_organization(
    org_id: int, minimum: Role, allowed: bool
) -> None:
    caller = make_caller(active=1)
    if allowed:
        assert caller.require(minimum, org_id) == org_id
    else:
        with pytest.raises(Forbidden):
            caller.require(minimum, org_id)


def test_require_in_a_foreign_organization_is_not_found_whatever_the_role() -> None:
    caller = make_caller()
    for minimum in Role:
        with pytest.raises(NotFound):
            caller.require(minimum, 99)
    assert caller.role_in(99) is None
    assert caller.role_in(2) is Role.VIEWER
    assert caller.organization_ids == [1, 2, 3, 4]


@pytest.mark.anyio
async def test_current_caller_reads_the_x_organization_id_header(api: Api) -> None:
    headers = await api.headers_for()
    second = await api.client.post(
        "/api/v1/organizations", json={"name": "Second"}, headers=headers
    )
    assert second.status_code == 201, second.text
    second_id: int = second.json()["data"]["id"]
    context: AppContext = api.app.state.context
    token = headers["Authorization"].removeprefix("Bearer ")

    checked = await context.auth.signed_in(token)
    default = await current_caller(checked, None)
    assert default.active_organization_id != second_id  # the first organization
    assert set(default.roles) == {default.active_organization_id, second_id}
    assert default.require(Role.OWNER) == default.active_organization_id

    chosen = await current_caller(checked, str(second_id))
    assert chosen.active_organization_id == second_id
    assert chosen.require(Role.OWNER) == second_id

    for value in ("999999", "abc", "", "1.5"):
        with pytest.raises(NotFound):
            await current_caller(checked, value)

    async with context.sessions() as session, session.begin():
        stranger = await users.add_user(session, "stranger@example.com", "not-a-real-hash")
    with pytest.raises(Forbidden, match=r"^User is not a member of any organization$"):
        await current_caller(SignedIn(user=stranger, roles={}), None)
