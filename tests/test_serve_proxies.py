"""A real `rivergen serve` trusts X-Forwarded-For only from RIVERGEN_TRUSTED_PROXIES."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fixtures.serve import serve

PASSWORD = "proxy-test-password-1"
FORGED = "203.0.113.77"


def recorded_addresses(base_url: str, forwarded: str) -> list[str | None]:
    """Sign in with a forged X-Forwarded-For; the addresses of the account's sign-ins."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        signed = client.post(
            "/api/v1/auth/login",
            json={"email": "admin@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": forwarded},
        )
        assert signed.status_code == 200, signed.text
        token = signed.json()["data"]["access_token"]
        page = client.get("/api/v1/auth/me/sign-ins", headers={"Authorization": f"Bearer {token}"})
        assert page.status_code == 200, page.text
        return [item["client_address"] for item in page.json()["data"]["items"]]


@pytest.mark.parametrize(
    ("trusted", "expected"), [(None, "127.0.0.1"), ("127.0.0.1", FORGED), ("127.0.0.0/8", FORGED)]
)
def test_forwarded_addresses_count_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: str | None, expected: str
) -> None:
    env = {
        "RIVERGEN_DATA_DIR": str(tmp_path / "data"),
        "RIVERGEN_ADMIN_EMAIL": "admin@example.com",
        "RIVERGEN_ADMIN_PASSWORD": PASSWORD,
        "RIVERGEN_SCHEDULER_ENABLED": "false",
    }
    if trusted is not None:
        env["RIVERGEN_TRUSTED_PROXIES"] = trusted
    with serve(tmp_path, "proxies", **env) as server:
        assert recorded_addresses(server.base_url, FORGED) == [expected]
