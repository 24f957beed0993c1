"""Property-based tests of the whole OpenAPI document with schemathesis, against the ASGI app.

Every operation gets valid and invalid requests generated from its schema (a bounded, fixed set
of examples, so `make test` is reproducible and quick), sent with the bootstrap owner's real
token to an app on a fresh store; every answer must be no 5xx, a declared status code, a declared
content type, and a body matching the declared schema.

The two connection-test operations would make the service connect wherever a generated body
points (public addresses are allowed whatever the settings, and names cost DNS lookups that can
take seconds), for up to the 300 s a body may ask for. So they run against an app of their own,
with private networks off, and every generated database host and SSH bastion is replaced by
169.254.169.254 before sending: always refused by the host policy, before any DNS lookup or
packet, so every such test ends at once whatever its timeout. Their generated bodies are fuzzed
in full otherwise. Saved sources on that app are a local SQLite file and a source at that
address, so a generated id that hits one tests nothing outside the machine. The other
operations (which store configurations but never connect: the scheduler is off) share one app.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rivergen.app import create_app
from rivergen.settings import Settings
from tests.fixtures.app import ADMIN_EMAIL, ADMIN_PASSWORD, TEST_SECRET_KEY
from tests.fixtures.hardening import METADATA_ADDRESS, fresh_store_url, hardening_settings

# Sync tests (hypothesis drives them); `store` reruns the module on PostgreSQL.
pytestmark = pytest.mark.store

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TEST_OPERATIONS = (
    "POST /api/v1/data-sources/test",
    "POST /api/v1/data-sources/{data_source_id}/test",
)
# Examples per generation mode (positive, negative). RIVERGEN_FUZZ_SCALE multiplies them to
# explore further by hand; RIVERGEN_FUZZ_RANDOM=1 draws new examples on each run.
SCALE = float(os.environ.get("RIVERGEN_FUZZ_SCALE", "1"))
DERANDOMIZE = os.environ.get("RIVERGEN_FUZZ_RANDOM", "") != "1"
EXAMPLES = 50
# Sign-ins and new accounts hash passwords with Argon2 (~0.5 s each here): fewer of those.
FEWER = {
    "POST /api/v1/auth/login": 4,
    "POST /api/v1/organizations/{organization_id}/members": 8,
}


def _operation_labels() -> list[str]:
    # The document needs no store: building the app opens nothing until its lifespan runs.
    app = create_app(Settings(jwt_secret="x" * 32, secret_keys=TEST_SECRET_KEY))
    return [
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
    ]


OPERATIONS = _operation_labels()


@dataclass(frozen=True)
class Target:
    """An app under schemathesis: its loaded schema, the owner's headers, valid test bodies."""

    schema: Any
    headers: dict[str, str]
    unsaved_bodies: tuple[dict[str, Any], ...] = ()


def _login(app: Any) -> dict[str, str]:
    with asgi.get_client(app) as client:
        response = client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['data']['access_token']}"}


def _load(settings: Settings) -> Target:
    app = create_app(settings)
    # Loading the document through the app starts its lifespan on schemathesis' own event
    # loop, where every generated request is then served.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return Target(schema=schema, headers=_login(app))


@pytest.fixture(scope="module")
def targets(
    shared_store_url: str, store_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Target]]:
    """The app for most operations, and one for the two connection-test operations."""
    common: dict[str, Any] = {
        "allow_private_networks": False,
        "tests_per_minute_per_user": 1_000_000,
        "tests_per_minute_per_organization": 1_000_000,
    }
    main = _load(hardening_settings(tmp_path_factory.mktemp("fuzz"), shared_store_url, **common))
    with fresh_store_url(store_template, tmp_path_factory) as tests_store:
        data_dir = tmp_path_factory.mktemp("fuzz-tests")
        files = data_dir / "files"
        files.mkdir()
        database = files / "safe.sqlite"
        with sqlite3.connect(database) as conn:
            conn.execute("CREATE TABLE t (v TEXT)")
            conn.execute("INSERT INTO t VALUES ('x')")
        conn.close()
        tests = _load(hardening_settings(data_dir, tests_store, **common, file_sources_dir=files))
        bodies = _safe_sources(database)
        _create(tests, bodies)
        tests = replace(tests, unsaved_bodies=tuple(bodies))
        try:
            yield {"main": main, "tests": tests}
        finally:
            asgi.shutdown_lifespans()


def _safe_sources(database: Path) -> list[dict[str, Any]]:
    """A local SQLite file, and a PostgreSQL source the host policy refuses."""
    return [
        {"name": "safe-file", "type": "sqlite", "connection": {"path": str(database)}},
        {
            "name": "safe-refused",
            "type": "postgresql",
            "connection": {"host": METADATA_ADDRESS, "username": "u", "password": "p"},
        },
    ]


def _create(target: Target, bodies: list[dict[str, Any]]) -> None:
    with asgi.get_client(target.schema.app) as client:
        for body in bodies:
            response = client.post("/api/v1/data-sources", json=body, headers=target.headers)
            assert response.status_code == 201, response.text


def pin_destinations(case: Any) -> None:
    """Point a generated test body's database host and SSH bastion at a refused address."""
    body = case.body
    if not isinstance(body, dict):
        return
    for part in ("connection", "ssh_tunnel"):
        section = body.get(part)
        if isinstance(section, dict) and "host" in section:
            section["host"] = METADATA_ADDRESS


def _has_inputs(operation: Any) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters")) or "requestBody" in definition


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_is_declared_and_never_a_server_error(
    targets: dict[str, Target], label: str
) -> None:
    target = targets["tests" if label in TEST_OPERATIONS else "main"]
    operation = target.schema.find_operation_by_label(label)
    assert operation is not None, label
    examples = max(1, round(FEWER.get(label, EXAMPLES) * SCALE))
    strategies = [operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)]
    if _has_inputs(operation):
        strategies.append(
            operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)
        )
    if label == TEST_OPERATIONS[0]:
        # Generated configurations rarely pass an engine's validation: add valid ones, so the
        # test really runs (and its 200 answer is checked) as well as being refused.
        strategies += [operation.as_strategy(body=body) for body in target.unsaved_bodies]
    if label == TEST_OPERATIONS[1]:
        # Half of the saved tests hit the safe sources (generated query and timeout) instead
        # of ids that do not exist.
        strategies += [
            operation.as_strategy(path_parameters={"data_source_id": 1}),
            operation.as_strategy(path_parameters={"data_source_id": 2}),
        ]

    @settings(
        max_examples=examples * len(strategies),
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=st.one_of(strategies))
    def check(case: Any) -> None:
        if label in TEST_OPERATIONS:
            pin_destinations(case)
        case.call_and_validate(headers=target.headers, checks=CHECKS, timeout=30)

    try:
        check()
    except Unsatisfiable:
        pytest.fail(f"no example could be generated for {label}")
    if label in TEST_OPERATIONS:
        # Not vacuous: tests really ran (the safe file source answers, the other is refused).
        with asgi.get_client(target.schema.app) as client:
            audit = client.get(
                "/api/v1/audit-events", params={"limit": 500}, headers=target.headers
            ).json()["data"]["items"]
        action = "data_source.test_unsaved" if label == TEST_OPERATIONS[0] else "data_source.test"
        outcomes = {event["outcome"] for event in audit if event["action"] == action}
        assert outcomes == {"success", "failure"}, (label, outcomes)
