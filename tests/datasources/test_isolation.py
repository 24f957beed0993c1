"""Who may do what on every data-source route: one test per (caller, route) cell.

Callers: no token, a user of no organization, a user of another organization, and the four
roles of the data source's own organization. Another organization's data source is 404, never
403 (no enumeration); a refused write changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fixtures.datasources import (
    DATA_SOURCE_TYPES,
    DATA_SOURCES,
    PG_PASSWORD,
    Tenancy,
    error_of,
    load_row,
    ok_data,
    postgres_body,
)

pytestmark = pytest.mark.anyio

NO_ORGANIZATION = "User is not a member of any organization"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    writes: bool

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def has_id(self) -> bool:
        return "{id}" in self.path


ROUTES = [
    Route("POST", "/data-sources", writes=True),
    Route("GET", "/data-sources", writes=False),
    Route("GET", "/data-sources/{id}", writes=False),
    Route("PATCH", "/data-sources/{id}", writes=True),
    Route("DELETE", "/data-sources/{id}", writes=True),
    Route("GET", "/data-source-types", writes=False),
]
CALLERS = [
    "anonymous",
    "no-organization",
    "other-organization",
    "viewer",
    "member",
    "admin",
    "owner",
]


def body_for(route: Route) -> dict[str, Any] | None:
    if route.method == "POST":
        return postgres_body("created-by-caller")
    if route.method == "PATCH":
        return {"description": "changed by the caller"}
    return None


async def headers_of(tenancy: Tenancy, caller: str) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "no-organization":
        return await tenancy.orphan()
    if caller == "other-organization":
        # An admin of their own organization: 404 must come from tenancy, not from the role.
        headers, _ = await tenancy.outsider("admin")
        return headers
    if caller == "owner":
        return tenancy.owner
    return await tenancy.member(caller)


def expected_status(caller: str, route: Route) -> int:
    if caller == "anonymous":
        return 401
    if caller == "no-organization":
        return 403
    success = 201 if route.method == "POST" else 200
    if caller == "other-organization":
        return 404 if route.has_id else success
    if caller in ("viewer", "member") and route.writes:
        return 403
    return success


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
@pytest.mark.parametrize("caller", CALLERS)
async def test_route_access(tenancy: Tenancy, caller: str, route: Route) -> None:
    source = await tenancy.create(postgres_body("guarded"))
    headers = await headers_of(tenancy, caller)
    path = "/api/v1" + route.path.replace("{id}", str(source["id"]))

    response = await tenancy.client.request(
        route.method, path, json=body_for(route), headers=headers
    )

    status = expected_status(caller, route)
    assert response.status_code == status, response.text
    assert PG_PASSWORD not in response.text
    if status == 401:
        error_of(response, 401, "UNAUTHORIZED")
    elif status == 403:
        error = error_of(response, 403, "FORBIDDEN")
        if caller == "no-organization":
            assert error["message"] == NO_ORGANIZATION
    elif status == 404:
        error = error_of(response, 404, "NOT_FOUND")
        assert error["message"] == "Data source not found"
    else:
        await check_success(tenancy, caller, route, response, source)

    if status >= 400:
        await check_unchanged(tenancy, source)


async def check_success(
    tenancy: Tenancy, caller: str, route: Route, response: httpx.Response, source: dict[str, Any]
) -> None:
    data = ok_data(response, response.status_code)
    if route.path == "/data-source-types":
        assert {engine["type"] for engine in data} >= {"postgresql", "mysql", "sqlite"}
    elif route.method == "GET" and route.has_id:
        assert data["id"] == source["id"]
        assert data["connection"]["password"] == "********"
    elif route.method == "GET":
        ids = [item["id"] for item in data["items"]]
        # Another organization's caller lists their own (empty) organization only.
        assert ids == ([] if caller == "other-organization" else [source["id"]])
        assert data["total"] == len(ids)
    elif route.method == "POST":
        assert data["name"] == "created-by-caller"
        if caller == "other-organization":
            assert data["organization_id"] != tenancy.organization_id
        else:
            assert data["organization_id"] == tenancy.organization_id
    elif route.method == "PATCH":
        assert data["description"] == "changed by the caller"
    else:
        assert data is None
        missing = await tenancy.client.get(f"{DATA_SOURCES}/{source['id']}", headers=tenancy.owner)
        error_of(missing, 404, "NOT_FOUND")


async def check_unchanged(tenancy: Tenancy, source: dict[str, Any]) -> None:
    """A refused request changed nothing: the source is there as created, nothing was added."""
    row = await load_row(tenancy.api, source["id"])
    assert row.description == source["description"]
    listed = ok_data(await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner))
    assert [item["id"] for item in listed["items"]] == [source["id"]]


async def test_other_organization_viewer_also_gets_404_not_403(tenancy: Tenancy) -> None:
    """Even a caller whose role could not write anyway learns nothing about the id."""
    source = await tenancy.create(postgres_body("guarded"))
    headers, _ = await tenancy.outsider("viewer")
    path = f"{DATA_SOURCES}/{source['id']}"
    for method in ("GET", "PATCH", "DELETE"):
        body = {"description": "x"} if method == "PATCH" else None
        response = await tenancy.client.request(method, path, json=body, headers=headers)
        error_of(response, 404, "NOT_FOUND")
    missing = await tenancy.client.get(f"{DATA_SOURCES}/999999", headers=headers)
    assert (
        missing.json()["error"] == (await tenancy.client.get(path, headers=headers)).json()["error"]
    )


async def test_x_organization_id_selects_the_organization_for_list_and_create(
    tenancy: Tenancy,
) -> None:
    """A user of two organizations lists and creates in the one named by the header."""
    home = await tenancy.create(postgres_body("home"))
    other_id = await tenancy.organization("Second")
    header = {**tenancy.owner, "X-Organization-Id": str(other_id)}

    created = await tenancy.create(postgres_body("away"), headers=header)
    assert created["organization_id"] == other_id
    away = ok_data(await tenancy.client.get(DATA_SOURCES, headers=header))
    assert [item["id"] for item in away["items"]] == [created["id"]]
    default = ok_data(await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner))
    assert [item["id"] for item in default["items"]] == [home["id"]]
    # Reading by id works across the caller's organizations whatever the header says.
    assert (await tenancy.get(home["id"], headers=header))["id"] == home["id"]

    for bad in ("999999", "not-a-number"):
        response = await tenancy.client.get(
            DATA_SOURCES, headers={**tenancy.owner, "X-Organization-Id": bad}
        )
        error_of(response, 404, "NOT_FOUND")


async def test_bad_tokens_are_401(tenancy: Tenancy) -> None:
    for headers in (
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer "},
    ):
        response = await tenancy.client.get(DATA_SOURCES, headers=headers)
        error_of(response, 401, "UNAUTHORIZED")
    response = await tenancy.client.get(DATA_SOURCE_TYPES, headers={"Authorization": "x"})
    error_of(response, 401, "UNAUTHORIZED")
