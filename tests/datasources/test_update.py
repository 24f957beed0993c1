"""PATCH: stored secrets are kept unless the destination changes; then they must be resent."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import update

from rivergen.datasources.models import DataSource
from tests.fixtures.app import Api
from tests.fixtures.datasources import (
    MASK,
    MYSQL_PASSWORD,
    PG_PASSWORD,
    SSH_PASSPHRASE,
    SSH_PASSWORD,
    SSH_PRIVATE_KEY,
    Tenancy,
    context_of,
    detail_fields,
    error_of,
    key_tunnel,
    load_row,
    mysql_body,
    ok_data,
    password_tunnel,
    postgres_body,
)
from tests.fixtures.tls import unrelated_ca_pem

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "pg-Replaced-3a7c55e0-secret"
NEW_SSH_PASSWORD = "ssh-Replaced-b41d9e07-secret"


def plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


async def stored(api: Api, data_source_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The decrypted stored connection and tunnel."""
    row = await load_row(api, data_source_id)
    config = context_of(api).data_sources.decrypted_config(row)
    connection = {k: plain(v) for k, v in dict(config.connection).items()}
    tunnel = None
    if config.ssh_tunnel is not None:
        tunnel = {k: plain(v) for k, v in dict(config.ssh_tunnel).items()}
    return connection, tunnel


async def set_status(api: Api, data_source_id: int, status: str) -> None:
    async with context_of(api).sessions() as session, session.begin():
        await session.execute(
            update(DataSource).where(DataSource.id == data_source_id).values(status=status)
        )


# ----- the destination rule ------------------------------------------------------------------

DESTINATION_CHANGES = {
    "host": {"connection": {"host": "10.9.9.9"}},
    "port": {"connection": {"port": 6543}},
    "host-with-masked-password": {"connection": {"host": "10.9.9.9", "password": MASK}},
    "type": {
        "type": "mysql",
        "connection": {"host": "10.0.3.7", "port": 3306, "username": "reader"},
    },
}


@pytest.mark.parametrize("patch", DESTINATION_CHANGES.values(), ids=DESTINATION_CHANGES.keys())
async def test_a_new_destination_without_the_password_is_refused(
    tenancy: Tenancy, patch: dict[str, Any]
) -> None:
    source = await tenancy.create(postgres_body())
    error = error_of(await tenancy.patch(source["id"], patch), 422, "VALIDATION_ERROR")
    assert detail_fields(error) == ["body.connection.password"]
    assert PG_PASSWORD not in str(error)
    # Nothing changed.
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection["host"] == "10.0.3.7"
    assert connection["port"] == 5432
    assert connection["password"] == PG_PASSWORD
    assert (await tenancy.get(source["id"]))["type"] == "postgresql"


@pytest.mark.parametrize("patch", DESTINATION_CHANGES.values(), ids=DESTINATION_CHANGES.keys())
async def test_a_new_destination_with_the_password_resent_is_accepted(
    tenancy: Tenancy, patch: dict[str, Any]
) -> None:
    source = await tenancy.create(postgres_body())
    await set_status(tenancy.api, source["id"], "active")
    resent = {**patch, "connection": {**patch["connection"], "password": NEW_PASSWORD}}
    data = ok_data(await tenancy.patch(source["id"], resent))
    assert data["connection"]["password"] == MASK
    # The old destination's results say nothing about the new one.
    assert data["status"] == "pending"
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection["password"] == NEW_PASSWORD
    for key, value in patch["connection"].items():
        if key != "password":
            assert connection[key] == value
    assert data["type"] == patch.get("type", "postgresql")


async def test_resending_the_same_host_and_port_is_no_destination_change(
    tenancy: Tenancy,
) -> None:
    source = await tenancy.create(postgres_body())
    patch = {"connection": {"host": "10.0.3.7", "port": 5432, "database": "other"}}
    ok_data(await tenancy.patch(source["id"], patch))
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection["password"] == PG_PASSWORD
    assert connection["database"] == "other"


async def test_a_type_alias_of_the_same_engine_is_no_destination_change(
    tenancy: Tenancy,
) -> None:
    source = await tenancy.create(postgres_body())
    data = ok_data(await tenancy.patch(source["id"], {"type": "postgres"}))
    assert data["type"] == "postgresql"
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection["password"] == PG_PASSWORD


async def test_a_new_tunnel_host_requires_every_stored_secret_again(tenancy: Tenancy) -> None:
    source = await tenancy.create(postgres_body(ssh_tunnel=key_tunnel()))
    for patch in (
        {"ssh_tunnel": {"host": "evil-bastion.example.com"}},
        {"ssh_tunnel": {"port": 2200}},
        {"ssh_tunnel": {"host": "evil-bastion.example.com", "private_key": MASK}},
    ):
        error = error_of(await tenancy.patch(source["id"], patch), 422, "VALIDATION_ERROR")
        assert set(detail_fields(error)) == {
            "body.connection.password",
            "body.ssh_tunnel.private_key",
            "body.ssh_tunnel.private_key_passphrase",
        }
    # Only the tunnel's secrets resent: the database password is still missing.
    tunnel_only = {
        "ssh_tunnel": {
            "host": "bastion2.example.com",
            "private_key": SSH_PRIVATE_KEY,
            "private_key_passphrase": SSH_PASSPHRASE,
        }
    }
    error = error_of(await tenancy.patch(source["id"], tunnel_only), 422, "VALIDATION_ERROR")
    assert detail_fields(error) == ["body.connection.password"]
    _, tunnel = await stored(tenancy.api, source["id"])
    assert tunnel is not None
    assert tunnel["host"] == "bastion.example.com"

    everything = {**tunnel_only, "connection": {"password": NEW_PASSWORD}}
    data = ok_data(await tenancy.patch(source["id"], everything))
    assert data["ssh_tunnel"]["host"] == "bastion2.example.com"
    connection, tunnel = await stored(tenancy.api, source["id"])
    assert connection["password"] == NEW_PASSWORD
    assert tunnel is not None
    assert tunnel["host"] == "bastion2.example.com"
    assert tunnel["private_key"] == SSH_PRIVATE_KEY


async def test_adding_or_removing_a_tunnel_requires_the_password_again(tenancy: Tenancy) -> None:
    """A new route to the database is a new destination: the bastion decides where it goes."""
    direct = await tenancy.create(postgres_body("direct"))
    error = error_of(
        await tenancy.patch(direct["id"], {"ssh_tunnel": password_tunnel()}),
        422,
        "VALIDATION_ERROR",
    )
    assert detail_fields(error) == ["body.connection.password"]
    _, tunnel = await stored(tenancy.api, direct["id"])
    assert tunnel is None
    resent: dict[str, Any] = {
        "ssh_tunnel": password_tunnel(),
        "connection": {"password": NEW_PASSWORD},
    }
    ok_data(await tenancy.patch(direct["id"], resent))
    connection, tunnel = await stored(tenancy.api, direct["id"])
    assert connection["password"] == NEW_PASSWORD
    assert tunnel is not None
    assert tunnel["password"] == SSH_PASSWORD

    tunnelled = await tenancy.create(postgres_body("tunnelled", ssh_tunnel=password_tunnel()))
    error = error_of(
        await tenancy.patch(tunnelled["id"], {"ssh_tunnel": None}), 422, "VALIDATION_ERROR"
    )
    assert detail_fields(error) == ["body.connection.password"]
    resent = {"ssh_tunnel": None, "connection": {"password": NEW_PASSWORD}}
    data = ok_data(await tenancy.patch(tunnelled["id"], resent))
    assert data["ssh_tunnel"] is None


async def test_a_destination_change_without_stored_secrets_needs_nothing(
    tenancy: Tenancy,
) -> None:
    body = postgres_body()
    del body["connection"]["password"]
    source = await tenancy.create(body)
    data = ok_data(await tenancy.patch(source["id"], {"connection": {"host": "10.9.9.9"}}))
    assert data["connection"]["host"] == "10.9.9.9"
    assert data["connection"]["password"] is None


# ----- keeping and replacing secrets ---------------------------------------------------------


@pytest.mark.parametrize(
    "patch",
    [
        {"description": "renamed"},
        {"connection": {"database": "other", "username": "someone"}},
        {"connection": {"password": MASK}},
        {"connection": {"password": MASK, "ssl_mode": "disable"}},
        {"name": "renamed", "health_check_interval_seconds": None},
    ],
    ids=["description", "non-destination-fields", "masked", "masked-with-change", "name"],
)
async def test_an_omitted_or_masked_password_is_kept(
    tenancy: Tenancy, patch: dict[str, Any]
) -> None:
    source = await tenancy.create(postgres_body())
    data = ok_data(await tenancy.patch(source["id"], patch))
    assert data["connection"]["password"] == MASK
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection["password"] == PG_PASSWORD
    assert connection["host"] == "10.0.3.7"
    for key, value in patch.get("connection", {}).items():
        if key != "password":
            assert connection[key] == value


async def test_an_explicit_new_password_replaces_the_stored_one(tenancy: Tenancy) -> None:
    source = await tenancy.create(postgres_body())
    data = ok_data(await tenancy.patch(source["id"], {"connection": {"password": NEW_PASSWORD}}))
    assert data["connection"]["password"] == MASK
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection["password"] == NEW_PASSWORD
    # Other connection fields were merged, not dropped.
    assert connection["database"] == "analytics"
    assert connection["username"] == "reader"


async def test_an_explicit_null_password_clears_it(tenancy: Tenancy) -> None:
    source = await tenancy.create(postgres_body())
    data = ok_data(await tenancy.patch(source["id"], {"connection": {"password": None}}))
    assert data["connection"]["password"] is None
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection["password"] is None


async def test_tunnel_secrets_are_kept_replaced_and_masked_like_the_password(
    tenancy: Tenancy,
) -> None:
    source = await tenancy.create(postgres_body(ssh_tunnel=password_tunnel()))
    for patch in (
        {"ssh_tunnel": {"username": "other"}},
        {"ssh_tunnel": {"password": MASK}},
        {"description": "x"},
    ):
        data = ok_data(await tenancy.patch(source["id"], patch))
        assert data["ssh_tunnel"]["password"] == MASK
        _, tunnel = await stored(tenancy.api, source["id"])
        assert tunnel is not None
        assert tunnel["password"] == SSH_PASSWORD
        assert tunnel["username"] == "other"

    ok_data(await tenancy.patch(source["id"], {"ssh_tunnel": {"password": NEW_SSH_PASSWORD}}))
    connection, tunnel = await stored(tenancy.api, source["id"])
    assert tunnel is not None
    assert tunnel["password"] == NEW_SSH_PASSWORD
    assert connection["password"] == PG_PASSWORD

    # Switching the tunnel to a key keeps the host: the key is the new secret.
    switch = {"ssh_tunnel": {"auth_method": "private_key", "private_key": SSH_PRIVATE_KEY}}
    data = ok_data(await tenancy.patch(source["id"], switch))
    assert data["ssh_tunnel"]["private_key"] == MASK
    _, tunnel = await stored(tenancy.api, source["id"])
    assert tunnel is not None
    assert tunnel["private_key"] == SSH_PRIVATE_KEY


async def test_an_invalid_patch_changes_nothing(tenancy: Tenancy) -> None:
    source = await tenancy.create(postgres_body())
    for patch, field in (
        ({"connection": {"database": ""}}, "body.connection.database"),
        ({"connection": {"ssl_mode": "sometimes"}}, "body.connection.ssl_mode"),
        ({"connection": {"bogus": 1}}, "body.connection.bogus"),
        ({"bogus": 1}, "body.bogus"),
        ({"type": "nosuchengine"}, "body.type"),
        ({"ssh_tunnel": {"auth_method": "telepathy"}}, "body.ssh_tunnel"),
        ({"connection": {"password": NEW_PASSWORD, "port": 0}}, "body.connection.port"),
    ):
        error = error_of(await tenancy.patch(source["id"], patch), 422, "VALIDATION_ERROR")
        fields = detail_fields(error)
        assert any(f.startswith(field) for f in fields), (patch, fields)
        assert NEW_PASSWORD not in str(error)
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection == {**connection, "port": 5432, "password": PG_PASSWORD}


async def test_a_mysql_password_survives_unrelated_changes(tenancy: Tenancy) -> None:
    source = await tenancy.create(mysql_body())
    ok_data(await tenancy.patch(source["id"], {"connection": {"database": "other"}}))
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection["password"] == MYSQL_PASSWORD


# ----- ssl_root_cert: trust, not destination ---------------------------------------------------


async def test_a_new_ssl_root_cert_is_no_destination_change(tenancy: Tenancy) -> None:
    """The CAs decide whom the service trusts, not where it connects: secrets stay."""
    source = await tenancy.create(postgres_body())
    await set_status(tenancy.api, source["id"], "active")
    first, second = unrelated_ca_pem("First CA"), unrelated_ca_pem("Second CA")
    for pem in (first, second + first):
        patch = {"connection": {"ssl_mode": "verify-full", "ssl_root_cert": pem}}
        data = ok_data(await tenancy.patch(source["id"], patch))
        assert data["connection"]["ssl_root_cert"] == pem
        assert data["connection"]["password"] == MASK
        assert data["status"] == "active"
        connection, _ = await stored(tenancy.api, source["id"])
        assert connection["password"] == PG_PASSWORD
        assert connection["ssl_root_cert"] == pem
    # With a new host as well, the destination rule still asks for the password.
    moved = {"connection": {"host": "10.9.9.9", "ssl_root_cert": first}}
    error = error_of(await tenancy.patch(source["id"], moved), 422, "VALIDATION_ERROR")
    assert detail_fields(error) == ["body.connection.password"]


async def test_leaving_the_verifying_modes_means_removing_ssl_root_cert(tenancy: Tenancy) -> None:
    body = postgres_body()
    body["connection"].update(ssl_mode="verify-ca", ssl_root_cert=unrelated_ca_pem())
    source = await tenancy.create(body)
    patch: dict[str, Any] = {"connection": {"ssl_mode": "require"}}
    error = error_of(await tenancy.patch(source["id"], patch), 422, "VALIDATION_ERROR")
    assert detail_fields(error) == ["body.connection.ssl_root_cert"]
    patch["connection"]["ssl_root_cert"] = None
    data = ok_data(await tenancy.patch(source["id"], patch))
    assert (data["connection"]["ssl_mode"], data["connection"]["ssl_root_cert"]) == (
        "require",
        None,
    )
    connection, _ = await stored(tenancy.api, source["id"])
    assert connection["password"] == PG_PASSWORD
