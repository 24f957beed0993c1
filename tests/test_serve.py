"""`python -m rivergen serve` as a real process: bad settings, first-start admin, restarts, logs."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from rivergen.app import create_app
from rivergen.settings import Settings
from tests.fixtures.app import start_api
from tests.fixtures.serve import Server, clean_env, serve, sign_in

PRINTED_PASSWORD = re.compile(r"RiverGen admin created: (\S+) / password: (\S+)")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("RIVERGEN_PORT", "abc"), ("RIVERGEN_DATABASE_URL", "mysql://x")],
)
def test_a_bad_setting_refuses_to_start(tmp_path: Path, variable: str, value: str) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "rivergen", "serve"],
        cwd=tmp_path,
        env=clean_env(**{variable: value, "RIVERGEN_DATA_DIR": str(tmp_path / "data")}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert elapsed < 15  # it stops at once (generous for a loaded machine)
    assert not (tmp_path / "data").exists()


def me(server: Server, access_token: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/api/v1/auth/me",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )


def assert_logs_keep_secrets(server: Server, *secrets: str) -> None:
    log = server.stderr
    # The log really records requests, so the checks below are not vacuous.
    assert "/api/v1/auth/login" in log, log[-2000:]
    assert "Bearer " not in log
    for secret in secrets:
        assert secret not in log


def test_first_start_prints_a_generated_password_once_and_never_replaces_it(
    tmp_path: Path,
) -> None:
    env = {"RIVERGEN_DATA_DIR": str(tmp_path / "data")}
    with serve(tmp_path, "first", **env) as server:
        match = PRINTED_PASSWORD.search(server.stdout)
        assert match is not None, server.stdout
        email, password = match.groups()
        assert email == "admin@rivergen.local"
        assert len(password) >= 16

        response = sign_in(server, email, password)
        assert response.status_code == 200, response.text
        tokens = response.json()["data"]
        response = me(server, tokens["access_token"])
        assert response.status_code == 200, response.text
        assert response.json()["data"]["email"] == email
        assert [o["role"] for o in response.json()["data"]["organizations"]] == ["owner"]
        assert sign_in(server, email, "not-the-password").status_code == 401
    assert server.stdout.count(password) == 1
    assert_logs_keep_secrets(
        server, password, tokens["access_token"], tokens["refresh_token"].split(".", 1)[1]
    )
    jwt_key = tmp_path / "data" / "jwt.key"
    assert stat.S_IMODE(jwt_key.stat().st_mode) == 0o600

    with serve(tmp_path, "second", **env) as again:
        assert "password" not in again.stdout.lower()
        assert PRINTED_PASSWORD.search(again.stdout) is None
        response = sign_in(again, email, password)
        assert response.status_code == 200, response.text
        # Signing keys persist in the data directory: tokens from before the restart still work.
        assert me(again, tokens["access_token"]).status_code == 200
        fresh = response.json()["data"]
    assert_logs_keep_secrets(again, password, fresh["access_token"])


@pytest.mark.anyio
async def test_configured_admin_password_is_used_and_never_overwritten(
    tmp_path: Path, store_url: str, settings_factory: Callable[..., Settings]
) -> None:
    password = "configured-admin-password-1"
    env = {
        "RIVERGEN_DATA_DIR": str(tmp_path / "data"),
        "RIVERGEN_DATABASE_URL": store_url,
        "RIVERGEN_ADMIN_EMAIL": "root@example.com",
        "RIVERGEN_ADMIN_PASSWORD": password,
    }
    with serve(tmp_path, "configured", **env) as server:
        response = sign_in(server, "root@example.com", password)
        assert response.status_code == 200, response.text
        tokens = response.json()["data"]
        assert me(server, tokens["access_token"]).status_code == 200
    assert password not in server.stdout
    assert "password:" not in server.stdout
    assert_logs_keep_secrets(server, password, tokens["access_token"])

    # A later start with another configured password leaves the existing admin alone.
    settings = settings_factory(admin_email="root@example.com", admin_password="changed-password-1")
    async for api in start_api(create_app(settings)):
        await api.login("root@example.com", password)
        refused = await api.client.post(
            "/api/v1/auth/login",
            json={"email": "root@example.com", "password": "changed-password-1"},
        )
        assert refused.status_code == 401
