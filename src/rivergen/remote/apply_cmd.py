"""`rivergen plan -f FILE` and `rivergen apply -f FILE`: declarative data sources over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rivergen.remote.common import (
    OK,
    TEST_FAILED,
    USAGE,
    Json,
    Organization,
    Timeout,
    Url,
    fail,
    print_json,
    remote,
)
from rivergen.remote.declarative import Change, Planner, load, summary
from rivergen.remote.files import ConfigFileError

if TYPE_CHECKING:
    from rivergen.client import Client

File = Annotated[str, typer.Option("--file", "-f", help="The YAML file (- for stdin)")]
Prune = Annotated[
    bool, typer.Option("--prune", help="Delete data sources that are not in the file")
]
SIGNS = {"create": "+", "update": "~", "delete": "-", "unchanged": "=", "keep": " "}


def _desired(path: str) -> list[dict[str, object]]:
    try:
        return load(path)
    except ConfigFileError as exc:
        raise fail(str(exc), USAGE) from None


def _print_plan(changes: list[Change]) -> None:
    for change in changes:
        detail = ": " + ", ".join(change.fields) if change.action == "update" else ""
        if change.action == "keep":
            detail = " (not in the file; --prune deletes it)"
        typer.echo(f"{SIGNS[change.action]} {change.action:<9} {change.name}{detail}")
    typer.echo(f"Plan: {summary(changes)}.")


def plan(
    file: File,
    prune: Prune = False,
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Show what apply would create, change or delete; changes nothing, connects to no source."""
    desired = _desired(file)
    with remote(url, timeout, organization) as client:
        changes = Planner(client).plan(desired, prune)
    if as_json:
        print_json([c.shown() for c in changes])
    else:
        _print_plan(changes)


def _execute(client: Client, change: Change) -> int | None:
    """Make one change; the id of a created or updated source."""
    if change.action == "create":
        assert change.body is not None
        return client.create_source(change.body).id
    if change.action == "update":
        assert change.body is not None and change.data_source_id is not None
        return client.update_source(change.data_source_id, change.body).id
    if change.action == "delete":
        assert change.data_source_id is not None
        client.delete_source(change.data_source_id)
    return None


def apply(
    file: File,
    prune: Prune = False,
    test: Annotated[
        bool,
        typer.Option("--test", help="Test every created or changed source; exit 1 on a failure"),
    ] = False,
    test_timeout: Annotated[
        int | None, typer.Option("--test-timeout", min=1, max=300, help="Each test's deadline")
    ] = None,
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Make the organization's data sources match the file (keyed by name)."""
    desired = _desired(file)
    report: list[dict[str, object]] = []
    failures = 0
    with remote(url, timeout, organization) as client:
        changes = Planner(client).plan(desired, prune)
        for change in changes:
            entry = change.shown()
            data_source_id = _execute(client, change)
            if data_source_id is not None:
                entry["id"] = data_source_id
                if test:
                    result = client.test_source(data_source_id, timeout_seconds=test_timeout)
                    failures += 0 if result.connection_successful else 1
                    entry["test"] = {
                        "ok": result.connection_successful,
                        "error_code": result.error_code,
                        "error_message": result.error_message,
                    }
            report.append(entry)
    if as_json:
        print_json(report)
    else:
        _print_applied(report, changes)
    raise typer.Exit(TEST_FAILED if failures else OK)


def _print_applied(report: list[dict[str, object]], changes: list[Change]) -> None:
    done = {"create": "created", "update": "changed", "delete": "deleted"}
    for entry in report:
        action = str(entry["action"])
        if action in done:
            line = f"{SIGNS[action]} {done[action]} {entry['name']} (id {entry['id']})"
            test = entry.get("test")
            if isinstance(test, dict):
                line += ": test ok" if test["ok"] else f": test FAILED {test['error_code']}"
            typer.echo(line)
    typer.echo(f"Applied: {summary(changes)}.")


def register(app: typer.Typer) -> None:
    """Add `plan` and `apply` to the `rivergen` command."""
    app.command("plan")(plan)
    app.command("apply")(apply)
