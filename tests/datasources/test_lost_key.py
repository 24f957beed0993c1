"""After the encryption key is lost: secrets shown as set, a PATCH with every secret repairs.

"Send the secrets again" is what a test of such a source answers; the PATCH that does so must
be accepted (never a 500), a PATCH that leaves one of the unreadable secrets behind is refused
with the list of what is missing, and `rotate-keys` skips and reports such rows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from rivergen.app import create_app
from rivergen.security.crypto import generate_key
from rivergen.settings import Settings
from tests.datasources.test_secrets import decrypted, reconnect
from tests.fixtures.app import start_api
from tests.fixtures.datasources import (
    DATA_SOURCES,
    MASK,
    PG_PASSWORD,
    SSH_PASSPHRASE,
    SSH_PRIVATE_KEY,
    detail_fields,
    error_of,
    key_tunnel,
    ok_data,
    postgres_body,
    sign_in,
)

pytestmark = [pytest.mark.anyio, pytest.mark.store]

NEW_PG = "pg-After-Loss-1c2d3e4f-secret"
NEW_PASSPHRASE = "ssh-After-Loss-9a8b7c6d-secret"


async def test_a_patch_with_every_secret_repairs_a_source_whose_key_is_lost(
    settings_factory: Callable[..., Settings],
) -> None:
    lost, current = generate_key(), generate_key()
    async for api in start_api(create_app(settings_factory(secret_keys=lost))):
        first = await sign_in(api)
        # A key without a passphrase: presence must be known exactly, not guessed.
        body = postgres_body("lost-key", ssh_tunnel=key_tunnel(private_key_passphrase=None))
        source_id = int((await first.create(body))["id"])

    async for api in start_api(create_app(settings_factory(secret_keys=current))):
        tenancy = reconnect(first, api)
        shown = await tenancy.get(source_id)
        assert shown["connection"]["password"] == MASK
        assert shown["ssh_tunnel"]["private_key"] == MASK
        assert shown["ssh_tunnel"]["private_key_passphrase"] is None
        assert shown["ssh_tunnel"]["password"] is None

        tested = await tenancy.client.post(
            f"{DATA_SOURCES}/{source_id}/test", headers=tenancy.owner
        )
        assert "send the secrets again" in error_of(tested, 409, "CONFLICT")["message"]

        # Anything short of every unreadable secret is refused, naming each one left behind.
        attempts: list[tuple[dict[str, Any], list[str]]] = [
            ({"name": "renamed"}, ["body.connection.password", "body.ssh_tunnel.private_key"]),
            ({"connection": {"password": NEW_PG}}, ["body.ssh_tunnel.private_key"]),
            (
                {"connection": {"password": MASK}, "ssh_tunnel": {"private_key": SSH_PRIVATE_KEY}},
                ["body.connection.password"],
            ),
        ]
        for patch, missing in attempts:
            refused = await tenancy.patch(source_id, patch)
            error = error_of(refused, 422, "VALIDATION_ERROR")
            assert sorted(detail_fields(error)) == missing, error
            assert PG_PASSWORD not in refused.text
        assert (await tenancy.get(source_id))["name"] == "lost-key"

        repaired = await tenancy.patch(
            source_id,
            {
                "name": "repaired",
                "connection": {"password": NEW_PG},
                "ssh_tunnel": {
                    "private_key": SSH_PRIVATE_KEY,
                    "private_key_passphrase": NEW_PASSPHRASE,
                },
            },
        )
        data = ok_data(repaired)
        assert data["name"] == "repaired"
        assert data["connection"]["password"] == MASK
        assert data["ssh_tunnel"]["private_key_passphrase"] == MASK
        for secret in (NEW_PG, NEW_PASSPHRASE, SSH_PRIVATE_KEY[:40]):
            assert secret not in repaired.text
        connection, tunnel = await decrypted(api, source_id)
        assert connection["password"] == NEW_PG
        assert tunnel is not None
        assert (tunnel["private_key"], tunnel["private_key_passphrase"]) == (
            SSH_PRIVATE_KEY,
            NEW_PASSPHRASE,
        )
        assert SSH_PASSPHRASE not in repaired.text


async def rotate_with_cli(settings: Settings, tmp_path: Path) -> tuple[int, str, str]:
    """Run `python -m rivergen rotate-keys`: exit status, stdout, stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGEN_")}
    assert settings.secret_keys is not None
    env.update(
        RIVERGEN_SECRET_KEYS=settings.secret_keys,
        RIVERGEN_DATABASE_URL=settings.effective_database_url,
        RIVERGEN_DATA_DIR=str(settings.data_dir),
        RIVERGEN_LOG_LEVEL="warning",
    )
    result = await anyio.run_process(
        [sys.executable, "-m", "rivergen", "rotate-keys"], env=env, cwd=tmp_path, check=False
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_rotation_skips_and_reports_rows_it_cannot_decrypt(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    lost, old, new = generate_key(), generate_key(), generate_key()
    async for api in start_api(create_app(settings_factory(secret_keys=lost))):
        first = await sign_in(api)
        unreadable = int((await first.create(postgres_body("unreadable")))["id"])
    async for api in start_api(create_app(settings_factory(secret_keys=old))):
        tenancy = reconnect(first, api)
        readable = [int((await tenancy.create(postgres_body(f"ok-{n}")))["id"]) for n in range(2)]
    assert unreadable < readable[0]  # the unreadable row comes first in the rotation order

    rotating = settings_factory(secret_keys=f"{new},{old}")
    async for api in start_api(create_app(rotating)):
        report = await api.app.state.context.data_sources.rotate_keys(batch=1)
        assert (report.seen, report.rotated, report.unreadable) == (3, 2, [unreadable])
        again = await api.app.state.context.data_sources.rotate_keys()
        assert (again.seen, again.rotated, again.unreadable) == (3, 0, [unreadable])
        for source_id in readable:
            connection, _ = await decrypted(api, source_id)
            assert connection["password"] == PG_PASSWORD

    status, stdout, stderr = await rotate_with_cli(rotating, tmp_path)
    # Not a success: one row still needs its secrets sent again, and the command says which.
    assert status == 1, (stdout, stderr)
    assert "0 of 3" in stdout
    assert f"could not be decrypted: {unreadable} " in stderr
    for key in (lost, old, new):
        assert key not in stdout + stderr
