"""Scheduled checks take their time limit from RIVERGEN_DEFAULT_TEST_TIMEOUT_SECONDS."""

from __future__ import annotations

import ast
import inspect
import re
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from rivergen.app import create_app
from rivergen.health import scheduler
from rivergen.health.scheduler import build_scheduled_checks
from rivergen.settings import Settings
from rivergen.store.base import utcnow
from tests.fixtures.app import start_api
from tests.fixtures.timing import within
from tests.health.helpers import context_of, data_of, sign_in
from tests.health.test_claims import set_due

pytestmark = pytest.mark.anyio

TIMEOUT_SECONDS = 1


async def test_a_scheduled_check_stops_at_the_configured_timeout(
    settings_factory: Callable[..., Settings],
    silent_listener: tuple[str, int],
) -> None:
    settings = settings_factory(default_test_timeout_seconds=TIMEOUT_SECONDS)
    async for api in start_api(create_app(settings)):
        org = await sign_in(api)
        host, port = silent_listener
        source_id = await org.create_source(
            interval=60,
            connection={
                "host": host,
                "port": port,
                "database": "postgres",
                "username": "postgres",
                "ssl_mode": "disable",
            },
        )
        context = context_of(api)
        checks = build_scheduled_checks(
            context.settings, context.sessions, context.data_sources, context.tests
        )
        await set_due(api, source_id, utcnow() - timedelta(seconds=1))
        (claim,) = await checks.claim(10, 0.0)
        started = time.monotonic()
        await checks.run(claim)
        assert time.monotonic() - started <= within(TIMEOUT_SECONDS)
        (check,) = data_of(await org.health(source_id))["history"]
        assert (check["triggered_by"], check["error_code"]) == ("schedule", "TIMEOUT")
        assert re.search(rf"\bwithin (the )?{TIMEOUT_SECONDS} s\b", check["error_message"])


def test_the_scheduler_does_not_depend_on_the_http_schemas() -> None:
    tree = ast.parse(inspect.getsource(scheduler))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not {name for name in imported if name.endswith(".schemas")}, imported
