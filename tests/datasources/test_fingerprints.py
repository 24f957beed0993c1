"""Secret fingerprints: keyed, stable across reads, recomputed by key rotation, rate limited."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rivergen.app import create_app
from rivergen.core.errors import RateLimited
from rivergen.datasources.fingerprints import Fingerprinter, FingerprintOracle
from rivergen.datasources.schemas import SecretCandidates
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role, User
from rivergen.security.crypto import SecretBox, generate_key
from rivergen.security.throttle import SlidingWindow
from rivergen.settings import Settings
from tests.fixtures.app import Api, start_api
from tests.fixtures.hardening import context_of, postgres_source

PASSWORD = "fingerprint-pass-1"


async def _stored_and_candidate(api: Api, source_id: int | None) -> tuple[int, str, str]:
    headers = await api.headers_for()
    if source_id is None:
        body = postgres_source("127.0.0.1", 5432, name="fp", password=PASSWORD)
        created = await api.client.post("/api/v1/data-sources", json=body, headers=headers)
        assert created.status_code == 201, created.text
        source_id = int(created.json()["data"]["id"])
    read = await api.client.get(f"/api/v1/data-sources/{source_id}", headers=headers)
    stored = read.json()["data"]["secret_fingerprints"]["connection.password"]
    asked = await api.client.post(
        f"/api/v1/data-sources/{source_id}/secret-fingerprints",
        json={"connection": {"password": PASSWORD}},
        headers=headers,
    )
    assert asked.status_code == 200, asked.text
    return source_id, stored, asked.json()["data"]["connection.password"]


@pytest.mark.anyio
async def test_rotation_recomputes_fingerprints_so_applies_stay_quiet(
    settings_factory: Callable[..., Settings],
) -> None:
    key_a, key_b = generate_key(), generate_key()
    async for api in start_api(create_app(settings_factory(secret_keys=key_a))):
        source_id, before, candidate = await _stored_and_candidate(api, None)
        assert before == candidate
    async for api in start_api(create_app(settings_factory(secret_keys=f"{key_b},{key_a}"))):
        report = await context_of(api).data_sources.rotate_keys()
        assert report.rotated == 1
        _, after, candidate = await _stored_and_candidate(api, source_id)
        # A new key, a new fingerprint: the stored one follows, so they still compare equal.
        assert after != before
        assert after == candidate


def test_the_oracle_is_rate_limited_per_caller() -> None:
    oracle = FingerprintOracle(Fingerprinter(SecretBox([generate_key()])), SlidingWindow(2, 60))
    user = User(id=7, email="a@example.com", password_hash="x", is_active=True)
    admin = Caller(user=user, roles={1: Role.ADMIN}, active_organization_id=1)
    body = SecretCandidates(connection={"password": "guess"})
    first = oracle.candidates(admin, 1, "db", "postgresql", body)
    assert oracle.candidates(admin, 1, "db", "postgresql", body) == first
    with pytest.raises(RateLimited):
        oracle.candidates(admin, 1, "db", "postgresql", body)
    # Another caller has its own budget; a token is a caller apart from its creator.
    token = Caller(user=user, roles={1: Role.ADMIN}, active_organization_id=1, token_id=3)
    assert oracle.candidates(token, 1, "db", "postgresql", body) == first


def test_fingerprints_depend_on_the_key_the_source_and_the_field() -> None:
    box = SecretBox([generate_key()])
    one = Fingerprinter(box)
    assert one.one(1, "db", "connection.password", "p") == Fingerprinter(box).one(
        1, "db", "connection.password", "p"
    )
    others = {
        Fingerprinter(SecretBox([generate_key()])).one(1, "db", "connection.password", "p"),
        one.one(2, "db", "connection.password", "p"),
        one.one(1, "db2", "connection.password", "p"),
        one.one(1, "db", "ssh_tunnel.password", "p"),
    }
    assert one.one(1, "db", "connection.password", "p") not in others
    assert len(others) == 4
