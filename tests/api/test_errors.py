"""Every failure leaves as the error envelope; the system endpoints and the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rivergen.app import create_app
from rivergen.settings import Settings
from tests.fixtures.app import Api, start_api
from tests.fixtures.store import STORE_KIND

pytestmark = pytest.mark.anyio


FAKE_SECRET = "hunter2-do-not-show-me"


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"success", "error"}
    assert body["success"] is False
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert response.headers.get("x-request-id")
    return body


async def test_validation_error_lists_each_bad_field_without_echoing_input(api: Api) -> None:
    long_password = "p4ssw0rd-" * 200  # over the 1024-character limit
    response = await api.client.post(
        "/api/v1/auth/login", json={"email": "x", "password": long_password}
    )
    body = assert_envelope(response, 422, "VALIDATION_ERROR")
    details = body["error"]["details"]
    assert sorted(d["field"] for d in details) == ["body.email", "body.password"]
    assert all(d["message"] and d["type"] for d in details)
    assert "p4ssw0rd-" not in response.text

    response = await api.client.post(
        "/api/v1/auth/login", json={"email": "a@example.com", "password": "x", "admin": True}
    )
    body = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert [d["field"] for d in body["error"]["details"]] == ["body.admin"]

    response = await api.client.post("/api/v1/auth/login", json={})
    body = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in body["error"]["details"]) == ["body.email", "body.password"]


async def test_bad_path_and_query_parameters_are_validation_errors(api: Api) -> None:
    headers = await api.headers_for()
    response = await api.client.get("/api/v1/organizations/abc/members", headers=headers)
    body = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert [d["field"] for d in body["error"]["details"]] == ["path.organization_id"]
    response = await api.client.get(
        "/api/v1/organizations/1/members", params={"limit": "many", "offset": -1}, headers=headers
    )
    body = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in body["error"]["details"]) == ["query.limit", "query.offset"]


async def test_malformed_json_is_bad_request(api: Api) -> None:
    for content in (b'{"email": "a@example.com", ', b"{'email': 1}", b"not json", b'{"a": 1}}'):
        response = await api.client.post(
            "/api/v1/auth/login", content=content, headers={"Content-Type": "application/json"}
        )
        body = assert_envelope(response, 400, "BAD_REQUEST")
        assert "json" in body["error"]["message"].lower()


async def test_unknown_route_is_not_found(api: Api) -> None:
    for path in ("/nope", "/api/v1/nope", "/api/v2/auth/login", "/api/v1/auth"):
        assert_envelope(await api.client.get(path), 404, "NOT_FOUND")


async def test_wrong_method_is_405_with_allow(api: Api) -> None:
    response = await api.client.get("/api/v1/auth/login")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"
    response = await api.client.delete("/healthz")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")


async def test_unauthorized_and_forbidden_use_the_envelope(api: Api) -> None:
    assert_envelope(await api.client.get("/api/v1/auth/me"), 401, "UNAUTHORIZED")
    headers = await api.headers_for()
    me = await api.client.get("/api/v1/auth/me", headers=headers)
    members = (
        f"/api/v1/organizations/{me.json()['data']['organizations'][0]['organization_id']}/members"
    )
    response = await api.client.post(
        members,
        json={"email": "viewer@example.com", "role": "viewer", "password": "viewer-password"},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    viewer = await api.headers_for("viewer@example.com", "viewer-password")
    response = await api.client.post(
        members,
        json={"email": "other@example.com", "role": "viewer", "password": "other-password"},
        headers=viewer,
    )
    assert_envelope(response, 403, "FORBIDDEN")


@pytest.fixture
async def exploding_api(settings_factory: Callable[..., Settings]) -> AsyncIterator[Api]:
    """An app with one extra route that fails with an unexpected exception."""
    app = create_app(settings_factory())

    async def explode() -> None:
        raise RuntimeError(f"database password is {FAKE_SECRET}")

    app.add_api_route("/explode", explode, methods=["GET"])
    async for running in start_api(app):
        yield running


async def test_unexpected_exception_is_a_bare_internal_error(exploding_api: Api) -> None:
    response = await exploding_api.client.get("/explode")
    body = assert_envelope(response, 500, "INTERNAL_ERROR")
    request_id = response.headers["x-request-id"]
    assert body["error"]["details"] == {"request_id": request_id}
    for leak in (FAKE_SECRET, "RuntimeError", "Traceback", "explode", 'File "'):
        assert leak not in response.text
    # The app keeps serving afterwards.
    assert (await exploding_api.client.get("/healthz")).status_code == 200


async def test_request_id_is_echoed_when_safe_and_generated_otherwise(api: Api) -> None:
    response = await api.client.get("/healthz", headers={"X-Request-ID": "trace-42.a_b"})
    assert response.headers["x-request-id"] == "trace-42.a_b"
    not_found = await api.client.get("/nope", headers={"X-Request-ID": "trace-43"})
    assert not_found.headers["x-request-id"] == "trace-43"
    generated = set()
    for unsafe in ("has spaces", "x" * 65, "<script>", ""):
        response = await api.client.get("/healthz", headers={"X-Request-ID": unsafe})
        request_id = response.headers["x-request-id"]
        assert request_id != unsafe
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", request_id)
        generated.add(request_id)
    assert len(generated) == 4  # a new one every time


async def test_healthz_and_readyz(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert response.json()["data"] == {"status": "ok"}
    response = await api.client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"status": "ready", "store": STORE_KIND}


async def test_readyz_is_service_unavailable_when_the_store_does_not_answer(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(_engine: object) -> None:
        raise OSError(f"connection refused (password={FAKE_SECRET})")

    monkeypatch.setattr("rivergen.api.system.ping", unreachable)
    response = await api.client.get("/readyz")
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert int(response.headers["retry-after"]) >= 1
    assert FAKE_SECRET not in response.text
    assert (await api.client.get("/healthz")).status_code == 200


async def test_metrics_are_prometheus_text(api: Api) -> None:
    await api.client.get("/healthz")
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families
    assert "# TYPE " in response.text


async def test_openapi_document_uses_the_error_envelope(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in (
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/organizations",
        "/api/v1/organizations/{organization_id}/members",
        "/api/v1/organizations/{organization_id}/members/{user_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/organizations/{organization_id}/members/{user_id}"]) >= {
        "patch",
        "delete",
    }

    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components
    envelope = components["ErrorEnvelope"]
    assert set(envelope["properties"]) == {"success", "error"}

    with_422 = 0
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation.get("responses", {})
            if "422" in responses:
                with_422 += 1
                ref = responses["422"]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorEnvelope", (path, method)
    assert with_422 >= 5
    login_401 = paths["/api/v1/auth/login"]["post"]["responses"]["401"]
    assert login_401["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")

    # Every reference in the document resolves.
    refs = set(re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', response.text))
    assert refs
    assert refs <= set(components), refs - set(components)


async def test_docs_are_html(api: Api) -> None:
    response = await api.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text.lower()
    assert "/openapi.json" in response.text


async def test_405_allows_every_method_of_the_resource(api: Api) -> None:
    headers = await api.headers_for()
    expected = {
        "/api/v1/data-sources": "GET, POST",
        "/api/v1/data-sources/1": "DELETE, GET, PATCH",
        "/api/v1/organizations/1/members": "GET, POST",
        "/api/v1/organizations/1/members/2": "DELETE, PATCH",
        "/api/v1/data-sources/1/test": "POST",
    }
    for path, allow in expected.items():
        for method in ("PUT", "OPTIONS", "TRACE"):
            response = await api.client.request(method, path, headers=headers)
            assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
            assert response.headers["allow"] == allow, (method, path)


async def test_the_unsaved_test_path_is_no_data_source_id(api: Api) -> None:
    headers = await api.headers_for()
    for method in ("GET", "PATCH", "DELETE", "PUT"):
        response = await api.client.request(
            method, "/api/v1/data-sources/test", json={"name": "x"}, headers=headers
        )
        assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "POST", method
    # Other segments are ids still: validated (422), or looked up (404).
    for method in ("GET", "PATCH", "DELETE"):
        response = await api.client.request(
            method, "/api/v1/data-sources/tests", json={}, headers=headers
        )
        body = assert_envelope(response, 422, "VALIDATION_ERROR")
        assert [d["field"] for d in body["error"]["details"]] == ["path.data_source_id"]
    response = await api.client.get("/api/v1/data-sources/-3", headers=headers)
    assert_envelope(response, 404, "NOT_FOUND")
    assert response.json()["error"]["message"] == "Data source not found"
