"""Inputs at the edge of what the store can hold: 422, never a 500, the same on both stores.

Each case here was a 500 that the schemathesis run found (on PostgreSQL, SQLite, or both): ids
beyond the store's integer range, offsets beyond it, and NUL characters in text.
"""

from __future__ import annotations

from typing import Any

import pytest

from rivergen.api.params import MAX_ID, MIN_ID
from tests.fixtures.hardening import (
    AUDIT_EVENTS,
    DATA_SOURCES,
    METADATA_ADDRESS,
    UNSAVED_TEST,
    Tenant,
    error_of,
    ok_data,
    postgres_source,
)

pytestmark = [pytest.mark.anyio, pytest.mark.store]

NUL_MESSAGE = "Text must not contain NUL (U+0000) characters"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, as the shared app needs."""
    return "asyncio"


def fields(error: dict[str, Any]) -> list[str]:
    return [detail["field"] for detail in error["details"]]


async def test_ids_outside_the_stores_integer_range_are_422_inside_it_404(
    shared_tenant: Tenant,
) -> None:
    tenant, headers = shared_tenant, shared_tenant.owner.headers
    organization = tenant.organization_id
    for data_source_id in (MAX_ID + 1, MIN_ID - 1, 2**63, -(2**64), 10**30):
        for method, url in (
            ("GET", f"{DATA_SOURCES}/{data_source_id}"),
            ("PATCH", f"{DATA_SOURCES}/{data_source_id}"),
            ("DELETE", f"{DATA_SOURCES}/{data_source_id}"),
            ("GET", f"{DATA_SOURCES}/{data_source_id}/health"),
            ("POST", f"{DATA_SOURCES}/{data_source_id}/test"),
            ("PATCH", f"/api/v1/organizations/{organization}/members/{data_source_id}"),
            ("DELETE", f"/api/v1/organizations/{organization}/members/{data_source_id}"),
            ("GET", f"/api/v1/organizations/{data_source_id}/members"),
        ):
            body = {"role": "viewer"} if "members/" in url else {}
            response = await tenant.client.request(method, url, json=body, headers=headers)
            error_of(response, 422, "VALIDATION_ERROR")
    for data_source_id in (MAX_ID, MIN_ID, 0, -1):
        response = await tenant.client.get(f"{DATA_SOURCES}/{data_source_id}", headers=headers)
        error_of(response, 404, "NOT_FOUND")


async def test_offsets_and_actor_ids_beyond_the_range_are_422(shared_tenant: Tenant) -> None:
    tenant, headers = shared_tenant, shared_tenant.owner.headers
    organization = tenant.organization_id
    for url, params in (
        (DATA_SOURCES, {"offset": MAX_ID + 1}),
        (AUDIT_EVENTS, {"offset": 2**64}),
        (AUDIT_EVENTS, {"actor_user_id": 2**63}),
        (f"/api/v1/organizations/{organization}/members", {"offset": 10**20}),
    ):
        response = await tenant.client.get(url, params=params, headers=headers)
        error_of(response, 422, "VALIDATION_ERROR")
    # At the bound itself: an empty page.
    page = ok_data(
        await tenant.client.get(DATA_SOURCES, params={"offset": MAX_ID}, headers=headers)
    )
    assert page["items"] == []


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("POST", "/api/v1/organizations", {"name": "a\x00b"}, "body.name"),
        ("POST", "/api/v1/auth/login", {"email": "a\x00@b.c", "password": "x"}, "body.email"),
        (
            "POST",
            DATA_SOURCES,
            {**postgres_source(METADATA_ADDRESS), "description": "x\x00"},
            "body.description",
        ),
        (
            "POST",
            DATA_SOURCES,
            postgres_source(METADATA_ADDRESS, username="u\x00"),
            "body.connection.username",
        ),
        (
            "POST",
            UNSAVED_TEST,
            {**postgres_source(METADATA_ADDRESS), "test_query": "SELECT 1\x00"},
            "body.test_query",
        ),
        (
            "POST",
            DATA_SOURCES,
            {"name": "x", "type": "sqlite", "connection": {"pa\x00th": 1}},
            "body.connection.path",
        ),
    ],
    ids=["organization", "login", "description", "connection", "test-query", "key"],
)
async def test_nul_in_a_body_is_422_naming_the_field(
    shared_tenant: Tenant, method: str, url: str, body: dict[str, Any], field: str
) -> None:
    response = await shared_tenant.client.request(
        method, url, json=body, headers=shared_tenant.owner.headers
    )
    error = error_of(response, 422, "VALIDATION_ERROR")
    assert fields(error) == [field], error
    assert error["details"][0]["message"] == NUL_MESSAGE
    assert "\x00" not in response.text
    assert response.headers["x-request-id"]


async def test_nul_in_a_patch_changes_nothing(shared_tenant: Tenant) -> None:
    tenant, headers = shared_tenant, shared_tenant.owner.headers
    data_source_id = await tenant.create(postgres_source(METADATA_ADDRESS, name="nul-patch"))
    response = await tenant.client.patch(
        f"{DATA_SOURCES}/{data_source_id}", json={"name": "new\x00name"}, headers=headers
    )
    assert fields(error_of(response, 422, "VALIDATION_ERROR")) == ["body.name"]
    shown = ok_data(await tenant.client.get(f"{DATA_SOURCES}/{data_source_id}", headers=headers))
    assert shown["name"] == "nul-patch"
    # An escaped backslash followed by "u0000" is text, not a NUL: accepted.
    response = await tenant.client.patch(
        f"{DATA_SOURCES}/{data_source_id}",
        content=b'{"description": "a\\\\u0000b"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert ok_data(response)["description"] == "a\\u0000b"


async def test_nul_in_a_query_filter_is_422(shared_tenant: Tenant) -> None:
    tenant, headers = shared_tenant, shared_tenant.owner.headers
    for url, name in (
        (DATA_SOURCES, "name"),
        (AUDIT_EVENTS, "action"),
        (AUDIT_EVENTS, "target_type"),
        (AUDIT_EVENTS, "target_id"),
    ):
        response = await tenant.client.get(url, params={name: "a\x00"}, headers=headers)
        assert fields(error_of(response, 422, "VALIDATION_ERROR")) == [f"query.{name}"]


async def test_a_malformed_body_is_still_400(shared_tenant: Tenant) -> None:
    response = await shared_tenant.client.post(
        "/api/v1/organizations",
        content=b'{"name": "a\x00',
        headers={**shared_tenant.owner.headers, "Content-Type": "application/json"},
    )
    error_of(response, 400, "BAD_REQUEST")
