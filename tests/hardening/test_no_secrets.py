"""No secret anywhere: the main scenarios with canary secrets, every output searched for them.

One run through sign-in (right and wrong password), data sources with a password and SSH tunnels
(password, private key, passphrase), reads, lists, changes, tests that fail against servers that
check passwords (PostgreSQL, MariaDB, Redis, OpenSSH), health, the audit log, a 500, and a
server that lost the key its stored secrets were encrypted with.
Every response body and header, every log line of the service's own logging pipeline (at debug
level), everything printed, and every error message stored must be free of every canary.
"""

from __future__ import annotations

import base64
import io
import logging
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rivergen.app import create_app
from rivergen.security.crypto import generate_key
from rivergen.settings import Settings
from tests.fixtures.app import ADMIN_EMAIL, start_api
from tests.fixtures.hardening import (
    AUDIT_EVENTS,
    DATA_SOURCES,
    error_of,
    ok_data,
    sign_in_owner,
)
from tests.fixtures.servers import Server
from tests.fixtures.sshd import SshServer

pytestmark = pytest.mark.anyio


def canary(name: str) -> str:
    return f"CANARY-{name}-{secrets.token_hex(6)}"


ADMIN_PASSWORD = canary("admin")
WRONG_LOGIN = canary("wrong-login")
PG_PASSWORD = canary("pg")
MYSQL_PASSWORD = canary("mysql")
REDIS_PASSWORD = canary("redis")
NEW_PASSWORD = canary("patched")
SSH_PASSWORD = canary("ssh")
SSH_PASSPHRASE = canary("passphrase")
KEY_BODY = canary("keybody").replace("-", "")
SSH_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    f"b3BlbnNzaC1rZXktdjEAAAAA{KEY_BODY}AAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
CANARIES = [
    ADMIN_PASSWORD,
    WRONG_LOGIN,
    PG_PASSWORD,
    MYSQL_PASSWORD,
    REDIS_PASSWORD,
    NEW_PASSWORD,
    SSH_PASSWORD,
    SSH_PASSPHRASE,
    KEY_BODY,
]


def forms(secret: str) -> list[str]:
    """A secret as it could show up: plain, base64, and each longer line of it."""
    found = [secret, base64.b64encode(secret.encode()).decode()]
    found += [line for line in secret.splitlines() if len(line) >= 16 and "-----" not in line]
    return found


class Transcript:
    """Everything the service said: response statuses, headers and bodies."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.statuses: list[int] = []

    async def record(self, response: httpx.Response) -> httpx.Response:
        self.statuses.append(response.status_code)
        self.texts.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response


def assert_nowhere(texts: list[str], extra_secrets: list[str] = []) -> None:  # noqa: B006
    for text in texts:
        for secret in [*CANARIES, *extra_secrets]:
            for form in forms(secret):
                assert form not in text, f"{secret[:12]}... found in: {text[:300]}"


def network(engine: str, server: Server, password: str, name: str) -> dict[str, Any]:
    connection: dict[str, Any] = {"host": server.host, "port": server.port, "password": password}
    if engine != "redis":
        connection |= {"username": server.username, "database": server.database}
        connection["ssl_mode"] = "disable"
    return {"name": name, "type": engine, "connection": connection}


def tunnel(sshd: SshServer, **auth: Any) -> dict[str, Any]:
    return {"host": sshd.host, "port": sshd.port, "username": sshd.username, **auth}


async def test_no_canary_reaches_a_response_a_log_line_or_a_stored_message(
    settings_factory: Callable[..., Settings],
    production_logging: io.StringIO,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    postgres_with_password: Server,
    mariadb_with_password: Server,
    redis_with_password: Server,
    sshd: SshServer,
) -> None:
    caplog.set_level(logging.DEBUG)
    sshd.require_password()
    settings = settings_factory(admin_password=ADMIN_PASSWORD)
    said = Transcript()
    tokens: list[str] = []
    app = create_app(settings)

    async def explode() -> None:
        # An unexpected failure whose message carries credentials, as a driver's might.
        raise RuntimeError(
            f"could not connect to postgresql://reader:{PG_PASSWORD}@db:5432/app "
            f"(password={SSH_PASSWORD}, Authorization: Bearer {NEW_PASSWORD})"
        )

    app.add_api_route("/explode", explode, methods=["GET"])
    async for api in start_api(app):
        client = api.client
        # Sign-in: a wrong password, then the right one (the admin password is a canary too).
        failed = await said.record(
            await client.post(
                "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": WRONG_LOGIN}
            )
        )
        error_of(failed, 401, "UNAUTHORIZED")
        login = await client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        said.statuses.append(200)  # its body holds the tokens, searched for everywhere else
        assert_nowhere([login.text])
        pair = login.json()["data"]
        tokens += [pair["access_token"], pair["refresh_token"]]
        tenant = await sign_in_owner(api, ADMIN_PASSWORD)
        tokens.append(tenant.owner.headers["Authorization"].removeprefix("Bearer "))
        owner = {"Authorization": f"Bearer {pair['access_token']}"}

        # Data sources with every kind of secret.
        sources: dict[str, int] = {}
        bodies = {
            "pg": network("postgresql", postgres_with_password, PG_PASSWORD, "pg"),
            "mysql": network("mariadb", mariadb_with_password, MYSQL_PASSWORD, "mysql"),
            "redis": network("redis", redis_with_password, REDIS_PASSWORD, "redis"),
            "ssh-password": network(
                "postgresql", postgres_with_password, PG_PASSWORD, "ssh-password"
            )
            | {"ssh_tunnel": tunnel(sshd, auth_method="password", password=SSH_PASSWORD)},
            "ssh-garbage-key": network(
                "postgresql", postgres_with_password, PG_PASSWORD, "ssh-garbage-key"
            )
            | {
                "ssh_tunnel": tunnel(
                    sshd,
                    auth_method="private_key",
                    private_key=SSH_PRIVATE_KEY,
                    private_key_passphrase=SSH_PASSPHRASE,
                )
            },
            "ssh-wrong-passphrase": network(
                "postgresql", postgres_with_password, PG_PASSWORD, "ssh-wrong-passphrase"
            )
            | {
                "ssh_tunnel": tunnel(
                    sshd,
                    auth_method="private_key",
                    private_key=sshd.keys["rsa_pem_passphrase"].private_key,
                    private_key_passphrase=SSH_PASSPHRASE,
                )
            },
            "ssh-stranger-key": network(
                "postgresql", postgres_with_password, PG_PASSWORD, "ssh-stranger-key"
            )
            | {
                "ssh_tunnel": tunnel(
                    sshd, auth_method="private_key", private_key=sshd.keys["stranger"].private_key
                )
            },
        }
        real_keys = [sshd.keys["rsa_pem_passphrase"].private_key, sshd.keys["stranger"].private_key]
        for name, body in bodies.items():
            created = await said.record(await client.post(DATA_SOURCES, json=body, headers=owner))
            sources[name] = int(ok_data(created, 201)["id"])

        # Reads, a list, and changes (a new secret, then a change that keeps it).
        for data_source_id in sources.values():
            ok_data(
                await said.record(
                    await client.get(f"{DATA_SOURCES}/{data_source_id}", headers=owner)
                )
            )
        ok_data(await said.record(await client.get(DATA_SOURCES, headers=owner)))
        patch_url = f"{DATA_SOURCES}/{sources['pg']}"
        ok_data(
            await said.record(
                await client.patch(
                    patch_url, json={"connection": {"password": NEW_PASSWORD}}, headers=owner
                )
            )
        )
        ok_data(
            await said.record(
                await client.patch(patch_url, json={"description": "kept secret"}, headers=owner)
            )
        )
        # A refused change echoes nothing of what was sent.
        refused = await client.patch(
            patch_url,
            json={"connection": {"host": "10.9.9.9", "password": "********"}},
            headers=owner,
        )
        error_of(await said.record(refused), 422, "VALIDATION_ERROR")
        bad_option = {**bodies["pg"], "name": "bad"}
        bad_option["connection"] = {
            **bodies["pg"]["connection"],
            "options": {"passfile": PG_PASSWORD},
        }
        error_of(
            await said.record(await client.post(DATA_SOURCES, json=bad_option, headers=owner)),
            422,
            "VALIDATION_ERROR",
        )

        # Tests that fail: wrong passwords everywhere, saved and unsaved.
        expected = {
            "pg": "AUTHENTICATION_FAILED",
            "mysql": "AUTHENTICATION_FAILED",
            "redis": "AUTHENTICATION_FAILED",
            "ssh-password": "SSH_AUTHENTICATION_FAILED",
            "ssh-stranger-key": "SSH_AUTHENTICATION_FAILED",
        }
        for name, data_source_id in sources.items():
            response = await said.record(
                await client.post(
                    f"{DATA_SOURCES}/{data_source_id}/test",
                    json={"timeout_seconds": 10},
                    headers=owner,
                )
            )
            data = ok_data(response)
            assert data["connection_successful"] is False, data
            if name in expected:
                assert data["error_code"] == expected[name], data
            else:  # the key itself is refused: unreadable, or the passphrase does not open it
                assert data["error_code"] in (
                    "CONFIGURATION_ERROR",
                    "SSH_AUTHENTICATION_FAILED",
                ), data
            unsaved = await said.record(
                await client.post(
                    f"{DATA_SOURCES}/test",
                    json={**bodies[name], "timeout_seconds": 10},
                    headers=owner,
                )
            )
            assert ok_data(unsaved)["error_code"] == data["error_code"]

        # Health and the audit log.
        for data_source_id in sources.values():
            health = await client.get(f"{DATA_SOURCES}/{data_source_id}/health", headers=owner)
            ok_data(await said.record(health))
        audit = ok_data(
            await said.record(await client.get(AUDIT_EVENTS, params={"limit": 500}, headers=owner))
        )
        assert {"data_source.create", "data_source.update", "data_source.test"} <= {
            i["action"] for i in audit["items"]
        }
        sign_ins = ok_data(
            await said.record(await client.get("/api/v1/auth/me/sign-ins", headers=owner))
        )
        assert sign_ins["total"] >= 1

        # A 500 from an unexpected exception whose message carries credentials.
        boom = await said.record(await client.get("/explode"))
        error_of(boom, 500, "INTERNAL_ERROR")

    # The key that encrypted the secrets is gone: reads still work, tests say what to do.
    lost_key = settings_factory(admin_password=ADMIN_PASSWORD, secret_keys=generate_key())
    async for api in start_api(create_app(lost_key)):
        tenant = await sign_in_owner(api, ADMIN_PASSWORD)
        for data_source_id in sources.values():
            url = f"{DATA_SOURCES}/{data_source_id}"
            shown = ok_data(
                await said.record(await api.client.get(url, headers=tenant.owner.headers))
            )
            assert shown["connection"]["password"] == "********"
            tested = await api.client.post(f"{url}/test", json={}, headers=tenant.owner.headers)
            error_of(await said.record(tested), 409, "CONFLICT")

    assert said.statuses.count(500) == 1
    logged = production_logging.getvalue()
    printed = capfd.readouterr()
    # The checks are not vacuous: the pipeline logged the requests and the 500's traceback.
    assert "/api/v1/data-sources" in logged
    assert logged.count("unhandled_error") == 1
    assert "RuntimeError: could not connect to postgresql://reader:" in logged
    assert "undecryptable_secrets" in logged

    assert_nowhere(said.texts)
    assert_nowhere(
        [logged, printed.out, printed.err, caplog.text], extra_secrets=tokens + real_keys
    )
    assert_nowhere(said.texts, extra_secrets=real_keys)
    # The health records' stored messages are what the health endpoint showed (searched above).
