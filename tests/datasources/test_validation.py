"""Create-time validation: 422 with one detail per bad field, the file policy, duplicate names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from rivergen.datasources.repository import DataSourceRepository
from tests.fixtures.datasources import (
    DATA_SOURCES,
    MYSQL_PASSWORD,
    PG_PASSWORD,
    REDIS_PASSWORD,
    Tenancy,
    context_of,
    detail_fields,
    error_of,
    key_tunnel,
    mysql_body,
    ok_data,
    postgres_body,
    redis_body,
    sqlite_body,
)

pytestmark = pytest.mark.anyio


async def refused(tenancy: Tenancy, body: dict[str, Any]) -> list[str]:
    """POST a body that must be refused with 422 VALIDATION_ERROR; return the detail fields."""
    response = await tenancy.client.post(DATA_SOURCES, json=body, headers=tenancy.owner)
    error = error_of(response, 422, "VALIDATION_ERROR")
    # Validation errors never echo the input, which may hold a secret.
    for secret in (PG_PASSWORD, MYSQL_PASSWORD, REDIS_PASSWORD):
        assert secret not in response.text
    return detail_fields(error)


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    connection = {k: v for k, v in body["connection"].items() if k != key}
    return {**body, "connection": connection}


def with_connection(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**body, "connection": {**body["connection"], **fields}}


async def nothing_stored(tenancy: Tenancy) -> None:
    listed = ok_data(await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner))
    assert listed["total"] == 0


# ----- type and fields -----------------------------------------------------------------------


@pytest.mark.parametrize("engine_type", ["nosuchdb", "", "postgresql; drop"])
async def test_an_unknown_type_is_refused(tenancy: Tenancy, engine_type: str) -> None:
    assert await refused(tenancy, postgres_body(type=engine_type)) == ["body.type"]
    await nothing_stored(tenancy)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (without(postgres_body(), "host"), "host"),
        (without(mysql_body(), "host"), "host"),
        (without(redis_body(), "host"), "host"),
        ({"name": "f", "type": "sqlite", "connection": {}}, "path"),
        ({"name": "d", "type": "duckdb", "connection": {}}, "path"),
    ],
    ids=["postgresql", "mysql", "redis", "sqlite", "duckdb"],
)
async def test_a_missing_required_field_is_named(
    tenancy: Tenancy, body: dict[str, Any], field: str
) -> None:
    assert await refused(tenancy, body) == [f"body.connection.{field}"]
    await nothing_stored(tenancy)


async def test_the_top_level_required_fields_are_named(tenancy: Tenancy) -> None:
    fields = await refused(tenancy, {"description": "nothing else"})
    assert set(fields) == {"body.name", "body.type", "body.connection"}


@pytest.mark.parametrize("port", [0, -1, 65536, 70000, "not-a-port"])
@pytest.mark.parametrize("make", [postgres_body, mysql_body, redis_body])
async def test_a_port_out_of_range_is_refused(tenancy: Tenancy, make: Any, port: Any) -> None:
    assert await refused(tenancy, with_connection(make(), port=port)) == ["body.connection.port"]


async def test_the_engine_default_port_is_filled_in(tenancy: Tenancy) -> None:
    for make, port in ((postgres_body, 5432), (mysql_body, 3306), (redis_body, 6379)):
        data = await tenancy.create(without(make(), "port"))
        assert data["connection"]["port"] == port


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**postgres_body(), "bogus": 1}, "body.bogus"),
        (with_connection(postgres_body(), bogus=1), "body.connection.bogus"),
        (with_connection(mysql_body(), sslrootcert="/etc/x"), "body.connection.sslrootcert"),
        (postgres_body(ssh_tunnel=key_tunnel(bogus=1)), "body.ssh_tunnel.bogus"),
        (
            {"name": "f", "type": "sqlite", "connection": {"path": "a.db", "host": "x"}},
            "body.connection.host",
        ),
    ],
    ids=["top-level", "connection", "mysql-connection", "ssh-tunnel", "sqlite-host"],
)
async def test_an_unknown_field_is_refused(
    tenancy: Tenancy, body: dict[str, Any], field: str
) -> None:
    assert await refused(tenancy, body) == [field]
    await nothing_stored(tenancy)


@pytest.mark.parametrize(
    ("body", "option"),
    [
        (mysql_body(), {"local_infile": True}),
        (mysql_body(), {"init_command": "SET GLOBAL general_log=1"}),
        (mysql_body(), {"read_default_file": "/etc/mysql/debian.cnf"}),
        (postgres_body(), {"sslrootcert": "/etc/ssl/private/key.pem"}),
        (postgres_body(), {"options": "-c default_transaction_read_only=off"}),
        (postgres_body(), {"passfile": "/root/.pgpass"}),
        (postgres_body(), {"hostaddr": "169.254.169.254"}),
        (postgres_body(), {"host": "169.254.169.254"}),
        (redis_body(), {"unix_socket_path": "/run/redis.sock"}),
    ],
    ids=[
        "mysql-local_infile",
        "mysql-init_command",
        "mysql-read_default_file",
        "postgresql-sslrootcert",
        "postgresql-options",
        "postgresql-passfile",
        "postgresql-hostaddr",
        "postgresql-host",
        "redis-unix_socket_path",
    ],
)
async def test_a_driver_option_outside_the_allow_list_is_refused(
    tenancy: Tenancy, body: dict[str, Any], option: dict[str, Any]
) -> None:
    fields = await refused(tenancy, with_connection(body, options=option))
    assert len(fields) == 1
    assert fields[0].startswith("body.connection.options"), fields
    await nothing_stored(tenancy)


async def test_an_allowed_driver_option_is_kept(tenancy: Tenancy) -> None:
    data = await tenancy.create(
        with_connection(postgres_body(), options={"application_name": "reports"})
    )
    assert data["connection"]["options"] == {"application_name": "reports"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "x" * 201),
        ("health_check_interval_seconds", 0),
        ("health_check_interval_seconds", "often"),
        ("connection", "postgresql://reader:pw@host/db"),
        ("ssh_tunnel", "bastion"),
    ],
)
async def test_bad_top_level_values_are_named(tenancy: Tenancy, field: str, value: Any) -> None:
    fields = await refused(tenancy, {**postgres_body(), field: value})
    assert fields
    assert all(f.startswith(f"body.{field}") for f in fields), fields


async def test_a_health_interval_below_the_minimum_is_refused(tenancy: Tenancy) -> None:
    minimum = context_of(tenancy.api).settings.min_health_check_interval_seconds
    if minimum > 1:
        fields = await refused(tenancy, postgres_body(health_check_interval_seconds=minimum - 1))
        assert fields == ["body.health_check_interval_seconds"]
    data = await tenancy.create(postgres_body(health_check_interval_seconds=minimum))
    assert data["health_check_interval_seconds"] == minimum


async def test_a_tunnel_without_its_credential_is_refused(tenancy: Tenancy) -> None:
    fields = await refused(tenancy, postgres_body(ssh_tunnel=key_tunnel(private_key=None)))
    assert all(f.startswith("body.ssh_tunnel") for f in fields), fields


async def test_malformed_json_is_400(tenancy: Tenancy) -> None:
    response = await tenancy.client.post(
        DATA_SOURCES,
        content=b'{"name": "x", "type": ',
        headers={**tenancy.owner, "Content-Type": "application/json"},
    )
    error_of(response, 400, "BAD_REQUEST")


# ----- file engines --------------------------------------------------------------------------


@pytest.fixture
def files_dir(tenancy: Tenancy) -> Path:
    """The allowed directory of file engines, created, with a database file in it."""
    root = context_of(tenancy.api).settings.effective_file_sources_dir
    root.mkdir(parents=True, exist_ok=True)
    (root / "inside.db").write_bytes(b"")
    return root


async def test_a_sqlite_file_inside_the_allowed_directory_is_accepted(
    tenancy: Tenancy, files_dir: Path
) -> None:
    data = await tenancy.create(sqlite_body(str(files_dir / "inside.db")))
    assert data["type"] == "sqlite"
    relative = await tenancy.create(sqlite_body("inside.db", name="relative"))
    assert relative["type"] == "sqlite"


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../outside.db", "sub/../../outside.db", "{root}/../outside.db"],
)
async def test_a_sqlite_path_outside_the_allowed_directory_is_refused(
    tenancy: Tenancy, files_dir: Path, path: str
) -> None:
    path = path.replace("{root}", str(files_dir))
    assert await refused(tenancy, sqlite_body(path)) == ["body.connection.path"]
    await nothing_stored(tenancy)


async def test_a_symlink_inside_the_directory_pointing_out_is_refused(
    tenancy: Tenancy, files_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.db"
    outside.write_bytes(b"")
    (files_dir / "link.db").symlink_to(outside)
    os.symlink(tmp_path, files_dir / "linkdir")
    for path in (str(files_dir / "link.db"), "link.db", "linkdir/outside.db"):
        assert await refused(tenancy, sqlite_body(path)) == ["body.connection.path"], path
    await nothing_stored(tenancy)


async def test_file_engines_refuse_an_ssh_tunnel(tenancy: Tenancy, files_dir: Path) -> None:
    body = sqlite_body(str(files_dir / "inside.db"), ssh_tunnel=key_tunnel())
    assert await refused(tenancy, body) == ["body.ssh_tunnel"]


async def test_a_patch_cannot_move_a_sqlite_path_outside(tenancy: Tenancy, files_dir: Path) -> None:
    source = await tenancy.create(sqlite_body(str(files_dir / "inside.db")))
    response = await tenancy.patch(source["id"], {"connection": {"path": "/etc/passwd"}})
    assert detail_fields(error_of(response, 422, "VALIDATION_ERROR")) == ["body.connection.path"]
    assert (await tenancy.get(source["id"]))["connection"]["path"] == source["connection"]["path"]


# ----- names ---------------------------------------------------------------------------------


async def test_a_duplicate_name_in_one_organization_is_a_conflict(tenancy: Tenancy) -> None:
    first = await tenancy.create(postgres_body("warehouse"))
    response = await tenancy.client.post(
        DATA_SOURCES, json=mysql_body("warehouse"), headers=tenancy.owner
    )
    error_of(response, 409, "CONFLICT")
    listed = ok_data(await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner))
    assert [item["id"] for item in listed["items"]] == [first["id"]]

    # Renaming another source to the taken name is a conflict too; keeping one's own is not.
    second = await tenancy.create(postgres_body("lake"))
    error_of(await tenancy.patch(second["id"], {"name": "warehouse"}), 409, "CONFLICT")
    assert (await tenancy.get(second["id"]))["name"] == "lake"
    ok_data(await tenancy.patch(first["id"], {"name": "warehouse", "description": "same"}))


async def test_the_same_name_in_another_organization_is_fine(tenancy: Tenancy) -> None:
    mine = await tenancy.create(postgres_body("warehouse"))
    headers, other_id = await tenancy.outsider("admin")
    theirs = await tenancy.create(postgres_body("warehouse"), headers=headers)
    assert theirs["organization_id"] == other_id != mine["organization_id"]
    # The owner, a member of both, can have it in each through the header as well.
    third_id = await tenancy.organization("Third")
    header = {**tenancy.owner, "X-Organization-Id": str(third_id)}
    third = await tenancy.create(postgres_body("warehouse"), headers=header)
    assert third["organization_id"] == third_id


async def test_concurrent_creates_with_one_name_give_one_source_and_conflicts(
    tenancy: Tenancy,
) -> None:
    """The name check and the insert race; the unique constraint must answer 409, not 500."""
    statuses: list[int] = []

    async def create() -> None:
        response = await tenancy.client.post(
            DATA_SOURCES, json=postgres_body("same"), headers=tenancy.owner
        )
        statuses.append(response.status_code)
        if response.status_code != 201:
            error_of(response, 409, "CONFLICT")

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(create)
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
    listed = ok_data(await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner))
    assert [item["name"] for item in listed["items"]] == ["same"]


async def test_concurrent_renames_to_one_name_give_one_rename_and_conflicts(
    tenancy: Tenancy,
) -> None:
    ids = [(await tenancy.create(postgres_body(f"source-{i}")))["id"] for i in range(4)]
    statuses: list[int] = []

    async def rename(data_source_id: int) -> None:
        response = await tenancy.patch(data_source_id, {"name": "same"})
        statuses.append(response.status_code)
        if response.status_code != 200:
            error_of(response, 409, "CONFLICT")

    async with anyio.create_task_group() as group:
        for data_source_id in ids:
            group.start_soon(rename, data_source_id)
    assert sorted(statuses) == [200, 409, 409, 409]
    listed = ok_data(await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner))
    assert sorted(item["name"] for item in listed["items"]).count("same") == 1


async def test_the_unique_constraint_answers_409_when_the_name_check_is_raced(
    tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic form of the races above: the check sees nothing, the store refuses."""
    first = await tenancy.create(postgres_body("same"))
    other = await tenancy.create(postgres_body("other"))

    async def never_taken(*_args: Any, **_kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(DataSourceRepository, "name_taken", never_taken)
    response = await tenancy.client.post(
        DATA_SOURCES, json=postgres_body("same"), headers=tenancy.owner
    )
    error_of(response, 409, "CONFLICT")
    error_of(await tenancy.patch(other["id"], {"name": "same"}), 409, "CONFLICT")
    listed = ok_data(await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner))
    assert [item["id"] for item in listed["items"]] == [first["id"], other["id"]]
    assert (await tenancy.get(other["id"]))["name"] == "other"
