"""The `rivergen` command run as a real process: migrate and create-user, then sign in."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory

from rivergen.app import create_app
from rivergen.settings import Settings
from rivergen.store.migrate import alembic_config
from rivergen.store.models import Base
from tests.fixtures.app import TEST_SECRET_KEY, start_api

NEW_PASSWORD = "cli-user-password-1"


def clean_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any RIVERGEN_* variable, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGEN_")}
    env.update(overrides)
    return env


def rivergen(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m rivergen ARGS` in `cwd` (so no stray .env is read)."""
    return subprocess.run(
        [sys.executable, "-m", "rivergen", *args],
        cwd=cwd,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert revision is not None
    return revision


def app_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": None,
        "admin_email": "bootstrap@example.com",
        "admin_password": "bootstrap-password-1",
        "secret_keys": TEST_SECRET_KEY,
        "scheduler_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.mark.anyio
async def test_create_user_then_sign_in(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"RIVERGEN_DATA_DIR": str(data_dir)}
    migrated = rivergen(tmp_path, "migrate", **env)
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout
    assert "Traceback" not in migrated.stderr
    with sqlite3.connect(data_dir / "rivergen.db") as connection:
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        tables = {row[0] for row in connection.execute(query)}
        version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert version == [(head(),)]

    created = rivergen(
        tmp_path,
        "create-user",
        "Ops.Admin@Example.com",
        "--organization",
        "Operations",
        "--role",
        "admin",
        "--password",
        NEW_PASSWORD,
        **env,
    )
    assert created.returncode == 0, created.stderr
    assert "created user" in created.stdout
    assert NEW_PASSWORD not in created.stdout + created.stderr

    # The same email again, in another case: refused with a one-line reason and status 1.
    duplicate = rivergen(
        tmp_path, "create-user", "ops.admin@example.com", "--password", "other-password-1", **env
    )
    assert duplicate.returncode == 1
    assert "Traceback" not in duplicate.stderr
    # The reason is the last line, after the log lines of opening the store.
    last_line = duplicate.stderr.strip().splitlines()[-1]
    assert last_line == "rivergen: A user with the email ops.admin@example.com already exists"
    assert "other-password-1" not in duplicate.stderr

    async for api in start_api(create_app(app_settings(data_dir))):
        # The store already had a user: the bootstrap admin was not created.
        refused = await api.client.post(
            "/api/v1/auth/login",
            json={"email": "bootstrap@example.com", "password": "bootstrap-password-1"},
        )
        assert refused.status_code == 401
        headers = await api.headers_for("ops.admin@example.com", NEW_PASSWORD)
        me = await api.client.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        organizations = me.json()["data"]["organizations"]
        assert [(o["organization_name"], o["role"]) for o in organizations] == [
            ("Operations", "admin")
        ]
        # The duplicate attempt did not change the password.
        wrong = await api.client.post(
            "/api/v1/auth/login",
            json={"email": "ops.admin@example.com", "password": "other-password-1"},
        )
        assert wrong.status_code == 401


@pytest.mark.anyio
async def test_create_user_on_the_test_store(
    store_url: str, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """The same on the store under test (PostgreSQL in the `-m store` pass), password from env."""
    result = rivergen(
        tmp_path,
        "create-user",
        "viewer@example.com",
        "--organization",
        "Readers",
        "--role",
        "viewer",
        RIVERGEN_DATABASE_URL=store_url,
        RIVERGEN_DATA_DIR=str(tmp_path / "cli"),
        RIVERGEN_NEW_USER_PASSWORD=NEW_PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    async for api in start_api(create_app(settings_factory())):
        headers = await api.headers_for("viewer@example.com", NEW_PASSWORD)
        me = await api.client.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        assert [o["role"] for o in me.json()["data"]["organizations"]] == ["viewer"]
