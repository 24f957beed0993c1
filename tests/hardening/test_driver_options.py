"""Driver options outside each engine's allow-list are refused (422) wherever a config enters.

One test per refused option: on create, on PATCH of an existing source, and on the unsaved test
(which would otherwise hand the option to the driver at once). Nothing is stored or changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.hardening import (
    DATA_SOURCES,
    METADATA_ADDRESS,
    Tenant,
    error_of,
    ok_data,
)

# One app for the module (cheap tests); `store` reruns it on PostgreSQL.
pytestmark = [pytest.mark.anyio, pytest.mark.store]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, as the shared app needs."""
    return "asyncio"


# (engine, option, a value a driver would act on)
REFUSED = [
    ("mysql", "local_infile", True),
    ("mysql", "init_command", "SET GLOBAL read_only = 0"),
    ("mysql", "plugin_dir", "/tmp/plugins"),
    ("mysql", "read_default_file", "/etc/mysql/debian.cnf"),
    ("mariadb", "local_infile", 1),
    ("mariadb", "init_command", "DROP DATABASE mysql"),
    ("mariadb", "plugin_dir", "/tmp/plugins"),
    ("mariadb", "read_default_file", "/root/.my.cnf"),
    ("postgresql", "options", "-c default_transaction_read_only=off"),
    ("postgresql", "sslrootcert", "/etc/ssl/private/ca.pem"),
    ("postgresql", "passfile", "/root/.pgpass"),
    ("postgresql", "sslkey", "/etc/ssl/private/server.key"),
]

ALLOWED: dict[str, dict[str, Any]] = {
    "mysql": {"charset": "utf8mb4"},
    "mariadb": {"program_name": "reports"},
    "postgresql": {"application_name": "reports", "keepalives_idle": 30},
}


def config(engine: str, options: dict[str, Any], name: str = "options") -> dict[str, Any]:
    """A connection of `engine` at an address nothing is ever sent to."""
    connection: dict[str, Any] = {
        "host": METADATA_ADDRESS,
        "username": "reader",
        "password": "option-test-password",
        "options": options,
    }
    return {"name": f"{engine}-{name}", "type": engine, "connection": connection}


def assert_option_refused(response: Any, option: str) -> None:
    error = error_of(response, 422, "VALIDATION_ERROR")
    fields = [detail["field"] for detail in error["details"]]
    assert fields, error
    assert all(f.startswith("body.connection.options") for f in fields), error
    assert any(option in detail["message"] for detail in error["details"]), error
    assert "option-test-password" not in response.text


@pytest.mark.parametrize(
    ("engine", "option", "value"), REFUSED, ids=[f"{e}-{o}" for e, o, _ in REFUSED]
)
async def test_a_refused_driver_option_is_422_everywhere(
    shared_tenant: Tenant, engine: str, option: str, value: Any
) -> None:
    tenant = shared_tenant
    headers = tenant.owner.headers
    bad = config(engine, {**ALLOWED[engine], option: value}, name=option)
    before = ok_data(await tenant.client.get(DATA_SOURCES, headers=headers))["total"]

    assert_option_refused(await tenant.client.post(DATA_SOURCES, json=bad, headers=headers), option)
    assert_option_refused(await tenant.test_unsaved({**bad, "timeout_seconds": 2}), option)

    data_source_id = await tenant.create(config(engine, ALLOWED[engine], name=option))
    patch = {"connection": {"options": {option: value}}}
    response = await tenant.client.patch(
        f"{DATA_SOURCES}/{data_source_id}", json=patch, headers=headers
    )
    assert_option_refused(response, option)

    shown = ok_data(await tenant.client.get(f"{DATA_SOURCES}/{data_source_id}", headers=headers))
    assert shown["connection"]["options"] == ALLOWED[engine]
    listed = ok_data(await tenant.client.get(DATA_SOURCES, headers=headers))
    assert listed["total"] == before + 1  # only the valid one


@pytest.mark.parametrize("engine", sorted(ALLOWED))
async def test_the_allow_listed_options_are_kept(shared_tenant: Tenant, engine: str) -> None:
    tenant = shared_tenant
    data_source_id = await tenant.create(config(engine, ALLOWED[engine], name="kept"))
    shown = ok_data(
        await tenant.client.get(f"{DATA_SOURCES}/{data_source_id}", headers=tenant.owner.headers)
    )
    assert shown["connection"]["options"] == ALLOWED[engine]
    types = ok_data(
        await tenant.client.get("/api/v1/data-source-types", headers=tenant.owner.headers)
    )
    allowed = {t["type"]: set(t["allowed_options"]) for t in types}
    assert set(ALLOWED[engine]) <= allowed[engine]
    refused_here = {option for e, option, _ in REFUSED if e == engine}
    assert not refused_here & allowed[engine]


@pytest.mark.parametrize("threads", [0, 17, 1_000_000, 2**63])
async def test_an_allowed_option_with_an_abusive_value_is_422(
    shared_tenant: Tenant, threads: int
) -> None:
    """DuckDB starts `threads` threads in the server process: a million exhausted it."""
    tenant = shared_tenant
    body = {
        "name": f"duck-{threads}",
        "type": "duckdb",
        "connection": {"path": "db.duckdb", "options": {"threads": threads}},
    }
    assert_option_refused(
        await tenant.client.post(DATA_SOURCES, json=body, headers=tenant.owner.headers), "threads"
    )
    assert_option_refused(await tenant.test_unsaved({**body, "timeout_seconds": 2}), "threads")
