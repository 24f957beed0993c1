"""Sign-in limits that concurrency and replicas cannot multiply, against real server processes.

Fifty wrong passwords sent at once to a real `rivergen serve`: at most the account's limit get
to the password check (answered 401), the rest 429. A second server process on the same store
sees the same counters. Creating organizations is limited per user, across processes too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from tests.fixtures.serve import serve

EMAIL = "admin@example.com"
PASSWORD = "throttle-test-password-1"
LIMIT = 5


def server_env(tmp_path: Path) -> dict[str, str]:
    return {
        "RIVERGEN_DATA_DIR": str(tmp_path / "data"),
        "RIVERGEN_ADMIN_EMAIL": EMAIL,
        "RIVERGEN_ADMIN_PASSWORD": PASSWORD,
        "RIVERGEN_SCHEDULER_ENABLED": "false",
        "RIVERGEN_LOGIN_MAX_FAILURES_PER_ACCOUNT": str(LIMIT),
        "RIVERGEN_LOGIN_MAX_FAILURES_PER_CLIENT": "1000",
        "RIVERGEN_ORGANIZATIONS_PER_DAY_PER_USER": "3",
    }


async def wrong_passwords(base_url: str, count: int) -> Counter[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/auth/login", json={"email": EMAIL, "password": f"wrong-{n}"})
                for n in range(count)
            )
        )
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "RATE_LIMITED"
            assert int(response.headers["Retry-After"]) >= 1
    return Counter(r.status_code for r in responses)


def test_concurrent_guesses_and_a_second_process_share_one_budget(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    with serve(tmp_path, "first", **env) as first:
        statuses = asyncio.run(wrong_passwords(first.base_url, 50))
        assert statuses == Counter({401: LIMIT, 429: 50 - LIMIT}), statuses
        with serve(tmp_path, "second", **env) as second:
            # The other process has counted nothing itself, yet refuses even the right password.
            refused = httpx.post(
                f"{second.base_url}/api/v1/auth/login",
                json={"email": EMAIL, "password": PASSWORD},
                timeout=30,
            )
            assert refused.status_code == 429, refused.text


def test_organizations_per_user_hold_across_processes(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    with serve(tmp_path, "first", **env) as first, serve(tmp_path, "second", **env) as second:
        signed = httpx.post(
            f"{first.base_url}/api/v1/auth/login",
            json={"email": EMAIL, "password": PASSWORD},
            timeout=30,
        )
        assert signed.status_code == 200, signed.text
        headers = {"Authorization": f"Bearer {signed.json()['data']['access_token']}"}
        statuses = [
            httpx.post(
                f"{server.base_url}/api/v1/organizations",
                json={"name": f"Org {n}"},
                headers=headers,
                timeout=30,
            )
            for n, server in enumerate((first, second, first, second, first))
        ]
        assert [r.status_code for r in statuses] == [201, 201, 201, 429, 429], [
            r.text for r in statuses
        ]
        assert statuses[3].json()["error"]["code"] == "RATE_LIMITED"
        assert 1 <= int(statuses[3].headers["Retry-After"]) <= 86400
