"""The list endpoint: pagination with a total, filters by type (aliases too), status and name."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from rivergen.datasources.models import DataSource
from tests.fixtures.datasources import (
    DATA_SOURCES,
    Tenancy,
    context_of,
    error_of,
    mysql_body,
    ok_data,
    postgres_body,
    redis_body,
)

pytestmark = pytest.mark.anyio


async def page(tenancy: Tenancy, **params: Any) -> tuple[list[str], int]:
    """The names on one page and the total."""
    response = await tenancy.client.get(DATA_SOURCES, params=params, headers=tenancy.owner)
    data = ok_data(response)
    assert set(data) >= {"items", "total"}
    return [item["name"] for item in data["items"]], int(data["total"])


@pytest.fixture
async def catalogue(tenancy: Tenancy) -> Tenancy:
    """Six sources of three engines and three statuses, created in name order."""
    bodies = [
        postgres_body("warehouse"),
        postgres_body("Warehouse-Replica"),
        mysql_body("shop"),
        mysql_body("50%_off"),
        redis_body("cache"),
        redis_body("sessions"),
    ]
    ids = {body["name"]: (await tenancy.create(body))["id"] for body in bodies}
    statuses = {"warehouse": "active", "shop": "active", "cache": "failed"}
    async with context_of(tenancy.api).sessions() as session, session.begin():
        for name, status in statuses.items():
            await session.execute(
                update(DataSource).where(DataSource.id == ids[name]).values(status=status)
            )
    return tenancy


ALL = ["warehouse", "Warehouse-Replica", "shop", "50%_off", "cache", "sessions"]


async def test_pages_cover_every_source_once_in_creation_order(catalogue: Tenancy) -> None:
    assert await page(catalogue) == (ALL, 6)
    seen: list[str] = []
    for offset in range(0, 8, 2):
        names, total = await page(catalogue, limit=2, offset=offset)
        assert total == 6
        assert len(names) == (2 if offset < 6 else 0)
        seen += names
    assert seen == ALL
    assert await page(catalogue, limit=4, offset=4) == (ALL[4:], 6)
    assert await page(catalogue, offset=100) == ([], 6)
    assert await page(catalogue, limit=1) == (ALL[:1], 6)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 501}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
        ({"offset": -1}, "query.offset"),
        ({"status": "broken"}, "query.status"),
    ],
)
async def test_bad_paging_and_filter_values_are_422(
    tenancy: Tenancy, params: dict[str, Any], field: str
) -> None:
    response = await tenancy.client.get(DATA_SOURCES, params=params, headers=tenancy.owner)
    error = error_of(response, 422, "VALIDATION_ERROR")
    assert [detail["field"] for detail in error["details"]] == [field]


async def test_an_unknown_type_filter_is_422(tenancy: Tenancy) -> None:
    response = await tenancy.client.get(
        DATA_SOURCES, params={"type": "nosuchdb"}, headers=tenancy.owner
    )
    error_of(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("engine_type", "expected"),
    [
        ("postgresql", ["warehouse", "Warehouse-Replica"]),
        ("postgres", ["warehouse", "Warehouse-Replica"]),
        ("PG", ["warehouse", "Warehouse-Replica"]),
        ("mysql", ["shop", "50%_off"]),
        ("mariadb", []),
        ("redis", ["cache", "sessions"]),
        ("sqlite", []),
    ],
)
async def test_filter_by_type_accepts_aliases(
    catalogue: Tenancy, engine_type: str, expected: list[str]
) -> None:
    assert await page(catalogue, type=engine_type) == (expected, len(expected))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("active", ["warehouse", "shop"]),
        ("failed", ["cache"]),
        ("pending", ["Warehouse-Replica", "50%_off", "sessions"]),
    ],
)
async def test_filter_by_status(catalogue: Tenancy, status: str, expected: list[str]) -> None:
    assert await page(catalogue, status=status) == (expected, len(expected))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ware", ["warehouse", "Warehouse-Replica"]),
        ("WAREHOUSE", ["warehouse", "Warehouse-Replica"]),
        ("replica", ["Warehouse-Replica"]),
        ("s", ["warehouse", "Warehouse-Replica", "shop", "sessions"]),
        # LIKE wildcards are matched literally.
        ("%", ["50%_off"]),
        ("_", ["50%_off"]),
        ("0%_o", ["50%_off"]),
        ("nothing", []),
    ],
)
async def test_filter_by_name_substring(catalogue: Tenancy, name: str, expected: list[str]) -> None:
    assert await page(catalogue, name=name) == (expected, len(expected))


async def test_filters_combine_and_the_total_counts_the_filtered_set(catalogue: Tenancy) -> None:
    assert await page(catalogue, type="postgres", status="active") == (["warehouse"], 1)
    assert await page(catalogue, type="postgresql", name="replica", status="pending") == (
        ["Warehouse-Replica"],
        1,
    )
    assert await page(catalogue, name="s", limit=2, offset=1) == (
        ["Warehouse-Replica", "shop"],
        4,
    )
    assert await page(catalogue, type="mysql", status="failed") == ([], 0)
