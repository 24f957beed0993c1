"""The client: one httpx connection pool, typed answers, errors from the envelope."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from rivergen import __version__
from rivergen.apitokens.schemas import ApiTokenCreated, ApiTokenOut
from rivergen.audit.schemas import AuditEventOut
from rivergen.client.errors import ConnectionFailed, error_from
from rivergen.datasources.schemas import DataSourceOut, EngineOut
from rivergen.health.schemas import HealthOut
from rivergen.organizations.schemas import OrganizationOut
from rivergen.probing.schemas import TestResultOut

M = TypeVar("M", bound=BaseModel)
API = "/api/v1"
_PAGE = 500
# What the server may add to a test's own deadline before answering (recording, queueing).
_TEST_MARGIN_SECONDS = 15.0
_DEFAULT_TEST_TIMEOUT = 30


class Client:
    """A RiverGen server reached over HTTP with a bearer token (a service token or an access
    token); use it as a context manager, or call `close`."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        organization_id: int | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"rivergen-client/{__version__}",
        }
        if organization_id is not None:
            headers["X-Organization-Id"] = str(organization_id)
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send a request to `/api/v1{path}`; the envelope's `data`, or a RiverGenError."""
        try:
            response = self._http.request(
                method,
                API + path,
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None},
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.TimeoutException:
            raise ConnectionFailed("The server did not answer in time", code="TIMEOUT") from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(
                f"Cannot reach the server ({type(exc).__name__})", code="CONNECTION_FAILED"
            ) from None
        if response.status_code >= 400:
            raise error_from(response)
        try:
            return response.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise ConnectionFailed(
                "The answer is not a RiverGen envelope (is the URL right?)", code="BAD_ANSWER"
            ) from None

    def _one(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(self.request(method, path, **kwargs))

    def _all(self, model: type[M], path: str, params: dict[str, Any] | None = None) -> list[M]:
        items: list[M] = []
        adapter = TypeAdapter(list[model])  # type: ignore[valid-type]
        while True:
            page = self.request(
                "GET", path, params={**(params or {}), "limit": _PAGE, "offset": len(items)}
            )
            batch: list[M] = adapter.validate_python(page["items"])
            items.extend(batch)
            if not batch or len(items) >= int(page["total"]):
                return items

    # ----- data sources ---------------------------------------------------------------------

    def list_sources(
        self, type: str | None = None, status: str | None = None
    ) -> list[DataSourceOut]:
        """Every data source of the organization."""
        return self._all(DataSourceOut, "/data-sources", {"type": type, "status": status})

    def get_source(self, data_source_id: int) -> DataSourceOut:
        """One data source (secrets masked)."""
        return self._one(DataSourceOut, "GET", f"/data-sources/{data_source_id}")

    def find_source(self, name: str) -> DataSourceOut | None:
        """The data source with exactly this name, if any."""
        matches = self._all(DataSourceOut, "/data-sources", {"name": name})
        return next((s for s in matches if s.name == name), None)

    def create_source(self, body: dict[str, Any]) -> DataSourceOut:
        """Register a data source (admin and up)."""
        return self._one(DataSourceOut, "POST", "/data-sources", json=body)

    def update_source(self, data_source_id: int, body: dict[str, Any]) -> DataSourceOut:
        """Change a data source (admin and up); omitted fields and secrets are kept."""
        return self._one(DataSourceOut, "PATCH", f"/data-sources/{data_source_id}", json=body)

    def delete_source(self, data_source_id: int) -> None:
        """Delete a data source and its history (admin and up)."""
        self.request("DELETE", f"/data-sources/{data_source_id}")

    def test_source(
        self,
        data_source_id: int,
        *,
        timeout_seconds: int | None = None,
        test_query: str | None = None,
    ) -> TestResultOut:
        """Test a saved data source (member and up); a failed connection is a result, not an
        exception."""
        body: dict[str, Any] = {}
        if timeout_seconds is not None:
            body["timeout_seconds"] = timeout_seconds
        if test_query is not None:
            body["test_query"] = test_query
        wait = (timeout_seconds or _DEFAULT_TEST_TIMEOUT) + _TEST_MARGIN_SECONDS
        return self._one(
            TestResultOut,
            "POST",
            f"/data-sources/{data_source_id}/test",
            json=body,
            timeout=max(wait, self._timeout),
        )

    def secret_fingerprints(
        self,
        data_source_id: int,
        connection: dict[str, str],
        ssh_tunnel: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """The fingerprints these values would have as the source's secrets (admin and up);
        compare with its `secret_fingerprints`. Nothing is stored."""
        body = {"connection": connection, "ssh_tunnel": ssh_tunnel or {}}
        data: dict[str, str] = self.request(
            "POST", f"/data-sources/{data_source_id}/secret-fingerprints", json=body
        )
        return data

    def engine_types(self) -> list[EngineOut]:
        """The engines the server knows, their aliases and fields (which are secret)."""
        return TypeAdapter(list[EngineOut]).validate_python(
            self.request("GET", "/data-source-types")
        )

    def health(self, data_source_id: int, limit: int = 20) -> HealthOut:
        """Health summary and the latest records of a data source."""
        return self._one(
            HealthOut, "GET", f"/data-sources/{data_source_id}/health", params={"limit": limit}
        )

    # ----- organization ---------------------------------------------------------------------

    def audit(self, limit: int = 50, **filters: Any) -> list[AuditEventOut]:
        """The newest audit events (admin and up), optionally filtered."""
        page = self.request("GET", "/audit-events", params={"limit": limit, **filters})
        return TypeAdapter(list[AuditEventOut]).validate_python(page["items"])

    def organizations(self) -> list[OrganizationOut]:
        """The caller's organizations (a service token's: its own)."""
        return self._all(OrganizationOut, "/organizations")

    def organization_id(self) -> int:
        """The organization requests act on: the first of the caller's."""
        found = self.organizations()
        if not found:
            raise ConnectionFailed("The caller belongs to no organization", code="NO_ORGANIZATION")
        return found[0].id

    def list_tokens(self, organization_id: int) -> list[ApiTokenOut]:
        """The organization's service tokens (admin and up)."""
        return self._all(ApiTokenOut, f"/organizations/{organization_id}/api-tokens")

    def create_token(
        self, organization_id: int, name: str, role: str = "member", expires_at: str | None = None
    ) -> ApiTokenCreated:
        """Create a service token (a signed-in admin or owner); the token is shown once."""
        body = {"name": name, "role": role, "expires_at": expires_at}
        return self._one(
            ApiTokenCreated, "POST", f"/organizations/{organization_id}/api-tokens", json=body
        )

    def revoke_token(self, organization_id: int, token_id: int) -> None:
        """Revoke a service token (admin and up)."""
        self.request("DELETE", f"/organizations/{organization_id}/api-tokens/{token_id}")
