"""Secrets at rest and in responses: encrypted in the store, masked when shown, rotatable keys."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from rivergen.app import create_app
from rivergen.core.errors import Conflict
from rivergen.datasources.service import DataSourceService
from rivergen.security.crypto import SecretBox, SecretDecryptionError, generate_key, key_id
from rivergen.settings import Settings
from tests.fixtures.app import Api, start_api
from tests.fixtures.datasources import (
    DATA_SOURCES,
    MASK,
    MYSQL_PASSWORD,
    PG_PASSWORD,
    REDIS_PASSWORD,
    SSH_PASSPHRASE,
    SSH_PASSWORD,
    SSH_PRIVATE_KEY,
    RawStore,
    Tenancy,
    assert_no_plaintext,
    context_of,
    key_tunnel,
    load_row,
    mysql_body,
    ok_data,
    password_tunnel,
    postgres_body,
    redis_body,
    sign_in,
)

pytestmark = pytest.mark.anyio

ALL_SECRETS = [
    PG_PASSWORD,
    MYSQL_PASSWORD,
    REDIS_PASSWORD,
    SSH_PASSWORD,
    SSH_PASSPHRASE,
    SSH_PRIVATE_KEY,
]
NEW_PASSWORD = "pg-Replaced-3a7c55e0-secret"
CONNECTION_SECRET_KEYS = {"password"}
TUNNEL_SECRET_KEYS = {"password", "private_key", "private_key_passphrase"}


def plain(value: Any) -> Any:
    """A secret's value whether the model keeps it as SecretStr or str."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


async def decrypted(api: Api, data_source_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The stored connection and tunnel with their secrets, as the prober would see them."""
    row = await load_row(api, data_source_id)
    config = context_of(api).data_sources.decrypted_config(row)
    connection = {k: plain(v) for k, v in dict(config.connection).items()}
    tunnel = None
    if config.ssh_tunnel is not None:
        tunnel = {k: plain(v) for k, v in dict(config.ssh_tunnel).items()}
    return connection, tunnel


# ----- at rest -------------------------------------------------------------------------------


async def test_the_raw_store_never_holds_a_plaintext_secret(
    tenancy: Tenancy, raw_store: RawStore
) -> None:
    with_key = await tenancy.create(postgres_body("pg-key", ssh_tunnel=key_tunnel()))
    with_password = await tenancy.create(postgres_body("pg-pw", ssh_tunnel=password_tunnel()))
    await tenancy.create(mysql_body())
    await tenancy.create(redis_body())
    # Updates are written encrypted too: a new password, a new tunnel secret.
    response = await tenancy.patch(
        with_password["id"],
        {"connection": {"password": NEW_PASSWORD}, "ssh_tunnel": {"password": SSH_PASSWORD + "2"}},
    )
    ok_data(response)

    rows = raw_store.rows("data_sources")
    assert len(rows) == 4
    secrets = [*ALL_SECRETS, NEW_PASSWORD, SSH_PASSWORD + "2"]
    for row in rows:
        assert_no_plaintext(row, secrets)
        assert str(row["secrets_ciphertext"]).startswith("v1:")
        connection = raw_store.json_column(row["connection"])
        assert not CONNECTION_SECRET_KEYS & set(connection), connection
        tunnel = raw_store.json_column(row["ssh_tunnel"])
        if tunnel is not None:
            assert not TUNNEL_SECRET_KEYS & set(tunnel), tunnel
    # Nothing else the service wrote holds one either (audit details, for instance).
    for table in ("audit_events",):
        for row in raw_store.rows(table):
            assert_no_plaintext(row, secrets)

    # ...and the secrets are all there, decrypted, for a test to use.
    connection, tunnel = await decrypted(tenancy.api, with_key["id"])
    assert connection["password"] == PG_PASSWORD
    assert tunnel is not None
    assert tunnel["private_key"] == SSH_PRIVATE_KEY
    assert tunnel["private_key_passphrase"] == SSH_PASSPHRASE
    connection, tunnel = await decrypted(tenancy.api, with_password["id"])
    assert connection["password"] == NEW_PASSWORD
    assert tunnel is not None
    assert tunnel["password"] == SSH_PASSWORD + "2"


async def test_a_source_without_secrets_stores_no_ciphertext(
    tenancy: Tenancy, raw_store: RawStore
) -> None:
    body = postgres_body()
    del body["connection"]["password"]
    created = await tenancy.create(body)
    assert raw_store.row("data_sources", created["id"])["secrets_ciphertext"] is None
    assert created["connection"]["password"] is None


# ----- in responses --------------------------------------------------------------------------


def assert_masked(
    data: dict[str, Any],
    connection_set: set[str],
    tunnel_set: set[str] | None,
) -> None:
    """Each set secret shows as the mask, each unset one as null."""
    for name in CONNECTION_SECRET_KEYS:
        assert name in data["connection"]
        assert data["connection"][name] == (MASK if name in connection_set else None), name
    if tunnel_set is None:
        assert data["ssh_tunnel"] is None
        return
    for name in TUNNEL_SECRET_KEYS:
        assert name in data["ssh_tunnel"]
        assert data["ssh_tunnel"][name] == (MASK if name in tunnel_set else None), name


async def test_every_response_masks_set_secrets_and_shows_unset_ones_as_null(
    tenancy: Tenancy,
) -> None:
    key_secrets = {"private_key", "private_key_passphrase"}
    created_response = await tenancy.client.post(
        DATA_SOURCES, json=postgres_body(ssh_tunnel=key_tunnel()), headers=tenancy.owner
    )
    created = ok_data(created_response, 201)
    assert_masked(created, {"password"}, key_secrets)
    source_id = created["id"]

    single = await tenancy.client.get(f"{DATA_SOURCES}/{source_id}", headers=tenancy.owner)
    assert_masked(ok_data(single), {"password"}, key_secrets)
    listed = await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner)
    (item,) = ok_data(listed)["items"]
    assert_masked(item, {"password"}, key_secrets)

    patches: list[dict[str, Any]] = [
        {"description": "no secret touched"},
        {"connection": {"password": NEW_PASSWORD}},
        {"ssh_tunnel": {"private_key_passphrase": None}},
    ]
    responses = [created_response, single, listed]
    for patch in patches:
        response = await tenancy.patch(source_id, patch)
        responses.append(response)
        ok_data(response)
    assert_masked(ok_data(responses[-2]), {"password"}, key_secrets)
    assert_masked(ok_data(responses[-1]), {"password"}, {"private_key"})

    # Unset secrets are null: no database password, a key without passphrase.
    body = postgres_body("no-secrets", ssh_tunnel=key_tunnel(private_key_passphrase=None))
    del body["connection"]["password"]
    bare = await tenancy.client.post(DATA_SOURCES, json=body, headers=tenancy.owner)
    responses.append(bare)
    assert_masked(ok_data(bare, 201), set(), {"private_key"})
    assert_masked(await tenancy.get(ok_data(bare, 201)["id"]), set(), {"private_key"})

    # A password tunnel: the key fields are null.
    redis = await tenancy.client.post(
        DATA_SOURCES, json=redis_body(ssh_tunnel=password_tunnel()), headers=tenancy.owner
    )
    responses.append(redis)
    assert_masked(ok_data(redis, 201), {"password"}, {"password"})

    listed_all = await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner)
    responses.append(listed_all)
    for response in responses:
        for secret in [*ALL_SECRETS, NEW_PASSWORD]:
            assert secret not in response.text
            for line in secret.splitlines():
                if len(line) >= 12:
                    assert line not in response.text


# ----- key rotation --------------------------------------------------------------------------


async def create_sources(tenancy: Tenancy) -> dict[str, int]:
    """One source of each secret kind, plus one with no secret; name -> id."""
    no_secret = postgres_body("none")
    del no_secret["connection"]["password"]
    bodies = [
        postgres_body("pg-key", ssh_tunnel=key_tunnel()),
        postgres_body("pg-pw", ssh_tunnel=password_tunnel()),
        mysql_body("mysql"),
        redis_body("redis"),
        no_secret,
    ]
    return {body["name"]: (await tenancy.create(body))["id"] for body in bodies}


def reconnect(tenancy: Tenancy, api: Api) -> Tenancy:
    """The same signed-in owner against another app on the same store (tokens stay valid)."""
    return Tenancy(api=api, owner=tenancy.owner, organization_id=tenancy.organization_id)


async def assert_all_decrypt(tenancy: Tenancy, ids: dict[str, int]) -> None:
    """Every stored secret decrypts to what was sent, and GET answers with masks."""
    api = tenancy.api
    expected = {
        "pg-key": (PG_PASSWORD, {"private_key": SSH_PRIVATE_KEY}),
        "pg-pw": (PG_PASSWORD, {"password": SSH_PASSWORD}),
        "mysql": (MYSQL_PASSWORD, None),
        "redis": (REDIS_PASSWORD, None),
        "none": (None, None),
    }
    for name, (password, tunnel_secrets) in expected.items():
        connection, tunnel = await decrypted(api, ids[name])
        assert connection["password"] == password, name
        if tunnel_secrets is None:
            assert tunnel is None
        else:
            assert tunnel is not None
            for key, value in tunnel_secrets.items():
                assert tunnel[key] == value
        data = await tenancy.get(ids[name])
        assert data["connection"]["password"] == (MASK if password else None)
    key_source = await tenancy.get(ids["pg-key"])
    assert key_source["ssh_tunnel"]["private_key_passphrase"] == MASK
    connection, tunnel = await decrypted(api, ids["pg-key"])
    assert tunnel is not None
    assert tunnel["private_key_passphrase"] == SSH_PASSPHRASE


def stored_key_ids(raw_store: RawStore) -> set[str]:
    return {
        SecretBox.token_key_id(str(row["secrets_ciphertext"]))
        for row in raw_store.rows("data_sources")
        if row["secrets_ciphertext"] is not None
    }


async def rotate_with_cli(settings: Settings, tmp_path: Path) -> str:
    """Run `python -m rivergen rotate-keys` against the store with the settings' keys."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RIVERGEN_") or key.startswith("RIVERGEN_TEST_")
    }
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
    stdout = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    return stdout


@pytest.mark.parametrize("method", ["service", "cli"])
async def test_rotation_moves_every_secret_to_the_newest_key(
    settings_factory: Callable[..., Settings],
    raw_store: RawStore,
    tmp_path: Path,
    method: str,
) -> None:
    key_a, key_b = generate_key(), generate_key()

    async for api in start_api(create_app(settings_factory(secret_keys=key_a))):
        first = await sign_in(api)
        ids = await create_sources(first)
    assert stored_key_ids(raw_store) == {key_id(key_a)}

    # Before rotation, an app that only knows B cannot decrypt what A made.
    async for api in start_api(create_app(settings_factory(secret_keys=key_b))):
        stored_row = await load_row(api, ids["pg-key"])
        with pytest.raises(Conflict) as refused:
            context_of(api).data_sources.decrypted_config(stored_row)
        assert "RIVERGEN_SECRET_KEYS" in refused.value.message
        assert PG_PASSWORD not in refused.value.message
        with pytest.raises(SecretDecryptionError) as undecryptable:
            context_of(api).data_sources.decrypt_secrets(stored_row)
        assert key_id(key_a) in str(undecryptable.value)
        assert PG_PASSWORD not in str(undecryptable.value)
        tenancy = reconnect(first, api)
        # Reading still works (the secrets are shown as set); testing is refused with a reason.
        response = await tenancy.client.get(
            f"{DATA_SOURCES}/{ids['pg-key']}", headers=tenancy.owner
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["connection"]["password"] == "********"
        tested = await tenancy.client.post(
            f"{DATA_SOURCES}/{ids['pg-key']}/test", headers=tenancy.owner
        )
        assert tested.status_code == 409, tested.text
        assert tested.json()["error"]["code"] == "CONFLICT"
        for text in (response.text, tested.text):
            assert PG_PASSWORD not in text
            assert key_a not in text

    # Rotation with "B,A" (newest first): everything is re-encrypted with B.
    rotating = settings_factory(secret_keys=f"{key_b},{key_a}")
    with_secrets = len(ids) - 1
    if method == "service":
        async for api in start_api(create_app(rotating)):
            service: DataSourceService = context_of(api).data_sources
            report = await service.rotate_keys(batch=2)
            assert (report.seen, report.rotated, report.unreadable) == (
                with_secrets,
                with_secrets,
                [],
            )
            # A second run finds nothing left to do.
            again = await service.rotate_keys()
            assert (again.seen, again.rotated, again.unreadable) == (with_secrets, 0, [])
            # Meanwhile both keys still work.
            await assert_all_decrypt(reconnect(first, api), ids)
    else:
        output = await rotate_with_cli(rotating, tmp_path)
        assert f"{with_secrets} of {with_secrets}" in output
        assert key_a not in output
        assert key_b not in output
        output = await rotate_with_cli(rotating, tmp_path)
        assert f"0 of {with_secrets}" in output
    assert stored_key_ids(raw_store) == {key_id(key_b)}
    for row in raw_store.rows("data_sources"):
        assert_no_plaintext(row, ALL_SECRETS)

    # Key A can now be dropped: an app with only B decrypts everything.
    async for api in start_api(create_app(settings_factory(secret_keys=key_b))):
        await assert_all_decrypt(reconnect(first, api), ids)
        rotations = [
            row for row in raw_store.rows("audit_events") if row["action"] == "secrets.rotate"
        ]
        assert rotations
        for row in rotations:
            assert_no_plaintext(row, [*ALL_SECRETS, key_a, key_b])
