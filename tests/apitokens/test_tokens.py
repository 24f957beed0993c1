"""Service tokens against a live server: roles, revocation, expiry, audit, and where tokens go."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from rivergen.apitokens.secret import new_token, well_formed
from rivergen.store.models import Base
from tests.fixtures.hardening import postgres_source
from tests.fixtures.live import LiveServer, live_settings, start_live

TOKENS = "/api/v1/organizations/{org}/api-tokens"


def _sync_url(store_url: str) -> str:
    # psycopg serves both; only SQLite needs its synchronous driver.
    return store_url.replace("sqlite+aiosqlite", "sqlite")


def store_text(store_url: str) -> str:
    """Every row of every table of the store, as text."""
    engine = create_engine(_sync_url(store_url))
    try:
        with engine.connect() as connection:
            return "\n".join(
                str(row)
                for table in Base.metadata.sorted_tables
                for row in connection.execute(select(table))
            )
    finally:
        engine.dispose()


def test_the_token_format_is_recognisable_and_checked() -> None:
    token = new_token()
    assert token.startswith("rgt_")
    assert len(token) == 4 + 43 + 6
    assert well_formed(token)
    # One changed character breaks the checksum: a typo never reaches the store.
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert not well_formed(flipped)
    assert new_token() != token


def test_a_member_token_can_test_but_not_create(live_server: LiveServer, closed_port: int) -> None:
    created = live_server.service_token("member")
    token = created["token"]
    assert well_formed(token)
    assert set(created) == {"id", "name", "role", "token", "expires_at", "created_at"}
    with live_server.client() as client:
        source = client.post(
            "/api/v1/data-sources",
            json=postgres_source("127.0.0.1", closed_port, name="tok-target"),
            headers=live_server.headers(),
        )
        assert source.status_code == 201, source.text
        source_id = source.json()["data"]["id"]
        listed = client.get("/api/v1/data-sources", headers=live_server.headers(token))
        assert listed.status_code == 200
        assert listed.json()["data"]["total"] >= 1
        denied = client.post(
            "/api/v1/data-sources",
            json=postgres_source("127.0.0.1", closed_port, name="tok-denied"),
            headers=live_server.headers(token),
        )
        assert denied.status_code == 403, denied.text
        tested = client.post(
            f"/api/v1/data-sources/{source_id}/test", json={}, headers=live_server.headers(token)
        )
        assert tested.status_code == 200, tested.text
        assert tested.json()["data"]["connection_successful"] is False
        # The audit log names the token, not a person.
        events = client.get(
            "/api/v1/audit-events",
            params={"action": "data_source.test", "target_id": str(source_id)},
            headers=live_server.headers(),
        ).json()["data"]["items"]
        assert events, "the token's test was not audited"
        assert events[0]["actor_token_id"] == created["id"]
        assert events[0]["actor_user_id"] is None
        by_token = client.get(
            "/api/v1/audit-events",
            params={"actor_token_id": created["id"]},
            headers=live_server.headers(),
        ).json()["data"]["items"]
        assert {e["action"] for e in by_token} == {"data_source.test"}
        # Person-only routes refuse a token.
        assert client.get("/api/v1/auth/me", headers=live_server.headers(token)).status_code == 403


def test_roles_never_exceed_the_creator(live_server: LiveServer) -> None:
    _, admin = live_server.user_token("admin")
    org = live_server.organization_id
    with live_server.client() as client:
        too_high = client.post(
            TOKENS.format(org=org),
            json={"name": "x", "role": "owner"},
            headers=live_server.headers(admin),
        )
        assert too_high.status_code == 403, too_high.text
        _, member = live_server.user_token("member")
        by_member = client.post(
            TOKENS.format(org=org), json={"name": "x"}, headers=live_server.headers(member)
        )
        assert by_member.status_code == 403
    admin_token = live_server.service_token("admin", token=admin)["token"]
    with live_server.client() as client:
        # A token never mints tokens: revoking it must end what it can do.
        minted = client.post(
            TOKENS.format(org=org), json={"name": "y"}, headers=live_server.headers(admin_token)
        )
        assert minted.status_code == 403, minted.text
        listed = client.get(TOKENS.format(org=org), headers=live_server.headers(admin_token))
        assert listed.status_code == 200


def test_a_revoked_token_gets_401_at_once(live_server: LiveServer) -> None:
    created = live_server.service_token("viewer")
    headers = live_server.headers(created["token"])
    org = live_server.organization_id
    with live_server.client() as client:
        assert client.get("/api/v1/data-sources", headers=headers).status_code == 200
        revoked = client.delete(
            f"{TOKENS.format(org=org)}/{created['id']}", headers=live_server.headers()
        )
        assert revoked.status_code == 200, revoked.text
        after = client.get("/api/v1/data-sources", headers=headers)
        assert after.status_code == 401
        assert after.json()["error"]["code"] == "UNAUTHORIZED"
        again = client.delete(
            f"{TOKENS.format(org=org)}/{created['id']}", headers=live_server.headers()
        )
        assert again.status_code == 404
        ids = [
            t["id"]
            for t in client.get(TOKENS.format(org=org), headers=live_server.headers()).json()[
                "data"
            ]["items"]
        ]
        assert created["id"] not in ids


def test_an_expired_token_gets_401(live_server: LiveServer) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    created = live_server.service_token("viewer", expires_at=expires.isoformat())
    headers = live_server.headers(created["token"])
    with live_server.client() as client:
        assert client.get("/api/v1/data-sources", headers=headers).status_code == 200
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
        expired = client.get("/api/v1/data-sources", headers=headers)
        assert expired.status_code == 401
        assert "expired" in expired.json()["error"]["message"]
        past = client.post(
            TOKENS.format(org=live_server.organization_id),
            json={"name": "old", "expires_at": "2020-01-01T00:00:00Z"},
            headers=live_server.headers(),
        )
        assert past.status_code == 422


def test_forged_and_foreign_tokens_are_refused(live_server: LiveServer) -> None:
    with live_server.client() as client:
        for bogus in (new_token(), "rgt_short", "rgt_" + "A" * 49):
            response = client.get("/api/v1/data-sources", headers=live_server.headers(bogus))
            assert response.status_code == 401, bogus
        other = client.post(
            "/api/v1/organizations", json={"name": "Tok Other"}, headers=live_server.headers()
        )
        other_id = other.json()["data"]["id"]
        token = live_server.service_token("admin")["token"]
        # The token knows one organization only; another one's id does not exist for it.
        scoped = client.get(
            "/api/v1/data-sources",
            headers={**live_server.headers(token), "X-Organization-Id": str(other_id)},
        )
        assert scoped.status_code == 404
        assert (
            client.get(TOKENS.format(org=other_id), headers=live_server.headers(token)).status_code
            == 404
        )


def test_last_used_at_is_set_and_not_rewritten_every_request(live_server: LiveServer) -> None:
    created = live_server.service_token("viewer")
    org = live_server.organization_id
    with live_server.client() as client:

        def last_used() -> str | None:
            items = client.get(TOKENS.format(org=org), headers=live_server.headers()).json()
            found = [t for t in items["data"]["items"] if t["id"] == created["id"]]
            return found[0]["last_used_at"]  # type: ignore[no-any-return]

        assert last_used() is None
        client.get("/api/v1/data-sources", headers=live_server.headers(created["token"]))
        first = last_used()
        assert first is not None
        for _ in range(3):
            client.get("/api/v1/data-sources", headers=live_server.headers(created["token"]))
        assert last_used() == first


def test_the_token_is_in_no_store_listing_audit_or_log(
    live_server: LiveServer, shared_store_url: str, production_logging: io.StringIO
) -> None:
    created = live_server.service_token("admin")
    token = created["token"]
    org = live_server.organization_id
    with live_server.client() as client:
        client.get("/api/v1/data-sources", headers=live_server.headers(token))
        client.get(f"/api/v1/data-sources/{token}", headers=live_server.headers(token))
        client.get("/api/v1/data-sources", params={"name": token}, headers=live_server.headers())
        client.delete(f"{TOKENS.format(org=org)}/{created['id']}", headers=live_server.headers())
        client.get("/api/v1/data-sources", headers=live_server.headers(token))
        listing = client.get(TOKENS.format(org=org), headers=live_server.headers()).text
        audit = client.get("/api/v1/audit-events", headers=live_server.headers()).text
    assert token not in listing
    assert token not in audit
    assert token not in store_text(shared_store_url)
    if shared_store_url.startswith("sqlite"):
        path = Path(shared_store_url.split("///", 1)[1])
        for file in path.parent.glob(path.name + "*"):
            assert token.encode() not in file.read_bytes()
    logged = production_logging.getvalue()
    assert "rivergen.http" in logged or "request" in logged, "nothing was logged"
    assert token not in logged
    assert token[4:20] not in logged


@pytest.fixture(scope="module")
def second_server(
    live_server: LiveServer, shared_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Another server process's view: the same store, a one-second auth cache."""
    settings = live_settings(
        tmp_path_factory.mktemp("live-second"), shared_store_url, auth_cache_seconds=1
    )
    yield from start_live(settings)


def test_another_process_stops_accepting_within_the_auth_cache(
    live_server: LiveServer, second_server: LiveServer
) -> None:
    created = live_server.service_token("viewer")
    headers = live_server.headers(created["token"])
    with second_server.client() as elsewhere, live_server.client() as here:
        assert elsewhere.get("/api/v1/data-sources", headers=headers).status_code == 200
        here.delete(
            f"{TOKENS.format(org=live_server.organization_id)}/{created['id']}",
            headers=live_server.headers(),
        )
        deadline = time.monotonic() + 1.0 + 1.0
        while elsewhere.get("/api/v1/data-sources", headers=headers).status_code == 200:
            assert time.monotonic() < deadline, "still accepted after the auth cache time"
            time.sleep(0.1)
