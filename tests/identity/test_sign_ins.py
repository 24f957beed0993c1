"""GET /api/v1/auth/me/sign-ins: the caller's own sign-in attempts, paged, newest first."""

from __future__ import annotations

import pytest

from tests.fixtures.app import ADMIN_EMAIL, Api
from tests.fixtures.members import PASSWORD, seed_member

pytestmark = pytest.mark.anyio

SIGN_INS = "/api/v1/auth/me/sign-ins"


async def test_each_account_reads_its_own_attempts_in_pages(api: Api) -> None:
    other = await seed_member(api, None, "someone@example.com", "viewer")
    for password in ("wrong-1", "wrong-2"):
        response = await api.client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": password}
        )
        assert response.status_code == 401
    headers = await api.headers_for()
    await api.headers_for("someone@example.com", PASSWORD)

    page = (await api.client.get(SIGN_INS, params={"limit": 2}, headers=headers)).json()
    assert page["message"] == "Sign-ins retrieved"
    assert page["data"]["total"] == 3
    assert [i["outcome"] for i in page["data"]["items"]] == ["success", "failure"]
    item = page["data"]["items"][0]
    assert set(item) == {"id", "outcome", "client_address", "created_at"}
    assert item["client_address"] == "127.0.0.1"
    rest = (await api.client.get(SIGN_INS, params={"offset": 2}, headers=headers)).json()
    assert [i["outcome"] for i in rest["data"]["items"]] == ["failure"]
    assert "wrong-" not in str(page) + str(rest)

    theirs = (await api.client.get(SIGN_INS, headers=other.headers)).json()["data"]
    assert [i["outcome"] for i in theirs["items"]] == ["success"]
    assert (await api.client.get(SIGN_INS)).status_code == 401
    bad = await api.client.get(SIGN_INS, params={"limit": 0}, headers=headers)
    assert bad.status_code == 422
