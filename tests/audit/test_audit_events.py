"""The audit log: what is recorded, and GET /api/v1/audit-events for admins and owners.

Recorded: sign-ins (success and failure), tests (saved and unsaved), create, update, delete, and
key rotation. The list shows one organization's events, newest first, filterable by action,
actor, target and time, in pages; nothing of another organization, and no member's sign-ins
(those are the user's own: GET /api/v1/auth/me/sign-ins, tests/identity/test_sign_ins.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from rivergen.audit.models import AuditEvent
from rivergen.context import build_context
from rivergen.security.crypto import generate_key
from rivergen.settings import Settings
from tests.fixtures.app import TEST_SECRET_KEY
from tests.fixtures.hardening import (
    AUDIT_EVENTS,
    DATA_SOURCES,
    METADATA_ADDRESS,
    Tenant,
    User,
    context_of,
    error_of,
    ok_data,
    postgres_source,
)

pytestmark = pytest.mark.anyio

SOURCE_PASSWORD = "audit-Source-Pass-51c0e2"
NEW_SOURCE_PASSWORD = "audit-Changed-Pass-9d77aa"
WRONG_LOGIN_PASSWORD = "audit-Wrong-Login-3b1f08"


async def events(
    tenant: Tenant, headers: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    """One page of audit events as `headers` (the owner by default) sees it."""
    response = await tenant.client.get(
        AUDIT_EVENTS, params=params, headers=headers or tenant.owner.headers
    )
    data: dict[str, Any] = ok_data(response)
    assert response.json()["message"] == "Audit events retrieved"
    return data


async def all_events(
    tenant: Tenant, headers: dict[str, str] | None = None, **params: Any
) -> list[dict[str, Any]]:
    data = await events(tenant, headers, limit=500, **params)
    assert data["total"] == len(data["items"]), data
    items: list[dict[str, Any]] = data["items"]
    return items


async def stored_events(tenant: Tenant) -> list[AuditEvent]:
    """Every audit event in the store, oldest first, once answered tests are written."""
    await context_of(tenant.api).tests.settled()
    async with context_of(tenant.api).sessions() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def failed_login(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": WRONG_LOGIN_PASSWORD}
    )
    error_of(response, 401, "UNAUTHORIZED")


async def lifecycle(tenant: Tenant, admin: User) -> int:
    """Create, test, change, test and delete a data source as `admin`; one unsaved test too."""
    body = postgres_source(METADATA_ADDRESS, name="audited", password=SOURCE_PASSWORD)
    data_source_id = await tenant.create(body, headers=admin.headers)
    ok_data(await tenant.test(data_source_id, {"timeout_seconds": 2}, admin.headers))
    patch = {"description": "changed", "connection": {"password": NEW_SOURCE_PASSWORD}}
    ok_data(
        await tenant.client.patch(
            f"{DATA_SOURCES}/{data_source_id}", json=patch, headers=admin.headers
        )
    )
    ok_data(await tenant.test_unsaved({**body, "timeout_seconds": 2}, headers=admin.headers))
    ok_data(await tenant.client.delete(f"{DATA_SOURCES}/{data_source_id}", headers=admin.headers))
    return data_source_id


def assert_no_secret(item: Any) -> None:
    text = json.dumps(item)
    for secret in (SOURCE_PASSWORD, NEW_SOURCE_PASSWORD, WRONG_LOGIN_PASSWORD, "Bearer "):
        assert secret not in text


# ----- what is recorded ----------------------------------------------------------------------


async def test_sign_ins_tests_and_changes_are_recorded_with_actor_target_and_outcome(
    tenant: Tenant,
) -> None:
    admin = await tenant.user("admin")
    await failed_login(tenant.client, admin.email)
    await failed_login(tenant.client, "nobody@hardening.example.com")
    data_source_id = await lifecycle(tenant, admin)

    items = await all_events(tenant)
    assert_no_secret(items)
    mine = [i for i in items if i["actor_user_id"] == admin.id]
    # Newest first.
    assert [i["action"] for i in reversed(mine)] == [
        "data_source.create",
        "data_source.test",
        "data_source.update",
        "data_source.test_unsaved",
        "data_source.delete",
    ]
    create, test, update, unsaved, delete = reversed(mine)
    # Sign-ins are in the store, but in no organization's list (a member's addresses and
    # failed attempts are theirs alone).
    assert all(i["action"] != "auth.login" for i in items)
    assert all(i["organization_id"] == tenant.organization_id for i in items)
    stored_logins = [
        (e.outcome, e.organization_id)
        for e in await stored_events(tenant)
        if e.action == "auth.login" and e.actor_user_id == admin.id
    ]
    assert stored_logins == [("success", None), ("failure", None)]
    for event in (create, test, update, delete):
        assert event["organization_id"] == tenant.organization_id
        assert (event["target_type"], event["target_id"]) == ("data_source", str(data_source_id))
    assert create["details"] == {"name": "audited", "type": "postgresql"}
    assert test["outcome"] == "failure"
    assert test["details"] == {"error_code": "HOST_NOT_ALLOWED"}
    assert set(update["details"]["changed"]) == {"description", "connection.password"}
    assert unsaved["outcome"] == "failure"
    assert unsaved["details"] == {
        "type": "postgresql",
        "destination": f"{METADATA_ADDRESS}:5432",
        "error_code": "HOST_NOT_ALLOWED",
    }
    assert delete["details"] == {"name": "audited"}
    for item in items:
        datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))

    # A failed sign-in for an unknown email is recorded, but belongs to no organization's list.
    stored = await stored_events(tenant)
    unknown = [e for e in stored if e.details.get("email") == "nobody@hardening.example.com"]
    assert [(e.action, e.outcome, e.actor_user_id) for e in unknown] == [
        ("auth.login", "failure", None)
    ]
    assert all(i["details"].get("email") != "nobody@hardening.example.com" for i in items)


async def test_key_rotation_is_recorded_without_any_key_or_secret(
    tenant: Tenant, settings_factory: Callable[..., Settings]
) -> None:
    await tenant.create(postgres_source(METADATA_ADDRESS, password=SOURCE_PASSWORD))
    new_key = generate_key()
    # What `rivergen rotate-keys` does, with the new key put first.
    context = build_context(settings_factory(secret_keys=f"{new_key},{TEST_SECRET_KEY}"))
    try:
        report = await context.data_sources.rotate_keys()
        key_id = context.secret_box.current_key_id
    finally:
        await context.close()
    assert (report.seen, report.rotated, report.unreadable) == (1, 1, [])
    rotations = [e for e in await stored_events(tenant) if e.action == "secrets.rotate"]
    assert len(rotations) == 1
    assert rotations[0].details == {"data_source_ids": [1], "key_id": key_id}
    text = json.dumps(rotations[0].details)
    for secret in (new_key, TEST_SECRET_KEY, SOURCE_PASSWORD):
        assert secret not in text
    # The organization's admins see it in their own audit log; a second run rotates nothing
    # and records nothing.
    listed = await all_events(tenant, action="secrets.rotate")
    assert [(e["organization_id"], e["details"]["data_source_ids"]) for e in listed] == [
        (tenant.organization_id, [1])
    ]
    context = build_context(settings_factory(secret_keys=f"{new_key},{TEST_SECRET_KEY}"))
    try:
        again = await context.data_sources.rotate_keys()
        assert (again.seen, again.rotated, again.unreadable) == (1, 0, [])
    finally:
        await context.close()
    assert len(await all_events(tenant, action="secrets.rotate")) == 1


# ----- who may read it -----------------------------------------------------------------------


async def test_admins_and_owners_read_it_members_and_viewers_do_not(tenant: Tenant) -> None:
    admin = await tenant.user("admin")
    for role in ("member", "viewer"):
        user = await tenant.user(role)
        response = await tenant.client.get(AUDIT_EVENTS, headers=user.headers)
        error_of(response, 403, "FORBIDDEN")
    error_of(await tenant.client.get(AUDIT_EVENTS), 401, "UNAUTHORIZED")
    assert (await events(tenant, admin.headers))["total"] > 0
    assert (await events(tenant))["total"] > 0


async def test_a_user_without_organization_is_forbidden(tenant: Tenant) -> None:
    viewer = await tenant.user("viewer")
    ok_data(
        await tenant.client.delete(
            f"/api/v1/organizations/{tenant.organization_id}/members/{viewer.id}",
            headers=tenant.owner.headers,
        )
    )
    error = error_of(
        await tenant.client.get(AUDIT_EVENTS, headers=viewer.headers), 403, "FORBIDDEN"
    )
    assert error["message"] == "User is not a member of any organization"


async def test_another_organizations_events_are_invisible(tenant: Tenant) -> None:
    ours = await tenant.user("admin")
    await lifecycle(tenant, ours)
    other_org = await tenant.organization("Elsewhere")
    theirs = await tenant.user("admin", other_org)  # a member of the other organization only
    await failed_login(tenant.client, theirs.email)
    their_source = await tenant.create(
        postgres_source(METADATA_ADDRESS, name="theirs"), headers=theirs.headers
    )

    our_view = await all_events(tenant, ours.headers)
    assert our_view
    assert all(i["organization_id"] == tenant.organization_id for i in our_view)
    assert theirs.id not in {i["actor_user_id"] for i in our_view}
    assert "theirs" not in json.dumps(our_view)  # the other source's name
    # Filtering for the other organization's actor or target finds none of its events either
    # (SQLite may reuse a deleted id, so only our own source's events may share its id).
    assert (await events(tenant, ours.headers, actor_user_id=theirs.id))["total"] == 0
    same_id = await all_events(tenant, ours.headers, target_id=str(their_source))
    assert all(i["organization_id"] == tenant.organization_id for i in same_id), same_id

    their_view = await all_events(tenant, theirs.headers)
    assert {i["actor_user_id"] for i in their_view} <= {theirs.id, tenant.owner.id}
    assert ours.id not in {i["actor_user_id"] for i in their_view}
    assert "data_source.create" in {i["action"] for i in their_view}
    assert "auth.login" not in {i["action"] for i in their_view}

    # The owner of both sees each organization's list through X-Organization-Id.
    as_other = {**tenant.owner.headers, "X-Organization-Id": str(other_org)}
    assert {i["organization_id"] for i in await all_events(tenant, as_other)} == {other_org}
    unknown = {**tenant.owner.headers, "X-Organization-Id": "987654"}
    error_of(await tenant.client.get(AUDIT_EVENTS, headers=unknown), 404, "NOT_FOUND")


# ----- filters and pages ---------------------------------------------------------------------


async def test_filters_narrow_the_list(tenant: Tenant) -> None:
    admin = await tenant.user("admin")
    first = await lifecycle(tenant, admin)
    second = await tenant.create(postgres_source(METADATA_ADDRESS, name="second"))
    everything = await all_events(tenant)

    def expected(predicate: Callable[[dict[str, Any]], bool]) -> list[int]:
        return [i["id"] for i in everything if predicate(i)]

    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({"action": "data_source.create"}, lambda i: i["action"] == "data_source.create"),
        ({"actor_user_id": admin.id}, lambda i: i["actor_user_id"] == admin.id),
        ({"target_type": "data_source"}, lambda i: i["target_type"] == "data_source"),
        ({"target_id": str(first)}, lambda i: i["target_id"] == str(first)),
        (
            {"action": "data_source.create", "actor_user_id": tenant.owner.id},
            lambda i: i["action"] == "data_source.create" and i["actor_user_id"] == tenant.owner.id,
        ),
        ({"action": "no.such.action"}, lambda i: False),
    ]
    for params, predicate in cases:
        ids = [i["id"] for i in await all_events(tenant, **params)]
        assert ids == expected(predicate), params
        assert ids or params["action"] == "no.such.action", params
    owner_creates = await all_events(
        tenant, action="data_source.create", actor_user_id=tenant.owner.id
    )
    assert [i["target_id"] for i in owner_creates] == [str(second)]

    # Time window: since is inclusive, until exclusive.
    newest = datetime.fromisoformat(everything[0]["created_at"].replace("Z", "+00:00"))
    at_newest = await all_events(tenant, since=newest.isoformat())
    assert everything[0]["id"] in [i["id"] for i in at_newest]
    assert all(
        datetime.fromisoformat(i["created_at"].replace("Z", "+00:00")) >= newest for i in at_newest
    )
    before_newest = await all_events(tenant, until=newest.isoformat())
    assert everything[0]["id"] not in [i["id"] for i in before_newest]
    assert len(at_newest) + len(before_newest) == len(everything)
    later = (newest + timedelta(hours=1)).isoformat()
    assert (await events(tenant, since=later))["total"] == 0

    for bad in (
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"actor_user_id": 0},
        {"since": "soon"},
    ):
        response = await tenant.client.get(AUDIT_EVENTS, params=bad, headers=tenant.owner.headers)
        error_of(response, 422, "VALIDATION_ERROR")


async def test_pages_cover_the_list_once_newest_first(tenant: Tenant) -> None:
    admin = await tenant.user("admin")
    await lifecycle(tenant, admin)
    await lifecycle(tenant, admin)
    everything = await all_events(tenant)
    total = len(everything)
    assert total >= 12
    keys = [(i["created_at"], i["id"]) for i in everything]
    assert keys == sorted(keys, reverse=True)

    paged: list[int] = []
    for offset in range(0, total + 3, 3):
        page = await events(tenant, limit=3, offset=offset)
        assert page["total"] == total
        assert len(page["items"]) == max(0, min(3, total - offset))
        paged += [i["id"] for i in page["items"]]
    assert paged == [i["id"] for i in everything]
    default = await events(tenant)
    assert len(default["items"]) == min(50, total)


async def test_extreme_times_are_harmless(tenant: Tenant) -> None:
    for params in (
        {"since": "0001-01-01T00:00:00", "until": "9999-12-31T23:59:59"},
        {"since": "0001-01-01T00:00:00+05:00"},
        {"until": "9999-12-31T23:30:00-05:00"},
        {"since": "9999-12-31T23:59:59+00:00"},
    ):
        response = await tenant.client.get(
            AUDIT_EVENTS, params=params, headers=tenant.owner.headers
        )
        assert response.status_code == 200, (params, response.text)
    everything = await events(tenant, since="0001-01-01T00:00:00+05:00")
    assert everything["total"] == (await events(tenant))["total"] > 0
