"""Sign-in, throttling, access tokens, refresh rotation with reuse detection, sign-out and /me."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import update

from rivergen.app import create_app
from rivergen.context import AppContext
from rivergen.identity.models import AuthSession, User
from rivergen.settings import Settings
from rivergen.store.base import utcnow
from tests.fixtures.app import ADMIN_EMAIL, ADMIN_PASSWORD, Api, start_api

pytestmark = pytest.mark.anyio


LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def context_of(api: Api) -> AppContext:
    context: AppContext = api.app.state.context
    return context


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body


async def login_raw(
    client: httpx.AsyncClient, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def me_status(api: Api, access_token: str) -> int:
    return (await api.client.get(ME, headers=bearer(access_token))).status_code


# --- sign-in ---------------------------------------------------------------------------------


async def test_login_returns_a_bearer_pair_that_opens_me(api: Api) -> None:
    # Emails are matched without regard to case or surrounding blanks.
    response = await login_raw(api.client, email=f"  {ADMIN_EMAIL.upper()} ")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert isinstance(body["message"], str)
    data = body["data"]
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == context_of(api).settings.access_token_ttl_seconds
    assert data["access_token"]
    assert data["refresh_token"]
    assert data["access_token"] != data["refresh_token"]

    claims = unverified_claims(data["access_token"])
    assert claims["iss"] == "rivergen"
    assert claims["aud"] == "rivergen-api"
    assert 0 < claims["exp"] - time.time() <= data["expires_in"] + 5

    me = await api.client.get(ME, headers=bearer(data["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["data"]["email"] == ADMIN_EMAIL


async def test_wrong_password_and_unknown_email_get_the_same_401(api: Api) -> None:
    wrong = assert_error(
        await login_raw(api.client, password="not-the-password"), 401, "UNAUTHORIZED"
    )
    unknown = assert_error(
        await login_raw(api.client, email="nobody@example.com"), 401, "UNAUTHORIZED"
    )
    # The same answer for both: the response does not reveal which emails exist.
    assert wrong["error"] == unknown["error"]
    assert "access_token" not in str(wrong)


async def test_deactivated_user_cannot_sign_in_and_loses_access(api: Api) -> None:
    tokens = await api.login()
    async with context_of(api).sessions() as session, session.begin():
        await session.execute(update(User).where(User.email == ADMIN_EMAIL).values(is_active=False))
    assert_error(await login_raw(api.client), 401, "UNAUTHORIZED")
    assert await me_status(api, tokens["access_token"]) == 401
    # Nor can the session be kept alive by rotating its refresh token.
    response = await api.client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert_error(response, 401, "UNAUTHORIZED")


# --- throttling ------------------------------------------------------------------------------


@asynccontextmanager
async def throttled_api(
    settings_factory: Callable[..., Settings], per_account: int, per_client: int
) -> AsyncIterator[Api]:
    """An app with small login-failure limits."""
    settings = settings_factory(
        login_max_failures_per_account=per_account,
        login_max_failures_per_client=per_client,
        login_failure_window_seconds=120,
    )
    async for running in start_api(create_app(settings)):
        yield running


def other_client(api: Api, address: str) -> httpx.AsyncClient:
    """A client on the same app that comes from another peer address."""
    transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://rivergen.test")


def assert_rate_limited(response: httpx.Response, window: int = 120) -> None:
    assert_error(response, 429, "RATE_LIMITED")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window


async def test_failed_logins_throttle_the_account(
    settings_factory: Callable[..., Settings],
) -> None:
    async with throttled_api(settings_factory, per_account=3, per_client=10) as api:
        for _ in range(3):
            response = await login_raw(api.client, password="wrong-password")
            assert_error(response, 401, "UNAUTHORIZED")
        assert_rate_limited(await login_raw(api.client, password="wrong-password"))
        # The right password is refused too while the account is throttled...
        assert_rate_limited(await login_raw(api.client))
        # ...and from another address: the limit belongs to the account, not to the address.
        async with other_client(api, "10.9.8.7") as elsewhere:
            assert_rate_limited(await login_raw(elsewhere))
        # Another account from the first address is not throttled.
        response = await login_raw(api.client, email="someone-else@example.com", password="x")
        assert_error(response, 401, "UNAUTHORIZED")


async def test_failed_logins_throttle_the_client_address(
    settings_factory: Callable[..., Settings],
) -> None:
    async with throttled_api(settings_factory, per_account=10, per_client=3) as api:
        # Three different unknown accounts: no account reaches its limit, the address does.
        for index in range(3):
            response = await login_raw(api.client, email=f"probe{index}@example.com", password="x")
            assert_error(response, 401, "UNAUTHORIZED")
        assert_rate_limited(await login_raw(api.client, email="probe9@example.com", password="x"))
        # The admin's correct password is refused from this address...
        assert_rate_limited(await login_raw(api.client))
        # ...but accepted from another address.
        async with other_client(api, "10.9.8.7") as elsewhere:
            response = await login_raw(elsewhere)
            assert response.status_code == 200, response.text


async def test_successful_login_resets_the_account_counter(
    settings_factory: Callable[..., Settings],
) -> None:
    async with throttled_api(settings_factory, per_account=2, per_client=10) as api:
        assert_error(await login_raw(api.client, password="wrong-password"), 401, "UNAUTHORIZED")
        assert (await login_raw(api.client)).status_code == 200
        async with other_client(api, "10.1.1.1") as elsewhere:
            # Had the first failure been kept, this one would bring the account to its limit.
            response = await login_raw(elsewhere, password="wrong-password")
            assert_error(response, 401, "UNAUTHORIZED")
            assert (await login_raw(elsewhere)).status_code == 200


# --- access tokens ---------------------------------------------------------------------------


async def test_expired_access_token_is_refused(api: Api) -> None:
    tokens = await api.login()
    claims = unverified_claims(tokens["access_token"])
    codec = context_of(api).codec
    expired = codec.issue(int(claims["sub"]), claims["sid"], ttl_seconds=-5)
    fresh = codec.issue(int(claims["sub"]), claims["sid"])
    assert await me_status(api, fresh) == 200  # the session is real; only the expiry differs
    body = assert_error(await api.client.get(ME, headers=bearer(expired)), 401, "UNAUTHORIZED")
    assert "expired" in body["error"]["message"].lower()


async def test_missing_or_malformed_credentials_get_401(api: Api) -> None:
    valid = (await api.login())["access_token"]
    # The scheme is case-insensitive (RFC 7235).
    assert (await api.client.get(ME, headers={"Authorization": f"bearer {valid}"})).is_success
    cases = {
        "missing": {},
        "token-scheme": {"Authorization": "Token abc"},
        "valid-token-other-scheme": {"Authorization": f"Token {valid}"},
        "valid-token-no-scheme": {"Authorization": valid},
        "valid-token-in-other-header": {"X-Access-Token": valid},
        "basic": {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="},
        "bearer-only": {"Authorization": "Bearer"},
        "bearer-blank": {"Authorization": "Bearer  "},
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "dots": {"Authorization": "Bearer a.b.c"},
    }
    for name, headers in cases.items():
        response = await api.client.get(ME, headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"]["code"] == "UNAUTHORIZED", name


def craft(
    context: AppContext, user_id: int, session_id: str, secret: str | None = None, **overrides: Any
) -> str:
    """A token like the service's own, with some claims or the key changed."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "sid": session_id,
        "iat": now,
        "exp": now + 300,
        "iss": context.settings.jwt_issuer,
        "aud": context.settings.jwt_audience,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    key = secret if secret is not None else context.settings.jwt_secret
    assert key is not None
    return jwt.encode(claims, key, algorithm="HS256")


async def test_forged_tokens_are_refused(api: Api) -> None:
    tokens = await api.login()
    claims = unverified_claims(tokens["access_token"])
    user_id, sid = int(claims["sub"]), str(claims["sid"])
    context = context_of(api)

    # The crafting itself is right: with nothing changed the token is accepted.
    assert await me_status(api, craft(context, user_id, sid)) == 200

    forged = {
        "other-secret": craft(context, user_id, sid, secret="another-secret-of-32-bytes-or-more!!"),
        "wrong-audience": craft(context, user_id, sid, aud="someone-else"),
        "wrong-issuer": craft(context, user_id, sid, iss="evil"),
        "no-exp": craft(context, user_id, sid, exp=None),
        "no-sub": craft(context, user_id, sid, sub=None),
        "non-numeric-sub": craft(context, user_id, sid, sub="admin"),
        "no-sid": craft(context, user_id, sid, sid=None),
        "long-expired": craft(context, user_id, sid, exp=int(time.time()) - 60),
        "unknown-session": craft(context, user_id, "0" * 32),
        "other-user": craft(context, user_id + 1000, sid),
        "alg-none": jwt.encode(
            {**unverified_claims(tokens["access_token"])}, key="", algorithm="none"
        ),
    }
    for name, token in forged.items():
        response = await api.client.get(ME, headers=bearer(token))
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"]["code"] == "UNAUTHORIZED", name


# --- refresh and sign-out --------------------------------------------------------------------


async def refresh(api: Api, token: str) -> httpx.Response:
    return await api.client.post(REFRESH, json={"refresh_token": token})


async def test_refresh_rotates_the_pair(api: Api) -> None:
    first = await api.login()
    response = await refresh(api, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()["data"]
    assert second["token_type"] == "bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert await me_status(api, second["access_token"]) == 200
    # The new refresh token rotates again.
    response = await refresh(api, second["refresh_token"])
    assert response.status_code == 200, response.text
    third = response.json()["data"]
    assert await me_status(api, third["access_token"]) == 200

    # Signing out takes the current refresh token and ends every access token of the session.
    response = await api.client.post(LOGOUT, json={"refresh_token": third["refresh_token"]})
    assert response.status_code == 200, response.text
    for tokens in (first, second, third):
        assert await me_status(api, tokens["access_token"]) == 401


async def test_reused_refresh_token_revokes_the_whole_session(api: Api) -> None:
    first = await api.login()
    other_session = await api.login()  # another sign-in of the same user: must survive
    second = (await refresh(api, first["refresh_token"])).json()["data"]
    assert await me_status(api, second["access_token"]) == 200

    assert_error(await refresh(api, first["refresh_token"]), 401, "UNAUTHORIZED")

    # Everything of that session stops working: the newest refresh token and every access token.
    assert_error(await refresh(api, second["refresh_token"]), 401, "UNAUTHORIZED")
    assert await me_status(api, second["access_token"]) == 401
    assert await me_status(api, first["access_token"]) == 401
    # The user's other session is untouched.
    assert await me_status(api, other_session["access_token"]) == 200
    assert (await refresh(api, other_session["refresh_token"])).status_code == 200


async def test_malformed_or_unknown_refresh_tokens_get_401(api: Api) -> None:
    tokens = ["garbage", "no-dot-at-all", ".secret", "sid.", "0" * 32 + ".unknown", "x" * 300]
    for token in tokens:
        response = await refresh(api, token)
        assert response.status_code == 401, (token, response.text)
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
        response = await api.client.post(LOGOUT, json={"refresh_token": token})
        assert response.status_code == 401, (token, response.text)
    for body in ({}, {"refresh_token": ""}, {"refresh_token": 12}):
        assert_error(await api.client.post(REFRESH, json=body), 422, "VALIDATION_ERROR")
        assert_error(await api.client.post(LOGOUT, json=body), 422, "VALIDATION_ERROR")


async def test_wrong_secret_for_a_real_session_revokes_it(api: Api) -> None:
    tokens = await api.login()
    sid = tokens["refresh_token"].split(".", 1)[0]
    assert_error(await refresh(api, f"{sid}.guessed-secret"), 401, "UNAUTHORIZED")
    assert await me_status(api, tokens["access_token"]) == 401
    assert_error(await refresh(api, tokens["refresh_token"]), 401, "UNAUTHORIZED")


async def test_logout_revokes_the_session(api: Api) -> None:
    tokens = await api.login()
    other_session = await api.login()
    response = await api.client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True

    assert_error(await refresh(api, tokens["refresh_token"]), 401, "UNAUTHORIZED")
    assert await me_status(api, tokens["access_token"]) == 401
    # Signing out again (idempotent or refused) never brings the session back.
    await api.client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert_error(await refresh(api, tokens["refresh_token"]), 401, "UNAUTHORIZED")
    # Only that session ends: the user's other sign-in keeps working.
    assert await me_status(api, other_session["access_token"]) == 200


async def test_logout_with_a_rotated_token_revokes_the_session(api: Api) -> None:
    tokens = await api.login()
    rotated = (await refresh(api, tokens["refresh_token"])).json()["data"]
    response = await api.client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert_error(response, 401, "UNAUTHORIZED")
    # A copy of an old token came back: the newest tokens of the session stop working too.
    assert_error(await refresh(api, rotated["refresh_token"]), 401, "UNAUTHORIZED")
    assert await me_status(api, rotated["access_token"]) == 401


async def test_expired_session_refuses_refresh_and_access(api: Api) -> None:
    tokens = await api.login()
    sid = tokens["refresh_token"].split(".", 1)[0]
    async with context_of(api).sessions() as session, session.begin():
        await session.execute(
            update(AuthSession).where(AuthSession.id == sid).values(expires_at=utcnow())
        )
    body = assert_error(await refresh(api, tokens["refresh_token"]), 401, "UNAUTHORIZED")
    assert "expired" in body["error"]["message"].lower()
    assert await me_status(api, tokens["access_token"]) == 401


# --- who am I --------------------------------------------------------------------------------


async def test_me_describes_the_user_and_their_organizations(api: Api) -> None:
    headers = await api.headers_for()
    created = await api.client.post(
        "/api/v1/organizations", json={"name": "Second"}, headers=headers
    )
    assert created.status_code == 201, created.text

    response = await api.client.get(ME, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"id", "email", "created_at", "organizations"}
    assert isinstance(data["id"], int)
    assert data["email"] == ADMIN_EMAIL
    assert data["created_at"].endswith("Z")
    organizations = data["organizations"]
    assert [o["organization_name"] for o in organizations] == [
        context_of(api).settings.admin_organization,
        "Second",
    ]
    assert [o["role"] for o in organizations] == ["owner", "owner"]
    assert organizations[1]["organization_id"] == created.json()["data"]["id"]
    # Nothing secret about the user leaks.
    assert "password" not in response.text
    assert "hash" not in response.text
