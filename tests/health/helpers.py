"""Helpers of the health tests: users with roles, data sources, records written to the store."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from rivergen.context import AppContext
from rivergen.health.models import HealthRecord
from tests.fixtures.app import Api

DATA_SOURCES = "/api/v1/data-sources"
USER_PASSWORD = "user-password-123"
# A fixed origin, so records and windows can be counted by hand.
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

_counter = itertools.count(1)


def data_of(response: httpx.Response, status: int = 200) -> Any:
    """The `data` of a success envelope after checking the status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True, body
    return body["data"]


def error_code_of(response: httpx.Response, status: int) -> str:
    """The error code of an error envelope after checking the status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False, body
    return str(body["error"]["code"])


def context_of(api: Api) -> AppContext:
    """The running app's context."""
    context: AppContext = api.app.state.context
    return context


@dataclass
class Org:
    """The signed-in bootstrap owner and their organization."""

    api: Api
    owner: dict[str, str]
    organization_id: int

    async def member(self, role: str, organization_id: int | None = None) -> dict[str, str]:
        """Headers of a new user with `role` in an organization (default: the owner's)."""
        email = f"health-{role}-{next(_counter)}@example.com"
        response = await self.api.client.post(
            f"/api/v1/organizations/{organization_id or self.organization_id}/members",
            json={"email": email, "role": role, "password": USER_PASSWORD},
            headers=self.owner,
        )
        data_of(response, 202)
        return await self.api.headers_for(email, USER_PASSWORD)

    async def other_organization(self) -> int:
        """A new organization (owned by the bootstrap owner too)."""
        response = await self.api.client.post(
            "/api/v1/organizations",
            json={"name": f"Health other {next(_counter)}"},
            headers=self.owner,
        )
        return int(data_of(response, 201)["id"])

    async def create_source(
        self, interval: int | None = None, headers: dict[str, str] | None = None, **extra: Any
    ) -> int:
        """Create a PostgreSQL data source aimed at the local test server; return its id."""
        body = pg_source_body(f"health-{next(_counter)}", interval)
        body.update(extra)
        response = await self.api.client.post(
            DATA_SOURCES, json=body, headers=headers or self.owner
        )
        return int(data_of(response, 201)["id"])

    async def health(
        self, data_source_id: int, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        """GET the health endpoint."""
        return await self.api.client.get(
            f"{DATA_SOURCES}/{data_source_id}/health",
            params={k: v for k, v in params.items() if v is not None},
            headers=headers or self.owner,
        )


async def sign_in(api: Api) -> Org:
    """Sign in the bootstrap owner and find their organization."""
    owner = await api.headers_for()
    me = data_of(await api.client.get("/api/v1/auth/me", headers=owner))
    return Org(api, owner, int(me["organizations"][0]["organization_id"]))


def pg_source_body(name: str, interval: int | None) -> dict[str, Any]:
    """A data source on the local PostgreSQL (trust auth), database `postgres`."""
    return {
        "name": name,
        "type": "postgresql",
        "connection": {
            "host": "127.0.0.1",
            "port": 5432,
            "database": "postgres",
            "username": "postgres",
            "password": "unused-with-trust-auth",
            "ssl_mode": "disable",
        },
        "health_check_interval_seconds": interval,
    }


def record(
    data_source_id: int,
    organization_id: int,
    seconds: float,
    ok: bool,
    response_time_ms: float | None = None,
    **fields: Any,
) -> HealthRecord:
    """A health record `seconds` after T0."""
    values: dict[str, Any] = {
        "data_source_id": data_source_id,
        "organization_id": organization_id,
        "tested_at": T0 + timedelta(seconds=seconds),
        "connection_successful": ok,
        "response_time_ms": response_time_ms,
        "error_code": None if ok else "CONNECTION_ERROR",
        "error_message": None if ok else "Connection refused",
        "error_phase": None if ok else "tcp",
        "ssh_tunnel_established": False,
        "database_version": "PostgreSQL 16.4" if ok else None,
        "triggered_by": "schedule",
        "user_id": None,
    }
    values.update(fields)
    return HealthRecord(**values)


async def insert(api: Api, records: list[HealthRecord]) -> None:
    """Write records straight into the store, in one transaction."""
    async with context_of(api).sessions() as session, session.begin():
        session.add_all(records)
