"""Internal domains are ordinary addresses: the bootstrap owner's default one is accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from rivergen.app import create_app
from rivergen.settings import Settings
from tests.fixtures.app import ADMIN_PASSWORD, Api, start_api

pytestmark = pytest.mark.anyio

DEFAULT_ADMIN = "admin@rivergen.local"
PASSWORD = "member-password-1"
INTERNAL = ("ops@corp.internal", "dba@intranet.corp", "qa@lab.test", "Dev@Build.Local")


@pytest.fixture
async def default_api(settings_factory: Callable[..., Settings]) -> AsyncIterator[Api]:
    """An app whose bootstrap owner has the documented default address."""
    async for running in start_api(create_app(settings_factory(admin_email=DEFAULT_ADMIN))):
        yield running


def data(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


async def test_internal_domains_are_accepted_for_new_and_existing_members(
    default_api: Api,
) -> None:
    api = default_api
    owner = await api.headers_for(DEFAULT_ADMIN, ADMIN_PASSWORD)
    default_id = data(await api.client.get("/api/v1/auth/me", headers=owner), 200)["organizations"][
        0
    ]["organization_id"]
    for email in INTERNAL:
        body = {"email": email, "role": "admin", "password": PASSWORD}
        url = f"/api/v1/organizations/{default_id}/members"
        created = data(await api.client.post(url, json=body, headers=owner), 202)
        assert created["email"] == email.lower()
    # One of them adds the bootstrap owner, by its default address alone, to an organization
    # of their own: the address of an existing account is accepted like any other.
    other = await api.headers_for(INTERNAL[0], PASSWORD)
    created = data(
        await api.client.post("/api/v1/organizations", json={"name": "Ops"}, headers=other), 201
    )
    invited = await api.client.post(
        f"/api/v1/organizations/{created['id']}/invitations",
        json={"email": DEFAULT_ADMIN, "role": "viewer"},
        headers=other,
    )
    assert data(invited, 201)["email"] == DEFAULT_ADMIN
    # Syntax is still checked.
    for bad in ("admin@", "admin@rivergen", "two words@corp.internal", "@corp.internal"):
        response = await api.client.post(
            f"/api/v1/organizations/{created['id']}/members",
            json={"email": bad, "role": "viewer"},
            headers=other,
        )
        assert response.status_code == 422, (bad, response.text)
        assert [d["field"] for d in response.json()["error"]["details"]] == ["body.email"]
