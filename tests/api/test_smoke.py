"""The app starts on a fresh store and the bootstrap admin can sign in."""

import pytest

from tests.fixtures.app import ADMIN_EMAIL, Api

pytestmark = pytest.mark.anyio


async def test_bootstrap_admin_can_sign_in_and_read_me(api: Api) -> None:
    headers = await api.headers_for()
    response = await api.client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["email"] == ADMIN_EMAIL
    assert body["data"]["organizations"][0]["role"] == "owner"
