"""The console over plain HTTP: CSRF refusal, cookie flags, security headers, no secrets."""

from __future__ import annotations

import re

import httpx

from tests.fixtures.app import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.fixtures.live import LiveServer


def _csrf(client: httpx.Client, path: str = "/sign-in") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _sign_in(client: httpx.Client) -> httpx.Client:
    token = _csrf(client)
    answer = client.post(
        "/sign-in", data={"csrf": token, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert answer.status_code == 303, answer.text
    return client


def test_sign_in_without_the_csrf_token_is_refused(live_server: LiveServer) -> None:
    with live_server.client() as client:
        _csrf(client)
        answer = client.post("/sign-in", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert answer.status_code == 403
        assert "rg_access" not in answer.cookies
        forged = client.post(
            "/sign-in",
            data={"csrf": "forged", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        )
        assert forged.status_code == 403


def test_unsafe_requests_need_the_token_even_when_signed_in(live_server: LiveServer) -> None:
    with live_server.client() as client:
        _sign_in(client)
        created = client.post(
            "/sources/new",
            data={
                "type": "postgresql",
                "name": "csrf-less",
                "c.host": "127.0.0.1",
                "c.username": "u",
                "action": "save",
            },
        )
        assert created.status_code == 403
        # A cross-site form carries no cookie of ours at all (SameSite=Strict): not signed in.
        with live_server.client() as stranger:
            forged = stranger.post("/sources/new", data={"csrf": "x", "action": "save"})
            assert forged.status_code == 303
            assert forged.headers["location"] == "/sign-in"
        listed = client.get("/api/v1/data-sources", headers=live_server.headers())
        assert "csrf-less" not in listed.text


def test_cookie_flags(live_server: LiveServer) -> None:
    with live_server.client() as client:
        token = _csrf(client)
        answer = client.post(
            "/sign-in", data={"csrf": token, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
    set_cookies = answer.headers.get_list("set-cookie")
    session = [c for c in set_cookies if c.startswith(("rg_access=", "rg_refresh="))]
    assert len(session) == 2
    for cookie in session:
        flags = cookie.lower()
        assert "httponly" in flags
        assert "samesite=strict" in flags
        assert "path=/" in flags
        # Plain HTTP here; Secure is set when the request came over HTTPS.
        assert "secure" not in flags


def test_security_headers_on_every_console_page(live_server: LiveServer) -> None:
    with live_server.client() as client:
        _sign_in(client)
        for path in (
            "/sign-in",
            "/sources",
            "/sources/new",
            "/console-static/console.js",
            "/console-static/console.css",
            "/sources/999999",
        ):
            answer = client.get(path)
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self'" in csp, path
            assert "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert "<script>" not in answer.text, path


def test_not_signed_in_goes_to_the_sign_in_page(live_server: LiveServer) -> None:
    with live_server.client() as client:
        answer = client.get("/sources")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/sign-in"
        assert client.get("/").headers["location"] == "/sources"


def test_no_secret_in_any_page(live_server: LiveServer) -> None:
    secret = "console-secret-never-shown-1"
    with live_server.client() as api:
        made = api.post(
            "/api/v1/data-sources",
            json={
                "name": "with-secret",
                "type": "postgresql",
                "connection": {"host": "127.0.0.1", "username": "u", "password": secret},
            },
            headers=live_server.headers(),
        )
    assert made.status_code == 201, made.text
    with live_server.client() as client:
        _sign_in(client)
        for path in ("/sources", f"/sources/{made.json()['data']['id']}"):
            answer = client.get(path)
            assert answer.status_code == 200
            assert secret not in answer.text
        assert "connection.password" in client.get(f"/sources/{made.json()['data']['id']}").text


def test_another_organizations_source_is_not_found(live_server: LiveServer) -> None:
    with live_server.client() as client:
        _sign_in(client)
        assert client.get("/sources/424242").status_code == 404


def test_an_organization_cookie_cannot_pick_a_foreign_organization(
    live_server: LiveServer,
) -> None:
    with live_server.client() as client:
        _sign_in(client)
        client.cookies.set("rg_org", "424242")
        page = client.get("/sources")
        assert page.status_code == 200
        assert f'value="{live_server.organization_id}" selected' in page.text


def test_sign_out_ends_the_session(live_server: LiveServer) -> None:
    with live_server.client() as client:
        _sign_in(client)
        refresh = client.cookies["rg_refresh"]
        token = _csrf(client, "/sources")
        answer = client.post("/sign-out", data={"csrf": token})
        assert answer.status_code == 303
        assert client.get("/sources").headers["location"] == "/sign-in"
        # The refresh token was revoked on the server, not only forgotten by the browser.
        renewed = client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        assert renewed.status_code == 401
