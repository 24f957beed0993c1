"""`rivergen sources|health|audit|tokens` against a live server, as a CI job would run them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.hardening import postgres_source
from tests.fixtures.live import LiveServer
from tests.fixtures.servers import Server
from tests.remote.helpers import run, run_json


@pytest.fixture(scope="module")
def admin_token(live_server: LiveServer) -> str:
    """An admin service token of the live server's organization."""
    return str(live_server.service_token("admin")["token"])


@pytest.fixture(scope="module")
def sources(live_server: LiveServer, local_postgres: Server) -> dict[str, int]:
    """A reachable and an unreachable data source, by name."""
    ids = {}
    with live_server.client() as client:
        for body in (
            postgres_source(local_postgres.host, local_postgres.port, name="cli-up"),
            postgres_source("127.0.0.1", 1, name="cli-down"),
        ):
            created = client.post("/api/v1/data-sources", json=body, headers=live_server.headers())
            assert created.status_code == 201, created.text
            ids[body["name"]] = created.json()["data"]["id"]
    return ids


def test_list_prints_a_table_and_json(
    live_server: LiveServer, admin_token: str, sources: dict[str, int]
) -> None:
    table = run(live_server, admin_token, "sources", "list")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "TYPE", "STATUS"]
    assert any(line.split()[1] == "cli-up" for line in lines[1:])
    listed = run_json(live_server, admin_token, "sources", "list")
    assert {s["name"] for s in listed} >= {"cli-up", "cli-down"}
    one = run_json(live_server, admin_token, "sources", "get", "cli-up")
    assert one["id"] == sources["cli-up"]


def test_a_passing_test_exits_0_and_a_failing_one_1(
    live_server: LiveServer, admin_token: str, sources: dict[str, int]
) -> None:
    member = live_server.service_token("member")["token"]
    passed = run(live_server, member, "sources", "test", "cli-up", "--test-timeout", "5")
    assert passed.exit_code == 0, passed.output
    assert "ok" in passed.stdout
    failed = run(live_server, member, "sources", "test", str(sources["cli-down"]))
    assert failed.exit_code == 1, failed.output
    assert "FAILED" in failed.stdout
    both = run_json_exit(live_server, member, 1, "sources", "test", "cli-up", "cli-down")
    assert [r["ok"] for r in both] == [True, False]


def run_json_exit(server: LiveServer, token: str, code: int, *args: str) -> list[dict[str, object]]:
    """JSON output of a command that exits with `code`."""
    import json

    result = run(server, token, *args, "--json")
    assert result.exit_code == code, result.output
    data: list[dict[str, object]] = json.loads(result.stdout)
    return data


def test_exit_codes_for_usage_auth_and_not_found(
    live_server: LiveServer, admin_token: str, sources: dict[str, int]
) -> None:
    assert run(live_server, admin_token, "sources", "test").exit_code == 2
    assert run(live_server, admin_token, "sources", "get", "no-such-source").exit_code == 4
    assert run(live_server, admin_token, "sources", "get", "999999").exit_code == 4
    revoked = live_server.service_token("viewer")
    with live_server.client() as client:
        client.delete(
            f"/api/v1/organizations/{live_server.organization_id}/api-tokens/{revoked['id']}",
            headers=live_server.headers(),
        )
    denied = run(live_server, revoked["token"], "sources", "list")
    assert denied.exit_code == 3
    assert "UNAUTHORIZED" in denied.stderr
    assert revoked["token"] not in denied.output
    viewer = live_server.service_token("viewer")["token"]
    assert run(live_server, viewer, "sources", "delete", "cli-up").exit_code == 3
    no_url = run(live_server, admin_token, "sources", "list", RIVERGEN_URL="")
    assert no_url.exit_code == 2
    unreachable = run(
        live_server, admin_token, "sources", "list", RIVERGEN_URL="http://127.0.0.1:1"
    )
    assert unreachable.exit_code == 5


def test_create_update_delete_from_a_file_without_echoing_the_secret(
    live_server: LiveServer, admin_token: str, tmp_path: Path, local_postgres: Server
) -> None:
    body = tmp_path / "source.yaml"
    body.write_text(
        "name: cli-made\ntype: postgresql\nconnection:\n"
        f"  host: {local_postgres.host}\n  port: {local_postgres.port}\n"
        "  database: postgres\n  username: postgres\n  password: ${CLI_PG_PASSWORD}\n"
        "  ssl_mode: disable\n"
    )
    secret = "cli-secret-value-42"
    made = run(
        live_server,
        admin_token,
        "sources",
        "create",
        "-f",
        str(body),
        "--json",
        CLI_PG_PASSWORD=secret,
    )
    assert made.exit_code == 0, made.output
    assert secret not in made.output
    missing = run(live_server, admin_token, "sources", "create", "-f", str(body))
    assert missing.exit_code == 2
    assert "CLI_PG_PASSWORD" in missing.stderr
    change = tmp_path / "change.yaml"
    change.write_text("description: changed by the CLI\n")
    updated = run_json(live_server, admin_token, "sources", "update", "cli-made", "-f", str(change))
    assert updated["description"] == "changed by the CLI"
    duplicate = run(
        live_server, admin_token, "sources", "create", "-f", str(body), CLI_PG_PASSWORD=secret
    )
    assert duplicate.exit_code == 2  # 409: the name is taken
    deleted = run(live_server, admin_token, "sources", "delete", "cli-made")
    assert deleted.exit_code == 0, deleted.output
    assert run(live_server, admin_token, "sources", "get", "cli-made").exit_code == 4


def test_health_audit_and_tokens(
    live_server: LiveServer, admin_token: str, sources: dict[str, int]
) -> None:
    run(live_server, admin_token, "sources", "test", "cli-down")
    health = run_json(live_server, admin_token, "health", "cli-down", "--limit", "5")
    assert health["data_source_id"] == sources["cli-down"]
    assert health["history"], health
    assert run(live_server, admin_token, "health", "cli-down").exit_code == 0
    events = run_json(live_server, admin_token, "audit", "--action", "data_source.test")
    assert events
    assert all(e["action"] == "data_source.test" for e in events)
    listed = run_json(live_server, admin_token, "tokens")
    assert all("token" not in t for t in listed)
    table = run(live_server, admin_token, "tokens")
    assert table.exit_code == 0
    assert "rgt_" not in table.output
    victim = live_server.service_token("viewer")
    revoked = run(live_server, admin_token, "tokens", "revoke", str(victim["id"]))
    assert revoked.exit_code == 0, revoked.output
    assert victim["id"] not in [t["id"] for t in run_json(live_server, admin_token, "tokens")]
