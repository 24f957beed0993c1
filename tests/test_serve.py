"""`python -m rivergen serve` as a real process: bad settings, first-start admin, restarts, logs."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rivergen.app import create_app
from rivergen.settings import Settings
from tests.fixtures.app import start_api

START_TIMEOUT_SECONDS = 45.0
PRINTED_PASSWORD = re.compile(r"RiverGen admin created: (\S+) / password: (\S+)")


def clean_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any RIVERGEN_* variable, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGEN_")}
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


@dataclass
class Server:
    """A running `rivergen serve` process and where its output goes."""

    process: subprocess.Popen[bytes]
    base_url: str
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def _wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"serve exited with {server.process.returncode}: {server.stderr[-3000:]}"
            )
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve did not answer in time: {server.stderr[-3000:]}")


@contextmanager
def serve(tmp_path: Path, name: str, **env: str) -> Iterator[Server]:
    """Start `python -m rivergen serve` on a free loopback port; stop it on the way out."""
    port = free_port()
    stdout_path, stderr_path = tmp_path / f"{name}.stdout", tmp_path / f"{name}.stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "rivergen", "serve"],
            cwd=tmp_path,
            env=clean_env(RIVERGEN_HOST="127.0.0.1", RIVERGEN_PORT=str(port), **env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    server = Server(process, f"http://127.0.0.1:{port}", stdout_path, stderr_path)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def sign_in(server: Server, email: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v1/auth/login",
        json={"email": email, "password": password},
        timeout=30,
    )


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
