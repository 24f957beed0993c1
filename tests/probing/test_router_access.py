"""Who may call POST /api/v1/data-sources/{id}/test and the unsaved-configuration endpoint, and
what they must never get back.

Roles and tenancy (members, viewers, users without an organization, other organizations, missing
or bad tokens), unsaved configurations (tested, never persisted, validated like a create, never
given a stored secret), rate limits, and passwords that must not leak from a failing test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from rivergen.settings import Settings
from tests.fixtures.datasources import (
    MASK,
    Tenancy,
    error_of,
    ok_data,
    unique_name,
)
from tests.fixtures.probing import (
    UNSAVED_TEST,
    assert_failed,
    count_data_sources,
    file_body,
    files_dir,
    health_records,
    make_file_database,
    network_body,
    result_of,
    run_test,
    running,
    sqlite_source,
    user_id_of,
)
from tests.fixtures.servers import Server

# One app serves most of the module (each test adds its own data sources and users).
pytestmark = [pytest.mark.anyio, pytest.mark.store]

ServerFor = Callable[[str], Server]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that the module's shared app runs on the tests' event loop."""
    return "asyncio"


@pytest.fixture
def tenancy(module_tenancy: Tenancy) -> Tenancy:
    """The owner of the app this module shares."""
    return module_tenancy


# ----- roles and tenancy ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["member", "admin", "owner"])
async def test_member_admin_and_owner_may_test(tenancy: Tenancy, role: str) -> None:
    data_source_id = await sqlite_source(tenancy)
    headers = tenancy.owner if role == "owner" else await tenancy.member(role)
    data = result_of(await run_test(tenancy.client, data_source_id, headers))
    assert data["connection_successful"] is True
    (record,) = await health_records(tenancy.api, data_source_id)
    assert record.user_id == await user_id_of(tenancy.client, headers)
    unsaved = file_body("sqlite", files_dir(tenancy.api) / "none.sqlite", "x")
    response = await tenancy.client.post(UNSAVED_TEST, json=unsaved, headers=headers)
    assert_failed(result_of(response), "DATABASE_NOT_FOUND")


async def test_viewer_may_not_test(tenancy: Tenancy) -> None:
    data_source_id = await sqlite_source(tenancy)
    viewer = await tenancy.member("viewer")
    error_of(await run_test(tenancy.client, data_source_id, viewer), 403, "FORBIDDEN")
    body = file_body("sqlite", files_dir(tenancy.api) / "none.sqlite", "x")
    error_of(await tenancy.client.post(UNSAVED_TEST, json=body, headers=viewer), 403, "FORBIDDEN")
    assert await health_records(tenancy.api, data_source_id) == []
    assert (await tenancy.get(data_source_id))["status"] == "pending"


async def test_user_without_organization_is_forbidden(tenancy: Tenancy) -> None:
    data_source_id = await sqlite_source(tenancy)
    orphan = await tenancy.orphan()
    error = error_of(await run_test(tenancy.client, data_source_id, orphan), 403, "FORBIDDEN")
    assert error["message"] == "User is not a member of any organization"


async def test_another_organizations_source_is_not_found(tenancy: Tenancy) -> None:
    data_source_id = await sqlite_source(tenancy)
    outsider, _ = await tenancy.outsider("owner")
    error = error_of(await run_test(tenancy.client, data_source_id, outsider), 404, "NOT_FOUND")
    assert error["message"] == "Data source not found"
    assert await health_records(tenancy.api, data_source_id) == []


async def test_unknown_id_is_not_found(tenancy: Tenancy) -> None:
    for missing in (987654, 0, -1):
        response = await run_test(tenancy.client, missing, tenancy.owner)
        error_of(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}],
)
async def test_without_a_valid_token_is_unauthorized(
    tenancy: Tenancy, headers: dict[str, str]
) -> None:
    data_source_id = await sqlite_source(tenancy)
    error_of(await run_test(tenancy.client, data_source_id, headers), 401, "UNAUTHORIZED")
    body = file_body("sqlite", files_dir(tenancy.api) / "none.sqlite", "x")
    response = await tenancy.client.post(UNSAVED_TEST, json=body, headers=headers)
    error_of(response, 401, "UNAUTHORIZED")
    assert await health_records(tenancy.api, data_source_id) == []


# ----- unsaved configurations ----------------------------------------------------------------


async def test_unsaved_configuration_is_tested_and_nothing_is_persisted(tenancy: Tenancy) -> None:
    path = make_file_database("sqlite", files_dir(tenancy.api) / f"{unique_name('u')}.sqlite")
    sources_before = await count_data_sources(tenancy.api)
    records_before = len(await health_records(tenancy.api))
    body = {
        **file_body("sqlite", path, unique_name("unsaved")),
        "test_query": "SELECT count(*) FROM t",
        "timeout_seconds": 5,
    }
    data = result_of(await tenancy.client.post(UNSAVED_TEST, json=body, headers=tenancy.owner))
    assert data["data_source_id"] is None
    assert data["connection_successful"] is True
    assert data["test_query_result"] == "3"
    # No name is needed: the configuration is not saved.
    del body["name"]
    data = result_of(await tenancy.client.post(UNSAVED_TEST, json=body, headers=tenancy.owner))
    assert data["connection_successful"] is True
    assert await count_data_sources(tenancy.api) == sources_before
    assert len(await health_records(tenancy.api)) == records_before
    listed = ok_data(await tenancy.client.get("/api/v1/data-sources", headers=tenancy.owner))
    assert body["connection"]["path"] not in str(listed)


async def test_unsaved_configuration_never_borrows_a_stored_secret(
    tenancy: Tenancy, postgres_with_password: Server
) -> None:
    server = postgres_with_password
    saved = await tenancy.create(network_body("postgresql", server, unique_name("pg")))
    same_place = network_body("postgresql", server, unique_name("pg"))
    right = result_of(
        await tenancy.client.post(UNSAVED_TEST, json=same_place, headers=tenancy.owner)
    )
    assert right["connection_successful"] is True
    for password in (None, MASK):
        connection = dict(same_place["connection"])
        connection.pop("password")
        if password is not None:
            connection["password"] = password
        body = {**same_place, "connection": connection}
        response = await tenancy.client.post(UNSAVED_TEST, json=body, headers=tenancy.owner)
        assert_failed(result_of(response), "AUTHENTICATION_FAILED", "auth")
    assert await health_records(tenancy.api, int(saved["id"])) == []
    assert (await tenancy.get(int(saved["id"])))["status"] == "pending"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timeout_seconds": 0}, "body.timeout_seconds"),
        ({"timeout_seconds": 2.5}, "body.timeout_seconds"),
        ({"type": "db2"}, "body.type"),
        ({"connection": {"path": "/etc/passwd"}}, "body.connection.path"),
        ({"unknown": True}, "body.unknown"),
    ],
)
async def test_unsaved_configuration_is_validated_like_a_create(
    tenancy: Tenancy, change: dict[str, Any], field: str
) -> None:
    body = {**file_body("sqlite", files_dir(tenancy.api) / "x.sqlite", "x"), **change}
    response = await tenancy.client.post(UNSAVED_TEST, json=body, headers=tenancy.owner)
    error = error_of(response, 422, "VALIDATION_ERROR")
    assert field in [detail["field"] for detail in error["details"]], error


# ----- rate limits ---------------------------------------------------------------------------


async def test_too_many_tests_answer_429_with_retry_after(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(tests_per_minute_per_user=2, tests_per_minute_per_organization=50)
    async with running(settings) as (api, owner):
        data_source_id = await sqlite_source(owner)
        for _ in range(2):
            result_of(await run_test(api.client, data_source_id, owner.owner))
        response = await run_test(api.client, data_source_id, owner.owner)
        error_of(response, 429, "RATE_LIMITED")
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert len(await health_records(api, data_source_id)) == 2


# ----- secrets -------------------------------------------------------------------------------

LEAKY_PASSWORD = "Leak-Canary-7c1e9d2f-pass"


def assert_nowhere(secret: str, *texts: str) -> None:
    """The secret appears in none of the texts."""
    for text in texts:
        assert secret not in text


@pytest.mark.parametrize("engine", ["postgresql", "mysql", "mariadb", "redis"])
async def test_failing_test_leaks_no_password(
    tenancy: Tenancy,
    password_server: ServerFor,
    engine: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    server = password_server(engine)
    body = network_body(engine, server, unique_name(engine), password=LEAKY_PASSWORD)
    texts: list[str] = []
    created = await tenancy.create(body)
    saved = await run_test(tenancy.client, int(created["id"]), tenancy.owner)
    assert_failed(result_of(saved), "AUTHENTICATION_FAILED", "auth")
    texts.append(saved.text)
    unsaved = await tenancy.client.post(UNSAVED_TEST, json=body, headers=tenancy.owner)
    assert_failed(result_of(unsaved), "AUTHENTICATION_FAILED", "auth")
    texts.append(unsaved.text)
    if engine != "redis":
        # The password typed into the user name too: servers echo the user name back.
        echoed = network_body(
            engine, server, unique_name(engine), username=LEAKY_PASSWORD, password=LEAKY_PASSWORD
        )
        response = await tenancy.client.post(UNSAVED_TEST, json=echoed, headers=tenancy.owner)
        assert_failed(result_of(response), "AUTHENTICATION_FAILED", "auth")
        texts.append(response.text)
    shown = await tenancy.client.get(f"/api/v1/data-sources/{created['id']}", headers=tenancy.owner)
    texts.append(shown.text)
    records = await health_records(tenancy.api, int(created["id"]))
    texts += [str(r.error_message) for r in records]
    captured = capfd.readouterr()
    texts += [caplog.text, captured.out, captured.err]
    assert_nowhere(LEAKY_PASSWORD, *texts)
