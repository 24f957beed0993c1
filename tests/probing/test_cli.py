"""`rivergen test-source ID` run as a real process against the store of a running app.

It prints the same JSON fields as the API's `data`, records the test like the API does (as
triggered by "cli", without a user), and exits 0 on success, 1 on failure, 2 for an unknown id.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.fixtures.app import Api
from tests.fixtures.datasources import Tenancy, context_of, unique_name
from tests.fixtures.probing import (
    EXTRA_FIELDS,
    FILE_ROWS,
    SPEC_FIELDS,
    assert_failed,
    assert_shape,
    create_file_source,
    health_records,
    network_body,
    parse_utc,
    result_of,
    run_test,
)
from tests.fixtures.servers import Server

pytestmark = [pytest.mark.anyio, pytest.mark.store]

CLI_PASSWORD = "cli-Leak-Canary-51d0e7b3"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that the module's shared app runs on the tests' event loop."""
    return "asyncio"


@pytest.fixture
def tenancy(module_tenancy: Tenancy) -> Tenancy:
    """The owner of the app this module shares."""
    return module_tenancy


async def test_source(
    api: Api, cwd: Path, data_source_id: int | str, *options: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run `python -m rivergen test-source ID [OPTIONS]` on the app's store and settings.

    Keyword arguments are extra environment variables (more settings).
    """
    settings = context_of(api).settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGEN_")}
    env.update(
        RIVERGEN_DATABASE_URL=settings.effective_database_url,
        RIVERGEN_DATA_DIR=str(settings.data_dir),
        RIVERGEN_SECRET_KEYS=str(settings.secret_keys),
        RIVERGEN_JWT_SECRET=str(settings.jwt_secret),
        RIVERGEN_SCHEDULER_ENABLED="false",
        RIVERGEN_ALLOW_LOOPBACK=str(settings.allow_loopback).lower(),
    )
    env.update(variables)
    run = functools.partial(
        subprocess.run,
        [sys.executable, "-m", "rivergen", "test-source", str(data_source_id), *options],
        cwd=cwd,  # a directory without a stray .env
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    completed: subprocess.CompletedProcess[str] = await anyio.to_thread.run_sync(run)
    return completed


test_source.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


def printed(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON the command printed, with the API's fields and shape."""
    data: dict[str, Any] = json.loads(completed.stdout)
    assert set(data) == set(SPEC_FIELDS) | EXTRA_FIELDS
    assert_shape(data)
    return data


async def test_success_prints_the_api_fields_and_exits_0(tenancy: Tenancy, tmp_path: Path) -> None:
    data_source_id, _ = await create_file_source(tenancy, "duckdb", unique_name("cli"))
    query = "SELECT name FROM t ORDER BY id"
    body = {"test_query": query, "timeout_seconds": 5}
    via_api = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner, body))

    completed = await test_source(
        tenancy.api, tmp_path, data_source_id, "--query", query, "--timeout", "5"
    )
    assert completed.returncode == 0, completed.stderr
    data = printed(completed)
    varying = {"tested_at", "response_time_ms", "timings_ms"}
    assert {k: v for k, v in data.items() if k not in varying} == {
        k: v for k, v in via_api.items() if k not in varying
    }
    assert data["data_source_id"] == data_source_id
    assert data["test_query_result"] == FILE_ROWS[0][1]

    api_record, cli_record = await health_records(tenancy.api, data_source_id)
    assert (api_record.triggered_by, cli_record.triggered_by) == ("manual", "cli")
    assert cli_record.user_id is None
    assert cli_record.tested_at == parse_utc(data["tested_at"])
    shown = await tenancy.get(data_source_id)
    assert parse_utc(shown["last_tested_at"]) == parse_utc(data["tested_at"])
    assert shown["status"] == "active"


async def test_failure_prints_the_error_and_exits_1(
    tenancy: Tenancy, tmp_path: Path, local_postgres: Server, closed_port: int
) -> None:
    body = network_body(
        "postgresql", local_postgres, unique_name("cli"), port=closed_port, password=CLI_PASSWORD
    )
    data_source_id = int((await tenancy.create(body))["id"])
    completed = await test_source(tenancy.api, tmp_path, data_source_id)
    assert completed.returncode == 1, completed.stderr
    data = assert_failed(printed(completed), "CONNECTION_ERROR", "tcp")
    assert data["data_source_id"] == data_source_id
    assert CLI_PASSWORD not in completed.stdout + completed.stderr
    (record,) = await health_records(tenancy.api, data_source_id)
    assert (record.triggered_by, record.error_code) == ("cli", "CONNECTION_ERROR")
    assert (await tenancy.get(data_source_id))["status"] == "failed"


async def test_unknown_id_exits_2(tenancy: Tenancy, tmp_path: Path) -> None:
    completed = await test_source(tenancy.api, tmp_path, 987654)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "not found" in completed.stderr


async def test_the_default_timeout_is_the_setting(
    tenancy: Tenancy, tmp_path: Path, local_postgres: Server, silent_listener: tuple[str, int]
) -> None:
    host, port = silent_listener
    body = network_body("postgresql", local_postgres, unique_name("cli"), host=host, port=port)
    data_source_id = int((await tenancy.create(body))["id"])
    completed = await test_source(
        tenancy.api, tmp_path, data_source_id, RIVERGEN_DEFAULT_TEST_TIMEOUT_SECONDS="1"
    )
    assert completed.returncode == 1, completed.stderr
    data = assert_failed(printed(completed), "TIMEOUT")
    # One second, not the 30 s that the command hard-coded.
    assert re.search(r"\bwithin (the )?1 s\b", data["error_message"]), data
