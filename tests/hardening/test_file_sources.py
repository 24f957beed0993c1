"""File engines (SQLite, DuckDB) read only inside RIVERGEN_FILE_SOURCES_DIR, opened read-only.

The path is resolved (links followed) and must land inside the directory, when the data source is
registered and again each time it is tested, so a file swapped for a link pointing out after
creation is refused at test time (HOST_NOT_ALLOWED, phase `policy`) without being opened.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from rivergen.app import create_app
from rivergen.settings import Settings
from tests.fixtures.app import start_api
from tests.fixtures.hardening import (
    DATA_SOURCES,
    Tenant,
    error_of,
    ok_data,
    sign_in_owner,
)

pytestmark = pytest.mark.anyio

ENGINES = ("sqlite", "duckdb")


def make_database(engine: str, path: Path) -> Path:
    """A valid database file with table t holding one row: 'secret row'."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if engine == "sqlite":
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("CREATE TABLE t (v TEXT)")
            conn.execute("INSERT INTO t VALUES ('secret row')")
        conn.close()
    else:
        with duckdb.connect(str(path)) as duck:
            duck.execute("CREATE TABLE t (v VARCHAR)")
            duck.execute("INSERT INTO t VALUES ('secret row')")
    return path


def body(engine: str, path: str | Path, name: str = "file") -> dict[str, Any]:
    return {"name": name, "type": engine, "connection": {"path": str(path)}}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def files_root(tmp_path: Path) -> Path:
    """The allowed directory (RIVERGEN_FILE_SOURCES_DIR), created."""
    root = tmp_path / "allowed-files"
    root.mkdir()
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the allowed one, holding valid databases that must stay unread."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    return directory


@pytest.fixture
async def tenant_with_files(settings_factory: Callable[..., Settings], files_root: Path) -> Any:
    async for api in start_api(create_app(settings_factory(file_sources_dir=files_root))):
        yield await sign_in_owner(api)


def assert_path_refused(response: Any) -> None:
    error = error_of(response, 422, "VALIDATION_ERROR")
    assert [d["field"] for d in error["details"]] == ["body.connection.path"], error
    assert "secret row" not in response.text


def assert_refused_by_policy(data: dict[str, Any]) -> None:
    assert data["connection_successful"] is False, data
    assert (data["error_code"], data["error_phase"]) == ("HOST_NOT_ALLOWED", "policy"), data
    assert data["test_query_result"] is None
    assert data["database_version"] is None


@pytest.mark.parametrize("engine", ENGINES)
async def test_paths_leading_out_are_refused_on_create_and_on_the_unsaved_test(
    tenant_with_files: Tenant, files_root: Path, outside: Path, engine: str
) -> None:
    tenant = tenant_with_files
    target = make_database(engine, outside / f"real.{engine}")
    (files_root / "link-out").symlink_to(target)
    (files_root / "dir-out").symlink_to(outside)
    before = digest(target)
    for path in (
        str(target),  # a valid database, just in the wrong place
        f"../elsewhere/real.{engine}",
        f"{files_root}/../elsewhere/real.{engine}",
        "link-out",
        f"dir-out/real.{engine}",
        "/proc/self/environ",
        "/dev/zero",
    ):
        created = await tenant.client.post(
            DATA_SOURCES, json=body(engine, path), headers=tenant.owner.headers
        )
        assert_path_refused(created)
        unsaved = await tenant.test_unsaved({**body(engine, path), "test_query": "SELECT v FROM t"})
        assert_path_refused(unsaved)
    listed = ok_data(await tenant.client.get(DATA_SOURCES, headers=tenant.owner.headers))
    assert listed["total"] == 0
    assert digest(target) == before


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_file_swapped_for_a_link_out_after_creation_is_refused_when_tested(
    tenant_with_files: Tenant, files_root: Path, outside: Path, engine: str
) -> None:
    tenant = tenant_with_files
    inside = make_database(engine, files_root / f"data.{engine}")
    target = make_database(engine, outside / f"data.{engine}")
    data_source_id = await tenant.create(body(engine, f"data.{engine}"))
    query = {"test_query": "SELECT v FROM t", "timeout_seconds": 10}
    works = ok_data(await tenant.test(data_source_id, query))
    assert works["connection_successful"] is True, works
    assert works["test_query_result"] == "secret row"

    inside.unlink()
    inside.symlink_to(target)
    before = digest(target)
    refused = ok_data(await tenant.test(data_source_id, query))
    assert_refused_by_policy(refused)
    assert str(outside) not in refused["error_message"]
    assert digest(target) == before
    shown = ok_data(
        await tenant.client.get(f"{DATA_SOURCES}/{data_source_id}", headers=tenant.owner.headers)
    )
    assert (shown["status"], shown["last_error_code"]) == ("failed", "HOST_NOT_ALLOWED")


async def test_a_directory_swapped_for_a_link_out_is_refused_when_tested(
    tenant_with_files: Tenant, files_root: Path, outside: Path
) -> None:
    tenant = tenant_with_files
    make_database("sqlite", files_root / "team" / "db.sqlite")
    make_database("sqlite", outside / "db.sqlite")
    data_source_id = await tenant.create(body("sqlite", files_root / "team" / "db.sqlite"))
    assert ok_data(await tenant.test(data_source_id))["connection_successful"] is True

    (files_root / "team").rename(files_root / "team-old")
    (files_root / "team").symlink_to(outside)
    assert_refused_by_policy(ok_data(await tenant.test(data_source_id)))


async def test_a_link_that_stays_inside_is_followed_and_opened_read_only(
    tenant_with_files: Tenant, files_root: Path
) -> None:
    tenant = tenant_with_files
    real = make_database("sqlite", files_root / "real" / "db.sqlite")
    (files_root / "alias.sqlite").symlink_to(real)
    before = digest(real)
    data_source_id = await tenant.create(body("sqlite", "alias.sqlite"))
    read = ok_data(await tenant.test(data_source_id, {"test_query": "SELECT v FROM t"}))
    assert read["test_query_result"] == "secret row", read
    write = ok_data(await tenant.test(data_source_id, {"test_query": "DELETE FROM t"}))
    assert (write["error_code"], write["error_phase"]) == ("QUERY_ERROR", "query"), write
    # Read-only open: the file is unchanged and no journal or WAL file appeared next to it.
    assert digest(real) == before
    assert sorted(p.name for p in real.parent.iterdir()) == ["db.sqlite"]


async def test_only_the_configured_directory_is_allowed(
    settings_factory: Callable[..., Settings], files_root: Path, tmp_path: Path
) -> None:
    """RIVERGEN_FILE_SOURCES_DIR replaces the default DATA_DIR/files, it does not add to it."""
    settings = settings_factory(file_sources_dir=files_root)
    default_dir = settings.data_dir / "files"
    make_database("sqlite", default_dir / "db.sqlite")
    make_database("sqlite", files_root / "db.sqlite")
    async for api in start_api(create_app(settings)):
        tenant = await sign_in_owner(api)
        response = await tenant.client.post(
            DATA_SOURCES,
            json=body("sqlite", default_dir / "db.sqlite"),
            headers=tenant.owner.headers,
        )
        assert_path_refused(response)
        assert await tenant.create(body("sqlite", files_root / "db.sqlite")) > 0
