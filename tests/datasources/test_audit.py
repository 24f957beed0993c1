"""Every change to a data source leaves an audit event naming who did it, never a secret."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.datasources import (
    DATA_SOURCES,
    PG_PASSWORD,
    SSH_PASSPHRASE,
    SSH_PASSWORD,
    SSH_PRIVATE_KEY,
    RawStore,
    Tenancy,
    assert_no_plaintext,
    error_of,
    key_tunnel,
    ok_data,
    postgres_body,
)

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "pg-Replaced-3a7c55e0-secret"
SECRETS = [PG_PASSWORD, NEW_PASSWORD, SSH_PASSWORD, SSH_PASSPHRASE, SSH_PRIVATE_KEY]


def events(raw_store: RawStore, prefix: str = "data_source.") -> list[dict[str, Any]]:
    rows = [row for row in raw_store.rows("audit_events") if row["action"].startswith(prefix)]
    for row in rows:
        row["details"] = raw_store.json_column(row["details"])
    return rows


async def user_id(tenancy: Tenancy, headers: dict[str, str]) -> int:
    me = ok_data(await tenancy.client.get("/api/v1/auth/me", headers=headers))
    return int(me["id"])


async def test_create_update_and_delete_are_audited_with_their_actor(
    tenancy: Tenancy, raw_store: RawStore
) -> None:
    admin = await tenancy.member("admin")
    admin_id = await user_id(tenancy, admin)
    owner_id = await user_id(tenancy, tenancy.owner)

    source = await tenancy.create(postgres_body(ssh_tunnel=key_tunnel()), headers=admin)
    change = {
        "description": "moved",
        "connection": {"port": 6543, "password": NEW_PASSWORD, "database": "other"},
        "ssh_tunnel": {
            "private_key": SSH_PRIVATE_KEY,
            "private_key_passphrase": SSH_PASSPHRASE + "2",
        },
    }
    ok_data(await tenancy.patch(source["id"], change, headers=admin))
    deleted = await tenancy.client.delete(f"{DATA_SOURCES}/{source['id']}", headers=tenancy.owner)
    ok_data(deleted)

    create, update, delete = events(raw_store)
    assert [create["action"], update["action"], delete["action"]] == [
        "data_source.create",
        "data_source.update",
        "data_source.delete",
    ]
    assert [create["actor_user_id"], update["actor_user_id"], delete["actor_user_id"]] == [
        admin_id,
        admin_id,
        owner_id,
    ]
    for event in (create, update, delete):
        assert event["organization_id"] == tenancy.organization_id
        assert event["target_type"] == "data_source"
        assert str(event["target_id"]) == str(source["id"])
        assert event["outcome"] == "success"
        assert event["created_at"] is not None
        assert_no_plaintext(event, [*SECRETS, SSH_PASSPHRASE + "2"])
    assert create["details"]["name"] == "warehouse"
    assert create["details"]["type"] == "postgresql"

    # The changed fields are named, secrets included, but no value of a secret is recorded.
    changed = set(update["details"]["changed"])
    assert changed == {
        "description",
        "connection.port",
        "connection.database",
        "connection.password",
        "ssh_tunnel.private_key_passphrase",
    }


async def test_an_update_that_changes_only_a_secret_names_it(
    tenancy: Tenancy, raw_store: RawStore
) -> None:
    source = await tenancy.create(postgres_body())
    ok_data(await tenancy.patch(source["id"], {"connection": {"password": NEW_PASSWORD}}))
    ok_data(await tenancy.patch(source["id"], {"connection": {"password": "********"}}))
    _, secret_change, masked_echo = events(raw_store)
    assert secret_change["details"]["changed"] == ["connection.password"]
    assert masked_echo["details"]["changed"] == []
    for event in (secret_change, masked_echo):
        assert_no_plaintext(event, SECRETS)


async def test_refused_changes_leave_no_success_event(
    tenancy: Tenancy, raw_store: RawStore
) -> None:
    source = await tenancy.create(postgres_body())
    viewer = await tenancy.member("viewer")
    error_of(
        await tenancy.patch(source["id"], {"description": "x"}, headers=viewer), 403, "FORBIDDEN"
    )
    error_of(
        await tenancy.patch(source["id"], {"connection": {"host": "10.9.9.9"}}),
        422,
        "VALIDATION_ERROR",
    )
    response = await tenancy.client.delete(f"{DATA_SOURCES}/{source['id']}", headers=viewer)
    error_of(response, 403, "FORBIDDEN")
    assert [event["action"] for event in events(raw_store)] == ["data_source.create"]
