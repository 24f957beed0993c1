"""Migrations build the whole schema on an empty store, match the models, re-run as a no-op.

Runs on SQLite, and on PostgreSQL in the `-m store` pass (a throwaway empty database).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql

from rivergen.store.migrate import alembic_config, upgrade_blocking
from rivergen.store.models import Base
from tests.fixtures.store import STORE_KIND, _pg_admin, pg_url

pytestmark = pytest.mark.store


@pytest.fixture
def empty_store_url(store_template: str, tmp_path: Path) -> Iterator[str]:
    """A store with no tables at all (async URL, as the service uses it).

    Depends on `store_template` only for its skip-or-fail handling of a missing PostgreSQL.
    """
    if STORE_KIND == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"rivergen_test_{os.getpid()}_empty"
    with _pg_admin() as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_url(name)
    finally:
        with _pg_admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def sync_url(url: str) -> str:
    """The same store through a synchronous driver, for inspection."""
    return url.replace("sqlite+aiosqlite://", "sqlite://")


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def current_revisions(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    return [row[0] for row in rows]


def test_upgrade_builds_every_table_and_stamps_head(empty_store_url: str) -> None:
    engine = sa.create_engine(sync_url(empty_store_url))
    try:
        assert sa.inspect(engine).get_table_names() == []

        upgrade_blocking(empty_store_url)

        tables = set(sa.inspect(engine).get_table_names())
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
        assert current_revisions(engine) == [head_revision(empty_store_url)]

        # The migrated schema is what the models describe: autogenerate finds nothing to do.
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_upgrade_again_is_a_no_op_that_keeps_data(empty_store_url: str) -> None:
    upgrade_blocking(empty_store_url)
    engine = sa.create_engine(sync_url(empty_store_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO organizations (name, created_at) VALUES ('Kept', :now)"),
                {"now": "2024-01-01 00:00:00"},
            )
        before = {
            name: [c["name"] for c in sa.inspect(engine).get_columns(name)]
            for name in sa.inspect(engine).get_table_names()
        }

        upgrade_blocking(empty_store_url)

        inspector = sa.inspect(engine)
        after = {
            name: [c["name"] for c in inspector.get_columns(name)]
            for name in inspector.get_table_names()
        }
        assert after == before
        assert current_revisions(engine) == [head_revision(empty_store_url)]
        with engine.connect() as connection:
            names = connection.execute(sa.text("SELECT name FROM organizations")).scalars().all()
        assert names == ["Kept"]
    finally:
        engine.dispose()


def test_the_template_store_of_the_suite_is_at_head(store_url: str) -> None:
    engine = sa.create_engine(sync_url(store_url))
    try:
        assert current_revisions(engine) == [head_revision(store_url)]
    finally:
        engine.dispose()
