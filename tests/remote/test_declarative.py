"""`rivergen plan` / `rivergen apply` against a live server: quiet repeats, secrets, --prune."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.fixtures.hardening import postgres_source
from tests.fixtures.live import LiveServer
from tests.fixtures.servers import Server
from tests.remote.helpers import run

SECRET = "decl-Secret-Value-7781"


def sources_file(tmp_path: Path, server: Server, down_port: int) -> Path:
    """Two data sources, their passwords from the environment."""
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"""
sources:
  - name: decl-up
    type: postgres
    description: reachable
    connection:
      host: {server.host}
      port: {server.port}
      database: postgres
      username: postgres
      password: ${{DECL_PG_PASSWORD}}
      ssl_mode: disable
  - name: decl-down
    type: postgresql
    connection:
      host: 127.0.0.1
      port: {down_port}
      database: postgres
      username: postgres
      password: ${{DECL_PG_PASSWORD}}
      ssl_mode: disable
"""
    )
    return path


def snapshot(server: LiveServer) -> tuple[str, int]:
    """The data sources as listed and the number of audit events."""
    with server.client() as client:
        listed = client.get("/api/v1/data-sources", headers=server.headers()).json()["data"]
        audit = client.get("/api/v1/audit-events", headers=server.headers()).json()["data"]
    return json.dumps(listed, sort_keys=True), int(audit["total"])


@pytest.fixture(scope="module")
def admin_token(live_server: LiveServer) -> str:
    """An admin service token."""
    return str(live_server.service_token("admin")["token"])


def test_plan_apply_twice_and_prune(
    live_server: LiveServer,
    admin_token: str,
    local_postgres: Server,
    closed_port: int,
    tmp_path: Path,
) -> None:
    path = sources_file(tmp_path, local_postgres, closed_port)
    env = {"DECL_PG_PASSWORD": SECRET}
    before = snapshot(live_server)
    planned = run(live_server, admin_token, "plan", "-f", str(path), **env)
    assert planned.exit_code == 0, planned.output
    assert "2 to create" in planned.stdout
    assert snapshot(live_server) == before, "plan changed something"

    first = run(live_server, admin_token, "apply", "-f", str(path), "--test", **env)
    assert first.exit_code == 1, first.output  # decl-down cannot connect
    assert "created decl-up" in first.stdout
    assert "test ok" in first.stdout
    assert "test FAILED" in first.stdout

    settled = snapshot(live_server)
    second = run(live_server, admin_token, "apply", "-f", str(path), "--test", **env)
    assert second.exit_code == 0, second.output
    assert "0 to create, 0 to change, 0 to delete, 2 unchanged" in second.stdout
    assert not [line for line in second.stdout.splitlines() if line[:1] in "+~-"]
    assert snapshot(live_server)[0] == settled[0]
    quiet_plan = run(live_server, admin_token, "plan", "-f", str(path), "--json", **env)
    assert {c["action"] for c in json.loads(quiet_plan.stdout)} == {"unchanged"}

    rotated = run(live_server, admin_token, "plan", "-f", str(path), DECL_PG_PASSWORD="other-pass")
    assert "connection.password (secret)" in rotated.stdout
    assert "2 to change" in rotated.stdout

    with live_server.client() as client:
        extra = client.post(
            "/api/v1/data-sources",
            json=postgres_source("127.0.0.1", closed_port, name="decl-extra"),
            headers=live_server.headers(),
        )
        assert extra.status_code == 201
    kept = run(live_server, admin_token, "apply", "-f", str(path), **env)
    assert kept.exit_code == 0, kept.output
    assert "not in the file" in kept.stdout
    names = {s["name"] for s in json.loads(snapshot(live_server)[0])["items"]}
    assert "decl-extra" in names
    pruned = run(live_server, admin_token, "apply", "-f", str(path), "--prune", **env)
    assert pruned.exit_code == 0, pruned.output
    assert "deleted decl-extra" in pruned.stdout
    names = {s["name"] for s in json.loads(snapshot(live_server)[0])["items"]}
    assert {"decl-up", "decl-down"} <= names
    assert "decl-extra" not in names

    for result in (planned, first, second, quiet_plan, rotated, kept, pruned):
        assert SECRET not in result.output
        assert "other-pass" not in result.output


def test_bad_files_exit_2_without_printing_secrets(
    live_server: LiveServer, admin_token: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.yaml"
    missing.write_text(
        "sources:\n  - name: x\n    type: postgresql\n    connection:\n"
        "      password: ${DECL_UNSET_VARIABLE}\n"
    )
    result = run(live_server, admin_token, "plan", "-f", str(missing))
    assert result.exit_code == 2
    assert "DECL_UNSET_VARIABLE" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"sources: [{{name: x, password: '{SECRET}'\n")
    result = run(live_server, admin_token, "plan", "-f", str(broken))
    assert result.exit_code == 2
    assert SECRET not in result.output
    twice = tmp_path / "twice.yaml"
    twice.write_text("sources:\n" + "  - {name: a, type: sqlite, connection: {path: a.db}}\n" * 2)
    assert run(live_server, admin_token, "plan", "-f", str(twice)).exit_code == 2


def test_fingerprints_are_keyed_scoped_and_admin_only(
    live_server: LiveServer, admin_token: str, closed_port: int
) -> None:
    body = postgres_source("127.0.0.1", closed_port, name="fp-source", password=SECRET)
    with live_server.client() as client:
        created = client.post("/api/v1/data-sources", json=body, headers=live_server.headers())
        source = created.json()["data"]
        stored = source["secret_fingerprints"]["connection.password"]
        assert stored.startswith("hmac-sha256:")
        assert hashlib.sha256(SECRET.encode()).hexdigest()[:32] not in stored
        assert SECRET not in created.text
        path = f"/api/v1/data-sources/{source['id']}/secret-fingerprints"
        same = client.post(
            path,
            json={"connection": {"password": SECRET}},
            headers=live_server.headers(admin_token),
        )
        assert same.status_code == 200, same.text
        assert same.json()["data"] == {"connection.password": stored}
        other = client.post(
            path, json={"connection": {"password": SECRET + "x"}}, headers=live_server.headers()
        )
        assert other.json()["data"]["connection.password"] != stored
        plain = client.post(
            path, json={"connection": {"host": "127.0.0.1"}}, headers=live_server.headers()
        )
        assert plain.status_code == 422
        viewer = live_server.service_token("viewer")["token"]
        denied = client.post(
            path, json={"connection": {"password": SECRET}}, headers=live_server.headers(viewer)
        )
        assert denied.status_code == 403
        # Another organization's admin cannot even see the source.
        org = client.post(
            "/api/v1/organizations", json={"name": "FP Other"}, headers=live_server.headers()
        ).json()["data"]["id"]
        outsider = client.post(
            f"/api/v1/organizations/{org}/api-tokens",
            json={"name": "o", "role": "admin"},
            headers=live_server.headers(),
        ).json()["data"]["token"]
        foreign = client.post(
            path, json={"connection": {"password": SECRET}}, headers=live_server.headers(outsider)
        )
        assert foreign.status_code == 404
