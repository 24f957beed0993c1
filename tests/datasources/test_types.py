"""GET /api/v1/data-source-types: engines, their fields, defaults, secret flags and drivers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.datasources import DATA_SOURCE_TYPES, Tenancy, error_of, ok_data

pytestmark = pytest.mark.anyio

EXPECTED = {
    # type: (default port, required fields, secret fields, file based)
    "postgresql": (5432, {"host"}, {"password"}, False),
    "mysql": (3306, {"host"}, {"password"}, False),
    "mariadb": (3306, {"host"}, {"password"}, False),
    "sqlite": (None, {"path"}, set(), True),
    "duckdb": (None, {"path"}, set(), True),
    "redis": (6379, {"host"}, {"password"}, False),
    "redshift": (5439, {"host"}, {"password"}, False),
    "cockroachdb": (26257, {"host"}, {"password"}, False),
    "timescaledb": (5432, {"host"}, {"password"}, False),
    "yugabytedb": (5433, {"host"}, {"password"}, False),
    "tidb": (4000, {"host"}, {"password"}, False),
    "clickhouse": (9000, {"host"}, {"password"}, False),
    "mongodb": (27017, {"host"}, {"password"}, False),
    "mssql": (1433, {"host", "username"}, {"password"}, False),
    "oracle": (1521, {"host", "username"}, {"password"}, False),
    "trino": (8080, {"host"}, {"password", "jwt"}, False),
}


async def engines(tenancy: Tenancy) -> dict[str, dict[str, Any]]:
    response = await tenancy.client.get(DATA_SOURCE_TYPES, headers=tenancy.owner)
    data = ok_data(response)
    assert isinstance(data, list)
    by_type = {engine["type"]: engine for engine in data}
    assert len(by_type) == len(data), "each engine is listed once"
    return by_type


async def test_every_engine_is_listed_with_an_installed_driver(tenancy: Tenancy) -> None:
    listed = await engines(tenancy)
    assert set(listed) >= set(EXPECTED)
    for engine_type in EXPECTED:
        engine = listed[engine_type]
        assert engine["driver_installed"] is True, engine_type
        assert engine["label"]
        assert engine["default_test_query"]
        assert engine["help"], engine_type
        assert isinstance(engine["aliases"], list)
        assert isinstance(engine["allowed_options"], list)


@pytest.mark.parametrize("engine_type", EXPECTED)
async def test_fields_defaults_and_secret_flags(tenancy: Tenancy, engine_type: str) -> None:
    default_port, required, secrets, file_based = EXPECTED[engine_type]
    engine = (await engines(tenancy))[engine_type]
    assert engine["default_port"] == default_port
    assert engine["file_based"] is file_based
    fields = {field["name"]: field for field in engine["fields"]}
    for field in fields.values():
        assert set(field) >= {"name", "type", "required", "default", "secret"}
        assert isinstance(field["type"], str)
        assert field["type"]
    assert {name for name, field in fields.items() if field["required"]} >= required
    assert {name for name, field in fields.items() if field["secret"]} == secrets
    for name in secrets:
        assert fields[name]["required"] is False
        assert fields[name]["default"] is None
    if file_based:
        assert "host" not in fields
        assert "port" not in fields
    else:
        assert fields["port"]["default"] == default_port
        assert fields["port"]["required"] is False
        assert {"host", "port", "username", "password", "ssl_mode"} <= set(fields)
    # No engine offers an option that reads files or runs commands at connect time.
    forbidden = {"local_infile", "init_command", "sslrootcert", "passfile", "options", "service"}
    assert not forbidden & set(engine["allowed_options"])


async def test_aliases_are_listed(tenancy: Tenancy) -> None:
    assert "postgres" in (await engines(tenancy))["postgresql"]["aliases"]


async def test_the_catalogue_needs_a_token(tenancy: Tenancy) -> None:
    error_of(await tenancy.client.get(DATA_SOURCE_TYPES), 401, "UNAUTHORIZED")
